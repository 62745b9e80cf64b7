package main

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// GCStats digests a GODEBUG=gctrace=1 log: every line
//
//	gc 7 @1.234s 1%: 0.020+1.5+0.011 ms clock, 0.04+0.3/1.2/0+0.02 ms cpu, 4->5->2 MB, 5 MB goal, ...
//
// is one cycle; its two stop-the-world pauses are the first and last of
// the clock triple (sweep termination, mark termination).
type GCStats struct {
	Cycles    int     `json:"cycles"`
	PauseMs   float64 `json:"pause_total_ms"`
	MaxPause  float64 `json:"pause_max_ms"` // longest single STW phase
	PeakHeap  int     `json:"peak_heap_mb"` // largest heap at GC start
	pauseHist Hist
}

// P99Pause is the 99th percentile of single STW phases, in ms.
func (g *GCStats) P99Pause() float64 { return float64(g.pauseHist.Quantile(0.99)) / 1e6 }

func parseGCTrace(r io.Reader) GCStats {
	var g GCStats
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "gc ") {
			continue
		}
		_, rest, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		clock, _, ok := strings.Cut(rest, " ms clock")
		if !ok {
			continue
		}
		parts := strings.Split(clock, "+")
		if len(parts) != 3 {
			continue
		}
		stw1, e1 := strconv.ParseFloat(parts[0], 64)
		stw2, e2 := strconv.ParseFloat(parts[2], 64)
		if e1 != nil || e2 != nil {
			continue
		}
		g.Cycles++
		g.PauseMs += stw1 + stw2
		g.MaxPause = max(g.MaxPause, stw1, stw2)
		g.pauseHist.Record(int64(stw1 * 1e6))
		g.pauseHist.Record(int64(stw2 * 1e6))
		// "4->5->2 MB": heap at start, at end, live.
		if i := strings.Index(rest, "->"); i > 0 {
			j := strings.LastIndex(rest[:i], " ")
			if n, err := strconv.Atoi(rest[j+1 : i]); err == nil {
				g.PeakHeap = max(g.PeakHeap, n)
			}
		}
	}
	return g
}

// BenchLine is one `go test -bench -benchmem` result.
type BenchLine struct {
	Pkg         string
	Name        string
	NsPerOp     float64
	BytesPerOp  float64
	AllocsPerOp float64
	HasMem      bool
}

// parseBenchmem reads `go test -bench -benchmem` output (several packages
// in a row); lines that are not results are skipped.
func parseBenchmem(r io.Reader) []BenchLine {
	var out []BenchLine
	pkg := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "pkg:" {
			pkg = f[1]
			continue
		}
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		b := BenchLine{Pkg: pkg, Name: f[0]}
		if i := strings.LastIndex(b.Name, "-"); i > 0 {
			if _, err := strconv.Atoi(b.Name[i+1:]); err == nil {
				b.Name = b.Name[:i] // the GOMAXPROCS suffix
			}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				b.NsPerOp = v
			case "B/op":
				b.BytesPerOp = v
			case "allocs/op":
				b.AllocsPerOp = v
				b.HasMem = true
			}
		}
		out = append(out, b)
	}
	return out
}
