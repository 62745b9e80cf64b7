package config

import (
	"strings"
	"testing"
)

func TestShortSecretsRefused(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"auth:\n  enabled: true\n  secret: short\n", "t.yaml:3: auth.secret: too short (5 bytes)"},
		{"auth:\n  enabled: true\n  keys:\n    - {name: a, key: abc123, role: viewer}\n", "t.yaml:4: auth.keys[0].key: too short (6 characters)"},
	} {
		_, err := Parse("t.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "/dev/urandom") {
			t.Errorf("%q: got %v, want %q with advice", tc.yaml, err, tc.want)
		}
	}
	if _, err := Parse("t.yaml", []byte("auth:\n  enabled: true\n  secret: sixteen-bytes-ok\n  keys:\n    - {name: a, key: a-key-of-16-chars, role: viewer}\n")); err != nil {
		t.Fatalf("16-byte secret and key refused: %v", err)
	}
}

// Keys a guess finds at once are refused: the example's placeholders and
// one character repeated, however long.
func TestGuessableKeysRefused(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"CHANGE-ME-operator-key", "t.yaml:4: auth.keys[0].key: still the example's placeholder"},
		{"change-me-but-long-enough", "t.yaml:4: auth.keys[0].key: still the example's placeholder"},
		{"my-CHANGE-ME", "t.yaml:4: auth.keys[0].key: still the example's placeholder"},
		{strings.Repeat("a", 40), "t.yaml:4: auth.keys[0].key: one character repeated"},
		{strings.Repeat("0", 16), "t.yaml:4: auth.keys[0].key: one character repeated"},
	} {
		_, err := Parse("t.yaml", []byte("auth:\n  enabled: true\n  keys:\n    - {name: a, key: "+tc.key+", role: viewer}\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "openssl rand -hex 24") {
			t.Errorf("key %q: got %v, want %q with advice", tc.key, err, tc.want)
		}
	}
	if _, err := Parse("t.yaml", []byte("auth:\n  enabled: true\n  keys:\n    - {name: a, key: aaaaaaaaaaaaaaab, role: viewer}\n")); err != nil {
		t.Fatalf("a key that is not one repeated character refused: %v", err)
	}
}

// An uplink in clear to another host is refused unless asked for.
func TestPlainUplinkToRemoteHostRefused(t *testing.T) {
	doc := func(url, extra string) []byte {
		return []byte("upstream:\n  url: " + url + "\n  token: t\n" + extra)
	}
	for _, url := range []string{"ws://backend.example/ingest", "ws://192.168.1.10:9000/uplink", "ws://[2001:db8::1]/u"} {
		_, err := Parse("t.yaml", doc(url, ""))
		if err == nil || !strings.Contains(err.Error(), "t.yaml:2: upstream.url: ws:// to") || !strings.Contains(err.Error(), "upstream.insecure: true") {
			t.Errorf("%s: got %v", url, err)
		}
		cfg, err := Parse("t.yaml", doc(url, "  insecure: true\n"))
		if err != nil || !cfg.Upstream.Insecure {
			t.Errorf("%s with insecure: true: %v", url, err)
		}
	}
	for _, url := range []string{"ws://127.0.0.1:9000/uplink", "ws://localhost:9000/u", "ws://[::1]:9000/u", "wss://backend.example/ingest"} {
		if _, err := Parse("t.yaml", doc(url, "")); err != nil {
			t.Errorf("%s refused: %v", url, err)
		}
	}
}
