package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// serialConfig: a simulated board with two relay channels and a sensor
// block, and an LCUS USB relay module given by port.
const serialConfig = `
gateway:
  id: serial-e2e
relays:
  - {name: heater, driver: serial-board, device: board, channel: 1}
  - {name: fan, driver: serial-board, device: board, channel: 2}
  - {name: lamp, driver: usb-relay, port: /dev/ttyUSB0, channel: 1}
sensors:
  - {name: soil, driver: serial-board, device: board, interval: 200ms}
devices:
  - {name: board, driver: serial-board, port: /dev/ttyACM0, baud: 115200}
`

// simSerial is a device as GET /sim/serial/{device} shows it.
type simSerial struct {
	Plugged bool     `json:"plugged"`
	Relays  []bool   `json:"relays"`
	Boots   int      `json:"boots"`
	Frames  []string `json:"frames"`
}

func (p *gatewayProc) simSerial(name string) simSerial {
	p.t.Helper()
	resp, body := p.httpGet("/sim/serial/" + name)
	if resp.StatusCode != 200 {
		p.t.Fatalf("GET /sim/serial/%s: %s %s", name, resp.Status, body)
	}
	var s simSerial
	if err := json.Unmarshal(body, &s); err != nil {
		p.t.Fatalf("%s: %v", body, err)
	}
	return s
}

