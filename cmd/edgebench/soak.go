package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// The soak scenario runs the gateway and the example backend as child
// processes on loopback and, for a given time, has clients of every kind
// come and go while the backend stops and starts again; it compares the
// gateway's goroutines, open files and RSS (from its /metrics) after the
// load with what they were before it.

// Soak targets (issue 19): after the load, goroutines and open files
// within soakCountSlack of their start, RSS at most soakRSSRatio above it.
const (
	soakCountSlack   = 5
	soakRSSRatio     = 0.10
	soakTargetLength = 10 * time.Minute
)

// soakOpts configure the soak scenario.
type soakOpts struct {
	gatewayBin, backendBin string
	dir                    string        // work directory (config, data, logs); "" : a temporary one
	duration               time.Duration // the load
	warmup                 time.Duration // the same load before the start is measured
	settle                 time.Duration // polling window after each load, best of it taken
	backendPeriod          time.Duration // the backend is stopped and started again once per period
	clients                int           // concurrent relay clients, and as many subscribers
}

// Usage is what the soak watches in the gateway.
type Usage struct {
	Goroutines int64 `json:"goroutines"`
	OpenFDs    int64 `json:"open_fds"`
	RSSKiB     int64 `json:"rss_kib"`
}

// SoakStats is the outcome of a soak run.
type SoakStats struct {
	DurationS   float64 `json:"duration_s"`
	WarmupS     float64 `json:"warmup_s"`
	SettleS     float64 `json:"settle_s"`
	SettlePolls int     `json:"settle_polls"` // polls per settle window
	Start       Usage   `json:"start"`        // best of the settle window after the warm-up
	Peak        Usage   `json:"peak"`         // highest seen during the load
	End         Usage   `json:"end"`          // best of the settle window after the load
	Pass        bool    `json:"pass"`
	Verdict     string  `json:"verdict"`

	RelaySessions    int64    `json:"relay_sessions"`
	RelayRequests    int64    `json:"relay_requests"`
	Subscribers      int64    `json:"subscribers"`
	Messages         int64    `json:"subscriber_messages"`
	SlowSubscribers  int64    `json:"slow_subscribers"`
	SlowKicked       int64    `json:"slow_kicked"` // slow subscribers the gateway disconnected
	Abusive          int64    `json:"abusive_clients"`
	RateLimited      int64    `json:"rate_limited_replies"`
	Closed1008       int64    `json:"abusive_closed_1008"`
	Garbage          int64    `json:"garbage_clients"`
	GarbageAnswered  int64    `json:"garbage_answered"` // got the close code (or error reply) the contract says
	Handshakes       int64    `json:"handshake_churn"`
	BackendRestarts  int64    `json:"backend_restarts"`
	UplinkReconnects int64    `json:"uplink_reconnects"`
	Errors           int64    `json:"errors"`
	FirstErrors      []string `json:"first_errors,omitempty"`
	GatewayExit      string   `json:"gateway_exit"` // how the gateway ended on SIGTERM
}

// soakVerdict compares the usage after the load with the start:
// goroutines and open files must be back within soakCountSlack of their
// start (either way: the gateway should be in the state it started in),
// RSS at most soakRSSRatio above it (less is no leak).
func soakVerdict(start, end Usage) (bool, string) {
	var bad []string
	dg, df := end.Goroutines-start.Goroutines, end.OpenFDs-start.OpenFDs
	if abs64(dg) > soakCountSlack {
		bad = append(bad, fmt.Sprintf("goroutines %+d", dg))
	}
	if abs64(df) > soakCountSlack {
		bad = append(bad, fmt.Sprintf("open files %+d", df))
	}
	rss := 0.0
	if start.RSSKiB > 0 {
		rss = float64(end.RSSKiB-start.RSSKiB) / float64(start.RSSKiB)
	}
	if start.RSSKiB <= 0 || rss > soakRSSRatio {
		bad = append(bad, fmt.Sprintf("RSS %+.1f%%", rss*100))
	}
	detail := fmt.Sprintf("goroutines %d → %d, open files %d → %d, RSS %.1f → %.1f MiB (%+.1f%%)",
		start.Goroutines, end.Goroutines, start.OpenFDs, end.OpenFDs, float64(start.RSSKiB)/1024, float64(end.RSSKiB)/1024, rss*100)
	if len(bad) > 0 {
		detail += "; over the bound: " + strings.Join(bad, ", ")
	}
	return len(bad) == 0, detail
}

