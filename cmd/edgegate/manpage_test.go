package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/edgegate/edgegate/cmd/internal/manpage"
)

// TestManPageIsTheHelp: 'edgegate help --man' prints a man page whose text is
// the --help text, line for line (headings in capitals).
func TestManPageIsTheHelp(t *testing.T) {
	help, man := runCmd(t, "--help"), runCmd(t, "help", "--man")
	if !strings.HasPrefix(man, ".TH EDGEGATE 1 ") {
		t.Fatalf("not a man page:\n%s", man)
	}
	var want []string
	for _, l := range strings.Split(strings.TrimRight(help, "\n"), "\n") {
		if title, ok := manpage.Heading(l); ok {
			l = strings.ToUpper(title) + ":"
		}
		want = append(want, l)
	}
	got := manpage.Text(man)
	if i := indexOf(got, "DESCRIPTION:"); i >= 0 {
		got = got[i+1:]
	} else if i := indexOf(got, want[0]); i >= 0 {
		got = got[i:]
	}
	if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
		t.Fatalf("the man page's text is not the help text:\n--- man\n%s\n--- help\n%s", g, w)
	}
}

// TestVersionLine: 'edgegate version' prints the name, the version and, when
// known, the commit.
func TestVersionLine(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "1.2.0", "0123456789abcdef"
	if got := runCmd(t, "version"); got != "edgegate 1.2.0 (commit 0123456789abcdef)\n" {
		t.Fatalf("version printed %q", got)
	}
}

func indexOf(lines []string, s string) int {
	for i, l := range lines {
		if l == s {
			return i
		}
	}
	return -1
}

// runCmd runs edgegate in-process and returns what it printed; it fails the
// test on a non-zero exit.
func runCmd(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("edgegate %v: exit %d\n%s", args, code, errb.String())
	}
	return out.String()
}
