package relay

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/protocol"
	"periph.io/x/conn/v3/gpio"
)

// TestRelaysWorkWhenStatesCannotBeSaved: when relay-state.json cannot be
// written (a full disk; here a directory where its temporary file goes),
// relays still switch, and the store saves again by itself once it can.
func TestRelaysWorkWhenStatesCannotBeSaved(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{Relays: []config.Relay{{Name: "heat", Initial: "restore"}}}
	in, err := LoadInitial(dir, cfg, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	block := filepath.Join(dir, stateFile+".tmp")
	if err := os.Mkdir(block, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(block, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, sim := newTestServiceWith(t, Options{Initial: in}, config.Relay{Name: "heat", Pin: "GPIO5", Initial: "restore"})
	for _, on := range []bool{true, false, true} {
		if err := s.Set(context.Background(), "heat", on, protocol.SourceClient); err != nil {
			t.Fatalf("set heat %v while the state cannot be saved: %v", on, err)
		}
		if (sim.Pin("GPIO5").Read() == gpio.High) != on {
			t.Fatalf("heat pin after set %v: %v", on, sim.Pin("GPIO5").Read())
		}
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(dir, stateFile)); !os.IsNotExist(err) {
		t.Fatalf("the state file was written despite the injected error: %v", err)
	}
	os.RemoveAll(block)
	s.Set(context.Background(), "heat", false, protocol.SourceClient)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, stateFile))
		if strings.Contains(string(b), `"heat": "off"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the state was not saved once it could be: %q", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