func abs64(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// bestUsage is the lowest of each figure over polls (a settle window: GC
// and the scavenger return what the load left behind at their own pace).
func bestUsage(polls []Usage) Usage {
	if len(polls) == 0 {
		return Usage{}
	}
	b := polls[0]
	for _, u := range polls[1:] {
		b.Goroutines, b.OpenFDs, b.RSSKiB = min(b.Goroutines, u.Goroutines), min(b.OpenFDs, u.OpenFDs), min(b.RSSKiB, u.RSSKiB)
	}
	return b
}

func maxUsage(a, b Usage) Usage {
	return Usage{Goroutines: max(a.Goroutines, b.Goroutines), OpenFDs: max(a.OpenFDs, b.OpenFDs), RSSKiB: max(a.RSSKiB, b.RSSKiB)}
}

// usageFrom reads Usage out of a /metrics scrape.
func usageFrom(r io.Reader) (Usage, error) {
	m := parseMetrics(r, "go_goroutines", "process_open_fds", "process_resident_memory_bytes")
	u := Usage{Goroutines: m["go_goroutines"], OpenFDs: m["process_open_fds"], RSSKiB: m["process_resident_memory_bytes"] / 1024}
	for _, name := range []string{"go_goroutines", "process_open_fds", "process_resident_memory_bytes"} {
		if m[name] < 0 {
			return u, fmt.Errorf("the gateway's /metrics has no %s", name)
		}
	}
	return u, nil
}

// metricsClient opens a connection per scrape, so that no kept-alive
// connection of the soak's own stays open in the gateway between polls.
var metricsClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func scrape(ctx context.Context, url string, fn func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return fn(resp.Body)
}

func scrapeUsage(ctx context.Context, url string) (Usage, error) {
	var u Usage
	err := scrape(ctx, url, func(r io.Reader) (err error) { u, err = usageFrom(r); return })
	return u, err
}

func scrapeMetric(ctx context.Context, url, name string) int64 {
	v := int64(-1)
	scrape(ctx, url, func(r io.Reader) error { v = parseMetric(r, name); return nil })
	return v
}

// child is a process the soak started.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

func startChild(log *os.File, bin string, args ...string) (*child, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// The child goes when edgebench goes, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.exited) }()
	return c, nil
}

// stop sends SIGTERM, kills after grace, and says how the process ended.
func (c *child) stop(grace time.Duration) string {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(grace):
		c.cmd.Process.Kill()
		<-c.exited
		return fmt.Sprintf("killed: no exit within %v of SIGTERM", grace)
	}
	if c.err != nil {
		return c.err.Error()
	}
	return "exit 0"
}

