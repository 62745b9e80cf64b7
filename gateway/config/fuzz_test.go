package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, returns a Config or Errors (never both),
// and every error names the file and a line.
func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte(exampleWithKeys))
	for _, tc := range refusals {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil {
			if c == nil {
				t.Fatal("nil Config and nil error")
			}
			return
		}
		if c != nil {
			t.Fatal("Config and error")
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error %T %v, want Errors", err, err)
		}
		for i, e := range es {
			if e.File != "fuzz.yaml" || e.Line < 1 || e.Problem == "" || strings.Contains(e.Problem, "internal error") {
				t.Fatalf("bad error %q", e)
			}
			if i > 0 && es[i-1].Line > e.Line {
				t.Fatalf("not sorted by line: %v", err)
			}
		}
	})
}
