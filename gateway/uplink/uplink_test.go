package uplink

import (
	"net/url"
	"testing"
	"time"
)

func TestUplinkBackoffIsCappedWithJitter(t *testing.T) {
	seen := map[time.Duration]bool{}
	for attempt := 0; attempt < 40; attempt++ {
		step := min(backoffMin<<min(attempt, 16), backoffMax)
		for range 20 {
			d := backoff(attempt)
			if d < step/2 || d > step {
				t.Fatalf("attempt %d: wait %v outside [%v, %v]", attempt, d, step/2, step)
			}
			seen[d] = true
		}
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct waits: no jitter", len(seen))
	}
}

// The uplink's URL is shown without anything secret it may carry.
func TestShownURLHidesSecrets(t *testing.T) {
	for in, want := range map[string]string{
		"wss://user:pass@backend.example:8443/uplink?token=s3cret&x=1#frag": "wss://backend.example:8443/uplink",
		"ws://127.0.0.1:9000/uplink?token=abc":                              "ws://127.0.0.1:9000/uplink",
		"wss://backend.example/a%2Fb":                                       "wss://backend.example/a%2Fb",
		"wss://backend.example":                                             "wss://backend.example",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := shownURL(u); got != want {
			t.Errorf("shownURL(%q) = %q, want %q", in, got, want)
		}
	}
}