func (c *child) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// waitTCP waits until something accepts connections at addr.
func waitTCP(ctx context.Context, addr string, c *child, d time.Duration) error {
	deadline := time.Now().Add(d)
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		if !c.running() {
			return fmt.Errorf("%s exited (%v)", c.cmd.Path, c.err)
		}
		if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			nc.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listens at %s after %v", addr, d)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// soakBackendToken is the uplink's token (the backend's and the gateway's).
const soakBackendToken = "soak-uplink-token-0123456789"

// soakConfig is the gateway under soak: short timeouts, so that what a
// client leaves behind is cleaned up within the settle window, a small
// message limit for the oversized-message client, and the uplink.
func soakConfig(backendAddr string) string {
	return fmt.Sprintf(`gateway:
  id: soak
  compression: false
  heartbeat: {interval: 1s, timeout: 3s}
  limits: {max_connections: 1000, max_connections_per_ip: 500, max_message_bytes: 4096, requests_per_second: 50, handshake_timeout: 1s, write_timeout: 2s, subscriber_queue: 64}
relays:
  - {name: r0, driver: gpio, pin: GPIO4}
  - {name: r1, driver: gpio, pin: GPIO5}
  - {name: r2, driver: gpio, pin: GPIO6}
  - {name: r3, driver: gpio, pin: GPIO7}
sensors:
  - {name: wave, driver: sim-wave, interval: 10ms, period: 1s}
  - {name: fast, driver: sim-wave, interval: 2ms, period: 1s}
upstream:
  url: ws://%s/uplink
  token: %s
  buffer_max_bytes: 8MiB
  fsync: never
`, backendAddr, soakBackendToken)
}

// soakLoad counts what the clients did.
type soakLoad struct {
	url, addr                                             string
	relaySessions, relayRequests, subscribers, messages   atomic.Int64
	slow, slowKicked, abusive, rateLimited, closed1008    atomic.Int64
	garbage, garbageAnswered, handshakes, backendRestarts atomic.Int64
	errors                                                atomic.Int64
	mu                                                    sync.Mutex
	first                                                 []string
}

func (l *soakLoad) fail(what string, err error) {
	l.errors.Add(1)
	l.mu.Lock()
	if len(l.first) < 10 {
		l.first = append(l.first, what+": "+err.Error())
	}
	l.mu.Unlock()
}

// runSoak runs the scenario and returns its result; the verdict is in it.
func runSoak(ctx context.Context, o soakOpts, stderr io.Writer) (*Result, error) {
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "edgebench-soak-")
		if err != nil {
			return nil, err
		}
		dir = d
		defer func() { os.RemoveAll(d) }()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	gwAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	bAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, []byte(soakConfig(bAddr)), 0o600); err != nil {
		return nil, err
	}
	gwLog, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		return nil, err
	}
	defer gwLog.Close()
	bLog, err := os.Create(filepath.Join(dir, "backend.log"))
	if err != nil {
		return nil, err
	}
	defer bLog.Close()
	dataDir := filepath.Join(dir, "data")
	os.RemoveAll(dataDir)
	gw, err := startChild(gwLog, o.gatewayBin, "--sim", "--config", cfg, "--listen", gwAddr, "--data-dir", dataDir, "--log-level", "warn")
	if err != nil {
		return nil, fmt.Errorf("start the gateway: %w", err)
	}
	gwStopped := false
	defer func() {
		if !gwStopped {
			gw.stop(10 * time.Second)
		}
	}()
	if err := waitTCP(ctx, gwAddr, gw, 15*time.Second); err != nil {
		return nil, fmt.Errorf("the gateway did not come up (log in %s): %w", dir, err)
	}
	be := &backendCtl{bin: o.backendBin, addr: bAddr, log: bLog, out: filepath.Join(dir, "samples.jsonl")}
	if err := be.start(ctx); err != nil {
		return nil, err
	}
	defer be.stop()
	metricsURL := "http://" + gwAddr + "/metrics"
	l := &soakLoad{url: "ws://" + gwAddr + "/ws", addr: gwAddr}
	st := &SoakStats{DurationS: o.duration.Seconds(), WarmupS: o.warmup.Seconds(), SettleS: o.settle.Seconds()}

	fmt.Fprintf(stderr, "edgebench soak: gateway pid %d at %s, backend at %s, work directory %s\n", gw.cmd.Process.Pid, gwAddr, bAddr, dir)
	// Warm-up: the same load, so that what the gateway keeps for good
	// (pools, buffers, the spool's files) exists before the start.
	if o.warmup > 0 {
		l.run(ctx, o, be, o.warmup, nil, nil)
	}
	if err := quiesce(ctx, metricsURL, be); err != nil {
		return nil, err
	}
	var polls int
	st.Start, polls, err = settleUsage(ctx, metricsURL, o.settle)
	if err != nil {
		return nil, err
	}
	st.SettlePolls = polls
	reconnects0 := scrapeMetric(ctx, metricsURL, "edgegate_uplink_reconnects_total")
	fmt.Fprintf(stderr, "edgebench soak: start %+v; load for %v\n", st.Start, o.duration)
	// The load, with the usage polled every 2 s for its peak.
	l = &soakLoad{url: l.url, addr: gwAddr}
	peak := st.Start
	var pmu sync.Mutex
	l.run(ctx, o, be, o.duration, func() {
		if u, err := scrapeUsage(ctx, metricsURL); err == nil {
			pmu.Lock()
			peak = maxUsage(peak, u)
			pmu.Unlock()
		}
	}, func() bool { return gw.running() })
	st.Peak = peak
	if !gw.running() {
		return nil, fmt.Errorf("the gateway exited during the load (%v); log in %s", gw.err, dir)
	}
	if err := quiesce(ctx, metricsURL, be); err != nil {
		return nil, err
	}
	st.End, _, err = settleUsage(ctx, metricsURL, o.settle)
	if err != nil {
		return nil, err
	}
	if r := scrapeMetric(ctx, metricsURL, "edgegate_uplink_reconnects_total"); r >= 0 && reconnects0 >= 0 {
		st.UplinkReconnects = r - reconnects0
	}
	gwStopped = true
	st.GatewayExit = gw.stop(15 * time.Second)

	st.RelaySessions, st.RelayRequests = l.relaySessions.Load(), l.relayRequests.Load()
	st.Subscribers, st.Messages = l.subscribers.Load(), l.messages.Load()
	st.SlowSubscribers, st.SlowKicked = l.slow.Load(), l.slowKicked.Load()
	st.Abusive, st.RateLimited, st.Closed1008 = l.abusive.Load(), l.rateLimited.Load(), l.closed1008.Load()
	st.Garbage, st.GarbageAnswered, st.Handshakes = l.garbage.Load(), l.garbageAnswered.Load(), l.handshakes.Load()
	st.BackendRestarts, st.Errors, st.FirstErrors = l.backendRestarts.Load(), l.errors.Load(), l.first
	st.Pass, st.Verdict = soakVerdict(st.Start, st.End)
	if st.GatewayExit != "exit 0" {
		st.Pass = false
		st.Verdict += "; the gateway did not exit cleanly on SIGTERM: " + st.GatewayExit
	}
	if st.RelaySessions == 0 || st.Subscribers == 0 {
		st.Pass = false
		st.Verdict += "; no load reached the gateway"
	}
	if !st.Pass {
		dir := o.dir
		if dir == "" {
			dir = "(a temporary directory, removed: pass -dir to keep the logs)"
		}
		fmt.Fprintf(stderr, "edgebench soak: FAIL; logs in %s\n", dir)
	}
	return &Result{Scenario: "soak", Server: "gateway", Soak: st}, nil
}

