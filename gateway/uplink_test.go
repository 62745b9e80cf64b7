package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/hardware"
	"github.com/edgegate/edgegate/gateway/uplink"
	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startUplinkGateway runs a gateway (not serving HTTP) whose upstream is url.
func startUplinkGateway(t *testing.T, url, extra string) (*Gateway, *lockedBuf, func()) {
	t.Helper()
	return startUplinkGatewayIn(t, t.TempDir(), url, extra)
}

// startUplinkGatewayIn is startUplinkGateway with the data dir dataDir.
func startUplinkGatewayIn(t *testing.T, dataDir, url, extra string) (*Gateway, *lockedBuf, func()) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("tok-SECRET-123\n"), 0o600)
	cfg, err := config.Parse("test.yaml", fmt.Appendf(nil, `
gateway: {id: unit, heartbeat: {interval: 200ms, timeout: 10s}}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
sensors:
  - {name: wave, driver: sim-wave, interval: 10ms, period: 1s}
upstream: {url: %q, token_file: %q%s}
`, url, tokenFile, extra))
	if err != nil {
		t.Fatal(err)
	}
	hw := firmwaresim.NewHardware(nil)
	t.Cleanup(func() { hw.Close() })
	if err := hardware.Simulate(hw, cfg); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuf{}
	g, err := New(Options{Config: cfg, Version: "test", Buses: hw, Sim: firmwaresim.Handler(hw), DataDir: dataDir,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	shutdown := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			g.Shutdown(ctx)
		})
	}
	t.Cleanup(shutdown)
	return g, logs, shutdown
}

