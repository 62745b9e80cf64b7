package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The automations and relay guards of issue 21, end to end: the real
// binary on simulated hardware, sensors moved through the simulator's
// controls (/sim/i2c pins the BME280's temperature, /sim/gpio drives the
// door contact's pin).

const autoConfig = `gateway:
  listen: 127.0.0.1:0
relays:
  - {name: heater, driver: gpio, pin: GPIO5, failsafe: off}
  - {name: light, driver: gpio, pin: GPIO6}
  - {name: pump, driver: gpio, pin: GPIO13, max_on: 1500ms, min_off: 1s}
  - {name: blink, driver: gpio, pin: GPIO19}
  - {name: fan, driver: gpio, pin: GPIO26}
sensors:
  - {name: room, driver: bme280, bus: /dev/i2c-1, address: 0x76, interval: 200ms}
  - {name: door_contact, driver: gpio-input, pin: GPIO27, pull: down, debounce: 10ms}
automations:
  - name: keep_warm
    thermostat: {sensor: room.temperature, relay: heater, target: 20, hysteresis: 2}
  - name: door_light
    when: {sensor: door_contact.state, equals: 1}
    do: [{set: light, state: on}]
  - name: hot_fan
    when: {sensor: room.humidity, above: 70, for: 1s}
    do: [{toggle: fan}]
    cooldown: 5s
  - name: ticker
    every: 2s
    do: [{toggle: blink}]
`

// nextState reads until a state event of relay and returns it; automation
// events are collected on the way.
func nextState(t *testing.T, c *client, relay string, d time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m, ok := tryRead(c, time.Until(deadline))
		if !ok {
			break
		}
		if m["event"] == "state" && m["relay"] == relay {
			return m
		}
	}
	t.Fatalf("no state event of %s within %v", relay, d)
	return nil
}

func tryRead(c *client, d time.Duration) (map[string]any, bool) {
	b, _, err := c.readMsg(d)
	if err != nil {
		return nil, false
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil, false
	}
	return m, true
}

func expectNoState(t *testing.T, c *client, relay string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		m, ok := tryRead(c, time.Until(deadline))
		if !ok {
			return
		}
		if m["event"] == "state" && m["relay"] == relay {
			t.Fatalf("unexpected state event %v", m)
		}
	}
}