// quiesce brings the gateway to the state it is measured in: the backend
// up and the uplink connected to it.
func quiesce(ctx context.Context, metricsURL string, be *backendCtl) error {
	if err := be.start(ctx); err != nil {
		return err
	}
	// The uplink's backoff is at most 30 s (gateway/uplink.go), and a dial.
	deadline := time.Now().Add(45 * time.Second)
	for i := 0; i < 450 && time.Now().Before(deadline); i++ {
		if scrapeMetric(ctx, metricsURL, "edgegate_uplink_connected") == 1 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the gateway's uplink did not connect to the backend within 45 s")
}

// settleUsage polls the usage once a second for d and returns the best.
func settleUsage(ctx context.Context, metricsURL string, d time.Duration) (Usage, int, error) {
	var polls []Usage
	end := time.Now().Add(d)
	for i := 0; i < 3600; i++ {
		u, err := scrapeUsage(ctx, metricsURL)
		if err != nil {
			return Usage{}, 0, err
		}
		polls = append(polls, u)
		if !time.Now().Add(time.Second).Before(end) {
			break
		}
		select {
		case <-ctx.Done():
			return Usage{}, 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return bestUsage(polls), len(polls), nil
}

// backendCtl starts and stops the example backend on one address.
type backendCtl struct {
	bin, addr, out string
	log            *os.File
	c              *child
}

func (b *backendCtl) start(ctx context.Context) error {
	if b.c != nil && b.c.running() {
		return nil
	}
	c, err := startChild(b.log, b.bin, "--listen", b.addr, "--token", soakBackendToken, "--out", b.out)
	if err != nil {
		return fmt.Errorf("start the backend: %w", err)
	}
	b.c = c
	if err := waitTCP(ctx, b.addr, c, 15*time.Second); err != nil {
		return fmt.Errorf("the backend did not come up: %w", err)
	}
	return nil
}

func (b *backendCtl) stop() {
	if b.c != nil && b.c.running() {
		b.c.stop(10 * time.Second)
	}
}

// run drives every kind of client for d (each loop bounded in count as
// well), the backend going down and up, and poll every 2 s; alive stops
// it early when it turns false.
func (l *soakLoad) run(ctx context.Context, o soakOpts, be *backendCtl, d time.Duration, poll func(), alive func() bool) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	loop := func(pause time.Duration, fn func(ctx context.Context, i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1_000_000 && ctx.Err() == nil; i++ {
				fn(ctx, i)
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		}()
	}
	for k := 0; k < o.clients; k++ {
		loop(50*time.Millisecond, func(ctx context.Context, i int) { l.relayClient(ctx, k+i) })
		loop(50*time.Millisecond, func(ctx context.Context, i int) { l.subscriber(ctx, k+i) })
	}
	loop(time.Second, l.slowSubscriber)
	loop(time.Second, l.abusiveClient)
	loop(100*time.Millisecond, l.garbageClient)
	loop(20*time.Millisecond, l.handshakeChurn)
	period := o.backendPeriod
	loop(0, func(ctx context.Context, i int) {
		// Up for two thirds of a period, down for one.
		if !sleepCtx(ctx, period*2/3) {
			return
		}
		be.stop()
		l.backendRestarts.Add(1)
		sleepCtx(ctx, period/3)
		if err := be.start(context.Background()); err != nil {
			l.fail("backend", err)
		}
	})
	if poll != nil {
		loop(2*time.Second, func(context.Context, int) {
			poll()
			if alive != nil && !alive() {
				cancel()
			}
		})
	}
	wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// request sends req (whose id is id) and waits for its reply, skipping
// events; it returns the reply.
func request(c *wsClient, id int64, req string) ([]byte, error) {
	if err := c.WriteText([]byte(req)); err != nil {
		return nil, err
	}
	for i := 0; i < 10_000; i++ {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return nil, err
		}
		if got, _, isReply := parseReply(msg); isReply && got == id {
			return msg, nil
		}
	}
	return nil, errors.New("no reply among 10,000 messages")
}

// connect dials proto (through netDial; nil: plain TCP), counts the
// connection in n and reads the hello, with a 10 s deadline on the
// connection; nil when that failed (an error, unless the load is ending).
func (l *soakLoad) connect(ctx context.Context, what, proto string, netDial func(ctx context.Context, network, addr string) (net.Conn, error), n *atomic.Int64) *wsClient {
	c, err := dialWSWith(ctx, netDial, l.url, proto, 4096)
	if err != nil {
		if ctx.Err() == nil {
			l.fail(what, err)
		}
		return nil
	}
	n.Add(1)
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ReadMessage(); err != nil {
		l.fail(what+": hello", err)
		c.Close()
		return nil
	}
	return c
}

// relayClient connects, lists, changes a relay a few ways, disconnects
// (with a closing handshake or without).
func (l *soakLoad) relayClient(ctx context.Context, i int) {
	c := l.connect(ctx, "relay client", "relay-control.v1", nil, &l.relaySessions)
	if c == nil {
		return
	}
	defer c.Close()
	relay := "r" + strconv.Itoa(i%4)
	reqs := []string{
		`{"id":1,"op":"list"}`,
		`{"id":2,"op":"set","relay":"` + relay + `","state":"on"}`,
		`{"id":3,"op":"toggle","relay":"` + relay + `"}`,
		`{"id":4,"op":"pulse","relay":"` + relay + `","ms":20}`,
		`{"id":5,"op":"get","relay":"` + relay + `"}`,
		`{"id":6,"op":"set","relay":"` + relay + `","state":"off"}`,
	}
	for k, req := range reqs {
		reply, err := request(c, int64(k+1), req)
		if err != nil {
			l.fail("relay request", err)
			return
		}
		l.relayRequests.Add(1)
		// Another client's pulse of the same relay may still run: busy.
		if _, ok, _ := parseReply(reply); !ok && !(k == 3 && strings.Contains(string(reply), `"busy"`)) {
			l.fail("relay request", fmt.Errorf("%s → %s", req, reply))
		}
	}
	if i%2 == 0 {
		c.write(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))
		for k := 0; k < 1000; k++ {
			if _, _, err := c.ReadMessage(); err != nil {
				break
			}
		}
	}
}

// subscriber subscribes (JSON or binary, some decimated), reads for a
// while and disconnects.
func (l *soakLoad) subscriber(ctx context.Context, i int) {
	c := l.connect(ctx, "subscriber", "sensor-stream.v1", nil, &l.subscribers)
	if c == nil {
		return
	}
	defer c.Close()
	format := []string{"json", "binary"}[i%2]
	sub := `{"id":1,"op":"subscribe","sensors":["*"],"format":"` + format + `"}`
	if i%3 == 0 {
		sub = `{"id":1,"op":"subscribe","sensors":["wave.*"],"format":"` + format + `","max_hz":20}`
	}
	if reply, err := request(c, 1, sub); err != nil || !strings.Contains(string(reply), `"ok":true`) {
		l.fail("subscribe", fmt.Errorf("%s → %s %v", sub, reply, err))
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(time.Duration(200+100*(i%8)) * time.Millisecond))
	for k := 0; k < 100_000; k++ {
		if _, _, err := c.ReadMessage(); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				l.fail("subscriber read", err)
			}
			return
		}
		l.messages.Add(1)
	}
}

