// Package buildinfo says which version and commit a command was built
// from: the values set at link time (-ldflags "-X main.version=... -X
// main.commit=..."), or else what the Go toolchain recorded in the binary
// (the module version and vcs.revision of runtime/debug.ReadBuildInfo).
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Info is a build's version and commit.
type Info struct {
	Version string // e.g. 1.2.0, or "dev"
	Commit  string // the full commit hash, "+dirty" appended for a modified tree; "" when unknown
}

// readBuildInfo is debug.ReadBuildInfo, replaced in tests.
var readBuildInfo = debug.ReadBuildInfo

// Get returns the build's Info: version and commit as set at link time
// where they are, else as recorded by the toolchain, else "dev" and "".
func Get(version, commit string) Info {
	in := Info{Version: version, Commit: commit}
	bi, ok := readBuildInfo()
	if !ok {
		if in.Version == "" {
			in.Version = "dev"
		}
		return in
	}
	if in.Version == "" || in.Version == "dev" {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			in.Version = strings.TrimPrefix(v, "v")
		}
	}
	if in.Version == "" {
		in.Version = "dev"
	}
	if in.Commit == "" {
		var rev string
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" && dirty {
			rev += "+dirty"
		}
		in.Commit = rev
	}
	return in
}

// Line is the one line a version command prints:
// "edgegate 1.2.0 (commit 0123abc...)", or "edgegate dev" with no commit.
func (in Info) Line(name string) string {
	if in.Commit == "" {
		return name + " " + in.Version
	}
	return name + " " + in.Version + " (commit " + in.Commit + ")"
}
