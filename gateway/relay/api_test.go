package relay

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/protocol"
	"periph.io/x/conn/v3/gpio"
)

// orderSink records what a subscriber gets, as a session queues it: the
// hello built from the snapshot, then events.
type orderSink struct {
	mu   sync.Mutex
	got  []string
	gone bool // unsubscribed: no event may come
	bad  string
}

func (o *orderSink) RelayEvent(ev Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gone {
		o.bad = "an event after unsubscribe returned: " + string(ev.Data)
	}
	var m struct{ State string }
	json.Unmarshal(ev.Data, &m)
	o.got = append(o.got, m.State)
}

// Subscribe's snapshot and events fit together exactly, however changes
// race with subscribing: the snapshot comes first, then every change after
// it and none before (so the states alternate from the snapshot's), and
// nothing once unsubscribe has returned.
func TestSubscribeSnapshotThenEveryLaterChange(t *testing.T) {
	s, _ := newTestService(t, config.Relay{Name: "pump", Pin: "GPIO17"})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the changes, as fast as they come
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			s.Set(ctx, "pump", i%2 == 0, protocol.SourceClient)
		}
	}()
	for range 200 {
		o := &orderSink{}
		unsubscribe := s.Subscribe(o, func(snap []protocol.RelayInfo) {
			o.mu.Lock()
			defer o.mu.Unlock()
			if len(o.got) > 0 {
				o.bad = "an event came before the snapshot"
			}
			o.got = append(o.got, "hello:"+protocol.StateString(snap[0].On))
		})
		time.Sleep(50 * time.Microsecond)
		unsubscribe()
		o.mu.Lock()
		o.gone = true
		got := o.got
		o.mu.Unlock()
		unsubscribe() // again: nothing
		if o.bad != "" {
			t.Fatal(o.bad)
		}
		if len(got) == 0 || !strings.HasPrefix(got[0], "hello:") {
			t.Fatalf("first thing a subscriber got: %v, want the snapshot", got)
		}
		prev := strings.TrimPrefix(got[0], "hello:")
		for i, st := range got[1:] {
			if st == prev {
				t.Fatalf("event %d is %s, the state already known: a change before the snapshot, or one lost (%v)", i, st, got)
			}
			prev = st
		}
	}
	cancel()
	wg.Wait()
	time.Sleep(time.Millisecond)
}

// A pulse over max_pulse that comes through Requests, with source uplink,
// is a bad request with the message the protocol has always given, and
// nothing switches.
func TestRequestsPulseOverMaxPulseIsBadRequest(t *testing.T) {
	s, sim := newTestService(t, config.Relay{Name: "door", Pin: "GPIO3", MaxPulse: config.Duration(3 * time.Second)})
	var replies []string
	r := &Requests{Service: s, Role: protocol.RoleOperator, Source: protocol.SourceUplink,
		Reply: func(encode func([]byte) []byte) { replies = append(replies, string(encode(nil))) }}
	for _, ms := range []string{"3001", "0", "-1", "9223372036854775807", "-9223372036854775808", "18446744073709"} {
		r.Handle([]byte(`{"id":1,"op":"pulse","relay":"door","ms":` + ms + `}`))
	}
	want := `{"id":1,"ok":false,"error":{"code":"bad_request","message":"\"ms\" must be between 1 and 3000 for relay \"door\""}}`
	for i, got := range replies {
		if got != want {
			t.Fatalf("reply %d: %s, want %s", i, got, want)
		}
	}
	if len(replies) != 6 || sim.Pin("GPIO3").Read() != gpio.Low {
		t.Fatalf("%d replies, pin %v: want 6 refusals and the pin low", len(replies), sim.Pin("GPIO3").Read())
	}
}

// LoadInitial: restore needs a data dir; no file or a corrupt one starts
// off; a saved state is restored; the store saves every change, and the
// failsafe states applied at shutdown are not saved.
func TestInitialRestoreAndStore(t *testing.T) {
	cfg := &config.Config{Relays: []config.Relay{
		{Name: "heat", Initial: "restore"}, {Name: "fan", Initial: "on"}, {Name: "pump"},
	}}
	if _, err := LoadInitial("", cfg, discardLog()); err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("restore without a data dir: %v", err)
	}
	dir := t.TempDir()
	for _, content := range []string{"", "{not json"} {
		if content != "" {
			os.WriteFile(filepath.Join(dir, stateFile), []byte(content), 0o600)
		}
		in, err := LoadInitial(dir, cfg, discardLog())
		if err != nil {
			t.Fatal(err)
		}
		if in.On(cfg.Relays[0]) || !in.On(cfg.Relays[1]) || in.On(cfg.Relays[2]) {
			t.Fatalf("file %q: heat %v fan %v pump %v, want off on off", content, in.On(cfg.Relays[0]), in.On(cfg.Relays[1]), in.On(cfg.Relays[2]))
		}
	}
	os.WriteFile(filepath.Join(dir, stateFile), []byte(`{"relays":{"heat":"on"}}`), 0o600)
	in, err := LoadInitial(dir, cfg, discardLog())
	if err != nil || !in.On(cfg.Relays[0]) {
		t.Fatalf("saved on: %v, err %v", in.On(cfg.Relays[0]), err)
	}

	s, _ := newTestServiceWith(t, Options{Initial: in},
		config.Relay{Name: "heat", Pin: "GPIO5", Initial: "restore"}, config.Relay{Name: "pump", Pin: "GPIO6"})
	if info, _ := s.Get("heat"); !info.On {
		t.Fatal("heat did not start in its saved state")
	}
	s.Set(context.Background(), "heat", false, protocol.SourceClient)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(readFile(t, filepath.Join(dir, stateFile)), `"heat": "off"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the change was not saved: %s", readFile(t, filepath.Join(dir, stateFile)))
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Set(context.Background(), "heat", true, protocol.SourceClient)
	s.Shutdown(context.Background()) // failsafe: off, not saved
	if got := readFile(t, filepath.Join(dir, stateFile)); !strings.Contains(got, `"heat": "on"`) || strings.Contains(got, "pump") {
		t.Fatalf("saved at shutdown: %s, want heat on (and only heat)", got)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The watchdog, configured, fires the failsafe states once the last
// operator has left, and not while one is connected.
func TestWatchdogAppliesFailsafe(t *testing.T) {
	s, sim := newTestServiceWith(t, Options{Watchdog: 40 * time.Millisecond},
		config.Relay{Name: "heat", Pin: "GPIO5"}, config.Relay{Name: "door", Pin: "GPIO6", Failsafe: "on"})
	s.OperatorUp()
	s.Set(context.Background(), "heat", true, protocol.SourceClient)
	time.Sleep(100 * time.Millisecond)
	if sim.Pin("GPIO5").Read() != gpio.High || sim.Pin("GPIO6").Read() != gpio.Low {
		t.Fatal("failsafe while an operator is connected")
	}
	s.OperatorDown()
	deadline := time.Now().Add(5 * time.Second)
	for sim.Pin("GPIO5").Read() != gpio.Low || sim.Pin("GPIO6").Read() != gpio.High {
		if time.Now().After(deadline) {
			t.Fatal("no failsafe after the last operator left")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
