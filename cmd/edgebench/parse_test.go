package main

import (
	"bytes"
	"encoding/xml"
	"math"
	"strings"
	"testing"
)

func TestParseGCTrace(t *testing.T) {
	log := `time=... level=WARN msg="not a gc line"
gc 1 @0.012s 2%: 0.021+1.5+0.004 ms clock, 0.042+0.2/1.1/0+0.008 ms cpu, 4->4->2 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 2 @1.100s 1%: 0.300+2.0+0.050 ms clock, 0.6+0.1/2/0+0.1 ms cpu, 7->9->3 MB, 8 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 3 @2.000s 1%: garbage
`
	g := parseGCTrace(strings.NewReader(log))
	if g.Cycles != 2 {
		t.Fatalf("cycles = %d, want 2 (malformed lines skipped)", g.Cycles)
	}
	if math.Abs(g.PauseMs-(0.021+0.004+0.300+0.050)) > 1e-9 {
		t.Errorf("total pause = %g ms, want the sum of the STW phases 0.375", g.PauseMs)
	}
	if g.MaxPause != 0.300 {
		t.Errorf("max pause = %g, want 0.3", g.MaxPause)
	}
	if g.PeakHeap != 7 {
		t.Errorf("peak heap = %d MB, want 7", g.PeakHeap)
	}
	if p := g.P99Pause(); p < 0.299 || p > 0.305 {
		t.Errorf("p99 pause = %g, want ≈0.3", p)
	}
}

