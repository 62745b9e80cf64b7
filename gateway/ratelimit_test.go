package gateway

import (
	"testing"
	"time"
)

// feed sends requests at hz for d to a limiter of rate per second and
// returns how long it took until the limiter called the client abusive
// (0: never) and how many requests were refused until then.
func feed(rate, hz float64, d time.Duration) (time.Duration, int) {
	l := newRateLimiter(rate)
	start := time.Unix(1_700_000_000, 0)
	step := time.Duration(float64(time.Second) / hz)
	refused := 0
	for at := time.Duration(0); at < d; at += step {
		if !l.allow(start.Add(at)) {
			refused++
			if l.abusive() {
				return at, refused
			}
		}
	}
	return 0, refused
}

func TestRateLimiterFlood(t *testing.T) {
	// A steady flood: the bucket refills 20 a second, so a refusal never
	// comes 100 in a row, yet the client never slows down.
	at, refused := feed(20, 2900, 4*time.Second)
	if at == 0 {
		t.Fatalf("2,900 requests/s at a limit of 20/s for 4 s: %d refused, never called abusive", refused)
	}
	if at < floodFor || at > floodFor+100*time.Millisecond {
		t.Errorf("a steady flood was called abusive after %v, want about %v", at, floodFor)
	}
	// A flood sent all at once is closed at once, as before.
	l := newRateLimiter(20)
	now := time.Unix(1_700_000_000, 0)
	n := 0
	for !l.abusive() && n < 10_000 {
		l.allow(now)
		n++
	}
	if n > 40+200 {
		t.Errorf("a flood all at once was called abusive only after %d requests", n)
	}
}

func TestRateLimiterSparesTheMerelyEager(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rate, hz float64
		d        time.Duration
	}{
		{"within its rate", 20, 19, 10 * time.Second},
		{"a little over its rate for a second", 20, 30, time.Second},
		{"over its rate for 1.5 s", 20, 200, 1500 * time.Millisecond},
	} {
		if at, refused := feed(tc.rate, tc.hz, tc.d); at != 0 {
			t.Errorf("%s: called abusive after %v (%d refused)", tc.name, at, refused)
		}
	}
	// Spells of refusals with calm between them do not add up.
	l := newRateLimiter(20)
	now := time.Unix(1_700_000_000, 0)
	for spell := 0; spell < 5; spell++ {
		for i := 0; i < 80; i++ { // 80 at once: 40 served, 40 refused
			l.allow(now)
		}
		if l.abusive() {
			t.Fatalf("spell %d: abusive", spell)
		}
		now = now.Add(1500 * time.Millisecond)
	}
}
