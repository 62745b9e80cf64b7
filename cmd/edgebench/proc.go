package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
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
func parseMetric(r interface{ Read([]byte) (int, error) }, name string) int64 {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != name {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return -1
		}
		return int64(v)
	}
	return -1
}