func TestParseBenchmem(t *testing.T) {
	out := `goos: linux
pkg: github.com/edgegate/edgegate/protocol
BenchmarkAppendSample-2   	 9602134	       124.5 ns/op	       0 B/op	       0 allocs/op
BenchmarkDecodeRequest-2  	 1000000	      1050 ns/op	     320 B/op	       3 allocs/op
BenchmarkNoMem-2          	 1000000	      1050 ns/op
PASS
pkg: github.com/edgegate/edgegate/gateway
BenchmarkHubFanOut100-2   	   50000	     23000 ns/op	      16 B/op	       1 allocs/op
Benchmark-in-a-log-line that is not a result
`
	got := parseBenchmem(strings.NewReader(out))
	want := []BenchLine{
		{"github.com/edgegate/edgegate/protocol", "BenchmarkAppendSample", 124.5, 0, 0, true},
		{"github.com/edgegate/edgegate/protocol", "BenchmarkDecodeRequest", 1050, 320, 3, true},
		{"github.com/edgegate/edgegate/protocol", "BenchmarkNoMem", 1050, 0, 0, false},
		{"github.com/edgegate/edgegate/gateway", "BenchmarkHubFanOut100", 23000, 16, 1, true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseReply(t *testing.T) {
	cases := []struct {
		msg         string
		id          int64
		ok, isReply bool
	}{
		{`{"id":7,"ok":true,"relay":"r0","state":"on"}`, 7, true, true},
		{`{"id":12345,"ok":false,"error":{"code":"busy","message":"x"}}`, 12345, false, true},
		{`{"event":"state","relay":"r0","state":"on","source":"client","ts":1}`, 0, false, false},
		{`{"id":"abc","ok":true}`, 0, false, false}, // not one of ours
		{`{"id":`, 0, false, false},
		{`{"id":7`, 0, false, false},
	}
	for _, c := range cases {
		id, ok, isReply := parseReply([]byte(c.msg))
		if id != c.id || ok != c.ok || isReply != c.isReply {
			t.Errorf("parseReply(%s) = %d,%v,%v; want %d,%v,%v", c.msg, id, ok, isReply, c.id, c.ok, c.isReply)
		}
	}
	req := appendSetRequest(nil, 42, "r3", false)
	if string(req) != `{"id":42,"op":"set","relay":"r3","state":"off"}` {
		t.Errorf("set request = %s", req)
	}
}

func TestDroppedCount(t *testing.T) {
	if n, ok := droppedCount([]byte(`{"event":"dropped","count":17}`)); !ok || n != 17 {
		t.Errorf("got %d,%v; want 17,true", n, ok)
	}
	for _, m := range []string{`{"event":"state"}`, `{"event":"dropped","count":x}`, ``} {
		if _, ok := droppedCount([]byte(m)); ok {
			t.Errorf("%q recognised as a dropped notice", m)
		}
	}
}

func TestParseCounts(t *testing.T) {
	if got, err := parseCounts(" 1, 10 ,100", 1000); err != nil || len(got) != 3 || got[2] != 100 {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "-1", "a", "1,20000"} {
		if _, err := parseCounts(bad, 10000); err == nil {
			t.Errorf("parseCounts(%q) accepted", bad)
		}
	}
}

func TestParseStatusAndMetric(t *testing.T) {
	status := "Name:\tedgegate\nVmPeak:\t  900 kB\nVmRSS:\t   18244 kB\nThreads:\t7\n"
	if n, err := parseStatusKiB([]byte(status), "VmRSS"); err != nil || n != 18244 {
		t.Errorf("VmRSS = %d, %v", n, err)
	}
	if _, err := parseStatusKiB([]byte(status), "VmSwap"); err == nil {
		t.Error("a missing field must be an error")
	}
	metrics := "# HELP go_goroutines x\ngo_goroutines_total 3\ngo_goroutines 1234\n"
	if n := parseMetric(strings.NewReader(metrics), "go_goroutines"); n != 1234 {
		t.Errorf("go_goroutines = %d, want 1234 (not the _total line)", n)
	}
	if n := parseMetric(strings.NewReader("other 1\n"), "go_goroutines"); n != -1 {
		t.Errorf("absent metric = %d, want -1", n)
	}
}

// The plots are well-formed SVG with a title, axis labels, a legend entry
// per series and one polyline per drawable series.
func TestPlotSVG(t *testing.T) {
	p := &Plot{Title: "rtt <CDF>", XLabel: "latency (µs)", YLabel: "fraction", LogX: true, Series: []Series{
		{Name: "edgegate", X: []float64{10, 20, 40}, Y: []float64{0.1, 0.5, 1}},
		{Name: "floor", X: []float64{5, 8}, Y: []float64{0.5, 1}, Dash: true},
		{Name: "nothing drawable", X: []float64{0, -1}, Y: []float64{1, 1}}, // not on a log axis
	}}
	svg := p.SVG()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var polylines, texts int
	var allText strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			switch e.Name.Local {
			case "polyline":
				polylines++
			case "text":
				texts++
			}
		case xml.CharData:
			allText.Write(e)
		}
	}
	if polylines != 2 {
		t.Errorf("%d polylines, want 2", polylines)
	}
	for _, want := range []string{"rtt <CDF>", "latency (µs)", "fraction", "edgegate", "floor", "100"} {
		if !strings.Contains(allText.String(), want) {
			t.Errorf("SVG text lacks %q", want)
		}
	}
	empty := (&Plot{Title: "empty"}).SVG()
	if !bytes.Contains(empty, []byte("no data")) || xml.Unmarshal(empty, new(struct{})) != nil {
		t.Errorf("an empty plot must still be valid SVG saying no data:\n%s", empty)
	}
}

func TestTicksAndRange(t *testing.T) {
	lo, hi := padRange(3, 870, true, false)
	if lo != 1 || hi != 1000 {
		t.Errorf("log range = [%g, %g], want [1, 1000]", lo, hi)
	}
	lo, hi = padRange(12, 97, false, true)
	if lo != 0 || hi < 97 || hi > 120 {
		t.Errorf("linear range = [%g, %g], want [0, ~100]", lo, hi)
	}
	tk := ticks(0, 100, false)
	if tk[0] != 0 || tk[len(tk)-1] != 100 || len(tk) < 4 || len(tk) > 12 {
		t.Errorf("linear ticks %v", tk)
	}
	if tk := ticks(1, 1e6, true); len(tk) != 7 {
		t.Errorf("log ticks over 6 decades = %v, want one per decade", tk)
	}
}
