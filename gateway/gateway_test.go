package gateway

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/hardware"
	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// startTestGateway runs a gateway in this process on a loopback port;
// each set adjusts its Options.
func startTestGateway(t *testing.T, yaml string, set ...func(*Options)) (*Gateway, string, *firmwaresim.Hardware) {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	hw := firmwaresim.NewHardware(nil)
	t.Cleanup(func() { hw.Close() })
	if err := hardware.Simulate(hw, cfg); err != nil {
		t.Fatal(err)
	}
	opts := Options{Config: cfg, Version: "test", Buses: hw, Sim: firmwaresim.Handler(hw),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, f := range set {
		f(&opts)
	}
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
		<-served
	})
	return g, ln.Addr().String(), hw
}

// dialTest opens a WebSocket connection offering proto; rw reads what the
// handshake left buffered, then the connection.
func dialTest(t *testing.T, url, proto string) (conn net.Conn, rw io.ReadWriter) {
	t.Helper()
	conn, br, _, err := ws.Dialer{Protocols: []string{proto}, Timeout: 5 * time.Second}.Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	return conn, struct {
		io.Reader
		io.Writer
	}{r, conn}
}

func TestSubscribeChurnLeavesNoGoroutines(t *testing.T) {
	_, addr, _ := startTestGateway(t, `
sensors:
  - {name: wave, driver: sim-wave, interval: 1ms, period: 1s}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	url := "ws://" + addr + "/ws"
	cycle := func(proto string) {
		conn, rw := dialTest(t, url, proto)
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := wsutil.ReadServerText(rw); err != nil { // hello
			t.Fatal(err)
		}
		if proto == "sensor-stream.v1" {
			wsutil.WriteClientText(conn, []byte(`{"op":"subscribe","sensors":["*"]}`))
			if _, err := wsutil.ReadServerText(rw); err != nil { // reply
				t.Fatal(err)
			}
			if _, err := wsutil.ReadServerText(rw); err != nil { // a sample
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 20; i++ { // warm up pools and the HTTP server
		cycle("sensor-stream.v1")
	}
	time.Sleep(200 * time.Millisecond)
	base := runtime.NumGoroutine()
	for i := 0; i < 1000; i++ {
		proto := "sensor-stream.v1"
		if i%10 == 0 {
			proto = "relay-control.v1"
		}
		cycle(proto)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base+2 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after 1000 connections, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A 1 kHz sensor reaches a binary subscriber in one message per batch
// window (gateway.sample_batch), every sample in order, none lost.
func TestSampleBatchOverTheWire(t *testing.T) {
	_, addr, _ := startTestGateway(t, `
gateway:
  sample_batch: 25ms
sensors:
  - {name: wave, driver: sim-wave, interval: 1ms, period: 1s}
`)
	conn, rw := dialTest(t, "ws://"+addr+"/ws", "sensor-stream.v1")
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := wsutil.ReadServerText(rw); err != nil { // hello
		t.Fatal(err)
	}
	if err := wsutil.WriteClientText(conn, []byte(`{"id":1,"op":"subscribe","sensors":["wave.value"],"format":"binary"}`)); err != nil {
		t.Fatal(err)
	}
	var messages, records int
	var last uint64
	for start := time.Now(); time.Since(start) < 500*time.Millisecond; {
		msg, op, err := wsutil.ReadServerData(rw)
		if err != nil {
			t.Fatal(err)
		}
		if op != ws.OpBinary {
			continue // the reply
		}
		if len(msg)%protocol.RecordSize != 0 {
			t.Fatalf("binary message of %d bytes", len(msg))
		}
		for off := 0; off < len(msg); off += protocol.RecordSize {
			seq := binary.LittleEndian.Uint64(msg[off:])
			if last != 0 && seq != last+1 {
				t.Fatalf("seq %d after %d", seq, last)
			}
			last = seq
		}
		messages++
		records += len(msg) / protocol.RecordSize
	}
	// 500 ms of a 1 kHz sensor in 25 ms windows: about 20 messages of about
	// 25 records (a loaded machine samples less often; it never writes
	// more often). Unbatched, it would be about one record per message.
	if per := float64(records) / float64(messages); per < 5 {
		t.Fatalf("%d records in %d messages (%.1f per message), want them batched per 25 ms window", records, messages, per)
	}
	// /metrics shows the stream batched, and the window.
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"edgegate_sensor_batched_streams 1\n", "edgegate_sensor_batch_window_seconds 0.025\n"} {
		if !strings.Contains(string(body), line) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(line))
		}
	}
}

// A subscriber that stops reading fills its socket: samples written
// straight from fan-out are then refused or taken in part, and the rest
// wait in its queue, whose oldest are dropped. When it reads again, every
// message is whole, seq only rises, and the samples missing are exactly
// those counted in dropped notices, each before the next sample it gets.
func TestStalledSubscriberGetsWholeMessages(t *testing.T) {
	_, addr, _ := startTestGateway(t, `
gateway:
  sample_batch: 0s
  limits: {subscriber_queue: 16}
sensors:
  - {name: w0, driver: sim-wave, interval: 1ms, period: 1s}
  - {name: w1, driver: sim-wave, interval: 1ms, period: 1s}
  - {name: w2, driver: sim-wave, interval: 1ms, period: 1s}
  - {name: w3, driver: sim-wave, interval: 1ms, period: 1s}
  - {name: w4, driver: sim-wave, interval: 1ms, period: 1s}
  - {name: w5, driver: sim-wave, interval: 1ms, period: 1s}
  - {name: w6, driver: sim-wave, interval: 1ms, period: 1s}
  - {name: w7, driver: sim-wave, interval: 1ms, period: 1s}
`)
	conn, r := dialTest(t, "ws://"+addr+"/ws", "sensor-stream.v1")
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := wsutil.ReadServerText(r); err != nil { // hello
		t.Fatal(err)
	}
	if err := wsutil.WriteClientText(conn, []byte(`{"id":1,"op":"subscribe","sensors":["*"]}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // not reading: about 16,000 samples come
	var got, dropped, missing uint64
	var last uint64
	for start := time.Now(); time.Since(start) < 500*time.Millisecond; {
		msg, err := wsutil.ReadServerText(r)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			ID    int    `json:"id"`
			Event string `json:"event"`
			Count uint64 `json:"count"`
			Seq   uint64 `json:"seq"`
		}
		if err := json.Unmarshal(msg, &m); err != nil {
			t.Fatalf("message %q: %v", msg, err)
		}
		switch {
		case m.ID == 1: // the reply
		case m.Event == "dropped":
			dropped += m.Count
		case m.Seq > 0 && got < 8:
			// The latest sample of each sensor, in the order of the
			// sensors: the newest of them is the last before fan-out's.
			last = max(last, m.Seq)
			got++
		case m.Seq > 0:
			if last != 0 {
				if m.Seq <= last {
					t.Fatalf("seq %d after %d", m.Seq, last)
				}
				missing += m.Seq - last - 1
				if missing != dropped {
					t.Fatalf("seq %d after %d: %d missing in all, %d counted dropped", m.Seq, last, missing, dropped)
				}
			}
			last = m.Seq
			got++
		default:
			t.Fatalf("unexpected message %q", msg)
		}
	}
	t.Logf("%d samples read, %d dropped while not reading", got, dropped)
	if dropped == 0 {
		t.Fatal("a subscriber that read nothing for a second with a queue of 16 lost no sample: the test did not stall it")
	}
	if got < 100 {
		t.Fatalf("%d samples in 500 ms of reading a 1 kHz sensor", got)
	}
}
