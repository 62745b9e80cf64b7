package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/hardware"
)

// A start that fails at its last step (the uplink's buffer cannot be
// opened) closes everything the steps before it opened: no goroutine is
// left, and the same devices open again.
func TestFailedStartLeavesNothingOpen(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "uplink"), []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test.yaml", []byte(`
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
  - {name: heater, driver: serial-board, device: board, channel: 1}
sensors:
  - {name: wave, driver: sim-wave, interval: 10ms}
  - {name: soil, driver: serial-board, device: board}
devices:
  - {name: board, driver: serial-board, port: /dev/ttyACM0}
upstream:
  url: ws://127.0.0.1:9/uplink
  token: t
`))
	if err != nil {
		t.Fatal(err)
	}
	hw := firmwaresim.NewHardware(nil)
	defer hw.Close()
	if err := hardware.Simulate(hw, cfg); err != nil {
		t.Fatal(err)
	}
	opts := Options{Config: cfg, Version: "test", Buses: hw, Sim: firmwaresim.Handler(hw), DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	base := runtime.NumGoroutine()
	for try := range 3 {
		if _, err := New(opts); err == nil || !strings.Contains(err.Error(), "upstream buffer") {
			t.Fatalf("try %d: New = %v, want the buffer's error", try, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for n := runtime.NumGoroutine(); n > base; n = runtime.NumGoroutine() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after 3 failed starts, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.Remove(filepath.Join(dir, "uplink"))
	g, err := New(opts)
	if err != nil {
		t.Fatalf("the devices do not open again after a failed start: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(fmt.Errorf("shutdown: %w", err))
	}
}