func automationByName(t *testing.T, c *client, name string) map[string]any {
	t.Helper()
	reply, _ := c.call(map[string]any{"id": "a", "op": "automations"})
	if reply["ok"] != true {
		t.Fatalf("automations: %v", reply)
	}
	for _, a := range reply["automations"].([]any) {
		if m := a.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("no automation %q in %v", name, reply)
	return nil
}

func TestAutomationThermostatEndToEnd(t *testing.T) {
	p := startGateway(t, "--sim", "--config", writeConfig(t, autoConfig))
	c, _ := dialRelay(t, p, "")
	p.httpPost("/sim/i2c/0x76?temperature=15")
	ev := nextState(t, c, "heater", 5*time.Second)
	if ev["state"] != "on" || ev["source"] != "automation" || ev["automation"] != "keep_warm" {
		t.Fatalf("below the lower bound: %v", ev)
	}
	if a := automationByName(t, c, "keep_warm"); a["kind"] != "thermostat" || a["enabled"] != true || a["active"] != true || a["last_fired"] == nil {
		t.Fatalf("%v", a)
	}
	p.httpPost("/sim/i2c/0x76?temperature=25")
	if ev := nextState(t, c, "heater", 5*time.Second); ev["state"] != "off" || ev["automation"] != "keep_warm" {
		t.Fatalf("above the upper bound: %v", ev)
	}
	// Between the bounds a manual change holds.
	p.httpPost("/sim/i2c/0x76?temperature=20")
	time.Sleep(500 * time.Millisecond)
	if r, _ := c.call(map[string]any{"id": 1, "op": "set", "relay": "heater", "state": "on"}); r["ok"] != true {
		t.Fatalf("manual on: %v", r)
	}
	expectNoState(t, c, "heater", 1500*time.Millisecond)
	// nack=1: the sensor fails; the heater goes to its failsafe (off) within three intervals.
	p.httpPost("/sim/i2c/0x76?nack=1")
	failed := time.Now() // the chip no longer answers from here on
	ev = nextState(t, c, "heater", 5*time.Second)
	if el := time.Since(failed); ev["state"] != "off" || ev["automation"] != "keep_warm" || el > 3*200*time.Millisecond+250*time.Millisecond {
		t.Fatalf("sensor failure: %v after %v", ev, el)
	}
	if a := automationByName(t, c, "keep_warm"); a["error"] == "" {
		t.Fatalf("failure not reported: %v", a)
	}
	// The next good sample resumes it.
	p.httpPost("/sim/i2c/0x76?nack=0&temperature=15")
	if ev := nextState(t, c, "heater", 5*time.Second); ev["state"] != "on" || ev["automation"] != "keep_warm" {
		t.Fatalf("after the sensor came back: %v", ev)
	}
	if a := automationByName(t, c, "keep_warm"); a["error"] != "" {
		t.Fatalf("%v", a)
	}
	p.stop()
}

func TestAutomationWhenInputAndSchedule(t *testing.T) {
	p := startGateway(t, "--sim", "--config", writeConfig(t, autoConfig))
	c, _ := dialRelay(t, p, "")
	// every: 2s toggles blink on time.
	start := time.Now()
	nextState(t, c, "blink", 3*time.Second)
	first := time.Since(start)
	nextState(t, c, "blink", 3*time.Second)
	if gap := time.Since(start) - first; gap < 1600*time.Millisecond || gap > 2500*time.Millisecond {
		t.Fatalf("every 2s fired %v apart", gap)
	}
	if a := automationByName(t, c, "ticker"); a["kind"] != "schedule" || a["next"] == nil {
		t.Fatalf("%v", a)
	}
	// A driven input pin fires its automation.
	p.httpPost("/sim/gpio/GPIO27?level=high")
	if ev := nextState(t, c, "light", 3*time.Second); ev["state"] != "on" || ev["automation"] != "door_light" {
		t.Fatalf("door: %v", ev)
	}
	// when … for: fires once per transition, after for, and honours cooldown.
	p.httpPost("/sim/i2c/0x76?humidity=80")
	t0 := time.Now()
	ev := nextState(t, c, "fan", 4*time.Second)
	if el := time.Since(t0); ev["automation"] != "hot_fan" || el < 900*time.Millisecond {
		t.Fatalf("hot_fan: %v after %v", ev, el)
	}
	expectNoState(t, c, "fan", 1500*time.Millisecond) // it stays true: no second firing
	p.httpPost("/sim/i2c/0x76?humidity=50")
	time.Sleep(400 * time.Millisecond)
	p.httpPost("/sim/i2c/0x76?humidity=80") // a new transition within the cooldown
	expectNoState(t, c, "fan", 1500*time.Millisecond)
	ev = nextState(t, c, "fan", 5*time.Second) // once the 5 s cooldown is over
	if el := time.Since(t0); el < 4800*time.Millisecond || ev["automation"] != "hot_fan" {
		t.Fatalf("second firing %v after the first transition: %v", el, ev)
	}
}

func TestAutomationDisableSurvivesRestart(t *testing.T) {
	cfg := writeConfig(t, autoConfig)
	dir := t.TempDir()
	p := startGateway(t, "--sim", "--config", cfg, "--data-dir", dir)
	c, _ := dialRelay(t, p, "")
	viewer, _ := dialRelay(t, p, "")
	r, events := c.call(map[string]any{"id": 1, "op": "disable", "automation": "ticker"})
	if r["ok"] != true || r["automation"] != "ticker" || r["enabled"] != false {
		t.Fatalf("disable: %v %v", r, events)
	}
	// Every relay-control client is told.
	for {
		m := viewer.read()
		if m["event"] == "automation" {
			if a := m["automation"].(map[string]any); a["name"] != "ticker" || a["enabled"] != false {
				t.Fatalf("%v", m)
			}
			break
		}
	}
	if r, _ := c.call(map[string]any{"id": 2, "op": "disable", "automation": "nope"}); r["ok"] != false || r["error"].(map[string]any)["code"] != "unknown_automation" {
		t.Fatalf("unknown: %v", r)
	}
	expectNoState(t, c, "blink", 2500*time.Millisecond)
	p.stop()
	p = startGateway(t, "--sim", "--config", cfg, "--data-dir", dir)
	c, _ = dialRelay(t, p, "")
	if a := automationByName(t, c, "ticker"); a["enabled"] != false || a["next"] != nil {
		t.Fatalf("after a restart: %v", a)
	}
	expectNoState(t, c, "blink", 2500*time.Millisecond)
	if r, _ := c.call(map[string]any{"id": 3, "op": "enable", "automation": "ticker"}); r["ok"] != true || r["enabled"] != true {
		t.Fatalf("enable: %v", r)
	}
	nextState(t, c, "blink", 3*time.Second)
}

func TestRelayGuardsEndToEnd(t *testing.T) {
	p := startGateway(t, "--sim", "--config", writeConfig(t, autoConfig))
	c, _ := dialRelay(t, p, "")
	// max_on switches the pump off whoever switched it on.
	on := time.Now()
	r, events := c.call(map[string]any{"id": 1, "op": "set", "relay": "pump", "state": "on"})
	if r["ok"] != true {
		t.Fatalf("%v", r)
	}
	ev := nextState(t, c, "pump", 3*time.Second)
	sawOn := false
	for _, e := range events {
		sawOn = sawOn || e["relay"] == "pump" && e["state"] == "on"
	}
	if !sawOn && ev["state"] == "on" {
		ev = nextState(t, c, "pump", 3*time.Second)
	}
	if el := time.Since(on); ev["state"] != "off" || ev["source"] != "guard" || el < 1400*time.Millisecond {
		t.Fatalf("max_on: %v after %v", ev, el)
	}
	// min_off refuses a quick re-switch with too_soon.
	r, _ = c.call(map[string]any{"id": 2, "op": "set", "relay": "pump", "state": "on"})
	e, _ := r["error"].(map[string]any)
	if r["ok"] != false || e["code"] != "too_soon" || !strings.Contains(e["message"].(string), "try again in") {
		t.Fatalf("quick re-switch: %v", r)
	}
	time.Sleep(1100 * time.Millisecond)
	if r, _ := c.call(map[string]any{"id": 3, "op": "set", "relay": "pump", "state": "on"}); r["ok"] != true {
		t.Fatalf("after min_off: %v", r)
	}
	// Shutdown is never refused: the pump goes to its failsafe (off).
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	j := readJournal(t, p.dataDir)["GPIO13"]
	if len(j) == 0 || j[len(j)-1] != "low" {
		t.Fatalf("pump journal %v", j)
	}
}

func TestBadAutomationsRefused(t *testing.T) {
	base := "relays:\n  - {name: heater, driver: gpio, pin: GPIO5}\n  - {name: door, driver: gpio, pin: GPIO6, max_pulse: 5s}\nsensors:\n  - {name: room, driver: bme280, bus: /dev/i2c-1, address: 0x76}\nautomations:\n"
	for _, tc := range []struct{ in, want string }{
		{"  - {name: a, thermostat: {sensor: cellar.temperature, relay: heater, target: 19}}\n", ":7: automations[0].thermostat.sensor: unknown sensor"},
		{"  - {name: a, thermostat: {sensor: room.temperature, relay: heater, target: 19}}\n  - {name: b, thermostat: {sensor: room.temperature, relay: heater, target: 9}}\n", ":8: automations[1].thermostat.relay: relay \"heater\" already has a thermostat"},
		{"  - {name: a, at: \"07:00\", do: [{pulse: door, for: 6s}]}\n", ":7: automations[0].do[0].for: a pulse of 6s is longer than relay \"door\" takes (max_pulse 5s)"},
		{"  - {name: a, cron: \"* * * *\", do: [{toggle: door}]}\n", ":7: automations[0].cron: want five fields"},
	} {
		cfg := writeConfig(t, base+tc.in)
		for _, args := range [][]string{{"--sim", "--config", cfg, "--data-dir", t.TempDir()}, {"check-config", cfg}} {
			out, err := exec.Command(binPath, args...).CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), cfg+tc.want) {
				t.Fatalf("%v: %v\n%s\nwant %s%s", args, err, out, cfg, tc.want)
			}
		}
	}
}

