package relay

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/hardware"
	"github.com/edgegate/edgegate/protocol"
	"periph.io/x/conn/v3/gpio"
)

type recordingSink struct {
	mu  sync.Mutex
	msg []string
}

func (r *recordingSink) RelayEvent(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msg = append(r.msg, string(ev.Data))
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestService(t *testing.T, relays ...config.Relay) (*Service, *firmwaresim.GPIO) {
	t.Helper()
	return newTestServiceWith(t, Options{}, relays...)
}

func newTestServiceWith(t *testing.T, opts Options, relays ...config.Relay) (*Service, *firmwaresim.GPIO) {
	t.Helper()
	for i := range relays {
		relays[i].Driver = "gpio"
		if relays[i].MaxPulse == 0 {
			relays[i].MaxPulse = config.Duration(time.Minute)
		}
	}
	hw := firmwaresim.NewHardware(nil)
	sim := hw.GPIO
	s, err := New(&config.Config{Relays: relays}, hardware.Env{Buses: hw, Logger: discardLog()}, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s, sim
}

func TestInterlockRefusesWhenPartnerCannotTurnOff(t *testing.T) {
	ctx := context.Background()
	s, sim := newTestService(t,
		config.Relay{Name: "open", Pin: "GPIO1", Interlock: "v"},
		config.Relay{Name: "close", Pin: "GPIO2", Interlock: "v"})
	if err := s.Set(ctx, "open", true, "client"); err != nil {
		t.Fatal(err)
	}
	sim.Pin("GPIO1").SetStuck(gpio.High) // "open" can no longer be turned off
	var de *DeviceError
	if err := s.Set(ctx, "close", true, "client"); !errors.As(err, &de) {
		t.Fatalf("got %v, want a device error", err)
	}
	if sim.Pin("GPIO2").Read() != gpio.Low {
		t.Fatal("close was turned on while open could still be on")
	}
	info, _ := s.Get("close")
	if info.On {
		t.Fatal("close reported on")
	}
}

func TestStartupInterlockAndEvents(t *testing.T) {
	ctx := context.Background()
	s, sim := newTestService(t,
		config.Relay{Name: "a", Pin: "GPIO1", Interlock: "v", Initial: "on"},
		config.Relay{Name: "b", Pin: "GPIO2", Interlock: "v", Initial: "on"})
	if sim.Pin("GPIO1").Read() == sim.Pin("GPIO2").Read() && sim.Pin("GPIO1").Read() == gpio.High {
		t.Fatal("two interlocked relays on at once after start")
	}
	sink := &recordingSink{}
	defer s.Subscribe(sink, nil)()
	if err := s.Set(ctx, "a", true, "client"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"event":"state","relay":"b","state":"off","source":"interlock","ts":`,
		`{"event":"state","relay":"a","state":"on","source":"client","ts":`,
	}
	if len(sink.msg) != 2 {
		t.Fatalf("events %v", sink.msg)
	}
	for i, w := range want {
		if len(sink.msg[i]) < len(w) || sink.msg[i][:len(w)] != w {
			t.Fatalf("event %d: %s, want prefix %s", i, sink.msg[i], w)
		}
	}
}

func TestPulseCancelledBySet(t *testing.T) {
	ctx := context.Background()
	s, sim := newTestService(t, config.Relay{Name: "door", Pin: "GPIO3"})
	if err := s.Pulse(ctx, "door", 50*time.Millisecond, "client"); err != nil {
		t.Fatal(err)
	}
	if err := s.Pulse(ctx, "door", 50*time.Millisecond, "client"); !errors.Is(err, ErrBusy) {
		t.Fatalf("second pulse: %v, want busy", err)
	}
	if err := s.Set(ctx, "door", true, "client"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if sim.Pin("GPIO3").Read() != gpio.High {
		t.Fatal("a cancelled pulse still turned the relay off")
	}
}

func TestWatchdogRearms(t *testing.T) {
	fired := make(chan struct{}, 4)
	w := newWatchdog(30*time.Millisecond, func() { fired <- struct{}{} })
	defer w.stop()
	<-fired // armed at start
	w.operatorUp()
	select {
	case <-fired:
		t.Fatal("fired while an operator is connected")
	case <-time.After(80 * time.Millisecond):
	}
	w.operatorDown()
	select {
	case <-fired:
	case <-time.After(2 * time.Second):
		t.Fatal("did not fire after the last operator left")
	}
}

// holdingSink keeps every event it gets, as a session whose client has not
// read them yet does, until release.
type holdingSink struct {
	evs    []Event
	refs   []interface{ Release() }
	want   []string // each event's bytes when it came, if record
	record bool
}

func (h *holdingSink) RelayEvent(ev Event) {
	h.refs = append(h.refs, ev.Retain())
	h.evs = append(h.evs, ev)
	if h.record {
		h.want = append(h.want, string(ev.Data))
	}
}

func (h *holdingSink) release() {
	for i, ref := range h.refs {
		ref.Release()
		h.refs[i] = nil
	}
	h.evs, h.refs, h.want = h.evs[:0], h.refs[:0], h.want[:0]
}

// State events are cut from chunks that are reused once every sink has
// released its events: an event a session still holds keeps its bytes
// however many changes follow, and a steady stream of changes allocates
// nothing.
func TestSharedEventsRecycledOnlyOnceReleased(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t, config.Relay{Name: "pump", Pin: "GPIO17"})
	s.log = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})) // as in the benchmarks
	h := &holdingSink{record: true}
	defer s.Subscribe(h, nil)()
	changes := 3 * eventChunkSize / 60 // events are longer than 60 bytes: several chunks
	for i := 0; i < changes; i++ {
		if err := s.Set(ctx, "pump", i%2 == 0, "client"); err != nil {
			t.Fatal(err)
		}
	}
	held := len(h.evs)
	chunks := map[*eventChunk]bool{}
	for _, ev := range h.evs {
		chunks[ev.chunk] = true
	}
	if held != changes || len(chunks) < 3 {
		t.Fatalf("%d events in %d chunks, want %d events in 3 or more", held, len(chunks), changes)
	}
	// The held events' chunks are not reused: more changes (events
	// released at once by a second sink) leave their bytes as they were.
	other := &holdingSink{}
	unsubscribe := s.Subscribe(other, nil)
	for i := 0; i < changes; i++ {
		if err := s.Set(ctx, "pump", i%2 == 0, "client"); err != nil {
			t.Fatal(err)
		}
		other.release()
	}
	unsubscribe()
	for i := 0; i < held; i++ {
		if got := string(h.evs[i].Data); got != h.want[i] {
			t.Fatalf("held event %d was overwritten: %q, was %q", i, got, h.want[i])
		}
	}
	h.release()
	h.record = false
	// Steady state: events released once written allocate nothing. (The
	// simulated pin's history, a test aid bounded at 4096 changes, fills
	// up first.)
	for i := 0; i < 5000; i++ {
		s.Set(ctx, "pump", i%2 == 0, "client")
		h.release()
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < changes; i++ {
		s.Set(ctx, "pump", i%2 == 0, "client")
		h.release()
	}
	runtime.ReadMemStats(&after)
	if n := after.Mallocs - before.Mallocs; n > 0 {
		t.Errorf("%d changes, every event released once written: %d allocations (%d bytes), want none", changes, n, after.TotalAlloc-before.TotalAlloc)
	}
}

// max_pulse holds for every caller of Pulse, not only for relay-control
// sessions: a pulse from the uplink longer than max_pulse (or shorter than
// 1 ms) is refused and the relay never switches.
func TestPulseOutsideMaxPulseRefusedWhoeverAsks(t *testing.T) {
	ctx := context.Background()
	s, sim := newTestService(t, config.Relay{Name: "door", Pin: "GPIO3", MaxPulse: config.Duration(2 * time.Second)})
	sink := &recordingSink{}
	defer s.Subscribe(sink, nil)()
	for _, d := range []time.Duration{2*time.Second + time.Millisecond, time.Hour, 0, -time.Second, time.Microsecond} {
		err := s.Pulse(ctx, "door", d, protocol.SourceUplink)
		if err == nil {
			t.Fatalf("a pulse of %v from the uplink was accepted; max_pulse is 2s", d)
		}
		var pe *PulseLengthError
		if !errors.As(err, &pe) || pe.Max != 2*time.Second {
			t.Fatalf("pulse of %v: %v, want a pulse length error naming max 2s", d, err)
		}
		if sim.Pin("GPIO3").Read() != gpio.Low {
			t.Fatalf("a refused pulse of %v switched the relay", d)
		}
	}
	if len(sink.msg) != 0 {
		t.Fatalf("refused pulses published events: %v", sink.msg)
	}
	if err := s.Pulse(ctx, "door", 2*time.Second, protocol.SourceUplink); err != nil {
		t.Fatalf("a pulse of exactly max_pulse: %v", err)
	}
}
