package textutil

import (
	"strings"
	"testing"
)

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "list", 4},
		{"list", "", 4},
		{"list", "list", 0},
		{"lsit", "list", 2},
		{"lst", "list", 1},
		{"togle", "toggle", 1},
		{"relays", "relay", 1},
		{"kitten", "sitting", 3},
		{strings.Repeat("a", 65), "a", 1 << 30},
		{"a", strings.Repeat("a", 65), 1 << 30},
		{strings.Repeat("a", 64), strings.Repeat("a", 64), 0},
	} {
		if got := EditDistance(c.a, c.b); got != c.want {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
