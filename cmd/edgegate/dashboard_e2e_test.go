package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The dashboard test drives the embedded page in a real headless Chromium
// against the real edgegate binary. It never skips: CI must run it, and
// scripts/test.sh installs Chromium when it is missing.

const dashboardConfig = `
gateway:
  id: greenhouse-pi
relays:
  - {name: pump, driver: gpio, pin: GPIO17, active_low: true, initial: off, failsafe: off}
  - {name: valve_open, driver: gpio, pin: GPIO22, interlock: valves}
  - {name: valve_close, driver: gpio, pin: GPIO23, interlock: valves}
  - {name: door, driver: gpio, pin: GPIO24, max_pulse: 5s}
  - {name: lamp, driver: gpio, pin: GPIO25, initial: on}
sensors:
  - {name: wave, driver: sim-wave, interval: 100ms, period: 5s}
  - {name: room, driver: bme280, bus: /dev/i2c-1, address: 0x76, interval: 1s}
`

// screenshotEnv, when set to a file path, makes the test save a 1280×800
// screenshot of the dashboard there (docs/dashboard.png is made this way).
const screenshotEnv = "EDGEGATE_DASHBOARD_SCREENSHOT"

// chromiumPath finds the browser, failing (never skipping) when it is missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("EDGEGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is not installed: the dashboard test needs it (Debian: apt-get install -y chromium; scripts/test.sh installs it), or set EDGEGATE_CHROMIUM to its path")
	return ""
}

// freeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// browserLog collects what the page writes to the console, its uncaught
// exceptions and the browser's log entries.
type browserLog struct {
	mu sync.Mutex
	// networkOK, while set, tolerates network errors: the gateway is
	// down on purpose and the page's reconnect attempts fail.
	networkOK bool
	bad       []string
}

func (l *browserLog) add(m chromedp.ConsoleMessage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case m.IsException(), m.Type == chromedp.ConsoleError && m.Source != "network",
		m.Type == "assert":
		l.bad = append(l.bad, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
	case m.Type == chromedp.ConsoleError && !l.networkOK:
		l.bad = append(l.bad, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
	}
}

func (l *browserLog) tolerateNetworkErrors(ok bool) {
	l.mu.Lock()
	l.networkOK = ok
	l.mu.Unlock()
}

func (l *browserLog) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.bad...)
}

// startBrowser starts headless Chromium with a fresh profile. The browser
// and every process it started are gone when the test ends.
func startBrowser(t *testing.T, timeout time.Duration) (context.Context, *browserLog) {
	t.Helper()
	exe := chromiumPath(t)
	profile := t.TempDir()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
	)
	timed, cancelTimeout := context.WithTimeout(allocCtx, timeout)
	ctx, cancelCtx := chromedp.NewContext(timed)
	log := &browserLog{}
	msgs := chromedp.Console(ctx) // also starts the browser
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			log.add(m)
		}
	}()
	t.Cleanup(func() {
		cancelCtx()
		cancelTimeout()
		cancelAlloc() // kills the browser and waits for it
		<-done
		if n := killProfileProcesses(profile); n > 0 {
			t.Errorf("%d Chromium processes outlived the browser; killed them", n)
		}
	})
	return ctx, log
}

// killProfileProcesses kills the processes that this test's browser started
// (they all carry its unique --user-data-dir) and returns how many it found.
func killProfileProcesses(profile string) int {
	want := []byte("--user-data-dir=" + profile + "\x00")
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, want) {
			syscall.Kill(pid, syscall.SIGKILL)
			n++
		}
	}
	return n
}

