package automation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/hardware"
	"github.com/edgegate/edgegate/gateway/relay"
	"github.com/edgegate/edgegate/gateway/sensor"
	"github.com/edgegate/edgegate/protocol"
)

// fakeRelays records what the engine asks of the relays.
type fakeRelays struct {
	mu    sync.Mutex
	on    map[string]bool
	fs    map[string]string
	calls []string
	fail  map[string]error
}

func (f *fakeRelays) record(s string) { f.calls = append(f.calls, s) }

func (f *fakeRelays) SetBy(_ context.Context, name string, on bool, source, automation string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[name]; err != nil {
		f.record(fmt.Sprintf("set %s %s by %s: %v", name, protocol.StateString(on), automation, err))
		return err
	}
	f.on[name] = on
	f.record(fmt.Sprintf("set %s %s by %s/%s", name, protocol.StateString(on), source, automation))
	return nil
}

func (f *fakeRelays) ToggleBy(_ context.Context, name, source, automation string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on[name] = !f.on[name]
	f.record(fmt.Sprintf("toggle %s by %s/%s", name, source, automation))
	return f.on[name], nil
}

func (f *fakeRelays) PulseBy(_ context.Context, name string, d time.Duration, source, automation string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(fmt.Sprintf("pulse %s %v by %s/%s", name, d, source, automation))
	return nil
}

func (f *fakeRelays) FailsafeBy(_ context.Context, name, automation string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on[name] = f.fs[name] == "on"
	f.record(fmt.Sprintf("failsafe %s by %s", name, automation))
	return true, nil
}

func (f *fakeRelays) Get(name string) (protocol.RelayInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return protocol.RelayInfo{Name: name, On: f.on[name]}, nil
}

func (f *fakeRelays) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// clock is the injected clock: time moves only when a test moves it.
type clock struct{ t time.Time }

func (c *clock) now() time.Time                { return c.t }
func (c *clock) add(d time.Duration) time.Time { c.t = c.t.Add(d); return c.t }

type rig struct {
	t      *testing.T
	e      *Engine
	relays *fakeRelays
	clk    *clock
	ix     map[string]int
	events []string
}

const rigSensors = `
relays:
  - {name: heater, driver: gpio, pin: GPIO5, failsafe: off}
  - {name: fan, driver: gpio, pin: GPIO6, failsafe: on}
  - {name: light, driver: gpio, pin: GPIO7}
  - {name: sprinkler, driver: gpio, pin: GPIO8, max_pulse: 10m}
sensors:
  - {name: room, driver: sim-wave, interval: 1s}
  - {name: soil, driver: sim-wave, interval: 2s}
  - {name: door, driver: sim-wave, interval: 100ms}
automations:
`

func newRig(t *testing.T, dataDir, automations string) *rig {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(rigSensors+automations))
	if err != nil {
		t.Fatal(err)
	}
	hub, err := sensor.New(cfg, hardware.Env{Sim: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Stop)
	r := &rig{t: t, relays: &fakeRelays{on: map[string]bool{}, fs: map[string]string{"heater": "off", "fan": "on"}, fail: map[string]error{}},
		clk: &clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}, ix: map[string]int{}}
	for _, s := range hub.Catalog() {
		r.ix[s.Name] = s.Index
	}
	r.e, err = New(Options{Config: cfg, Relays: r.relays, Sensors: hub, DataDir: dataDir,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: r.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	r.e.Subscribe(func(ev []byte) { r.events = append(r.events, string(ev)) })
	return r
}

func (r *rig) sample(name string, v float64) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.e.sampleLocked(r.ix[name], v, false, r.clk.now())
}

func (r *rig) sensorError(name string) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.e.sampleLocked(r.ix[name], 0, true, r.clk.now())
}

func (r *rig) tick() {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.e.tickLocked(r.clk.now())
}

