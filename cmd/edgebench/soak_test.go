package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSoakVerdict(t *testing.T) {
	start := Usage{Goroutines: 11, OpenFDs: 16, RSSKiB: 16000}
	for _, c := range []struct {
		name string
		end  Usage
		ok   bool
		says string
	}{
		{"same", start, true, "goroutines 11 → 11"},
		{"within the slack", Usage{16, 11, 17600}, true, "+10.0%"},
		{"RSS below the start", Usage{11, 16, 9000}, true, ""},
		{"goroutines leaked", Usage{17, 16, 16000}, false, "goroutines +6"},
		{"goroutines gone", Usage{5, 16, 16000}, false, "goroutines -6"},
		{"files leaked", Usage{11, 22, 16000}, false, "open files +6"},
		{"RSS grew", Usage{11, 16, 17601}, false, "RSS +10.0%"},
	} {
		ok, detail := soakVerdict(start, c.end)
		if ok != c.ok || !strings.Contains(detail, c.says) {
			t.Errorf("%s: soakVerdict = %v, %q; want %v and %q", c.name, ok, detail, c.ok, c.says)
		}
		if !ok && !strings.Contains(detail, "over the bound") {
			t.Errorf("%s: a failure must say what is over the bound: %q", c.name, detail)
		}
	}
	if ok, _ := soakVerdict(Usage{}, Usage{}); ok {
		t.Error("no RSS at the start (nothing measured) must not pass")
	}
}

func TestBestUsageTakesTheLowestOfEach(t *testing.T) {
	got := bestUsage([]Usage{{20, 30, 900}, {12, 31, 1000}, {15, 16, 950}})
	if want := (Usage{12, 16, 900}); got != want {
		t.Errorf("bestUsage = %+v, want %+v", got, want)
	}
	if got := bestUsage(nil); got != (Usage{}) {
		t.Errorf("bestUsage(nil) = %+v", got)
	}
	if got := maxUsage(Usage{1, 5, 3}, Usage{2, 4, 3}); got != (Usage{2, 5, 3}) {
		t.Errorf("maxUsage = %+v", got)
	}
}

// A scrape as the gateway writes it (VictoriaMetrics/metrics): labelled
// and longer names with the same prefix must not be taken for the metric.
const scrapeText = `# a comment
go_goroutines_total 3
edgegate_connections{protocol="relay-control.v1"} 2
go_goroutines 42
process_resident_memory_bytes 1.6777216e+07
process_resident_memory_peak_bytes 99999999
process_open_fds 17
process_max_fds 1024
go_goroutines 1
`

func TestParseMetricsAndUsage(t *testing.T) {
	m := parseMetrics(strings.NewReader(scrapeText), "go_goroutines", "process_open_fds", "absent")
	if m["go_goroutines"] != 42 || m["process_open_fds"] != 17 || m["absent"] != -1 {
		t.Errorf("parseMetrics = %v", m)
	}
	u, err := usageFrom(strings.NewReader(scrapeText))
	if err != nil || u != (Usage{Goroutines: 42, OpenFDs: 17, RSSKiB: 16384}) {
		t.Errorf("usageFrom = %+v, %v", u, err)
	}
	// A gateway without process_open_fds (before it wrote them) is an error, not 0 files.
	_, err = usageFrom(strings.NewReader("go_goroutines 4\nprocess_resident_memory_bytes 100\n"))
	if err == nil || !strings.Contains(err.Error(), "process_open_fds") {
		t.Errorf("usageFrom without open files: %v", err)
	}
	if n := parseMetric(strings.NewReader("process_open_fds NaNx\n"), "process_open_fds"); n != -1 {
		t.Errorf("a value that is no number = %d, want -1", n)
	}
}

func TestSoakInReport(t *testing.T) {
	dir := t.TempDir()
	soak := func(d time.Duration, end Usage) *Result {
		s := &SoakStats{DurationS: d.Seconds(), WarmupS: 10, SettleS: 30, SettlePolls: 30,
			Start: Usage{11, 16, 16000}, Peak: Usage{40, 30, 20000}, End: end, RelaySessions: 7, GatewayExit: "exit 0"}
		s.Pass, s.Verdict = soakVerdict(s.Start, s.End)
		return &Result{Scenario: "soak", Server: "gateway", Soak: s}
	}
	for _, c := range []struct {
		res    *Result
		status string
	}{
		{nil, "N/A"},
		{soak(10*time.Minute, Usage{12, 16, 16100}), "PASS"},
		{soak(10*time.Minute, Usage{30, 16, 16100}), "FAIL"},
		{soak(30*time.Second, Usage{12, 16, 16100}), "N/A"},
	} {
		os.RemoveAll(filepath.Join(dir, "soak.json"))
		if c.res != nil {
			if err := writeResult(filepath.Join(dir, "soak.json"), c.res); err != nil {
				t.Fatal(err)
			}
		}
		results, err := readResults(dir)
		if err != nil {
			t.Fatal(err)
		}
		r := &report{results: results}
		v := r.soakVerdict()
		if v.Status != c.status {
			t.Errorf("soak verdict %s (%s), want %s", v.Status, v.Detail, c.status)
		}
		if c.res == nil {
			continue
		}
		if c.res.Soak.DurationS < soakTargetLength.Seconds() && !strings.Contains(v.Detail, "a 30s run only (PASS") {
			t.Errorf("a short run's detail: %q", v.Detail)
		}
		var md bytes.Buffer
		r.markdown(&md, r.verdicts(), "bench")
		for _, want := range []string{"## soak", "| start (after the warm-up) | 11 | 16 | 15.6 MiB |", "| peak during the load | 40 | 30 | 19.5 MiB |", "| relay-control sessions | 7 |", fmt.Sprintf("%-4s %s — ", v.Status, v.Name)} {
			if !strings.Contains(md.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, md.String())
			}
		}
	}
}