// healthDevice returns the /healthz entry of a device.
func (p *gatewayProc) healthDevice(name string) map[string]any {
	p.t.Helper()
	_, body := p.httpGet("/healthz")
	var h struct {
		Devices []map[string]any `json:"devices"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		p.t.Fatalf("healthz %s: %v", body, err)
	}
	for _, d := range h.Devices {
		if d["name"] == name && d["state"] != nil {
			return d
		}
	}
	p.t.Fatalf("healthz has no device %q with a state: %s", name, body)
	return nil
}

// waitHealth polls /healthz until the device is in state.
func (p *gatewayProc) waitHealth(name, state string) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := p.healthDevice(name)
		if d["state"] == state {
			return d
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("device %s: %v, want state %s", name, d, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readUntil reads messages until match accepts one, within d; it returns
// that message and the ones before it.
func (c *client) readUntil(d time.Duration, match func(map[string]any) bool) (map[string]any, []map[string]any) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	var skipped []map[string]any
	for time.Now().Before(deadline) {
		b, _, err := c.readMsg(time.Until(deadline))
		if err != nil {
			break
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			c.t.Fatalf("not JSON: %q", b)
		}
		if match(m) {
			return m, skipped
		}
		skipped = append(skipped, m)
	}
	c.t.Fatalf("no matching message within %v; got %v", d, skipped)
	return nil, nil
}

func isStateEvent(m map[string]any) bool { return m["event"] == "state" }

func TestSerialBoardE2E(t *testing.T) {
	p := startGateway(t, "--sim", "--config", writeConfig(t, serialConfig))
	a, hello := dialRelay(t, p, "") // sends requests
	w, _ := dialRelay(t, p, "")     // watches the events
	relays := relayNames(t, hello["relays"])
	for _, n := range []string{"heater", "fan"} {
		if r := relays[n]; r == nil || r["driver"] != "serial-board" || r["state"] != "off" {
			t.Fatalf("hello relay %s: %v", n, r)
		}
	}
	if r := relays["lamp"]; r == nil || r["driver"] != "usb-relay" {
		t.Fatalf("hello relay lamp: %v", r)
	}

	// set, toggle, pulse: confirmed by the board
	reply, _ := a.call(map[string]any{"id": 1, "op": "set", "relay": "heater", "state": "on"})
	wantOK(t, reply, "heater", "on")
	wantEvent(t, w, "heater", "on", "client")
	reply, _ = a.call(map[string]any{"id": 2, "op": "toggle", "relay": "fan"})
	wantOK(t, reply, "fan", "on")
	wantEvent(t, w, "fan", "on", "client")
	if got := p.simSerial("board").Relays; !got[0] || !got[1] {
		t.Fatalf("board drives %v", got)
	}
	reply, _ = a.call(map[string]any{"id": 3, "op": "set", "relay": "fan", "state": "off"})
	wantOK(t, reply, "fan", "off")
	wantEvent(t, w, "fan", "off", "client")
	reply, _ = a.call(map[string]any{"id": 4, "op": "pulse", "relay": "fan", "ms": 150})
	wantOK(t, reply, "fan", "on")
	wantEvent(t, w, "fan", "on", "client")
	wantEvent(t, w, "fan", "off", "pulse")
	if got := p.simSerial("board").Relays; !got[0] || got[1] {
		t.Fatalf("board drives %v after the pulse", got)
	}

	// the board's sensor streams as soil.<quantity> with units
	s, shello := dialSensors(t, p, "")
	units := map[string]any{}
	for _, x := range shello["sensors"].([]any) {
		m := x.(map[string]any)
		units[m["name"].(string)] = m["unit"]
	}
	if units["soil.temperature"] != "°C" || units["soil.humidity"] != "%" {
		t.Fatalf("sensors %v", shello["sensors"])
	}
	reply, _ = s.call(map[string]any{"op": "subscribe", "sensors": []string{"soil.*"}})
	if reply["ok"] != true {
		t.Fatalf("subscribe %v", reply)
	}
	sample, _ := s.readUntil(5*time.Second, func(m map[string]any) bool { return m["sensor"] == "soil.temperature" })
	if v := sample["value"].(float64); v < 15 || v > 30 || sample["unit"] != "°C" {
		t.Fatalf("sample %v", sample)
	}

	// the button: exactly one state event, source device
	p.httpPost("/sim/serial/board?press=2")
	wantEvent(t, w, "fan", "on", "device")
	w.expectSilence(700 * time.Millisecond)

	// unplug while clients are connected
	p.httpPost("/sim/serial/board?fault=unplug")
	d := p.waitHealth("board", "reconnecting")
	if d["ok"] != false || d["error"] == "" {
		t.Fatalf("healthz while unplugged: %v", d)
	}
	start := time.Now()
	reply, _ = a.call(map[string]any{"id": 5, "op": "set", "relay": "heater", "state": "off"})
	wantError(t, reply, "device_error")
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("device_error after %v", took)
	}
	s.readUntil(5*time.Second, func(m map[string]any) bool {
		return m["event"] == "sensor_error" && strings.HasPrefix(m["sensor"].(string), "soil.")
	})
	// Meanwhile the board's own button turns the heater off; nobody hears it.
	p.httpPost("/sim/serial/board?press=1")

	// replug: recovers by itself, reads the heater's state back
	p.httpPost("/sim/serial/board?fault=replug")
	ev, skipped := w.readUntil(10*time.Second, isStateEvent)
	if ev["relay"] != "heater" || ev["state"] != "off" || ev["source"] != "device" {
		t.Fatalf("after replug: %v (before it: %v)", ev, skipped)
	}
	if d := p.waitHealth("board", "connected"); d["ok"] != true || d["error"] != "" {
		t.Fatalf("healthz after replug: %v", d)
	}
	s.readUntil(5*time.Second, func(m map[string]any) bool { return m["sensor"] == "soil.humidity" && m["value"] != nil })
	reply, _ = a.call(map[string]any{"id": 6, "op": "get", "relay": "heater"})
	if reply["state"] != "off" {
		t.Fatalf("get heater after replug: %v", reply)
	}

	// garbage on the line: requests still work, nothing wrong is reported
	for i := 0; i < 3; i++ {
		p.httpPost("/sim/serial/board?fault=garbage")
		reply, _ := a.call(map[string]any{"id": 10 + i, "op": "set", "relay": "heater", "state": "on"})
		wantOK(t, reply, "heater", "on")
		wantEvent(t, w, "heater", "on", "client")
		reply, _ = a.call(map[string]any{"id": 20 + i, "op": "set", "relay": "heater", "state": "off"})
		wantOK(t, reply, "heater", "off")
		wantEvent(t, w, "heater", "off", "client")
	}
	w.expectSilence(300 * time.Millisecond)

	// a reboot mid-stream: the board drops its relays; the gateway reports
	// the truth (fan off, source device) and never the old state
	p.httpPost("/sim/serial/board?fault=reboot")
	ev, skipped = w.readUntil(5*time.Second, isStateEvent)
	if ev["relay"] != "fan" || ev["state"] != "off" || ev["source"] != "device" {
		t.Fatalf("after reboot: %v (before it: %v)", ev, skipped)
	}
	w.expectSilence(500 * time.Millisecond)
	if sb := p.simSerial("board"); sb.Boots != 2 || sb.Relays[0] || sb.Relays[1] {
		t.Fatalf("board after reboot: %+v", sb)
	}
	reply, _ = a.call(map[string]any{"id": 30, "op": "toggle", "relay": "fan"})
	wantOK(t, reply, "fan", "on")

	// mute: a request fails within the request timeout
	p.httpPost("/sim/serial/board?fault=mute")
	start = time.Now()
	reply, _ = a.call(map[string]any{"id": 31, "op": "set", "relay": "heater", "state": "on"})
	wantError(t, reply, "device_error")
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("device_error from a mute board after %v", took)
	}
	p.httpPost("/sim/serial/board?fault=none")
	reply, _ = a.call(map[string]any{"id": 32, "op": "set", "relay": "heater", "state": "on"})
	wantOK(t, reply, "heater", "on")

	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func TestUSBRelayE2E(t *testing.T) {
	p := startGateway(t, "--sim", "--config", writeConfig(t, serialConfig))
	a, _ := dialRelay(t, p, "")
	for i, state := range []string{"on", "off"} {
		reply, _ := a.call(map[string]any{"id": i, "op": "set", "relay": "lamp", "state": state})
		wantOK(t, reply, "lamp", state)
	}
	// The gateway's startup drove it off first (its initial state).
	want := "[A0 01 00 A1 A0 01 01 A2 A0 01 00 A1]"
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := fmt.Sprint(p.simSerial("ttyUSB0").Frames)
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("frames %s, want %s", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