// slowSubscriber subscribes to everything with a tiny receive buffer and
// stops reading; then it reads what is left: the stream ending there
// means the gateway disconnected it.
func (l *soakLoad) slowSubscriber(ctx context.Context, i int) {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
			return serr
		}}
		return d.DialContext(ctx, network, addr)
	}
	c := l.connect(ctx, "slow subscriber", "sensor-stream.v1", dial, &l.slow)
	if c == nil {
		return
	}
	defer c.Close()
	if err := c.WriteText([]byte(`{"id":1,"op":"subscribe","sensors":["*"],"format":"json"}`)); err != nil {
		l.fail("slow subscriber", err)
		return
	}
	// Not reading: the socket fills, the gateway's write times out (2 s).
	// Bounded by the load's end.
	sleepCtx(ctx, 8*time.Second)
	c.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	for k := 0; k < 1_000_000; k++ {
		if _, _, err := c.ReadMessage(); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				l.slowKicked.Add(1)
			}
			return
		}
	}
}

// abusiveClient sends bursts far past the rate limit (50/s) for up to 4 s,
// reading in between, and counts rate_limited replies and a close 1008.
func (l *soakLoad) abusiveClient(ctx context.Context, i int) {
	c := l.connect(ctx, "abusive client", "relay-control.v1", nil, &l.abusive)
	if c == nil {
		return
	}
	defer c.Close()
	end := time.Now().Add(4 * time.Second)
	id := 0
	for burst := 0; burst < 1000 && time.Now().Before(end) && ctx.Err() == nil; burst++ {
		for k := 0; k < 100; k++ {
			id++
			c.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
			if err := c.WriteText([]byte(`{"id":` + strconv.Itoa(id) + `,"op":"get","relay":"r0"}`)); err != nil {
				return // closed by the gateway: read below would tell why, but the socket is gone
			}
		}
		c.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		for k := 0; k < 200; k++ {
			_, msg, err := c.ReadMessage()
			if err != nil {
				var ce *closeError
				if errors.As(err, &ce) {
					if ce.code == ws.StatusPolicyViolation {
						l.closed1008.Add(1)
					}
					return
				}
				break
			}
			if strings.Contains(string(msg), `"rate_limited"`) {
				l.rateLimited.Add(1)
			}
		}
	}
}

