package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cgroupTree writes a fake /sys/fs/cgroup: files maps a path under the root
// to its content.
func cgroupTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for path, content := range files {
		full := filepath.Join(root, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const serviceCgroup = "0::/system.slice/edgegate.service\n"

func TestCgroupMemoryCap(t *testing.T) {
	for _, tc := range []struct {
		name     string
		proc     string
		files    map[string]string
		want     int64
		wantFrom string
	}{
		{"no cap", serviceCgroup, map[string]string{
			"system.slice/edgegate.service/memory.max":  "max\n",
			"system.slice/edgegate.service/memory.high": "max\n",
		}, 0, ""},
		{"MemoryMax", serviceCgroup, map[string]string{
			"system.slice/edgegate.service/memory.max":  "268435456\n",
			"system.slice/edgegate.service/memory.high": "max\n",
		}, 256 << 20, "system.slice/edgegate.service/memory.max"},
		{"MemoryHigh below MemoryMax", serviceCgroup, map[string]string{
			"system.slice/edgegate.service/memory.max":  "268435456\n",
			"system.slice/edgegate.service/memory.high": "201326592\n",
		}, 192 << 20, "system.slice/edgegate.service/memory.high"},
		{"a tighter parent", serviceCgroup, map[string]string{
			"system.slice/edgegate.service/memory.max": "268435456\n",
			"system.slice/memory.max":                  "134217728\n",
		}, 128 << 20, "system.slice/memory.max"},
		{"cgroup v1 only", "12:memory:/system.slice/edgegate.service\n", map[string]string{
			"system.slice/edgegate.service/memory.max": "268435456\n",
		}, 0, ""},
		{"root cgroup", "0::/\n", map[string]string{}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := cgroupTree(t, tc.files)
			got, from, err := cgroupMemoryCap([]byte(tc.proc), root)
			if err != nil {
				t.Fatal(err)
			}
			wantFrom := ""
			if tc.wantFrom != "" {
				wantFrom = filepath.Join(root, filepath.FromSlash(tc.wantFrom))
			}
			if got != tc.want || from != wantFrom {
				t.Fatalf("cap %d from %q, want %d from %q", got, from, tc.want, wantFrom)
			}
		})
	}
}

func TestCgroupMemoryCapBadFile(t *testing.T) {
	root := cgroupTree(t, map[string]string{"system.slice/edgegate.service/memory.max": "lots\n"})
	_, _, err := cgroupMemoryCap([]byte(serviceCgroup), root)
	if err == nil || !strings.Contains(err.Error(), "memory.max") || !strings.Contains(err.Error(), `"lots"`) {
		t.Fatalf("err = %v, want one naming the file and its content", err)
	}
}

func TestDefaultMemoryLimit(t *testing.T) {
	root := cgroupTree(t, map[string]string{"system.slice/edgegate.service/memory.max": "100000000\n"})
	noEnv := func(string) string { return "" }
	limit, capBytes, from, err := defaultMemoryLimit(noEnv, []byte(serviceCgroup), root)
	if err != nil || limit != 90_000_000 || capBytes != 100_000_000 || !strings.HasSuffix(from, "memory.max") {
		t.Fatalf("limit %d of cap %d from %q (%v), want 90000000 of 100000000 from memory.max", limit, capBytes, from, err)
	}
	// GOMEMLIMIT, when set, is the user's choice: the runtime has read it.
	env := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "50MiB"
		}
		return ""
	}
	if limit, _, _, err := defaultMemoryLimit(env, []byte(serviceCgroup), root); limit != 0 || err != nil {
		t.Fatalf("with GOMEMLIMIT set: limit %d (%v), want none of ours", limit, err)
	}
}