func (r *rig) expect(want ...string) {
	r.t.Helper()
	got := r.relays.take()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		r.t.Fatalf("relay calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func (r *rig) info(name string) protocol.AutomationInfo {
	for _, a := range r.e.List(nil) {
		if a.Name == name {
			return a
		}
	}
	r.t.Fatalf("no automation %q", name)
	return protocol.AutomationInfo{}
}

const thermostat = `  - name: keep_warm
    thermostat: {sensor: room.value, relay: heater, target: 19, hysteresis: 1}
`

func TestThermostatHysteresisAndManualHold(t *testing.T) {
	r := newRig(t, "", thermostat)
	r.sample("room.value", 19) // between the bounds at start: left as it is
	r.expect()
	r.sample("room.value", 18.4) // below 18.5
	r.expect("set heater on by automation/keep_warm")
	if a := r.info("keep_warm"); !a.Active || a.LastFired == 0 || a.Kind != protocol.KindThermostat {
		t.Fatalf("%+v", a)
	}
	r.sample("room.value", 18.0) // still below: no second request
	r.sample("room.value", 19.0)
	r.expect()
	r.relays.SetBy(context.Background(), "heater", false, "client", "") // a manual change between the bounds holds
	r.relays.take()
	r.sample("room.value", 19.4)
	r.sample("room.value", 18.9)
	r.expect()
	r.sample("room.value", 19.6) // above 19.5: already off, nothing asked
	r.expect()
	r.relays.SetBy(context.Background(), "heater", true, "client", "")
	r.relays.take()
	r.sample("room.value", 19.0) // crossing back into the band: the manual on holds
	r.expect()
	r.sample("room.value", 19.7)
	r.expect("set heater off by automation/keep_warm")
}

func TestThermostatCool(t *testing.T) {
	r := newRig(t, "", `  - {name: chill, thermostat: {sensor: room.value, relay: fan, target: 25, hysteresis: 2, mode: cool}}
`)
	r.sample("room.value", 26.5)
	r.expect("set fan on by automation/chill")
	r.sample("room.value", 23.9)
	r.expect("set fan off by automation/chill")
}

func TestThermostatSensorFailureGoesToFailsafeAndResumes(t *testing.T) {
	r := newRig(t, "", thermostat)
	r.sample("room.value", 17)
	r.expect("set heater on by automation/keep_warm")
	r.sensorError("room.value")
	r.expect("failsafe heater by keep_warm")
	if r.relays.on["heater"] {
		t.Fatal("heater left on by a failed sensor")
	}
	if a := r.info("keep_warm"); a.Error == "" || a.Active {
		t.Fatalf("failure not reported: %+v", a)
	}
	if !strings.Contains(r.events[len(r.events)-1], `"error":"sensor room.value reports an error"`) {
		t.Fatalf("events %v", r.events)
	}
	r.sensorError("room.value") // once in failsafe, nothing more
	r.tick()
	r.expect()
	r.sample("room.value", 17) // the next good sample resumes
	r.expect("set heater on by automation/keep_warm")
	if a := r.info("keep_warm"); a.Error != "" {
		t.Fatalf("%+v", a)
	}
	// Silence: the interval is 1s, so three intervals is less than the 10 s floor.
	r.clk.add(9 * time.Second)
	r.tick()
	r.expect()
	r.clk.add(2 * time.Second)
	r.tick()
	r.expect("failsafe heater by keep_warm")
	if a := r.info("keep_warm"); !strings.Contains(a.Error, "sent nothing for 11s") {
		t.Fatalf("%+v", a)
	}
	r.clk.add(time.Second)
	r.sample("room.value", 20) // resumes; above the band: off, already off
	r.expect()
	r.sample("room.value", 18)
	r.expect("set heater on by automation/keep_warm")
}

func TestWhenForFiresOncePerTransitionAndHonoursCooldown(t *testing.T) {
	r := newRig(t, "", `  - name: water_when_dry
    when: {sensor: soil.value, below: 30, for: 10m}
    do: [{pulse: sprinkler, for: 2m}]
    cooldown: 1h
`)
	r.sample("soil.value", 25)
	r.clk.add(5 * time.Minute)
	r.sample("soil.value", 24)
	r.tick()
	r.expect()
	if !r.info("water_when_dry").Active {
		t.Fatal("not active while the condition holds")
	}
	r.clk.add(5 * time.Minute)
	r.tick()
	r.expect("pulse sprinkler 2m0s by automation/water_when_dry")
	for i := 0; i < 5; i++ { // it stays true: no second firing
		r.clk.add(time.Minute)
		r.sample("soil.value", 20)
		r.tick()
	}
	r.expect()
	// A short dip above the threshold resets for.
	r.sample("soil.value", 35)
	r.sample("soil.value", 25)
	r.clk.add(9 * time.Minute)
	r.tick()
	r.expect()
	r.sample("soil.value", 35)
	r.clk.add(time.Minute)
	r.sample("soil.value", 25) // a new transition, 25 min after the firing
	r.clk.add(10 * time.Minute)
	r.tick() // for is over, but the cooldown is not (25 min since the firing)
	r.expect()
	r.clk.add(34 * time.Minute) // 59 min after the firing
	r.tick()
	r.expect()
	r.clk.add(time.Minute) // 1 h after the firing: fires, still dry
	r.tick()
	r.expect("pulse sprinkler 2m0s by automation/water_when_dry")
}

func TestInputEdge(t *testing.T) {
	r := newRig(t, "", `  - {name: door_light, when: {sensor: door.value, equals: 1}, do: [{set: light, state: on}, {toggle: fan}]}
`)
	r.sample("door.value", 0)
	r.sample("door.value", 1)
	r.expect("set light on by automation/door_light", "toggle fan by automation/door_light")
	r.sample("door.value", 1)
	r.expect()
	r.sample("door.value", 0)
	r.sample("door.value", 1)
	r.expect("set light on by automation/door_light", "toggle fan by automation/door_light")
}

func TestFailedActionStopsTheRest(t *testing.T) {
	r := newRig(t, "", `  - {name: door_light, when: {sensor: door.value, equals: 1}, do: [{set: light, state: on}, {toggle: fan}]}
`)
	r.relays.fail["light"] = &relay.TooSoonError{Relay: "light", Guard: "min_off", Min: time.Minute, Wait: time.Second}
	r.sample("door.value", 1)
	r.expect("set light on by door_light: " + r.relays.fail["light"].Error())
	if a := r.info("door_light"); !strings.Contains(a.Error, "min_off") {
		t.Fatalf("%+v", a)
	}
}

func TestRelayCondition(t *testing.T) {
	r := newRig(t, "", `  - {name: vent_off, when: {relay: heater, is: off, for: 5m}, do: [{set: fan, state: off}]}
`)
	r.relays.on["heater"] = true
	r.tick()
	r.relays.on["heater"] = false
	r.tick()
	r.clk.add(4 * time.Minute)
	r.tick()
	r.expect()
	r.clk.add(time.Minute)
	r.tick()
	r.expect("set fan off by automation/vent_off")
	r.clk.add(time.Minute)
	r.tick()
	r.expect()
}

func TestEverySchedule(t *testing.T) {
	r := newRig(t, "", `  - {name: often, every: 2s, do: [{toggle: light}]}
`)
	start := r.clk.now()
	if a := r.info("often"); a.Next != start.Add(2*time.Second).UnixMilli() || a.Kind != protocol.KindSchedule {
		t.Fatalf("%+v", a)
	}
	for i := 0; i < 19; i++ { // 1.9 s in 100 ms ticks
		r.clk.add(100 * time.Millisecond)
		r.tick()
	}
	r.expect()
	r.clk.add(100 * time.Millisecond)
	r.tick()
	r.expect("toggle light by automation/often")
	r.clk.add(2 * time.Second)
	r.tick()
	r.expect("toggle light by automation/often")
	if a := r.info("often"); a.Next != start.Add(6*time.Second).UnixMilli() || a.LastFired != start.Add(4*time.Second).UnixMilli() {
		t.Fatalf("%+v", a)
	}
}

func TestDisableStopsAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir, thermostat)
	if err := r.e.SetEnabled("keep_warm", false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.events[len(r.events)-1], `{"event":"automation","automation":{"name":"keep_warm","kind":"thermostat","enabled":false`) {
		t.Fatalf("events %v", r.events)
	}
	r.sample("room.value", 10)
	r.clk.add(time.Minute)
	r.tick()
	r.expect()
	if err := r.e.SetEnabled("nope", true); !errors.Is(err, ErrUnknownAutomation) {
		t.Fatal(err)
	}
	r2 := newRig(t, dir, thermostat)
	if r2.info("keep_warm").Enabled {
		t.Fatal("disabled did not survive a restart")
	}
	if err := r2.e.SetEnabled("keep_warm", true); err != nil {
		t.Fatal(err)
	}
	r2.sample("room.value", 10)
	r2.expect("set heater on by automation/keep_warm")
	r3 := newRig(t, dir, thermostat)
	if !r3.info("keep_warm").Enabled {
		t.Fatal("enabled did not survive a restart")
	}
}