// garbage is one kind of bad input and the close code the contract gives
// it (0: an error reply, the socket stays open).
type garbage struct {
	name  string
	proto string
	frame func() []byte
	code  ws.StatusCode
}

func maskedFrame(b0 byte, payload []byte) []byte {
	f := []byte{b0, 0x80}
	switch {
	case len(payload) < 126:
		f[1] |= byte(len(payload))
	default:
		f[1] |= 126
		f = append(f, byte(len(payload)>>8), byte(len(payload)))
	}
	mask := [4]byte{1, 2, 3, 4}
	f = append(f, mask[:]...)
	start := len(f)
	f = append(f, payload...)
	ws.Cipher(f[start:], mask, 0)
	return f
}

var garbageKinds = []garbage{
	{"binary on relay-control", "relay-control.v1", func() []byte { return maskedFrame(0x82, []byte{1, 2, 3}) }, ws.StatusUnsupportedData},
	{"invalid UTF-8", "relay-control.v1", func() []byte { return maskedFrame(0x81, []byte{'{', 0xff, 0xfe, '}'}) }, ws.StatusInvalidFramePayloadData},
	{"unmasked frame", "sensor-stream.v1", func() []byte { return []byte{0x81, 2, '{', '}'} }, ws.StatusProtocolError},
	{"oversized message", "sensor-stream.v1", func() []byte { return maskedFrame(0x81, make([]byte, 8000)) }, ws.StatusMessageTooBig},
	{"reserved bit", "relay-control.v1", func() []byte { return maskedFrame(0xC1, []byte("{}")) }, ws.StatusProtocolError},
	{"bad opcode", "sensor-stream.v1", func() []byte { return maskedFrame(0x83, nil) }, ws.StatusProtocolError},
	{"not JSON", "relay-control.v1", func() []byte { return maskedFrame(0x81, []byte("hello?")) }, 0},
}

