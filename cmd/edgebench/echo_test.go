package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for edgebench when a test starts
// it as a child process (the floor's echo-server).
func TestMain(m *testing.M) {
	if os.Getenv("EDGEBENCH_TEST_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// The floor's echo server runs in another process, is dialed and measured
// like a server under test, and exits cleanly when its owner lets go.
func TestFloorAgainstEchoProcess(t *testing.T) {
	t.Setenv("EDGEBENCH_TEST_AS_MAIN", "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := startEchoProcess(ctx, exe)
	if err != nil {
		t.Fatal(err)
	}
	if p.Pid == os.Getpid() || p.Pid <= 0 {
		t.Errorf("echo server pid %d: want a child process, not this one (%d)", p.Pid, os.Getpid())
	}
	res, err := runFloor(ctx, p.Addr, echoProcess, []int{1, 3}, loadOpts{duration: 200 * time.Millisecond, maxIter: 1_000_000})
	if serr := p.Stop(); serr != nil {
		t.Errorf("stop: %v (the child must exit by itself when its stdin closes)", serr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Scenario != "floor" || res.Server != echoProcess || len(res.Points) != 2 {
		t.Fatalf("result %+v", res)
	}
	for _, pt := range res.Points {
		if pt.Latency.Count == 0 || pt.Errors != 0 || pt.Disconnects != 0 || pt.Latency.P99 <= 0 {
			t.Errorf("n=%d: %d round trips, %d errors, %d disconnects, p99 %d", pt.N, pt.Latency.Count, pt.Errors, pt.Disconnects, pt.Latency.P99)
		}
	}
	if _, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
		t.Errorf("the echo server at %s still accepts after Stop", p.Addr)
	}
}

// An echo server that cannot listen says why; a child that cannot start
// is an error, not a wait.
func TestEchoProcessStartFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out, errw bytes.Buffer
	if code := run([]string{"echo-server", "-listen", ln.Addr().String()}, &out, &errw); code != 1 || !strings.Contains(errw.String(), "is the port free") {
		t.Errorf("echo-server on a busy port: exit %d, stderr %q", code, errw.String())
	}
	if _, err := startEchoProcess(context.Background(), filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("starting a missing executable must fail")
	}
}

// serveEcho returns every byte it gets, for messages of any size, and its
// stop ends connections that are still open.
func TestServeEcho(t *testing.T) {
	addr, stop, err := startEchoInproc()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, size := range []int{1, echoFrame, 4096, 10_000} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		go c.Write(msg)
		got := make([]byte, size)
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("size %d: echo differs (%v)", size, err)
		}
	}
	stop() // with c still open: must not hang
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the connection is still open after stop")
	}
}

func TestFloorFlags(t *testing.T) {
	var out, errw bytes.Buffer
	if code := run([]string{"floor", "-inproc", "-echo", "127.0.0.1:1"}, &out, &errw); code != 2 {
		t.Errorf("-inproc with -echo: exit %d, want 2 (%s)", code, errw.String())
	}
}

