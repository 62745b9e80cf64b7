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