// garbageClient sends one kind of bad input and checks the answer.
func (l *soakLoad) garbageClient(ctx context.Context, i int) {
	g := garbageKinds[i%len(garbageKinds)]
	c := l.connect(ctx, "garbage client", g.proto, nil, &l.garbage)
	if c == nil {
		return
	}
	defer c.Close()
	if _, err := c.nc.Write(g.frame()); err != nil {
		l.fail(g.name, err)
		return
	}
	for k := 0; k < 10_000; k++ {
		_, msg, err := c.ReadMessage()
		var ce *closeError
		switch {
		case err != nil && errors.As(err, &ce) && ce.code == g.code:
			l.garbageAnswered.Add(1)
			return
		case err != nil:
			l.fail(g.name, fmt.Errorf("want close %d, got %w", g.code, err))
			return
		case g.code == 0 && strings.Contains(string(msg), `"bad_request"`):
			l.garbageAnswered.Add(1)
			return
		}
	}
}

// handshakeChurn opens TCP connections that never become WebSockets.
func (l *soakLoad) handshakeChurn(ctx context.Context, i int) {
	l.handshakes.Add(1)
	nc, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", l.addr)
	if err != nil {
		if ctx.Err() == nil {
			l.fail("handshake churn", err)
		}
		return
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	status := func(req string, want string) {
		if _, err := io.WriteString(nc, req); err != nil {
			l.fail("handshake churn", err)
			return
		}
		line, err := bufio.NewReader(nc).ReadString('\n')
		if err != nil || !strings.Contains(line, want) {
			l.fail("handshake churn", fmt.Errorf("%q: got %q %v, want %s", strings.SplitN(req, "\r\n", 2)[0], line, err, want))
		}
	}
	host := "Host: " + l.addr + "\r\n"
	switch i % 6 {
	case 0: // connect and go
	case 1: // half a request
		io.WriteString(nc, "GET /ws HTTP/1.1\r\n"+host)
	case 2: // no upgrade
		status("GET /ws HTTP/1.1\r\n"+host+"Connection: close\r\n\r\n", " 426 ")
	case 3: // unknown subprotocol
		status("GET /ws HTTP/1.1\r\n"+host+"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: nope.v9\r\n\r\n", " 400 ")
	case 4: // plain HTTP
		status("GET /healthz HTTP/1.1\r\n"+host+"Connection: close\r\n\r\n", " 200 ")
	case 5: // silent until the handshake timeout (1 s) drops it
		if i%30 == 5 {
			var b [1]byte
			if _, err := nc.Read(b[:]); err == nil {
				l.fail("handshake churn", errors.New("a silent connection got data"))
			}
		}
	}
}

// printSoak writes the soak's outcome in a few lines.
func printSoak(w io.Writer, s *SoakStats) {
	fmt.Fprintf(w, "soak %s over %gs: %s\n", passFail(s.Pass), s.DurationS, s.Verdict)
	fmt.Fprintf(w, "  peak during the load: goroutines %d, open files %d, RSS %.1f MiB\n", s.Peak.Goroutines, s.Peak.OpenFDs, float64(s.Peak.RSSKiB)/1024)
	fmt.Fprintf(w, "  relay sessions %d (%d requests), subscribers %d (%d messages), slow %d (%d disconnected by the gateway), abusive %d (%d rate_limited, %d closed 1008), garbage %d (%d answered as the contract says), handshake churn %d, backend restarts %d, uplink retries %d, errors %d\n",
		s.RelaySessions, s.RelayRequests, s.Subscribers, s.Messages, s.SlowSubscribers, s.SlowKicked, s.Abusive, s.RateLimited, s.Closed1008,
		s.Garbage, s.GarbageAnswered, s.Handshakes, s.BackendRestarts, s.UplinkReconnects, s.Errors)
	for _, e := range s.FirstErrors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
	fmt.Fprintf(w, "  gateway on SIGTERM: %s\n", s.GatewayExit)
}
