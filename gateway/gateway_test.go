package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"github.com/edgegate/edgegate/gateway/config"
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
	if err := hw.Populate(cfg); err != nil {
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

func TestSubscribeChurnLeavesNoGoroutines(t *testing.T) {
	_, addr, _ := startTestGateway(t, `
sensors:
  - {name: wave, driver: sim-wave, interval: 1ms, period: 1s}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	url := "ws://" + addr + "/ws"
	cycle := func(proto string) {
		conn, br, _, err := ws.Dialer{Protocols: []string{proto}, Timeout: 5 * time.Second}.Dial(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var r io.Reader = conn
		if br != nil {
			r = io.MultiReader(br, conn)
		}
		rw := struct {
			io.Reader
			io.Writer
		}{r, conn}
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