func waitMetrics(t *testing.T, g *Gateway, what string, ok func(uplink.Metrics) bool) uplink.Metrics {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := g.uplink.Metrics()
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("uplink never showed %s: %+v", what, m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUplinkRequiresSubprotocol: a backend that upgrades without selecting
// edge-uplink.v1 is an error, retried, and the token never shows in logs.
func TestUplinkRequiresSubprotocol(t *testing.T) {
	var mu sync.Mutex
	var auths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		conn, _, _, err := ws.HTTPUpgrader{}.Upgrade(r, w) // selects no subprotocol
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	g, logs, _ := startUplinkGateway(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/uplink", "")
	m := waitMetrics(t, g, "two refused attempts", func(m uplink.Metrics) bool { return m.Reconnects >= 2 })
	if !strings.Contains(m.LastError, "did not select the edge-uplink.v1 subprotocol") {
		t.Fatalf("last error %q", m.LastError)
	}
	mu.Lock()
	if auths[0] != "Bearer tok-SECRET-123" {
		t.Fatalf("Authorization sent: %q", auths[0])
	}
	mu.Unlock()
	if strings.Contains(logs.String(), "tok-SECRET") {
		t.Fatalf("the token appears in the logs:\n%s", logs.String())
	}
}

// fakeBackend accepts one uplink at a time and hands its connection out.
func fakeBackend(t *testing.T) (url string, conns <-chan *wsconn.Conn) {
	ch := make(chan *wsconn.Conn, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := ws.HTTPUpgrader{Protocol: func(p string) bool { return p == protocol.EdgeUplinkV1 }}
		nc, rw, _, err := up.Upgrade(r, w)
		if err != nil {
			return
		}
		ch <- wsconn.New(nc, rw.Reader, wsconn.Config{IdleTimeout: 5 * time.Second})
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/uplink", ch
}

func readJSON(t *testing.T, c *wsconn.Conn) map[string]any {
	t.Helper()
	_, p, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatalf("%q: %v", p, err)
	}
	return m
}

// TestUplinkResendsUnackedInOrder: samples come in seq order; after a
// reconnect the gateway resends from the oldest unacknowledged one.
func TestUplinkResendsUnackedInOrder(t *testing.T) {
	url, conns := fakeBackend(t)
	g, _, _ := startUplinkGateway(t, url, ", fsync: never")
	c := <-conns
	hello := readJSON(t, c)
	if hello["event"] != "hello" || hello["gateway"] != "unit" || len(hello["relays"].([]any)) != 1 || len(hello["sensors"].([]any)) != 1 {
		t.Fatalf("hello %v", hello)
	}
	var next uint64 = 1
	var ackedUpTo uint64
	for next < 60 {
		m := readJSON(t, c)
		if m["event"] != "samples" {
			continue
		}
		for _, s := range m["samples"].([]any) {
			seq := uint64(s.(map[string]any)["seq"].(float64))
			if seq != next {
				t.Fatalf("seq %d, want %d", seq, next)
			}
			next++
		}
		if ackedUpTo == 0 && next > 20 {
			ackedUpTo = next - 1
			c.WriteMessage(ws.OpText, fmt.Appendf(nil, `{"op":"ack","seq":%d}`, ackedUpTo))
		}
	}
	waitMetrics(t, g, "the ack", func(m uplink.Metrics) bool { return m.AckedSeq == ackedUpTo })
	c.Close(ws.StatusGoingAway, "bye")
	c.ReadMessage()
	c2 := <-conns
	readJSON(t, c2) // hello
	for {
		m := readJSON(t, c2)
		if m["event"] == "samples" {
			first := uint64(m["samples"].([]any)[0].(map[string]any)["seq"].(float64))
			if first != ackedUpTo+1 {
				t.Fatalf("after reconnect samples resume at %d, want %d (oldest unacked)", first, ackedUpTo+1)
			}
			break
		}
	}
	// A command is answered now, with source uplink; a bad ack is a bad request.
	c2.WriteMessage(ws.OpText, []byte(`{"id":"a","op":"set","relay":"pump","state":"on"}`))
	c2.WriteMessage(ws.OpText, []byte(`{"id":"b","op":"ack","seq":"x"}`))
	var got []string
	for len(got) < 3 {
		m := readJSON(t, c2)
		switch {
		case m["event"] == "state":
			got = append(got, fmt.Sprintf("state %v %v %v", m["relay"], m["state"], m["source"]))
		case m["id"] != nil:
			got = append(got, fmt.Sprintf("reply %v %v", m["id"], m["ok"]))
		}
	}
	want := "[state pump on uplink reply a true reply b false]"
	if fmt.Sprint(got) != want {
		t.Fatalf("got %v, want %s", got, want)
	}
}

// TestUplinkShutdownLeavesNoGoroutines: start and stop with a backend
// that never answers.
func TestUplinkShutdownLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 3 {
		func() {
			url, conns := fakeBackend(t)
			g, _, shutdown := startUplinkGateway(t, url, "")
			<-conns
			shutdown()
			if m := g.uplink.Metrics(); m.State != uplink.StateStopped {
				t.Fatalf("state after shutdown %q", m.State)
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+6 { // the test servers' handlers linger until cleanup
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUplinkPulseOverMaxPulseRefused: a pulse from the backend longer than
// the relay's max_pulse (60 s by default) is a bad request, and the relay
// never switches (no state event, and get reports it off).
func TestUplinkPulseOverMaxPulseRefused(t *testing.T) {
	url, conns := fakeBackend(t)
	g, _, _ := startUplinkGateway(t, url, ", fsync: never")
	c := <-conns
	readJSON(t, c) // hello
	c.WriteMessage(ws.OpText, []byte(`{"id":"p","op":"pulse","relay":"pump","ms":60001}`))
	c.WriteMessage(ws.OpText, []byte(`{"id":"q","op":"pulse","relay":"pump","ms":9223372036854775807}`))
	c.WriteMessage(ws.OpText, []byte(`{"id":"g","op":"get","relay":"pump"}`))
	var replies []map[string]any
	for len(replies) < 3 {
		m := readJSON(t, c)
		switch {
		case m["event"] == "state":
			t.Fatalf("the relay switched on a refused pulse: %v", m)
		case m["id"] != nil:
			replies = append(replies, m)
		}
	}
	for i, id := range []string{"p", "q"} {
		r := replies[i]
		e, _ := r["error"].(map[string]any)
		if r["id"] != id || r["ok"] != false || e["code"] != protocol.CodeBadRequest ||
			e["message"] != `"ms" must be between 1 and 60000 for relay "pump"` {
			t.Fatalf("reply to pulse %s: %v", id, r)
		}
	}
	if r := replies[2]; r["id"] != "g" || r["state"] != "off" {
		t.Fatalf("get after refused pulses: %v", r)
	}
	if info, _ := g.relays.Get("pump"); info.On {
		t.Fatal("pump is on after refused pulses")
	}
}