func TestUnknownSensorAtStart(t *testing.T) {
	// A serial board's quantities are known only at run time: the engine
	// refuses what the configuration check could not.
	cfg, err := config.Parse("t.yaml", []byte(rigSensors+thermostat))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Automations[0].Thermostat.Sensor = "room.nothing"
	hub, err := sensor.New(cfg, hardware.Env{Sim: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Stop()
	if _, err := New(Options{Config: cfg, Relays: &fakeRelays{}, Sensors: hub}); err == nil || !strings.Contains(err.Error(), `unknown sensor "room.nothing"`) {
		t.Fatal(err)
	}
}

func TestThermostatRetriesARefusedSwitch(t *testing.T) {
	r := newRig(t, "", thermostat)
	r.relays.fail["heater"] = &relay.TooSoonError{Relay: "heater", Guard: "min_off", Min: time.Minute, Wait: time.Second}
	n := len(r.events)
	r.sample("room.value", 17)
	r.sample("room.value", 17.1)
	if len(r.relays.take()) != 2 {
		t.Fatal("a refused switch is not tried again with the next sample")
	}
	if len(r.events) != n+1 || !strings.Contains(r.info("keep_warm").Error, "min_off") {
		t.Fatalf("want one event for the refusals: %v", r.events[n:])
	}
	delete(r.relays.fail, "heater")
	r.sample("room.value", 17.2)
	r.expect("set heater on by automation/keep_warm")
	if a := r.info("keep_warm"); a.Error != "" || !a.Active {
		t.Fatalf("%+v", a)
	}
	r.sample("room.value", 17.3) // done: no more requests
	r.expect()
}
