package manpage

import (
	"strings"
	"testing"
)

const help = `tool: does things.

usage:
  tool [--flag] run          run it
  tool version

exit codes:
  0    ok
.starts with a dot, has a \backslash
`

func TestRender(t *testing.T) {
	p := Page{Name: "tool", Section: 1, Summary: "does things", Source: "edgegate 1.0", Date: "2026-01-02", Help: help}
	got := p.Render()
	want := `.TH TOOL 1 "2026-01-02" "edgegate 1.0" "edgegate manual"
.SH NAME
tool \- does things
.SH DESCRIPTION
.nf
tool: does things.
\&
.fi
.SH USAGE
.nf
  tool [\-\-flag] run          run it
  tool version
\&
.fi
.SH EXIT CODES
.nf
  0    ok
\&.starts with a dot, has a \ebackslash
.fi
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestTextRoundTrip: what a reader of the page sees is the help text,
// headings in capitals, plus the NAME section.
func TestTextRoundTrip(t *testing.T) {
	p := Page{Name: "tool", Section: 1, Summary: "does things", Help: help}
	got := strings.Join(Text(p.Render()), "\n")
	want := "NAME:\ntool - does things\nDESCRIPTION:\n" + strings.ToUpper("") +
		"tool: does things.\n\nUSAGE:\n  tool [--flag] run          run it\n  tool version\n\nEXIT CODES:\n  0    ok\n.starts with a dot, has a \\backslash"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestDate(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1764806400")
	if d := Date(); d != "2025-12-04" {
		t.Fatalf("Date() = %q", d)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")
	if d := Date(); d != "" {
		t.Fatalf("Date() without SOURCE_DATE_EPOCH = %q", d)
	}
}

func TestDiff(t *testing.T) {
	page := Page{Name: "tool", Section: 1, Summary: "does things", Help: help}.Render()
	if d := Diff(help, page); d != "" {
		t.Fatalf("a page and its own help differ: %s", d)
	}
	if d := Diff(help+"  one more line\n", page); d == "" {
		t.Fatal("Diff missed a line the page lacks")
	}
	if d := Diff(strings.Replace(help, "run it", "run", 1), page); !strings.HasPrefix(d, "line 4: ") {
		t.Fatalf("Diff = %q", d)
	}
}
