package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Target thresholds of issue 8.
const (
	targetRTTFloorRatio   = 3.0
	targetFanoutSubs      = 1000
	targetFanoutHz        = 100
	targetFanoutP99       = 10 * time.Millisecond
	targetSaturationRatio = 2.0
	targetIdleConns       = 10000
	targetIdleKiB         = 12.0
)

// verdict is one target's outcome.
type verdict struct {
	Name   string
	Status string // PASS, FAIL, N/A
	Detail string
}

type report struct {
	results []*Result
	gc      map[string]GCStats // by log name: gateway-rtt, gorilla-fanout, ...
	benches []BenchLine
	mode    string
	idle    string // CPU idle during the run, as scripts/bench.sh recorded it: poll, sleep or "" (not recorded)
}

func (r *report) find(scenario, server, label string) *Result {
	for _, x := range r.results {
		if x.Scenario == scenario && x.Server == server && (label == "" || x.Label == label) {
			return x
		}
	}
	return nil
}

func pointAt(res *Result, n int) *Point {
	if res == nil {
		return nil
	}
	for i := range res.Points {
		if res.Points[i].N == n {
			return &res.Points[i]
		}
	}
	return nil
}

// notesMarker starts the hand-written part of the report (how the hot
// paths are built and why the figures are what they are): everything from
// it to the end of the file is kept when the report is written again.
const notesMarker = "<!-- Hand-written from here on: scripts/bench.sh keeps it when it rewrites the figures above. -->"

// keptNotes returns the hand-written part of the report at path (from
// notesMarker on), or the marker alone when there is none yet.
func keptNotes(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "\n" + notesMarker + "\n"
	}
	if i := bytes.Index(b, []byte(notesMarker)); i >= 0 {
		return "\n" + string(b[i:])
	}
	return "\n" + notesMarker + "\n"
}

// writeReport reads a results directory and writes the markdown report
// and its plots; it prints the target verdicts to stdout too.
func writeReport(dir, outFile, svgDir, mode string) error {
	results, err := readResults(dir)
	if err != nil {
		return err
	}
	r := &report{results: results, gc: map[string]GCStats{}, mode: mode}
	logs, _ := filepath.Glob(filepath.Join(dir, "gc-*.log"))
	for _, l := range logs {
		f, err := os.Open(l)
		if err != nil {
			return err
		}
		r.gc[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(l), "gc-"), ".log")] = parseGCTrace(f)
		f.Close()
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cpu-idle.txt")); err == nil {
		r.idle = strings.TrimSpace(string(b))
	}
	if f, err := os.Open(filepath.Join(dir, "benchmem.txt")); err == nil {
		r.benches = parseBenchmem(f)
		f.Close()
	}
	if err := os.MkdirAll(svgDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", svgDir, err)
	}
	plots := r.plots()
	for name, p := range plots {
		if err := os.WriteFile(filepath.Join(svgDir, name), p.SVG(), 0o644); err != nil {
			return fmt.Errorf("write plot: %w", err)
		}
	}
	rel, err := filepath.Rel(filepath.Dir(outFile), svgDir)
	if err != nil {
		rel = svgDir
	}
	var md bytes.Buffer
	verdicts := r.verdicts()
	r.markdown(&md, verdicts, filepath.ToSlash(rel))
	md.WriteString(keptNotes(outFile))
	if err := os.WriteFile(outFile, md.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	for _, v := range verdicts {
		fmt.Printf("%-4s %s: %s\n", v.Status, v.Name, v.Detail)
	}
	return nil
}

