package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestGet(t *testing.T) {
	defer func(f func() (*debug.BuildInfo, bool)) { readBuildInfo = f }(readBuildInfo)
	recorded := &debug.BuildInfo{
		Main:     debug.Module{Path: "github.com/edgegate/edgegate", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "false"}},
	}
	modified := &debug.BuildInfo{
		Main:     debug.Module{Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "def456"}, {Key: "vcs.modified", Value: "true"}},
	}
	for _, tc := range []struct {
		name            string
		bi              *debug.BuildInfo
		version, commit string
		want            string
	}{
		{"link-time values win", recorded, "1.2.0", "0123", "edgegate 1.2.0 (commit 0123)"},
		{"commit from vcs.revision", recorded, "1.2.0", "", "edgegate 1.2.0 (commit abc123)"},
		{"dev with vcs.revision", recorded, "dev", "", "edgegate dev (commit abc123)"},
		{"module version and a modified tree", modified, "dev", "", "edgegate 1.4.0 (commit def456+dirty)"},
		{"nothing recorded", nil, "", "", "edgegate dev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			readBuildInfo = func() (*debug.BuildInfo, bool) { return tc.bi, tc.bi != nil }
			if got := Get(tc.version, tc.commit).Line("edgegate"); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