// js evaluates expr in the page.
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls expr until it is true, failing after d with what and a look
// at the page's connection state.
func waitJS(t *testing.T, ctx context.Context, d time.Duration, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+expr+")"))
		if err != nil {
			t.Fatalf("%s: evaluate %s: %v", what, expr, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("status").innerText`))
			t.Fatalf("%s: not within %v (page status: %q)", what, d, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func click(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(css))); err != nil {
		t.Fatalf("click %s: %v", css, err)
	}
}

// relayOnPage is the state the page shows for a relay ("" if no control).
func relayOnPage(t *testing.T, ctx context.Context, name string) string {
	return js[string](t, ctx, fmt.Sprintf(`(document.querySelector('[data-relay=%q]') || {dataset: {}}).dataset.state || ""`, name))
}

// waitStateEvent reads from a relay-control client until a state event
// for relay arrives with the wanted state.
func waitStateEvent(t *testing.T, c *client, relay, state string, d time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b, _, err := c.readMsg(time.Until(deadline))
		if err != nil {
			t.Fatalf("no state event %s=%s within %v: %v", relay, state, d, err)
		}
		var m map[string]any
		if json.Unmarshal(b, &m) == nil && m["event"] == "state" && m["relay"] == relay && m["state"] == state {
			return m
		}
	}
}

const bothConnected = `document.getElementById("conn-relays").dataset.conn === "open" &&
	document.getElementById("conn-sensors").dataset.conn === "open"`

func TestDashboardInChromium(t *testing.T) {
	shot := os.Getenv(screenshotEnv)
	ctx, blog := startBrowser(t, 3*time.Minute)

	listen := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	args := []string{"--sim", "--config", writeConfig(t, dashboardConfig), "--listen", listen, "--data-dir", t.TempDir()}
	p := startGateway(t, args...)
	if p.addr != listen {
		t.Fatalf("gateway listens on %s, want %s", p.addr, listen)
	}
	checkDashboardHTTP(t, p)

	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+p.addr+"/")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	waitJS(t, ctx, 10*time.Second, "both sockets connected", bothConnected)
	waitJS(t, ctx, 2*time.Second, "gateway id and version from hello shown",
		`document.getElementById("gateway-id").textContent === "greenhouse-pi" && document.getElementById("gateway-version").textContent === "dev"`)

	// Every relay of the gateway has one control, in its confirmed state.
	c, hello := dialRelay(t, p, "")
	relays := hello["relays"].([]any)
	waitJS(t, ctx, 5*time.Second, "relay controls", fmt.Sprintf(`document.querySelectorAll("button[data-relay]").length === %d`, len(relays)))
	for _, r := range relays {
		r := r.(map[string]any)
		name, state := r["name"].(string), r["state"].(string)
		if got := relayOnPage(t, ctx, name); got != state {
			t.Errorf("relay %s: page shows %q, gateway says %q", name, got, state)
		}
		_, hasPulse := r["max_pulse_ms"]
		if got := js[bool](t, ctx, fmt.Sprintf(`!!document.querySelector('button[data-pulse=%q]')`, name)); got != hasPulse {
			t.Errorf("relay %s: pulse button present %v, want %v (as max_pulse_ms in hello)", name, got, hasPulse)
		}
	}
	if got := js[string](t, ctx, `[...document.querySelectorAll('[data-interlock="valves"] [data-relay]')].map(b => b.dataset.relay).join(",")`); got != "valve_open,valve_close" {
		t.Errorf("interlock group valves shows %q, want valve_open,valve_close", got)
	}

	// A click changes the relay: another client sees it, then the page.
	click(t, ctx, `button[data-relay="pump"]`)
	waitStateEvent(t, c, "pump", "on", 5*time.Second)
	waitJS(t, ctx, 2*time.Second, "pump shown on after the click", `document.querySelector('[data-relay="pump"]').dataset.state === "on"`)

	// A change made by another client shows within 2 s, interlock included.
	c.send(map[string]any{"op": "set", "relay": "valve_open", "state": "on"})
	waitJS(t, ctx, 2*time.Second, "valve_open on, set by another client", `document.querySelector('[data-relay="valve_open"]').dataset.state === "on"`)
	click(t, ctx, `button[data-relay="valve_close"]`)
	waitStateEvent(t, c, "valve_close", "on", 5*time.Second)
	waitJS(t, ctx, 2*time.Second, "interlock: valve_open off, valve_close on",
		`document.querySelector('[data-relay="valve_open"]').dataset.state === "off" && document.querySelector('[data-relay="valve_close"]').dataset.state === "on"`)

	// The pulse button pulses (1 s by default): on, then off by itself.
	click(t, ctx, `button[data-pulse="door"]`)
	waitStateEvent(t, c, "door", "on", 5*time.Second)
	waitStateEvent(t, c, "door", "off", 5*time.Second)
	waitJS(t, ctx, 2*time.Second, "door off after its pulse", `document.querySelector('[data-relay="door"]').dataset.state === "off"`)

	// A failed command shows its error near the relay and changes nothing.
	p.httpPost("/sim/gpio/GPIO25?fail=relay+board+not+answering")
	click(t, ctx, `button[data-relay="lamp"]`)
	waitJS(t, ctx, 5*time.Second, "device_error shown on lamp",
		`document.querySelector('[data-relay-card="lamp"] .relay-error:not([hidden])')?.textContent.includes("device_error")`)
	if got := relayOnPage(t, ctx, "lamp"); got != "on" {
		t.Errorf("lamp shows %q after a failed toggle, want its confirmed state on", got)
	}
	p.httpPost("/sim/gpio/GPIO25?fail=none")

	// Sensor values appear and the charts move.
	for _, s := range []struct{ name, unit string }{{"wave.value", ""}, {"room.temperature", " °C"}, {"room.humidity", " %RH"}} {
		waitJS(t, ctx, 5*time.Second, s.name+" value and unit shown",
			fmt.Sprintf(`/^-?[0-9.]+%s$/.test(document.querySelector('[data-sensor=%q]').textContent)`, regexp.QuoteMeta(s.unit), s.name))
	}
	path := `document.querySelector('[data-sparkline="wave.value"] .line').getAttribute("d")`
	waitJS(t, ctx, 5*time.Second, "wave sparkline drawn", path+`.length > 20`)
	value := `document.querySelector('[data-sensor="wave.value"]').textContent`
	before, beforeValue := js[string](t, ctx, path), js[string](t, ctx, value)
	waitJS(t, ctx, 5*time.Second, "wave value and sparkline update", fmt.Sprintf(`%s !== %q && %s !== %q`, path, before, value, beforeValue))

	// A click on a sensor opens the large chart with axes and units.
	click(t, ctx, `[data-sensor-card="room.temperature"]`)
	waitJS(t, ctx, 3*time.Second, "large chart of room.temperature open, with axes and its unit",
		`document.getElementById("chart-dialog").open && document.getElementById("chart-title").textContent === "room.temperature" &&
		document.querySelectorAll("#chart-large .axis-labels text").length >= 4 &&
		[...document.querySelectorAll("#chart-large .axis-title")].some(e => e.textContent === "°C") &&
		document.querySelector("#chart-large .line").getAttribute("d").length > 20`)
	click(t, ctx, `#chart-close`)
	waitJS(t, ctx, 2*time.Second, "chart closed", `!document.getElementById("chart-dialog").open`)

	// Keyboard: Tab reaches the next relay's switch, shows where the focus
	// is, and Enter toggles it.
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.CSS(`button[data-relay="pump"]`)), chromedp.KeyEvent("\t")); err != nil {
		t.Fatalf("tab: %v", err)
	}
	waitJS(t, ctx, 2*time.Second, "Tab focuses valve_open's switch, with a visible outline",
		`document.activeElement.dataset.relay === "valve_open" && getComputedStyle(document.activeElement).outlineStyle !== "none"`)
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\r")); err != nil {
		t.Fatalf("enter: %v", err)
	}
	waitStateEvent(t, c, "valve_open", "on", 5*time.Second)
	waitJS(t, ctx, 2*time.Second, "valve_open on by keyboard, valve_close off by interlock",
		`document.querySelector('[data-relay="valve_open"]').dataset.state === "on" && document.querySelector('[data-relay="valve_close"]').dataset.state === "off"`)

	if shot != "" {
		saveScreenshot(t, ctx, c, shot)
	}

	// Stop the gateway, start it again on the same port: the page comes
	// back by itself and works.
	blog.tolerateNetworkErrors(true)
	if code := p.stop(); code != 0 {
		t.Fatalf("edgegate exited %d on SIGTERM", code)
	}
	waitJS(t, ctx, 5*time.Second, "page notices the gateway is gone",
		`document.getElementById("conn-relays").dataset.conn !== "open" && document.querySelector('[data-relay="pump"]').closest("[data-relay-card]").dataset.stale === "true"`)
	p2 := startGateway(t, args...)
	waitJS(t, ctx, 20*time.Second, "page reconnects by itself", bothConnected)
	blog.tolerateNetworkErrors(false)
	c2, _ := dialRelay(t, p2, "")
	// The restarted gateway began from each relay's initial state, and the
	// page rebuilt its list from the new hello.
	waitJS(t, ctx, 2*time.Second, "relays rebuilt from the new hello", `document.querySelector('[data-relay="pump"]').dataset.state === "off" && !document.querySelector("[data-stale]")`)
	click(t, ctx, `button[data-relay="pump"]`)
	waitStateEvent(t, c2, "pump", "on", 5*time.Second)
	waitJS(t, ctx, 2*time.Second, "pump on after reconnect", `document.querySelector('[data-relay="pump"]').dataset.state === "on"`)
	before, beforeValue = js[string](t, ctx, path), js[string](t, ctx, value)
	waitJS(t, ctx, 5*time.Second, "wave value and sparkline update after reconnect", fmt.Sprintf(`%s !== %q && %s !== %q`, path, before, value, beforeValue))

	for _, e := range blog.errors() {
		t.Errorf("browser: %s", e)
	}
}

