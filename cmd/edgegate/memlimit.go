package main

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// A service given a memory cap (systemd's MemoryHigh= or MemoryMax=, i.e.
// cgroup v2's memory.high and memory.max) should collect garbage harder as
// it nears the cap rather than be throttled or killed at it, which for a
// gateway means relays left as they are. Go does not read the cap itself,
// so edgegate gives the runtime a soft limit (GOMEMLIMIT) of memLimitShare
// of the tightest cap on its cgroup and the cgroups above it, unless
// GOMEMLIMIT is set.

// memLimitShare is the part of the cgroup's cap given to the Go runtime;
// the rest is for what the runtime does not count (the binary's text,
// thread stacks of the OS) and for headroom.
const memLimitShare = 0.9

// cgroupMemoryCap returns the tightest memory.high or memory.max on the
// cgroup v2 of the process described by procCgroup (the text of
// /proc/self/cgroup) and its ancestors under root (/sys/fs/cgroup), and
// the file that sets it; 0 when there is none (no cgroup v2, or "max"
// throughout).
func cgroupMemoryCap(procCgroup []byte, root string) (int64, string, error) {
	var rel string
	found := false
	sc := bufio.NewScanner(bytes.NewReader(procCgroup))
	for sc.Scan() {
		// cgroup v2's line is "0::/path"; v1 lines name controllers.
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			rel, found = p, true
			break
		}
	}
	if !found {
		return 0, "", nil
	}
	var (
		best     int64
		bestFrom string
	)
	dir := filepath.Join(root, filepath.FromSlash(rel))
	for {
		for _, name := range []string{"memory.high", "memory.max"} {
			path := filepath.Join(dir, name)
			b, err := os.ReadFile(path)
			if err != nil {
				if os.IsNotExist(err) {
					continue // the root cgroup has neither
				}
				return 0, "", err
			}
			s := strings.TrimSpace(string(b))
			if s == "max" {
				continue
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return 0, "", fmt.Errorf("%s: %q is not a byte count or \"max\"", path, s)
			}
			if best == 0 || n < best {
				best, bestFrom = n, path
			}
		}
		if dir == root || len(dir) <= len(root) {
			break
		}
		dir = filepath.Dir(dir)
	}
	return best, bestFrom, nil
}

// defaultMemoryLimit returns the soft memory limit to give the runtime:
// memLimitShare of the cgroup's cap, or 0 (leave the runtime's own) when
// GOMEMLIMIT is set (getenv) or there is no cap.
func defaultMemoryLimit(getenv func(string) string, procCgroup []byte, root string) (limit, capBytes int64, from string, err error) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, 0, "", nil
	}
	capBytes, from, err = cgroupMemoryCap(procCgroup, root)
	if err != nil || capBytes == 0 {
		return 0, 0, "", err
	}
	return int64(float64(capBytes) * memLimitShare), capBytes, from, nil
}

// setMemoryLimit gives the Go runtime defaultMemoryLimit's limit, if any,
// and says so.
func setMemoryLimit(log *slog.Logger) {
	proc, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return // not Linux, or no /proc: no cgroup to read
	}
	limit, capBytes, from, err := defaultMemoryLimit(os.Getenv, proc, "/sys/fs/cgroup")
	switch {
	case err != nil:
		log.Warn("cannot read the service's memory cap; the Go runtime gets no memory limit (set GOMEMLIMIT to give one)", "err", err)
	case limit > 0:
		debug.SetMemoryLimit(limit)
		log.Info("memory limit for the Go runtime: 90% of the service's memory cap (set GOMEMLIMIT to choose another)",
			"cap", from, "cap_bytes", capBytes, "limit_bytes", limit)
	}
}
