// Package manpage turns a command's --help text into a man page (roff, the
// man macros), so that the two never say different things: the page is the
// help text, line for line, under section headings.
//
// The help text is read as plain text: a line of its own at the left margin
// that ends in a colon ("usage:", "exit codes:") starts a section; every
// other line is kept as it is, preformatted (.nf), with roff's special
// characters escaped. The text before the first heading is the description.
package manpage

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Page is what a man page is made of.
type Page struct {
	Name    string // the command, e.g. edgegate
	Section int    // 1 for commands
	Summary string // the NAME line's text after "name \-"
	Source  string // the footer's source, e.g. "edgegate 1.2.0"
	Date    string // the footer's date, e.g. 2026-12-04; "" for none
	Help    string // the --help text
}

// Date is the day a reproducible build is dated: SOURCE_DATE_EPOCH (the
// commit's time, set by scripts/package.sh) when it is set, else "".
func Date() string {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return ""
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return ""
	}
	return time.Unix(sec, 0).UTC().Format("2006-01-02")
}

// Heading reports whether a help line starts a section, and its title.
func Heading(line string) (string, bool) {
	if line == "" || line[0] == ' ' || line[0] == '\t' || !strings.HasSuffix(line, ":") || strings.Count(line, ":") != 1 {
		return "", false
	}
	return strings.TrimSuffix(line, ":"), true
}

// Render returns the page in roff.
func (p Page) Render() string {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s %d %q %q %q\n", strings.ToUpper(p.Name), p.Section, p.Date, p.Source, "edgegate manual")
	b.WriteString(".SH NAME\n")
	fmt.Fprintf(&b, "%s \\- %s\n", Escape(p.Name), Escape(p.Summary))
	lines := strings.Split(strings.TrimRight(p.Help, "\n"), "\n")
	open := false // inside .nf
	section := func(title string) {
		if open {
			b.WriteString(".fi\n")
		}
		fmt.Fprintf(&b, ".SH %s\n.nf\n", Escape(strings.ToUpper(title)))
		open = true
	}
	for i, l := range lines {
		if title, ok := Heading(l); ok {
			section(title)
			continue
		}
		if !open {
			if strings.TrimSpace(l) == "" && i == len(lines)-1 {
				continue
			}
			section("description")
		}
		if strings.TrimSpace(l) == "" {
			// A blank line in .nf is an empty line; as a line of its own
			// roff would warn about it, so give it a zero-width character.
			b.WriteString("\\&\n")
			continue
		}
		b.WriteString(Escape(l) + "\n")
	}
	if open {
		b.WriteString(".fi\n")
	}
	return b.String()
}

// Escape makes a line of text safe in roff: backslashes and minus signs
// escaped, and a leading dot or quote (a request to roff) neutralised.
func Escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// Text undoes Render: the lines of the page as a reader sees them, the
// section headings in capitals. Tests compare it with the help text.
func Text(roff string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(roff, "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, ".SH "):
			out = append(out, unescape(strings.TrimPrefix(l, ".SH "))+":")
		case strings.HasPrefix(l, "."):
		default:
			out = append(out, unescape(l))
		}
	}
	return out
}

func unescape(s string) string {
	s = strings.TrimPrefix(s, `\&`)
	s = strings.ReplaceAll(s, `\-`, "-")
	return strings.ReplaceAll(s, `\e`, `\`)
}

// Diff is "" when what a reader of the man page roff sees below its NAME
// section is the help text, line for line (headings in capitals), and else
// says where they part.
func Diff(help, roff string) string {
	var want []string
	for _, l := range strings.Split(strings.TrimRight(help, "\n"), "\n") {
		if title, ok := Heading(l); ok {
			l = strings.ToUpper(title) + ":"
		}
		want = append(want, l)
	}
	got := Text(roff)
	if len(got) < 2 || got[0] != "NAME:" {
		return "the page has no NAME section"
	}
	got = got[2:]
	if len(got) > 0 && got[0] == "DESCRIPTION:" && (len(want) == 0 || want[0] != "DESCRIPTION:") {
		got = got[1:]
	}
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("line %d: the man page has %q, the help %q", i+1, g, w)
		}
	}
	return ""
}
