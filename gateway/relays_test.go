package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/drivers"
	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"github.com/edgegate/edgegate/gateway/config"
	"periph.io/x/conn/v3/gpio"
)

type recordingSink struct {
	mu  sync.Mutex
	msg []string
}

func (r *recordingSink) relayEvent(m []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msg = append(r.msg, string(m))
}

func newTestService(t *testing.T, relays ...config.Relay) (*relayService, *firmwaresim.GPIO) {
	t.Helper()
	for i := range relays {
		relays[i].Driver = "gpio"
		if relays[i].MaxPulse == 0 {
			relays[i].MaxPulse = config.Duration(time.Minute)
		}
	}
	hw := firmwaresim.NewHardware(nil)
	sim := hw.GPIO
	s, err := newRelayService(&config.Config{Relays: relays}, drivers.Env{Buses: hw, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.start(context.Background(), func(r config.Relay) bool { return r.Initial == "on" })
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
	var de *deviceError
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
	s.subscribe(sink)
	defer s.unsubscribe(sink)
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
	if err := s.Pulse(ctx, "door", 50*time.Millisecond, "client"); !errors.Is(err, errBusy) {
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