// checkDashboardHTTP checks how the page and its files are served.
func checkDashboardHTTP(t *testing.T, p *gatewayProc) {
	t.Helper()
	resp, body := p.httpGet("/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("GET /: Cache-Control %q, want no-cache (revalidate: a new binary's page shows at once)", cc)
	}
	if resp.Header.Get("Content-Security-Policy") == "" {
		t.Error("GET /: no Content-Security-Policy")
	}
	if bytes.Contains(body, []byte("http://")) || bytes.Contains(body, []byte("https://")) {
		t.Error("the page refers to another site; it must work on a LAN with no internet")
	}
	refs := regexp.MustCompile(`"static/([a-z0-9.]+)\?v=([0-9a-f]+)"`).FindAllSubmatch(body, -1)
	want := map[string]string{"app.js": "text/javascript", "style.css": "text/css", "icon.svg": "image/svg+xml"}
	seen := map[string]bool{}
	for _, m := range refs {
		name, v := string(m[1]), string(m[2])
		if seen[name] {
			continue
		}
		seen[name] = true
		resp, _ := p.httpGet("/static/" + name + "?v=" + v)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), want[name]) {
			t.Errorf("GET static/%s: %s %q, want 200 %s", name, resp.Status, resp.Header.Get("Content-Type"), want[name])
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("GET static/%s?v=%s: Cache-Control %q, want immutable", name, v, cc)
		}
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/static/"+name+"?v="+v, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		r2, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r2.Body.Close()
		if r2.StatusCode != http.StatusNotModified {
			t.Errorf("GET static/%s with its ETag: %s, want 304", name, r2.Status)
		}
		if resp, _ := p.httpGet("/static/" + name + "?v=old"); resp.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET static/%s?v=old: Cache-Control %q, want no-cache", name, resp.Header.Get("Cache-Control"))
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("the page does not load static/%s with a ?v= version", name)
		}
	}
	if resp, _ := p.httpGet("/static/nope.js"); resp.StatusCode != 404 {
		t.Errorf("GET static/nope.js: %s, want 404", resp.Status)
	}
}

// saveScreenshot puts the relays into a varied state, lets the charts fill
// for a while, and saves a 1280×800 screenshot to file.
func saveScreenshot(t *testing.T, ctx context.Context, c *client, file string) {
	t.Helper()
	c.send(map[string]any{"op": "set", "relay": "pump", "state": "on"})
	c.send(map[string]any{"op": "set", "relay": "valve_open", "state": "on"})
	c.send(map[string]any{"op": "set", "relay": "lamp", "state": "off"}) // clears the error shown earlier
	wait := 45 * time.Second
	if v, err := time.ParseDuration(os.Getenv(screenshotEnv + "_WAIT")); err == nil {
		wait = v
	}
	time.Sleep(wait) // let the charts fill: this is a picture, not an assertion
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	js[bool](t, ctx, `document.activeElement.blur(), window.scrollTo(0, 0), true`)
	time.Sleep(600 * time.Millisecond) // one render tick
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(errors.Join(errors.New("save screenshot"), err))
	}
	t.Logf("screenshot saved to %s", file)
}