// The rtt target compares the gateway with the separate-process floor,
// never with the in-process echo, and says which is which.
func TestRTTVerdictUsesSeparateProcessFloor(t *testing.T) {
	pt := func(n int, p99 int64) []Point { return []Point{{N: n, Latency: Summary{P99: p99, Count: 100}}} }
	cases := []struct {
		name    string
		results []*Result
		status  string
	}{
		{"within 3× of the process floor", []*Result{
			{Scenario: "rtt", Server: "gateway", Points: pt(1, 90_000)},
			{Scenario: "floor", Server: echoProcess, Points: pt(1, 40_000)},
			{Scenario: "floor", Server: echoInproc, Points: pt(1, 10_000)},
		}, "PASS"},
		{"beyond 3× of the process floor", []*Result{
			{Scenario: "rtt", Server: "gateway", Points: pt(1, 130_000)},
			{Scenario: "floor", Server: echoProcess, Points: pt(1, 40_000)},
		}, "FAIL"},
		{"in-process echo alone is no floor", []*Result{
			{Scenario: "rtt", Server: "gateway", Points: pt(1, 90_000)},
			{Scenario: "floor", Server: echoInproc, Points: pt(1, 40_000)},
		}, "N/A"},
	}
	for _, c := range cases {
		r := &report{results: c.results}
		v := r.verdicts()[0]
		if v.Status != c.status {
			t.Errorf("%s: %s (%s), want %s", c.name, v.Status, v.Detail, c.status)
		}
		if !strings.Contains(v.Name, "separate process") {
			t.Errorf("%s: verdict name %q does not say the floor is a separate process", c.name, v.Name)
		}
	}
	var md bytes.Buffer
	r := &report{results: cases[0].results}
	r.markdown(&md, r.verdicts(), "bench")
	for _, want := range []string{"raw TCP echo, separate process (floor)", "in-process echo"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// Points of one measurement written to several files (bench.sh runs one
// client count at a time) come back as one result, by client count.
func TestReadResultsMergesPoints(t *testing.T) {
	dir := t.TempDir()
	for name, r := range map[string]*Result{
		"floor-process-n10.json": {Scenario: "floor", Server: echoProcess, Points: []Point{{N: 10}}},
		"floor-process-n1.json":  {Scenario: "floor", Server: echoProcess, Points: []Point{{N: 1}}},
		"rtt-gateway-n1.json":    {Scenario: "rtt", Server: "gateway", Points: []Point{{N: 1}}},
	} {
		if err := writeResult(filepath.Join(dir, name), r); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := readResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2", len(rs))
	}
	f := (&report{results: rs}).find("floor", echoProcess, "")
	if f == nil || len(f.Points) != 2 || f.Points[0].N != 1 || f.Points[1].N != 10 {
		t.Errorf("merged floor = %+v, want points n=1, n=10", f)
	}
}

// The saturation verdict compares the best rates of the sweep, says where
// each server fell behind, and is no verdict when neither did.
func TestSaturationVerdict(t *testing.T) {
	pts := func(delivered ...float64) []Point {
		var ps []Point
		for i, d := range delivered {
			n := 100 << i
			ps = append(ps, Point{N: n, Offered: float64(n) * 1000, Throughput: d})
		}
		return ps
	}
	sat := func(g, b []Point) verdict {
		r := &report{results: []*Result{
			{Scenario: "fanout", Server: "gateway", Label: "saturation", Points: g},
			{Scenario: "fanout", Server: "gorilla", Label: "saturation", Points: b},
		}}
		for _, v := range r.verdicts() {
			if strings.Contains(v.Name, "saturation") {
				return v
			}
		}
		t.Fatal("no saturation verdict")
		return verdict{}
	}
	if v := sat(pts(1e5, 2e5, 4e5), pts(1e5, 1.5e5, 1.8e5)); v.Status != "PASS" || !strings.Contains(v.Detail, "saturated at no and 200 subscribers") {
		t.Errorf("2.2× with the baseline behind from 200: %s %s", v.Status, v.Detail)
	}
	if v := sat(pts(1e5, 1.5e5, 1.8e5), pts(1e5, 2e5, 2.5e5)); v.Status != "FAIL" || !strings.Contains(v.Detail, "saturated at 200 and 400 subscribers") {
		t.Errorf("0.72×: %s %s", v.Status, v.Detail)
	}
	if v := sat(pts(1e5, 2e5), pts(1e5, 2e5)); v.Status != "N/A" || !strings.Contains(v.Detail, "extend the sweep") {
		t.Errorf("neither behind: %s %s", v.Status, v.Detail)
	}
	// A best rate of a server that never fell behind is only a lower bound.
	if v := sat(pts(1e5, 2e5, 4e5), pts(1e5, 1.5e5, 1.8e5)); !strings.Contains(v.Detail, "lower bound") {
		t.Errorf("gateway never behind, 2.2×: %s %s", v.Status, v.Detail)
	}
	if v := sat(pts(1e5, 2e5, 4e5), pts(1e5, 1.5e5, 2.5e5)); v.Status != "N/A" || !strings.Contains(v.Detail, "lower bound: extend the sweep") {
		t.Errorf("gateway never behind, 1.6×: %s %s", v.Status, v.Detail)
	}
	if v := sat(pts(1e5, 1.5e5, 1.8e5), pts(1e5, 2e5, 4e5)); v.Status != "N/A" || !strings.Contains(v.Detail, "baseline kept up") {
		t.Errorf("baseline never behind: %s %s", v.Status, v.Detail)
	}
}

// The report says whether idle CPUs could sleep during the run, as
// scripts/bench.sh recorded it in cpu-idle.txt, in the Machine table and
// in the rtt verdict, and says so when it was not recorded.
func TestReportSaysHowIdleCPUsBehaved(t *testing.T) {
	for _, c := range []struct {
		idle      string // cpu-idle.txt; "-": none
		machine   string
		inVerdict string
	}{
		{"poll\n", "| CPU idle | held out of sleep states for the run (scripts/bench.sh --poll-idle", "idle CPUs held out of sleep (--poll-idle)"},
		{"sleep\n", "| CPU idle | allowed to sleep when idle (run without --poll-idle)", "idle CPUs allowed to sleep"},
		{"-", "| CPU idle | not recorded", ""},
	} {
		dir := t.TempDir()
		for name, r := range map[string]*Result{
			"floor-process-n1.json": {Scenario: "floor", Server: echoProcess, Points: []Point{{N: 1, Latency: Summary{P99: 40_000, Count: 10}}}},
			"rtt-gateway-n1.json":   {Scenario: "rtt", Server: "gateway", Points: []Point{{N: 1, Latency: Summary{P99: 90_000, Count: 10}}}},
		} {
			if err := writeResult(filepath.Join(dir, name), r); err != nil {
				t.Fatal(err)
			}
		}
		if c.idle != "-" {
			if err := os.WriteFile(filepath.Join(dir, "cpu-idle.txt"), []byte(c.idle), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		md := renderReport(t, dir, "quick")
		if !strings.Contains(md, c.machine) {
			t.Errorf("cpu-idle.txt %q: the Machine table lacks %q", c.idle, c.machine)
		}
		_, verdict, _ := strings.Cut(md, "PASS rtt p99 at 1 client")
		verdict, _, _ = strings.Cut(verdict, "\n")
		if verdict == "" {
			t.Fatalf("cpu-idle.txt %q: no rtt verdict in\n%s", c.idle, md)
		}
		if c.inVerdict != "" && !strings.Contains(verdict, c.inVerdict) {
			t.Errorf("cpu-idle.txt %q: rtt verdict %q lacks %q", c.idle, verdict, c.inVerdict)
		}
		if c.inVerdict == "" && strings.Contains(verdict, "idle CPUs") {
			t.Errorf("no cpu-idle.txt: rtt verdict %q claims to know", verdict)
		}
	}
}

// The saturation section says how long each step warmed up and measured,
// from the results themselves.
func TestReportSaysSaturationWarmup(t *testing.T) {
	dir := t.TempDir()
	pt := Point{N: 100, RateHz: 1000, DurationS: 5, WarmupS: 3, Offered: 1e5, Throughput: 1e5, Latency: Summary{P99: 1e6, Count: 10}}
	for name, r := range map[string]*Result{
		"saturation-gateway.json": {Scenario: "fanout", Server: "gateway", Label: "saturation", Points: []Point{pt}},
		"saturation-gorilla.json": {Scenario: "fanout", Server: "gorilla", Label: "saturation", Points: []Point{pt}},
	} {
		if err := writeResult(filepath.Join(dir, name), r); err != nil {
			t.Fatal(err)
		}
	}
	md := renderReport(t, dir, "full")
	if want := "Each step is measured for 5s once every subscriber has been connected for 3s"; !strings.Contains(md, want) {
		t.Errorf("the saturation section lacks %q", want)
	}
}

// Rewriting the report replaces the figures and keeps the hand-written
// notes below the marker.
func TestReportKeepsHandWrittenNotes(t *testing.T) {
	dir := t.TempDir()
	pt := Point{N: 100, RateHz: 1000, DurationS: 5, WarmupS: 3, Offered: 1e5, Throughput: 1e5, Latency: Summary{P99: 1e6, Count: 10}}
	if err := writeResult(filepath.Join(dir, "saturation-gateway.json"), &Result{Scenario: "fanout", Server: "gateway", Label: "saturation", Points: []Point{pt}}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "benchmarks.md")
	svg := filepath.Join(filepath.Dir(out), "bench")
	if err := writeReport(dir, out, svg, "full"); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(first), notesMarker+"\n") {
		t.Fatalf("a new report does not end with the notes marker:\n%s", first)
	}
	notes := "\n## Why\n\nBecause.\n"
	if err := os.WriteFile(out, append([]byte("stale figures\n\n"+notesMarker), notes...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeReport(dir, out, svg, "full"); err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md := string(second)
	if strings.Contains(md, "stale figures") {
		t.Error("the old figures were kept")
	}
	if !strings.HasSuffix(md, notesMarker+notes) || strings.Count(md, notesMarker) != 1 {
		t.Errorf("the hand-written notes were not kept once, at the end:\n%s", md)
	}
}

// renderReport writes the report of the results in dir and returns it.
func renderReport(t *testing.T, dir, mode string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := writeReport(dir, out, filepath.Join(filepath.Dir(out), "bench"), mode); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