func (r *report) verdicts() []verdict {
	var out []verdict
	// rtt p99 at 1 client vs the floor: a raw TCP echo served by a separate
	// process, as the gateway is (never the in-process echo).
	v := verdict{Name: fmt.Sprintf("rtt p99 at 1 client ≤ %g× raw TCP echo p99 (echo in a separate process)", targetRTTFloorRatio), Status: "N/A", Detail: "not measured"}
	if g, f := pointAt(r.find("rtt", "gateway", ""), 1), pointAt(r.find("floor", echoProcess, ""), 1); g != nil && f != nil && f.Latency.P99 > 0 {
		ratio := float64(g.Latency.P99) / float64(f.Latency.P99)
		v.Status = passFail(ratio <= targetRTTFloorRatio)
		v.Detail = fmt.Sprintf("%s vs %s = %.2f×", fmtNs(g.Latency.P99), fmtNs(f.Latency.P99), ratio)
		if in := pointAt(r.find("floor", echoInproc, ""), 1); in != nil && in.Latency.P99 > 0 {
			v.Detail += fmt.Sprintf(" (in-process echo, not the floor: p99 %s)", fmtNs(in.Latency.P99))
		}
		switch r.idle {
		case "poll":
			v.Detail += "; idle CPUs held out of sleep (--poll-idle)"
		case "sleep":
			v.Detail += "; idle CPUs allowed to sleep (no --poll-idle): see the rtt section"
		}
	}
	out = append(out, v)

	// fanout 1000 × 100 Hz.
	v = verdict{Name: fmt.Sprintf("fanout %d subscribers × %d Hz: 0 drops, p99 < %v", targetFanoutSubs, targetFanoutHz, targetFanoutP99), Status: "N/A",
		Detail: fmt.Sprintf("not measured (needs %d subscribers: run the full mode)", targetFanoutSubs)}
	if p := pointAt(r.find("fanout", "gateway", "100hz"), targetFanoutSubs); p != nil {
		lost := p.SeqGaps + p.Dropped
		ok := lost == 0 && p.Errors == 0 && p.Latency.P99 < int64(targetFanoutP99) && p.Throughput >= 0.98*p.Offered
		v.Status = passFail(ok)
		v.Detail = fmt.Sprintf("%.0f of %.0f samples/s delivered, p99 %s, %d seq gaps, %d dropped, %d subscriber errors, on %d cores",
			p.Throughput, p.Offered, fmtNs(p.Latency.P99), p.SeqGaps, p.Dropped, p.Errors, runtime.NumCPU())
	}
	out = append(out, v)

	// saturation throughput vs gorilla.
	v = verdict{Name: fmt.Sprintf("fanout at saturation ≥ %g× the gorilla baseline", targetSaturationRatio), Status: "N/A", Detail: "not measured"}
	gs, bs := maxThroughput(r.find("fanout", "gateway", "saturation")), maxThroughput(r.find("fanout", "gorilla", "saturation"))
	if gs > 0 && bs > 0 {
		gsat, bsat := saturatedAt(r.find("fanout", "gateway", "saturation")), saturatedAt(r.find("fanout", "gorilla", "saturation"))
		v.Status = passFail(gs >= targetSaturationRatio*bs)
		v.Detail = fmt.Sprintf("%.0f vs %.0f samples/s = %.2f× (saturated at %s and %s subscribers)", gs, bs, gs/bs, gsat, bsat)
		switch {
		case gsat == "no" && bsat == "no":
			// Neither fell behind: the sweep did not reach saturation.
			v.Status = "N/A"
			v.Detail += "; neither server fell behind: extend the sweep"
		case bsat == "no":
			// The baseline's best is a lower bound: no verdict either way.
			v.Status = "N/A"
			v.Detail += "; the baseline kept up with the whole sweep: extend the sweep"
		case gsat == "no":
			// The gateway's best is a lower bound: enough for a pass only.
			v.Detail += "; edgegate kept up with the whole sweep, so its rate is a lower bound"
			if v.Status != "PASS" {
				v.Status = "N/A"
				v.Detail += ": extend the sweep"
			}
		}
	}
	out = append(out, v)

	// idle RSS per connection.
	v = verdict{Name: fmt.Sprintf("idle ≤ %g KiB RSS per connection at %d connections", targetIdleKiB, targetIdleConns), Status: "N/A",
		Detail: fmt.Sprintf("not measured (needs %d connections: run the full mode)", targetIdleConns)}
	if p := pointAt(r.find("idle", "gateway", ""), targetIdleConns); p != nil {
		kib := perConnKiB(*p)
		v.Status = passFail(kib <= targetIdleKiB)
		v.Detail = fmt.Sprintf("%.1f KiB per connection (%d → %d KiB)", kib, p.BaseRSSKiB, p.RSSKiB)
	}
	out = append(out, v)

	// allocations on the hot paths.
	v = verdict{Name: "0 allocs/op on the hot-path benchmarks", Status: "N/A", Detail: "no benchmark output"}
	var bad []string
	n := 0
	for _, b := range r.benches {
		if !b.HasMem {
			continue
		}
		n++
		if b.AllocsPerOp > 0 {
			bad = append(bad, fmt.Sprintf("%s %g allocs/op", b.Name, b.AllocsPerOp))
		}
	}
	if n > 0 {
		v.Status = passFail(len(bad) == 0)
		v.Detail = fmt.Sprintf("%d benchmarks", n)
		if len(bad) > 0 {
			v.Detail += "; allocating: " + strings.Join(bad, ", ")
		}
	}
	out = append(out, v)
	out = append(out, r.soakVerdict())
	return out
}

