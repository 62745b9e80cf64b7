package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit and
// returns the new soft limit.
func raiseFileLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, fmt.Errorf("read the open-file limit: %w", err)
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return 0, fmt.Errorf("raise the open-file limit to %d: %w", r.Max, err)
		}
	}
	return r.Cur, nil
}

// procStatusKiB reads a "Name:  N kB" field of /proc/<pid>/status.
func procStatusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read the status of process %d (is it still running?): %w", pid, err)
	}
	return parseStatusKiB(b, field)
}

func parseStatusKiB(status []byte, field string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q is not a number", field, f[0])
		}
		return n, nil
	}
	return 0, fmt.Errorf("no %s field in /proc status", field)
}

// procThreads reads the Threads field of /proc/<pid>/status (OS threads,
// not goroutines).
func procThreads(pid int) int64 {
	n, err := procStatusKiB(pid, "Threads")
	if err != nil {
		return 0
	}
	return n
}

// metricGoroutines reads go_goroutines from a Prometheus text endpoint;
// -1 when the URL is empty or the metric is not exposed (yet).
func metricGoroutines(ctx context.Context, url string) int64 {
	if url == "" {
		return -1
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return -1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return -1
	}
	return parseMetric(resp.Body, "go_goroutines")
}

// parseMetric returns the value of an unlabelled metric in Prometheus
// text exposition, -1 when absent.
func parseMetric(r io.Reader, name string) int64 {
	return parseMetrics(r, name)[name]
}

// parseMetrics returns the values of unlabelled metrics in Prometheus
// text exposition (the first line of each), -1 for those absent or not
// numbers.
func parseMetrics(r io.Reader, names ...string) map[string]int64 {
	out := make(map[string]int64, len(names))
	for _, n := range names {
		out[n] = -1
	}
	seen := make(map[string]bool, len(names))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() && len(seen) < len(out) {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		if _, want := out[f[0]]; !want || seen[f[0]] {
			continue
		}
		seen[f[0]] = true
		if x, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = int64(x)
		}
	}
	return out
}
