package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Result is what one scenario run against one server measured; each run
// is written to its own JSON file and the report reads them all back.
type Result struct {
	Scenario string  `json:"scenario"` // floor, rtt, fanout, idle, soak
	Server   string  `json:"server"`   // gateway, gorilla, echo-process, echo-inproc
	Label    string  `json:"label,omitempty"`
	Points   []Point `json:"points"`
	// Soak is the soak scenario's outcome (it has no points).
	Soak *SoakStats `json:"soak,omitempty"`
}

// Point is one load level of a scenario.
type Point struct {
	N         int     `json:"n"` // clients, subscribers or connections
	RateHz    float64 `json:"rate_hz,omitempty"`
	DurationS float64 `json:"duration_s,omitempty"`
	WarmupS   float64 `json:"warmup_s,omitempty"` // time connected before measuring
	// Latency: round trip (floor, rtt) or sample-to-receive (fanout).
	Latency Summary    `json:"latency"`
	CDF     []CDFPoint `json:"cdf,omitempty"`
	Dist    []CDFPoint `json:"distribution,omitempty"`
	// Throughput: round trips/s (floor, rtt) or delivered samples/s (fanout).
	Throughput float64 `json:"throughput"`
	Offered    float64 `json:"offered,omitempty"` // samples/s the server produced for these subscribers
	SeqGaps    uint64  `json:"seq_gaps"`          // samples missing between consecutive seqs
	Dropped    uint64  `json:"dropped"`           // sum of the server's "dropped" notices
	Errors     uint64  `json:"errors"`            // error replies or failed connections
	// Disconnects counts clients the server dropped during the run
	// (rtt: e.g. close 1008 when a client's outgoing queue overflowed).
	Disconnects int `json:"disconnects,omitempty"`
	// idle
	RSSKiB         int64 `json:"rss_kib,omitempty"`
	BaseRSSKiB     int64 `json:"base_rss_kib,omitempty"` // before any connection
	Threads        int64 `json:"threads,omitempty"`
	Goroutines     int64 `json:"goroutines,omitempty"` // -1: not exposed
	BaseGoroutines int64 `json:"base_goroutines,omitempty"`
}

func writeResult(path string, r *Result) error {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// readResults loads every *.json result in dir, sorted by file name, and
// merges the points of files with the same scenario, server and label.
func readResults(dir string) ([]*Result, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*Result
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if r.Scenario == "" {
			continue
		}
		if prev := sameRun(out, &r); prev != nil {
			prev.Points = append(prev.Points, r.Points...)
			sort.SliceStable(prev.Points, func(i, j int) bool { return prev.Points[i].N < prev.Points[j].N })
			continue
		}
		out = append(out, &r)
	}
	return out, nil
}

// sameRun finds the result in rs of r's scenario, server and label: the
// points of one measurement may come in several files (scripts/bench.sh
// runs floor and rtt one client count at a time, back to back).
func sameRun(rs []*Result, r *Result) *Result {
	for _, x := range rs {
		if x.Scenario == r.Scenario && x.Server == r.Server && x.Label == r.Label {
			return x
		}
	}
	return nil
}

// parseCounts parses a comma-separated list of positive counts, e.g. "1,10,100".
func parseCounts(s string, limit int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > limit {
			return nil, fmt.Errorf("%q: want whole numbers from 1 to %d separated by commas, e.g. 1,10,100", f, limit)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list: give at least one count, e.g. 1,10")
	}
	return out, nil
}

// forEach runs fn(i) for i in [0, n) on at most par goroutines and returns
// the first error; after an error the remaining calls are skipped.
func forEach(n, par int, fn func(i int) error) error {
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for w := 0; w < min(par, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if first != nil || next >= n {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