// soakVerdict is the soak target: a run of at least soakTargetLength
// whose goroutines and open files came back within soakCountSlack of the
// start and RSS within soakRSSRatio; a shorter run gives its outcome as
// N/A (it is not the target's length).
func (r *report) soakVerdict() verdict {
	v := verdict{Name: fmt.Sprintf("soak of %g minutes: goroutines and open files back within %d of their start, RSS within %g%%", soakTargetLength.Minutes(), soakCountSlack, soakRSSRatio*100),
		Status: "N/A", Detail: "not measured"}
	res := r.find("soak", "gateway", "")
	if res == nil || res.Soak == nil {
		return v
	}
	s := res.Soak
	v.Status, v.Detail = passFail(s.Pass), s.Verdict
	if time.Duration(s.DurationS*float64(time.Second)) < soakTargetLength {
		v.Status = "N/A"
		v.Detail = fmt.Sprintf("a %v run only (%s at that length): %s", time.Duration(s.DurationS*float64(time.Second)), passFail(s.Pass), s.Verdict)
	}
	return v
}

// soakMarkdown writes the soak's section.
func soakMarkdown(w io.Writer, s *SoakStats) {
	fmt.Fprintf(w, "\n## soak\n\n")
	fmt.Fprintf(w, "`edgebench soak` starts the gateway and the example backend (`examples/backend`) as processes of their own and, for %v, has every kind of client come and go at once: ", time.Duration(s.DurationS*float64(time.Second)))
	fmt.Fprintf(w, "relay clients (connect, list, set, toggle, pulse, get, disconnect with or without a closing handshake), subscribers (JSON and binary, some decimated with `max_hz`, each reading for a moment), ")
	fmt.Fprintf(w, "a slow subscriber with a 2 KiB receive buffer that stops reading, a client sending bursts far past its rate limit, clients sending what the contract closes the connection for (binary on relay-control, invalid UTF-8, unmasked or reserved-bit frames, a bad opcode, an oversized message) or answers with `bad_request`, ")
	fmt.Fprintf(w, "and connections that never become WebSockets (closed at once, half a request, no upgrade, an unknown subprotocol, plain HTTP, silent until the handshake timeout); the backend is stopped and started again all along (up two thirds of each period). ")
	fmt.Fprintf(w, "The gateway's goroutines, open files and RSS come from its `/metrics` (`go_goroutines`, `process_open_fds`, `process_resident_memory_bytes`), read with the backend up and the uplink connected: ")
	fmt.Fprintf(w, "the start after a %gs warm-up of the same load, the end after the load, each the lowest of %d polls over a %gs settle window (the gateway is only asked for its metrics: GC and the scavenger return memory at their own pace). ", s.WarmupS, s.SettlePolls, s.SettleS)
	fmt.Fprintf(w, "Goroutines and open files must be back within %d of their start either way, RSS at most %g%% above it.\n\n", soakCountSlack, soakRSSRatio*100)
	fmt.Fprintf(w, "| | goroutines | open files | RSS |\n|---|---:|---:|---:|\n")
	for _, x := range []struct {
		name string
		u    Usage
	}{{"start (after the warm-up)", s.Start}, {"peak during the load", s.Peak}, {"end (after the load)", s.End}} {
		fmt.Fprintf(w, "| %s | %d | %d | %.1f MiB |\n", x.name, x.u.Goroutines, x.u.OpenFDs, float64(x.u.RSSKiB)/1024)
	}
	fmt.Fprintf(w, "\n**%s**: %s.\n\n", passFail(s.Pass), s.Verdict)
	fmt.Fprintf(w, "| load | count |\n|---|---:|\n")
	for _, kv := range []struct {
		k string
		n int64
	}{
		{"relay-control sessions", s.RelaySessions}, {"relay requests answered", s.RelayRequests},
		{"subscribers", s.Subscribers}, {"messages they read", s.Messages},
		{"slow subscribers", s.SlowSubscribers}, {"… disconnected by the gateway", s.SlowKicked},
		{"clients past the rate limit", s.Abusive}, {"… `rate_limited` replies", s.RateLimited}, {"… closed with 1008", s.Closed1008},
		{"clients sending bad frames or bad JSON", s.Garbage}, {"… answered as the contract says", s.GarbageAnswered},
		{"connections that never upgraded", s.Handshakes},
		{"backend restarts", s.BackendRestarts}, {"uplink retries (`edgegate_uplink_reconnects_total`)", s.UplinkReconnects},
		{"unexpected outcomes (errors)", s.Errors},
	} {
		fmt.Fprintf(w, "| %s | %d |\n", kv.k, kv.n)
	}
	for _, e := range s.FirstErrors {
		fmt.Fprintf(w, "\n- error: `%s`", e)
	}
	if len(s.FirstErrors) > 0 {
		fmt.Fprintf(w, "\n")
	}
	fmt.Fprintf(w, "\nThe gateway on SIGTERM at the end: %s.\n", s.GatewayExit)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// firstPoint is the first point of the first result that has one.
func firstPoint(rs ...*Result) *Point {
	for _, r := range rs {
		if r != nil && len(r.Points) > 0 {
			return &r.Points[0]
		}
	}
	return nil
}

// saturatedAt is the first subscriber count at which a server fell behind
// (delivered less than 95% of what was offered, or dropped samples), or
// "no".
func saturatedAt(res *Result) string {
	if res != nil {
		for _, p := range res.Points {
			if p.Throughput < 0.95*p.Offered || p.Dropped > 0 || p.SeqGaps > 0 {
				return strconv.Itoa(p.N)
			}
		}
	}
	return "no"
}

func maxThroughput(res *Result) float64 {
	best := 0.0
	if res != nil {
		for _, p := range res.Points {
			best = math.Max(best, p.Throughput)
		}
	}
	return best
}

// plots builds every plot the report shows, by file name.
func (r *report) plots() map[string]*Plot {
	out := map[string]*Plot{}
	cdf := &Plot{Title: "rtt: round-trip latency CDF (loopback)", XLabel: "round-trip latency (µs, log scale)", YLabel: "fraction of round trips ≤ latency", LogX: true}
	add := func(res *Result, n int, name string, dash bool) {
		if p := pointAt(res, n); p != nil && len(p.CDF) > 0 {
			s := Series{Name: fmt.Sprintf("%s, %d client%s", name, n, plural(n)), Dash: dash}
			for _, c := range p.CDF {
				s.X = append(s.X, float64(c.Value)/1e3)
				s.Y = append(s.Y, c.Fraction)
			}
			cdf.Series = append(cdf.Series, s)
		}
	}
	gw, bl := r.find("rtt", "gateway", ""), r.find("rtt", "gorilla", "")
	add(gw, 1, "edgegate", false)
	add(bl, 1, "gorilla baseline", false)
	add(r.find("floor", echoProcess, ""), 1, "raw TCP echo, separate process (floor)", true)
	add(r.find("floor", echoInproc, ""), 1, "in-process echo (not the floor)", true)
	if gw != nil && len(gw.Points) > 1 {
		last := gw.Points[len(gw.Points)-1].N
		add(gw, last, "edgegate", false)
		add(bl, last, "gorilla baseline", false)
	}
	out["rtt-cdf.svg"] = cdf

	for _, label := range []string{"100hz", "saturation"} {
		g, b := r.find("fanout", "gateway", label), r.find("fanout", "gorilla", label)
		if g == nil && b == nil {
			continue
		}
		rate := "100 Hz"
		if label == "saturation" {
			rate = "1 kHz"
		}
		tp := &Plot{Title: fmt.Sprintf("fanout at %s: delivered samples/s", rate), XLabel: "subscribers", YLabel: "delivered samples per second", LogX: true}
		p99 := &Plot{Title: fmt.Sprintf("fanout at %s: p99 sample-to-receive latency", rate), XLabel: "subscribers", YLabel: "p99 latency (ms, log scale)", LogX: true, LogY: true}
		var offered Series
		for _, x := range []struct {
			res  *Result
			name string
		}{{g, "edgegate"}, {b, "gorilla baseline"}} {
			if x.res == nil {
				continue
			}
			s, l := Series{Name: x.name}, Series{Name: x.name}
			offered = Series{Name: "offered (subscribers × rate)", Dash: true}
			for _, p := range x.res.Points {
				s.X, s.Y = append(s.X, float64(p.N)), append(s.Y, p.Throughput)
				l.X, l.Y = append(l.X, float64(p.N)), append(l.Y, float64(p.Latency.P99)/1e6)
				offered.X, offered.Y = append(offered.X, float64(p.N)), append(offered.Y, p.Offered)
			}
			tp.Series = append(tp.Series, s)
			p99.Series = append(p99.Series, l)
		}
		tp.Series = append(tp.Series, offered)
		out["fanout-"+label+"-throughput.svg"] = tp
		out["fanout-"+label+"-p99.svg"] = p99
	}

	idle := &Plot{Title: "idle connections: server RSS", XLabel: "open idle connections", YLabel: "resident memory (MiB)"}
	for _, x := range []struct{ server, name string }{{"gateway", "edgegate"}, {"gorilla", "gorilla baseline"}} {
		res := r.find("idle", x.server, "")
		if res == nil || len(res.Points) == 0 {
			continue
		}
		s := Series{Name: x.name, X: []float64{0}, Y: []float64{float64(res.Points[0].BaseRSSKiB) / 1024}}
		for _, p := range res.Points {
			s.X, s.Y = append(s.X, float64(p.N)), append(s.Y, float64(p.RSSKiB)/1024)
		}
		idle.Series = append(idle.Series, s)
	}
	if len(idle.Series) > 0 {
		budget := Series{Name: fmt.Sprintf("target: base + %g KiB per connection", targetIdleKiB), Dash: true}
		base := idle.Series[0].Y[0]
		last := idle.Series[0].X[len(idle.Series[0].X)-1]
		budget.X, budget.Y = []float64{0, last}, []float64{base, base + last*targetIdleKiB/1024}
		idle.Series = append(idle.Series, budget)
	}
	out["idle-rss.svg"] = idle
	return out
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func ratio(a, b float64) string {
	if b == 0 || a == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func (r *report) markdown(w io.Writer, verdicts []verdict, svg string) {
	fmt.Fprintf(w, "# Benchmarks\n\n")
	fmt.Fprintf(w, "Generated by `scripts/bench.sh%s` on %s (do not edit by hand; re-run the script).\n\n",
		map[bool]string{true: " --quick", false: ""}[r.mode == "quick"], time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "> **These figures are from a single run on a shared 2-core machine** (described below) on which other builds and tests may have been running at the same time: ")
	fmt.Fprintf(w, "treat them as indicative; tails (p99.9, max) and saturation points are the most affected. ")
	if r.mode == "quick" {
		fmt.Fprintf(w, "This is a **quick** run (CI-sized loads of a few seconds): targets that need the full loads are reported as N/A. ")
	}
	fmt.Fprintf(w, "Re-run `scripts/bench.sh` on a quiet machine for figures to quote.\n\n")
	fmt.Fprintf(w, "Everything runs on loopback: the gateway (`edgegate --sim --config` with 16 GPIO relays and one `sim-wave` sensor), ")
	fmt.Fprintf(w, "the baseline (`bench/baseline`: a minimal gorilla/websocket server doing the same job, in its own module), ")
	fmt.Fprintf(w, "and the load generator `cmd/edgebench` as a separate process. Each ratio is edgegate ÷ gorilla baseline, measured in the same run.\n\n")

	fmt.Fprintf(w, "## Machine\n\n")
	fmt.Fprintf(w, "| | |\n|---|---|\n")
	for _, kv := range append(machine(), [2]string{"CPU idle", cpuIdle(r.idle)}) {
		fmt.Fprintf(w, "| %s | %s |\n", kv[0], kv[1])
	}

	fmt.Fprintf(w, "\n## Targets\n\n```\n")
	for _, v := range verdicts {
		fmt.Fprintf(w, "%-4s %s — %s\n", v.Status, v.Name, v.Detail)
	}
	fmt.Fprintf(w, "```\n\n")

	// rtt
	fmt.Fprintf(w, "## rtt: relay-control set/ack round trips\n\n")
	fmt.Fprintf(w, "N clients each send `{\"id\":…,\"op\":\"set\",\"relay\":…,\"state\":…}` (alternately on and off; client i uses relay r(i mod 16)) and wait for the reply with their id, ")
	fmt.Fprintf(w, "skipping the `state` events that every set broadcasts to every client.\n\n")
	fmt.Fprintf(w, "**The floor** is a raw TCP echo of 64-byte messages served by a separate process (`edgebench echo-server`: blocking reads and writes, one goroutine per connection), ")
	fmt.Fprintf(w, "measured by the same client loop as rtt (write a message, read the answer back) with the same client counts, warm-up and duration, right before the gateway and the baseline at each client count, in the same run. ")
	fmt.Fprintf(w, "A set/ack round trip crosses from the edgebench process to the server process and back, so its physical floor is the cheapest possible round trip across the same boundary: ")
	fmt.Fprintf(w, "the loopback TCP stack twice plus the kernel waking the other process's thread (and, when that thread's CPU was idle, waking the CPU) on each side; a server can do no less. ")
	fmt.Fprintf(w, "An echo server inside edgebench is cheaper than any server could be: client and server goroutines share one Go runtime, so when the client blocks waiting for the echo, the same thread typically finds the server goroutine ready in Go's network poller and runs it on the same CPU, with nothing to wake. ")
	fmt.Fprintf(w, "It is shown too, as \"in-process echo\", for reference only; the rtt target compares against the separate-process floor. ")
	fmt.Fprintf(w, "Each closed-loop client does as many round trips as fit in the measurement time, so the faster echo completes more of them than the servers (the \"round trips\" column); the percentiles compare like with like.\n\n")
	fmt.Fprintf(w, "**Idle CPUs.** A single client leaves both CPUs idle most of the time, so a round trip often has to wake the CPU of the thread it hands over to. ")
	fmt.Fprintf(w, "On bare metal that costs a few microseconds; on a virtual machine whose idle vCPUs halt into the hypervisor it can cost 50–200 µs, more than the round trip itself, and how often it happens depends on where the scheduler happened to put the threads, not on the server's code: ")
	fmt.Fprintf(w, "on such a machine the same echo server can measure a p99 of 30 µs in one run and 170 µs in the next. ")
	fmt.Fprintf(w, "`scripts/bench.sh --poll-idle` holds idle CPUs out of sleep for the run (a PM QoS request of 0 µs on `/dev/cpu_dma_latency`, as latency benchmarks and tuned's latency-performance profile do; it needs root), so that floor, gateway and baseline are all measured without wake-ups. ")
	fmt.Fprintf(w, "This run: %s (the Machine table).\n\n", map[string]string{"poll": "with --poll-idle", "sleep": "without --poll-idle, idle CPUs could sleep", "": "not recorded"}[r.idle])
	fmt.Fprintf(w, "![rtt latency CDF](%s/rtt-cdf.svg)\n\n", svg)
	fmt.Fprintf(w, "| server | clients | round trips | round trips/s | p50 | p90 | p99 | p99.9 | max | errors | clients dropped by the server | p99 ÷ floor | p99 ÷ gorilla | rate ÷ gorilla |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	bl, fl := r.find("rtt", "gorilla", ""), r.find("floor", echoProcess, "")
	for _, res := range []*Result{fl, r.find("rtt", "gateway", ""), bl, r.find("floor", echoInproc, "")} {
		if res == nil {
			continue
		}
		for _, p := range res.Points {
			l := p.Latency
			fr, pr, tr := "", "", ""
			if res.Scenario == "rtt" {
				if f := pointAt(fl, p.N); f != nil {
					fr = ratio(float64(l.P99), float64(f.Latency.P99))
				}
			}
			if res.Scenario == "rtt" && res.Server == "gateway" {
				if b := pointAt(bl, p.N); b != nil {
					pr, tr = ratio(float64(l.P99), float64(b.Latency.P99)), ratio(p.Throughput, b.Throughput)
				}
			}
			fmt.Fprintf(w, "| %s | %d | %d | %.0f | %s | %s | %s | %s | %s | %d | %d | %s | %s | %s |\n", serverName(res), p.N, l.Count, p.Throughput,
				fmtNs(l.P50), fmtNs(l.P90), fmtNs(l.P99), fmtNs(l.P999), fmtNs(l.Max), p.Errors, p.Disconnects, fr, pr, tr)
		}
	}
	if g := pointAt(r.find("rtt", "gateway", ""), 1); g != nil && len(g.Dist) > 0 {
		fmt.Fprintf(w, "\nedgegate, 1 client, percentile distribution (HdrHistogram-style ladder; %d round trips):\n\n", g.Latency.Count)
		fmt.Fprintf(w, "| percentile | latency |\n|---:|---:|\n")
		for _, d := range g.Dist {
			fmt.Fprintf(w, "| %s | %s |\n", fmtPct(d.Fraction), fmtNs(d.Value))
		}
	}

	// fanout
	for _, label := range []string{"100hz", "saturation"} {
		g, b := r.find("fanout", "gateway", label), r.find("fanout", "gorilla", label)
		if g == nil && b == nil {
			continue
		}
		if label == "100hz" {
			fmt.Fprintf(w, "\n## fanout: sensor-stream subscribers at 100 Hz\n\n")
			fmt.Fprintf(w, "N subscribers to `wave.value` (a `sim-wave` sensor sampled every 10 ms) in binary format; latency is receive time minus the sample's `ts_unix_ns`. ")
			fmt.Fprintf(w, "Losses are seq gaps (the configuration has this one sensor only, so every gap is a lost sample) and the sum of the server's `dropped` notices.\n\n")
		} else {
			fmt.Fprintf(w, "\n## fanout at saturation: subscribers at 1 kHz\n\n")
			fmt.Fprintf(w, "The same with the sensor sampled every 1 ms, more subscribers per step until the servers (and the load generator, on the same cores) cannot keep up. ")
			fmt.Fprintf(w, "The sustained rate at saturation is the highest delivered samples/s of the sweep; a server has saturated once it delivers less than 95%% of what is offered. ")
			if p := firstPoint(g, b); p != nil && p.WarmupS > 0 {
				fmt.Fprintf(w, "Each step is measured for %gs once every subscriber has been connected for %gs, so that a server that adapts to its load (edgegate's batch window, a baseline's queues) is measured in its steady state. ", p.DurationS, p.WarmupS)
			}
			fmt.Fprintf(w, "On loopback every sample a server writes is also read by the load generator on the same cores, so past saturation both share the machine and the rate measures the pair; a server that writes fewer, larger messages (edgegate's `sample_batch` window, 5 ms by default and growing with the number of fast streams, or a baseline that has fallen behind) leaves the generator more of it.\n\n")
		}
		fmt.Fprintf(w, "![throughput](%s/fanout-%s-throughput.svg)\n![p99](%s/fanout-%s-p99.svg)\n\n", svg, label, svg, label)
		fmt.Fprintf(w, "| server | subscribers | offered/s | delivered/s | p50 | p99 | p99.9 | max | seq gaps | dropped | delivered ÷ gorilla | p99 ÷ gorilla |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, res := range []*Result{g, b} {
			if res == nil {
				continue
			}
			for _, p := range res.Points {
				l := p.Latency
				tr, pr := "", ""
				if res == g {
					if q := pointAt(b, p.N); q != nil {
						tr, pr = ratio(p.Throughput, q.Throughput), ratio(float64(l.P99), float64(q.Latency.P99))
					}
				}
				fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | %s | %s | %s | %s | %d | %d | %s | %s |\n", serverName(res), p.N, p.Offered, p.Throughput,
					fmtNs(l.P50), fmtNs(l.P99), fmtNs(l.P999), fmtNs(l.Max), p.SeqGaps, p.Dropped, tr, pr)
			}
		}
	}

	// idle
	fmt.Fprintf(w, "\n## idle connections\n\n")
	fmt.Fprintf(w, "Connections opened step by step (kept between steps), each reading its hello and then only answering pings; the server's VmRSS is read from /proc after each step settles. ")
	fmt.Fprintf(w, "Per connection = (RSS − RSS before any connection) ÷ connections. Goroutines come from the gateway's `/metrics` (`go_goroutines`) when it exposes them.\n\n")
	fmt.Fprintf(w, "![idle RSS](%s/idle-rss.svg)\n\n", svg)
	fmt.Fprintf(w, "| server | connections | RSS | per connection | OS threads | goroutines per connection |\n|---|---:|---:|---:|---:|---:|\n")
	for _, server := range []string{"gateway", "gorilla"} {
		res := r.find("idle", server, "")
		if res == nil {
			continue
		}
		for _, p := range res.Points {
			gor := "n/a"
			if p.Goroutines >= 0 && p.BaseGoroutines >= 0 && p.N > 0 {
				gor = fmt.Sprintf("%.2f", float64(p.Goroutines-p.BaseGoroutines)/float64(p.N))
			}
			fmt.Fprintf(w, "| %s | %d | %.1f MiB | %.1f KiB | %d | %s |\n", serverName(res), p.N, float64(p.RSSKiB)/1024, perConnKiB(p), p.Threads, gor)
		}
	}

	if res := r.find("soak", "gateway", ""); res != nil && res.Soak != nil {
		soakMarkdown(w, res.Soak)
	}

	// GC
	fmt.Fprintf(w, "\n## GC pauses\n\n")
	fmt.Fprintf(w, "From `GODEBUG=gctrace=1` on each server, one process per phase; a pause is one stop-the-world phase (sweep or mark termination).\n\n")
	fmt.Fprintf(w, "| process | GC cycles | total STW | p99 STW | max STW | peak heap |\n|---|---:|---:|---:|---:|---:|\n")
	keys := make([]string, 0, len(r.gc))
	for k := range r.gc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := r.gc[k]
		fmt.Fprintf(w, "| %s | %d | %.2f ms | %.3f ms | %.3f ms | %d MB |\n", k, g.Cycles, g.PauseMs, g.P99Pause(), g.MaxPause, g.PeakHeap)
	}

	// allocations
	fmt.Fprintf(w, "\n## Hot-path allocations\n\n`go test -run XXX -bench . -benchmem ./gateway/wsconn ./protocol`, `-bench BenchmarkHubFanOut100 ./gateway/sensor` and `-bench BenchmarkRelayRequest ./gateway/relay`:\n\n")
	fmt.Fprintf(w, "| package | benchmark | ns/op | B/op | allocs/op |\n|---|---|---:|---:|---:|\n")
	for _, b := range r.benches {
		if !b.HasMem {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %.1f | %g | %g |\n", strings.TrimPrefix(b.Pkg, "github.com/edgegate/edgegate/"), b.Name, b.NsPerOp, b.BytesPerOp, b.AllocsPerOp)
	}
	fmt.Fprintf(w, "\n## Reproduce\n\n```\nscripts/bench.sh               # full run, about 27 minutes (the soak: 10; BENCH_SOAK=…)\nscripts/bench.sh --poll-idle   # the same with idle CPUs held out of sleep (root)\nscripts/bench.sh --quick       # CI-sized\n```\n")
}

func serverName(res *Result) string {
	switch res.Server {
	case "gateway":
		return "edgegate"
	case "gorilla":
		return "gorilla baseline"
	case echoProcess:
		return "raw TCP echo, separate process (floor)"
	case echoInproc:
		return "in-process echo (not the floor)"
	}
	return res.Server
}

func fmtPct(f float64) string {
	s := fmt.Sprintf("%.4f", f*100)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

// cpuIdle describes what idle CPUs did during the run: mode as
// scripts/bench.sh recorded it (poll, sleep, or "" for not recorded), and
// the kernel's cpuidle driver, read now.
func cpuIdle(mode string) string {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	driver := read("/sys/devices/system/cpu/cpuidle/current_driver")
	about := ""
	switch {
	case driver == "":
		about = "no cpuidle driver"
	case driver == "haltpoll" && read("/sys/module/haltpoll/parameters/guest_halt_poll_ns") == "0":
		about = "cpuidle driver haltpoll, a virtual machine's, with guest halt polling off: an idle vCPU halts into the hypervisor at once"
	default:
		about = "cpuidle driver " + driver
	}
	switch mode {
	case "poll":
		return "held out of sleep states for the run (scripts/bench.sh --poll-idle: /dev/cpu_dma_latency at 0); " + about
	case "sleep":
		return "allowed to sleep when idle (run without --poll-idle); " + about
	}
	return "not recorded; " + about
}

// machine describes the host: CPU model, cores, memory, kernel, Go.
func machine() [][2]string {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kib, err := parseStatusKiB(b, "MemTotal"); err == nil {
			mem = fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
		}
	}
	kernel := "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return [][2]string{
		{"CPU", cpu},
		{"cores (GOMAXPROCS)", fmt.Sprintf("%d", runtime.NumCPU())},
		{"memory", mem},
		{"kernel", kernel},
		{"Go", runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH},
	}
}