// The embedded demo (go run ./cmd/edgegate --sim) runs its automations: a
// thermostat on heater from room.temperature, a door light and the rest,
// with a guarded pump.
func TestSimDemoAutomations(t *testing.T) {
	p := startGateway(t, "--sim", "--data-dir", t.TempDir()) // a data dir of its own: nothing disabled
	c, hello := dialRelay(t, p, "")
	reply, _ := c.call(map[string]any{"id": 1, "op": "automations"})
	kinds := map[string]string{}
	for _, a := range reply["automations"].([]any) {
		a := a.(map[string]any)
		if a["enabled"] != true {
			t.Fatalf("%v", a)
		}
		kinds[a["name"].(string)] = a["kind"].(string)
	}
	if kinds["keep_warm"] != "thermostat" || kinds["door_light"] != "when" || kinds["irrigate"] != "schedule" {
		t.Fatalf("demo automations %v", kinds)
	}
	_ = hello
	// The thermostat holds the heater to the pinned temperature, and the
	// door contact's pin drives the light (either may have happened by
	// itself already, from the drifting room and the door's initial level).
	p.httpPost("/sim/i2c/0x76?temperature=18")
	p.httpPost("/sim/gpio/GPIO27?level=high")
	waitList := func(relay, automation string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			reply, _ := c.call(map[string]any{"id": 2, "op": "list"})
			for _, r := range reply["relays"].([]any) {
				r := r.(map[string]any)
				if r["name"] == relay && r["state"] == "on" && r["changed_by"] == "automation" && r["automation"] == automation {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not switched on by %s: %v", relay, automation, reply)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitList("heater", "keep_warm")
	waitList("light", "door_light")
}

// max_on holds for a change made on the device too: the serial board's
// own button switches the fan on, and the guard switches it off.
func TestMaxOnAfterDeviceButton(t *testing.T) {
	cfg := strings.Replace(serialConfig, "{name: fan, driver: serial-board, device: board, channel: 2}",
		"{name: fan, driver: serial-board, device: board, channel: 2, max_on: 1s}", 1)
	p := startGateway(t, "--sim", "--config", writeConfig(t, cfg))
	c, _ := dialRelay(t, p, "")
	pressed := time.Now()
	p.httpPost("/sim/serial/board?press=2")
	if ev := nextState(t, c, "fan", 3*time.Second); ev["state"] != "on" || ev["source"] != "device" {
		t.Fatalf("button: %v", ev)
	}
	ev := nextState(t, c, "fan", 3*time.Second)
	if el := time.Since(pressed); ev["state"] != "off" || ev["source"] != "guard" || el < 900*time.Millisecond {
		t.Fatalf("max_on after the button: %v after %v", ev, el)
	}
	if got := p.simSerial("board").Relays; got[1] {
		t.Fatalf("the board still drives the fan: %v", got)
	}
}
