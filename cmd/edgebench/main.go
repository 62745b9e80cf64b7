// Command edgebench is edgegate's load generator. Each scenario runs as its
// own process against a running server (the gateway, or the gorilla
// baseline in bench/baseline) on loopback and writes its figures as JSON;
// the report subcommand turns a directory of them into docs/benchmarks.md
// with SVG plots. scripts/bench.sh drives it all.
//
//	edgebench echo-server [-listen 127.0.0.1:18090]
//	edgebench floor  [-echo 127.0.0.1:18090 | -inproc] [-n 1,10] [-duration 5s] -out F
//	edgebench rtt    -url ws://127.0.0.1:18080/ws -server gateway [-n 1,10] [-relays r0,r1] -out F
//	edgebench fanout -url … -server … -rate 100 [-n 100,1000] [-sensor wave.value] -out F
//	edgebench idle   -url … -server … -pid P [-n 1000,10000] [-metrics URL] -out F
//	edgebench soak   -gateway BIN -backend BIN [-duration 10m] [-warmup 10s] [-settle 30s] [-backend-period 30s] [-clients 4] [-dir D] -out F
//	edgebench report -results DIR -out docs/benchmarks.md -svg docs/bench
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: edgebench floor|rtt|fanout|idle|soak|report|echo-server [flags]   (edgebench <scenario> -h for its flags)
  floor   raw TCP echo round trips on loopback to an echo server in a separate
          process (the physical floor for rtt); -inproc: to one inside edgebench
  rtt     relay-control set/ack round trips from N concurrent clients
  fanout  N sensor-stream subscribers: delivered samples/s, latency, drops
  idle    N idle connections: the server's RSS per connection (from /proc)
  soak    for -duration, clients of every kind come and go and the uplink's
          backend stops and starts; then the gateway's goroutines, open files
          and RSS against the start (starts edgegate and examples/backend itself)
  report  write docs/benchmarks.md and SVG plots from a directory of results
  echo-server  a plain TCP echo server (the floor's server process)
`)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("edgebench "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		url      = fs.String("url", "ws://127.0.0.1:18080/ws", "WebSocket URL of the server under test")
		server   = fs.String("server", "gateway", "name of the server under test in the results (gateway, gorilla)")
		counts   = fs.String("n", "1", "comma-separated client/subscriber/connection counts, one run each")
		duration = fs.Duration("duration", 5*time.Second, "measurement time per run")
		warmup   = fs.Duration("warmup", time.Second, "time before measuring, per run")
		maxIter  = fs.Int("max-iter", 50_000_000, "bound on round trips (or messages) per client per run")
		out      = fs.String("out", "", "write the result as JSON to this file")
		relays   = fs.String("relays", "r0", "comma-separated relay names for rtt; client i sets relay i mod len")
		rate     = fs.Float64("rate", 100, "sample rate of the sensor in Hz (as configured on the server), for offered load")
		sensor   = fs.String("sensor", "wave.value", "sensor to subscribe to (fanout)")
		label    = fs.String("label", "", "label of this run in the report, e.g. 100hz or saturation")
		pid      = fs.Int("pid", 0, "process id of the server (idle: its RSS is read from /proc)")
		settle   = fs.Duration("settle", 2*time.Second, "idle: wait after each step before reading RSS")
		metrics  = fs.String("metrics", "", "idle: Prometheus URL of the server for go_goroutines (optional)")
		proto    = fs.String("proto", "relay-control.v1", "idle: subprotocol of the idle connections")
		results  = fs.String("results", "", "report: directory of results, gctrace logs (gc-*.log) and benchmem.txt")
		svgDir   = fs.String("svg", "docs/bench", "report: directory for the SVG plots")
		mode     = fs.String("mode", "full", "report: quick or full (said in the report)")
		echoAddr = fs.String("echo", "", "floor: address of a running `edgebench echo-server` to dial; empty: start one as a child process")
		inproc   = fs.Bool("inproc", false, "floor: echo inside edgebench instead (\"in-process echo\", for reference: not the floor)")
		listen   = fs.String("listen", "127.0.0.1:0", "echo-server: address to listen on (port 0: any free port, printed on stdout)")
		lifeline = fs.Bool("lifeline", false, "echo-server: exit when stdin reaches end of file (set when edgebench starts it as a child)")
		gwBin    = fs.String("gateway", "", "soak: the edgegate binary to run")
		beBin    = fs.String("backend", "", "soak: the examples/backend binary to run (stopped and started during the soak)")
		bePeriod = fs.Duration("backend-period", 30*time.Second, "soak: the backend is up for 2/3 of each period and down for 1/3")
		nClients = fs.Int("clients", 4, "soak: concurrent relay clients, and as many subscribers")
		workDir  = fs.String("dir", "", "soak: directory for the gateway's config, data and logs (default: a temporary one, removed)")
	)
	switch cmd {
	case "floor", "rtt", "fanout", "idle", "soak", "report", "echo-server":
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "edgebench: unknown scenario %q\n", cmd)
		usage(stderr)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cmd == "echo-server" {
		if err := runEchoServer(ctx, *listen, *lifeline, os.Stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "edgebench echo-server:", err)
			return 1
		}
		return 0
	}
	if cmd == "report" {
		if *results == "" || *out == "" {
			fmt.Fprintln(stderr, "edgebench report: -results DIR and -out FILE are required")
			return 2
		}
		if err := writeReport(*results, *out, *svgDir, *mode); err != nil {
			fmt.Fprintln(stderr, "edgebench report:", err)
			return 1
		}
		return 0
	}
	if cmd == "soak" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		o := soakOpts{gatewayBin: *gwBin, backendBin: *beBin, dir: *workDir, duration: *duration, warmup: *warmup,
			settle: *settle, backendPeriod: *bePeriod, clients: *nClients}
		// The soak's own defaults for the flags it shares.
		if !set["duration"] {
			o.duration = 10 * time.Minute
		}
		if !set["warmup"] {
			o.warmup = 10 * time.Second
		}
		if !set["settle"] {
			o.settle = 30 * time.Second
		}
		if o.gatewayBin == "" || o.backendBin == "" || o.duration <= 0 || o.duration > 24*time.Hour || o.warmup < 0 ||
			o.settle < time.Second || o.backendPeriod < time.Second || o.clients < 1 || o.clients > 100 {
			fmt.Fprintln(stderr, "edgebench soak: -gateway and -backend binaries are required; -duration in (0, 24h], -warmup ≥ 0, -settle and -backend-period ≥ 1s, -clients 1…100")
			return 2
		}
		res, err := runSoak(ctx, o, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "edgebench soak:", err)
			return 1
		}
		printResult(stdout, res)
		if *out != "" {
			if err := writeResult(*out, res); err != nil {
				fmt.Fprintln(stderr, "edgebench:", err)
				return 1
			}
		}
		if !res.Soak.Pass {
			return 1
		}
		return 0
	}
	limit := 10_000
	if cmd == "idle" {
		limit = 50_000
	}
	ns, err := parseCounts(*counts, limit)
	if err != nil {
		fmt.Fprintf(stderr, "edgebench %s: -n %v\n", cmd, err)
		return 2
	}
	if *duration <= 0 || *duration > time.Hour || *warmup < 0 || *maxIter < 1 {
		fmt.Fprintf(stderr, "edgebench %s: -duration must be in (0, 1h], -warmup ≥ 0, -max-iter ≥ 1\n", cmd)
		return 2
	}
	if fdmax, err := raiseFileLimit(); err != nil {
		fmt.Fprintln(stderr, "edgebench:", err)
	} else if need := uint64(ns[len(ns)-1]) + 64; fdmax < need {
		fmt.Fprintf(stderr, "edgebench %s: the open-file limit is %d but %d connections need about %d; raise the hard limit (ulimit -Hn) first\n", cmd, fdmax, ns[len(ns)-1], need)
		return 1
	}
	o := loadOpts{warmup: *warmup, duration: *duration, maxIter: *maxIter}
	var res *Result
	switch cmd {
	case "floor":
		if *inproc && *echoAddr != "" {
			fmt.Fprintln(stderr, "edgebench floor: -inproc and -echo exclude each other")
			return 2
		}
		res, err = floor(ctx, *echoAddr, *inproc, ns, o, stderr)
	case "rtt":
		res, err = runRTT(ctx, *url, *server, ns, strings.Split(*relays, ","), o)
	case "fanout":
		if *rate <= 0 {
			fmt.Fprintln(stderr, "edgebench fanout: -rate must be the sensor's rate in Hz (> 0)")
			return 2
		}
		res, err = runFanout(ctx, *url, *server, *label, *sensor, *rate, ns, o)
	case "idle":
		if *pid <= 0 {
			fmt.Fprintln(stderr, "edgebench idle: -pid of the server process is required (its RSS is read from /proc)")
			return 2
		}
		res, err = runIdle(ctx, *url, *server, ns, idleOpts{pid: *pid, settle: *settle, metricsURL: *metrics, proto: *proto})
	}
	if err != nil {
		fmt.Fprintf(stderr, "edgebench %s: %v\n", cmd, err)
		return 1
	}
	if *label != "" {
		res.Label = *label
	}
	printResult(stdout, res)
	if *out != "" {
		if err := writeResult(*out, res); err != nil {
			fmt.Fprintln(stderr, "edgebench:", err)
			return 1
		}
	}
	return 0
}

// floor runs the floor scenario against the echo server at addr, or one
// inside this process (inproc), or else one it starts as a child process.
func floor(ctx context.Context, addr string, inproc bool, ns []int, o loadOpts, stderr io.Writer) (*Result, error) {
	switch {
	case inproc:
		addr, stop, err := startEchoInproc()
		if err != nil {
			return nil, err
		}
		defer stop()
		return runFloor(ctx, addr, echoInproc, ns, o)
	case addr != "":
		return runFloor(ctx, addr, echoProcess, ns, o)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find edgebench's own executable to start the echo server (or start `edgebench echo-server` and pass -echo ADDR): %w", err)
	}
	p, err := startEchoProcess(ctx, exe)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "edgebench floor: echo server in child process %d at %s\n", p.Pid, p.Addr)
	res, err := runFloor(ctx, p.Addr, echoProcess, ns, o)
	if serr := p.Stop(); serr != nil {
		fmt.Fprintln(stderr, "edgebench floor:", serr)
	}
	return res, err
}

func printResult(w io.Writer, r *Result) {
	if r.Soak != nil {
		printSoak(w, r.Soak)
	}
	for _, p := range r.Points {
		switch r.Scenario {
		case "idle":
			fmt.Fprintf(w, "%s %s n=%d rss=%d KiB (base %d KiB) → %.1f KiB/conn\n", r.Scenario, r.Server, p.N, p.RSSKiB, p.BaseRSSKiB, perConnKiB(p))
		default:
			l := p.Latency
			fmt.Fprintf(w, "%s %s %s n=%d: %.0f/s p50=%s p99=%s p99.9=%s max=%s gaps=%d dropped=%d errors=%d disconnects=%d\n",
				r.Scenario, r.Server, r.Label, p.N, p.Throughput, fmtNs(l.P50), fmtNs(l.P99), fmtNs(l.P999), fmtNs(l.Max), p.SeqGaps, p.Dropped, p.Errors, p.Disconnects)
		}
	}
}

func perConnKiB(p Point) float64 {
	if p.N == 0 {
		return 0
	}
	return float64(p.RSSKiB-p.BaseRSSKiB) / float64(p.N)
}

// fmtNs formats nanoseconds with a unit that keeps 3 significant digits.
func fmtNs(ns int64) string {
	switch {
	case ns < 1_000:
		return fmt.Sprintf("%dns", ns)
	case ns < 1_000_000:
		return fmt.Sprintf("%.3gµs", float64(ns)/1e3)
	case ns < 1_000_000_000:
		return fmt.Sprintf("%.3gms", float64(ns)/1e6)
	}
	return fmt.Sprintf("%.3gs", float64(ns)/1e9)
}
