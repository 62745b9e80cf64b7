package relay

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/protocol"
	"periph.io/x/conn/v3/gpio"
)

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *recordingSink) has(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msg {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}

func TestMaxOnSwitchesOffWhoeverSwitchedOn(t *testing.T) {
	ctx := context.Background()
	s, sim := newTestService(t, config.Relay{Name: "pump", Pin: "GPIO4", MaxOn: config.Duration(80 * time.Millisecond)})
	sink := &recordingSink{}
	defer s.Subscribe(sink, nil)()
	for _, src := range []string{protocol.SourceClient, protocol.SourceUplink, protocol.SourceAutomation} {
		sink.mu.Lock()
		sink.msg = nil
		sink.mu.Unlock()
		start := time.Now()
		if err := s.SetBy(ctx, "pump", true, src, "x"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Second, func() bool { return sim.Pin("GPIO4").Read() == gpio.Low })
		if el := time.Since(start); el < 70*time.Millisecond {
			t.Fatalf("%s: off after %v, before max_on", src, el)
		}
		if !sink.has(`"state":"off","source":"guard"`) {
			t.Fatalf("%s: no guard event: %v", src, sink.msg)
		}
		info, _ := s.Get("pump")
		if info.On {
			t.Fatal("still on")
		}
	}
	// A relay switched off and on again gets a whole max_on from the second on.
	if err := s.Set(ctx, "pump", true, "client"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	s.Set(ctx, "pump", false, "client")
	s.Set(ctx, "pump", true, "client")
	time.Sleep(50 * time.Millisecond)
	if sim.Pin("GPIO4").Read() != gpio.High {
		t.Fatal("the timer of the first on period switched the second off early")
	}
	waitFor(t, 2*time.Second, func() bool { return sim.Pin("GPIO4").Read() == gpio.Low })
	snap := s.Snapshot(nil)
	if snap[0].ChangedBy != protocol.SourceGuard {
		t.Fatalf("snapshot %+v", snap[0])
	}
}

func TestMinOffRefusesQuickReswitchButNotFailsafeOrShutdown(t *testing.T) {
	ctx := context.Background()
	s, sim := newTestService(t, config.Relay{Name: "comp", Pin: "GPIO5", Failsafe: "off",
		MinOff: config.Duration(300 * time.Millisecond), MinOn: config.Duration(300 * time.Millisecond)})
	// The initial state begins no period: the first change is accepted.
	if err := s.Set(ctx, "comp", true, "client"); err != nil {
		t.Fatal(err)
	}
	// min_on: switching off at once is refused, whoever asks...
	var te *TooSoonError
	if err := s.Set(ctx, "comp", false, protocol.SourceUplink); !errors.As(err, &te) || te.Guard != "min_on" || te.Wait <= 0 {
		t.Fatalf("off after 0s: %v, want too soon", err)
	}
	if _, err := s.Toggle(ctx, "comp", "client"); !errors.As(err, &te) {
		t.Fatalf("toggle: %v", err)
	}
	// ...but failsafe is never refused, the automations' sensor-failure rule's neither.
	if driven, err := s.FailsafeBy(ctx, "comp", "keep_warm"); err != nil || !driven {
		t.Fatalf("FailsafeBy: %v %v", driven, err)
	}
	if sim.Pin("GPIO5").Read() != gpio.Low {
		t.Fatal("min_on blocked FailsafeBy")
	}
	s.failsafe(ctx)
	if sim.Pin("GPIO5").Read() != gpio.Low {
		t.Fatal("min_on blocked failsafe")
	}
	// min_off: a quick re-switch is refused with a message saying how long to wait.
	err := s.Set(ctx, "comp", true, protocol.SourceAutomation)
	if !errors.As(err, &te) || te.Guard != "min_off" || !strings.Contains(err.Error(), "try again in") {
		t.Fatalf("on after 0s: %v", err)
	}
	if err := s.Pulse(ctx, "comp", 10*time.Millisecond, "client"); !errors.As(err, &te) {
		t.Fatalf("pulse: %v", err)
	}
	// A request for the state it already has is no change: accepted.
	if err := s.Set(ctx, "comp", false, "client"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(320 * time.Millisecond)
	if err := s.Set(ctx, "comp", true, "client"); err != nil {
		t.Fatalf("after min_off: %v", err)
	}
	// Shutdown is never refused by min_on.
	s.Shutdown(ctx)
	if sim.Pin("GPIO5").Read() != gpio.Low {
		t.Fatal("min_on blocked shutdown's failsafe")
	}
}

func TestTooSoonReplyCode(t *testing.T) {
	s, _ := newTestService(t, config.Relay{Name: "comp", Pin: "GPIO6", MinOff: config.Duration(time.Hour)})
	var replies []string
	r := &Requests{Service: s, Role: protocol.RoleOperator, Source: protocol.SourceClient,
		Reply: func(enc func([]byte) []byte) { replies = append(replies, string(enc(nil))) }}
	r.Handle([]byte(`{"id":1,"op":"set","relay":"comp","state":"on"}`))
	r.Handle([]byte(`{"id":2,"op":"set","relay":"comp","state":"off"}`))
	r.Handle([]byte(`{"id":3,"op":"set","relay":"comp","state":"on"}`))
	if len(replies) != 3 || !strings.Contains(replies[2], `"code":"too_soon"`) || !strings.Contains(replies[2], "min_off") {
		t.Fatalf("replies %v", replies)
	}
}

type fakeAutomations struct{ enabled map[string]bool }

func (f *fakeAutomations) List(dst []protocol.AutomationInfo) []protocol.AutomationInfo {
	return append(dst, protocol.AutomationInfo{Name: "keep_warm", Kind: protocol.KindThermostat, Enabled: f.enabled["keep_warm"]})
}

func (f *fakeAutomations) SetEnabled(name string, on bool) error {
	if _, ok := f.enabled[name]; !ok {
		return ErrUnknownAutomation
	}
	f.enabled[name] = on
	return nil
}

func TestAutomationOps(t *testing.T) {
	s, _ := newTestService(t, config.Relay{Name: "heater", Pin: "GPIO7"})
	autos := &fakeAutomations{enabled: map[string]bool{"keep_warm": true}}
	var replies []string
	r := &Requests{Service: s, Role: protocol.RoleViewer, Source: protocol.SourceClient, Automations: autos,
		Reply: func(enc func([]byte) []byte) { replies = append(replies, string(enc(nil))) }}
	r.Handle([]byte(`{"id":1,"op":"automations"}`))
	r.Handle([]byte(`{"id":2,"op":"disable","automation":"keep_warm"}`))
	r.Role = protocol.RoleOperator
	r.Handle([]byte(`{"id":3,"op":"disable","automation":"keep_warm"}`))
	r.Handle([]byte(`{"id":4,"op":"enable","automation":"nope"}`))
	r.Handle([]byte(`{"id":5,"op":"enable"}`))
	want := []string{
		`{"id":1,"ok":true,"automations":[{"name":"keep_warm","kind":"thermostat","enabled":true,"active":false,"last_fired":null,"next":null,"error":""}]}`,
		`"code":"forbidden"`,
		`{"id":3,"ok":true,"automation":"keep_warm","enabled":false}`,
		`"code":"unknown_automation"`,
		`"code":"bad_request"`,
	}
	if len(replies) != len(want) {
		t.Fatalf("replies %v", replies)
	}
	for i, w := range want {
		if !strings.Contains(replies[i], w) {
			t.Errorf("reply %d: %s, want %s", i, replies[i], w)
		}
	}
	if autos.enabled["keep_warm"] {
		t.Fatal("not disabled")
	}
	// Without an engine (the uplink) they are unknown ops.
	r.Automations = nil
	r.Handle([]byte(`{"id":6,"op":"automations"}`))
	if !strings.Contains(replies[len(replies)-1], `"code":"unknown_op"`) {
		t.Fatal(replies[len(replies)-1])
	}
}
