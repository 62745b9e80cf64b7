package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

func relayNames(t *testing.T, list any) map[string]map[string]any {
	t.Helper()
	arr, ok := list.([]any)
	if !ok {
		t.Fatalf("relays is not a list: %v", list)
	}
	out := map[string]map[string]any{}
	for _, r := range arr {
		m := r.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func wantOK(t *testing.T, reply map[string]any, relay, state string) {
	t.Helper()
	if reply["ok"] != true || reply["relay"] != relay || reply["state"] != state {
		t.Fatalf("reply %v, want ok relay=%s state=%s", reply, relay, state)
	}
}

func wantError(t *testing.T, reply map[string]any, code string) {
	t.Helper()
	e, _ := reply["error"].(map[string]any)
	if reply["ok"] != false || e == nil || e["code"] != code || e["message"] == "" {
		t.Fatalf("reply %v, want error %s with a message", reply, code)
	}
}

// wantEvent reads the next message and checks it is this state event.
func wantEvent(t *testing.T, c *client, relay, state, source string) {
	t.Helper()
	ev := c.read()
	if ev["event"] != "state" || ev["relay"] != relay || ev["state"] != state || ev["source"] != source {
		t.Fatalf("event %v, want state %s=%s source %s", ev, relay, state, source)
	}
	if ts, ok := ev["ts"].(float64); !ok || ts < 1.7e12 {
		t.Fatalf("event ts %v is not Unix milliseconds", ev["ts"])
	}
}

func TestRelayControlOps(t *testing.T) {
	p := startGateway(t, "--sim")
	a, hello := dialRelay(t, p, "")
	b, _ := dialRelay(t, p, "")

	if hello["gateway"] != "edgegate-sim" || hello["role"] != "operator" || hello["version"] == "" {
		t.Fatalf("hello: %v", hello)
	}
	relays := relayNames(t, hello["relays"])
	for _, n := range []string{"pump", "valve_open", "valve_close", "door"} {
		r := relays[n]
		if r == nil || r["state"] != "off" || r["driver"] != "gpio" {
			t.Fatalf("hello relay %s: %v", n, r)
		}
	}
	if relays["valve_open"]["interlock"] != "valves" {
		t.Fatalf("valve_open lacks its interlock group: %v", relays["valve_open"])
	}
	// max_pulse_ms shows only where max_pulse is configured (the door).
	if relays["door"]["max_pulse_ms"] != float64(5000) || relays["pump"]["max_pulse_ms"] != nil {
		t.Fatalf("max_pulse_ms: door %v, pump %v", relays["door"]["max_pulse_ms"], relays["pump"]["max_pulse_ms"])
	}

	// list, with a numeric id echoed verbatim
	reply, _ := a.call(map[string]any{"id": 7, "op": "list"})
	if reply["id"] != float64(7) || reply["ok"] != true || len(reply["relays"].([]any)) != len(relays) {
		t.Fatalf("list: %v", reply)
	}

	// set: reply and one state event to every client; string id echoed
	reply, evs := a.call(map[string]any{"id": "s1", "op": "set", "relay": "pump", "state": "on"})
	wantOK(t, reply, "pump", "on")
	if reply["id"] != "s1" {
		t.Fatalf("id not echoed: %v", reply)
	}
	if len(evs) != 1 || evs[0]["relay"] != "pump" || evs[0]["source"] != "client" {
		t.Fatalf("requester's events: %v", evs)
	}
	wantEvent(t, b, "pump", "on", "client")

	// setting the same state again succeeds and changes nothing: no event
	reply, evs = a.call(map[string]any{"op": "set", "relay": "pump", "state": "on"})
	wantOK(t, reply, "pump", "on")
	if len(evs) != 0 {
		t.Fatalf("no-op set produced events: %v", evs)
	}

	// get
	reply, _ = a.call(map[string]any{"op": "get", "relay": "pump"})
	wantOK(t, reply, "pump", "on")
	if ca, ok := reply["changed_at"].(float64); !ok || ca < 1.7e12 {
		t.Fatalf("get: changed_at %v", reply["changed_at"])
	}

	// toggle
	reply, _ = a.call(map[string]any{"op": "toggle", "relay": "pump"})
	wantOK(t, reply, "pump", "off")
	wantEvent(t, b, "pump", "off", "client")

	// interlock: valve_open on, then valve_close on turns valve_open off first
	reply, _ = a.call(map[string]any{"op": "set", "relay": "valve_open", "state": "on"})
	wantOK(t, reply, "valve_open", "on")
	wantEvent(t, b, "valve_open", "on", "client")
	reply, _ = a.call(map[string]any{"op": "set", "relay": "valve_close", "state": "on"})
	wantOK(t, reply, "valve_close", "on")
	wantEvent(t, b, "valve_open", "off", "interlock")
	wantEvent(t, b, "valve_close", "on", "client")

	// pulse: on now, off by itself after ms
	start := time.Now()
	reply, _ = a.call(map[string]any{"op": "pulse", "relay": "door", "ms": 150})
	wantOK(t, reply, "door", "on")
	wantEvent(t, b, "door", "on", "client")
	wantEvent(t, b, "door", "off", "pulse")
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("pulse ended after %v, want ≥150ms", el)
	}

	// the state list reports what the pins hold
	reply, _ = b.call(map[string]any{"op": "list"})
	got := relayNames(t, reply["relays"])
	for n, want := range map[string]string{"pump": "off", "valve_open": "off", "valve_close": "on", "door": "off"} {
		if got[n]["state"] != want {
			t.Fatalf("list: %s is %v, want %s", n, got[n]["state"], want)
		}
	}
	resp, body := p.httpGet("/sim/gpio")
	var pins []struct{ Name, Level string }
	if resp.StatusCode != 200 || json.Unmarshal(body, &pins) != nil {
		t.Fatalf("/sim/gpio: %s %s", resp.Status, body)
	}
	levels := map[string]string{}
	for _, pin := range pins {
		levels[pin.Name] = pin.Level
	}
	// pump is active-low: off = high
	if levels["GPIO17"] != "high" || levels["GPIO23"] != "high" || levels["GPIO22"] != "low" || levels["GPIO24"] != "low" {
		t.Fatalf("pin levels %v", levels)
	}
}

func TestRelayControlErrors(t *testing.T) {
	p := startGateway(t, "--sim")
	c, _ := dialRelay(t, p, "")
	other, _ := dialRelay(t, p, "")

	cases := []struct {
		name string
		raw  string
		code string
	}{
		{"bad json", `{"op":"list"`, "bad_request"},
		{"not an object", `[1,2]`, "bad_request"},
		{"missing op", `{"id":1}`, "bad_request"},
		{"bad id type", `{"id":{"x":1},"op":"list"}`, "bad_request"},
		{"unknown op", `{"op":"explode","relay":"pump"}`, "unknown_op"},
		{"missing relay", `{"op":"set","state":"on"}`, "bad_request"},
		{"unknown relay", `{"op":"set","relay":"pmp","state":"on"}`, "unknown_relay"},
		{"unknown relay get", `{"op":"get","relay":"nope"}`, "unknown_relay"},
		{"bad state", `{"op":"set","relay":"pump","state":"maybe"}`, "bad_request"},
		{"pulse without ms", `{"op":"pulse","relay":"door"}`, "bad_request"},
		{"pulse ms zero", `{"op":"pulse","relay":"door","ms":0}`, "bad_request"},
		{"pulse over max_pulse", `{"op":"pulse","relay":"door","ms":5001}`, "bad_request"},
		{"pulse fractional ms", `{"op":"pulse","relay":"door","ms":1.5}`, "bad_request"},
		{"wrong field type", `{"id":3,"op":"set","relay":7}`, "bad_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.sendRaw(ws.OpText, []byte(tc.raw))
			wantError(t, c.read(), tc.code)
		})
	}
	// the id of a mistyped request is still echoed
	c.sendRaw(ws.OpText, []byte(`{"id":3,"op":"set","relay":7}`))
	if r := c.read(); r["id"] != float64(3) {
		t.Fatalf("id not echoed on a bad request: %v", r)
	}
	// the socket stayed open through all of it
	reply, _ := c.call(map[string]any{"op": "list"})
	if reply["ok"] != true {
		t.Fatalf("list after errors: %v", reply)
	}

	// busy: a second pulse while one runs
	reply, _ = c.call(map[string]any{"op": "pulse", "relay": "door", "ms": 1000})
	wantOK(t, reply, "door", "on")
	reply, _ = c.call(map[string]any{"op": "pulse", "relay": "door", "ms": 1000})
	wantError(t, reply, "busy")
	// a set during a pulse takes over and cancels it
	reply, _ = c.call(map[string]any{"op": "set", "relay": "door", "state": "off"})
	wantOK(t, reply, "door", "off")

	// device_error: a pin that ignores writes; no state event, state unchanged
	p.httpPost("/sim/gpio/GPIO17?stuck=high") // pump is active-low: high = off
	reply, evs := c.call(map[string]any{"id": 9, "op": "set", "relay": "pump", "state": "on"})
	wantError(t, reply, "device_error")
	if len(evs) != 0 {
		t.Fatalf("device error produced events: %v", evs)
	}
	reply, _ = c.call(map[string]any{"op": "get", "relay": "pump"})
	wantOK(t, reply, "pump", "off")
	_, health := p.httpGet("/healthz")
	if !strings.Contains(string(health), `"ok":false`) || !strings.Contains(string(health), "GPIO17") {
		t.Fatalf("healthz does not show the failing relay: %s", health)
	}
	p.httpPost("/sim/gpio/GPIO17?stuck=none")
	reply, _ = c.call(map[string]any{"op": "set", "relay": "pump", "state": "on"})
	wantOK(t, reply, "pump", "on")

	// the other client saw exactly: door on (pulse), door off (client), pump on
	wantEvent(t, other, "door", "on", "client")
	wantEvent(t, other, "door", "off", "client")
	wantEvent(t, other, "pump", "on", "client")
	other.expectSilence(300 * time.Millisecond) // the cancelled pulse never fires
}

func TestForbiddenForViewers(t *testing.T) {
	cfg := writeConfig(t, `
auth:
  enabled: true
  keys:
    - {name: dash, key: viewer-key-0123456789, role: viewer}
    - {name: ops, key: operator-key-0123456789, role: operator}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	if _, err := dialWS(t, p.wsURL(""), nil, "relay-control.v1"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("no token: %v, want 401", err)
	}
	if _, err := dialWS(t, p.wsURL("token=wrong"), nil, "relay-control.v1"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("bad token: %v, want 401", err)
	}
	v, hello := dialRelay(t, p, "token=viewer-key-0123456789")
	if hello["role"] != "viewer" {
		t.Fatalf("hello role %v", hello["role"])
	}
	for _, op := range []map[string]any{
		{"op": "set", "relay": "pump", "state": "on"},
		{"op": "toggle", "relay": "pump"},
		{"op": "pulse", "relay": "pump", "ms": 10},
	} {
		reply, _ := v.call(op)
		wantError(t, reply, "forbidden")
	}
	reply, _ := v.call(map[string]any{"op": "get", "relay": "pump"})
	wantOK(t, reply, "pump", "off") // reading is allowed, and the socket stays open

	h := http.Header{"Authorization": {"Bearer operator-key-0123456789"}}
	o, err := dialWS(t, p.wsURL(""), h, "relay-control.v1")
	if err != nil {
		t.Fatal(err)
	}
	if hello := o.read(); hello["role"] != "operator" {
		t.Fatalf("operator hello %v", hello)
	}
	reply, _ = o.call(map[string]any{"op": "set", "relay": "pump", "state": "on"})
	wantOK(t, reply, "pump", "on")
	wantEvent(t, v, "pump", "on", "client")
}

func TestHandshakeRefusals(t *testing.T) {
	p := startGateway(t, "--sim")
	// no supported subprotocol → 400 listing the supported ones
	for _, protos := range [][]string{nil, {"chat", "mqtt"}} {
		_, err := dialWS(t, p.wsURL(""), nil, protos...)
		if err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("offering %v: %v, want 400", protos, err)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Protocol", "chat")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 512)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body[:n]), "relay-control.v1") {
		t.Fatalf("%s %q: want 400 listing relay-control.v1", resp.Status, body[:n])
	}
	// the client's order of preference wins among supported ones
	c, err := dialWS(t, p.wsURL(""), nil, "chat", "relay-control.v1")
	if err != nil || c.hs.Protocol != "relay-control.v1" {
		t.Fatalf("negotiation: %v %q", err, c.hs.Protocol)
	}
}

func TestFramingViolations(t *testing.T) {
	p := startGateway(t, "--sim")
	t.Run("binary message → 1003", func(t *testing.T) {
		c, _ := dialRelay(t, p, "")
		c.sendRaw(ws.OpBinary, []byte{1, 2, 3})
		c.expectClose(ws.StatusUnsupportedData)
	})
	t.Run("oversize → 1009", func(t *testing.T) {
		c, _ := dialRelay(t, p, "")
		big := `{"op":"list","pad":"` + strings.Repeat("x", 70*1024) + `"}`
		c.sendRaw(ws.OpText, []byte(big))
		c.expectClose(ws.StatusMessageTooBig)
	})
	t.Run("invalid UTF-8 → 1007", func(t *testing.T) {
		c, _ := dialRelay(t, p, "")
		c.sendRaw(ws.OpText, []byte("{\"op\":\"list\",\"x\":\"\xff\xfe\"}"))
		c.expectClose(ws.StatusInvalidFramePayloadData)
	})
	t.Run("unmasked frame → 1002", func(t *testing.T) {
		c, _ := dialRelay(t, p, "")
		frame, err := ws.CompileFrame(ws.NewTextFrame([]byte(`{"op":"list"}`))) // not masked
		if err != nil {
			t.Fatal(err)
		}
		c.conn.Write(frame)
		c.expectClose(ws.StatusProtocolError)
	})
}

func TestHeartbeat(t *testing.T) {
	cfg := writeConfig(t, `
gateway:
  heartbeat: {interval: 100ms, timeout: 400ms}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	p := startGateway(t, "--sim", "--config", cfg)

	// A silent peer: handshake done, then never a byte (no pong either).
	silent, err := dialWS(t, p.wsURL(""), nil, "relay-control.v1")
	if err != nil {
		t.Fatal(err)
	}
	// A live peer answers pings (wsutil's reader does) and keeps its socket.
	live, _ := dialRelay(t, p, "")

	// The silent peer reads raw bytes (answering nothing) in the background
	// while the live one keeps reading, and so answering pings, here.
	start := time.Now()
	type drop struct {
		err   error
		after time.Duration
	}
	dropped := make(chan drop, 1)
	go func() {
		silent.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		for {
			if _, err := silent.conn.Read(buf); err != nil {
				dropped <- drop{err, time.Since(start)}
				return
			}
		}
	}()
	deadline := time.Now().Add(1200 * time.Millisecond)
	for time.Now().Before(deadline) {
		live.expectSilence(200 * time.Millisecond)
	}
	d := <-dropped
	var ne net.Error
	if asNetErr(d.err, &ne) && ne.Timeout() {
		t.Fatal("silent peer was not dropped within 5 s")
	}
	if d.after < 300*time.Millisecond || d.after > 3*time.Second {
		t.Fatalf("silent peer dropped after %v, want about the 400ms timeout", d.after)
	}
	// The live one kept working well past the timeout.
	reply, _ := live.call(map[string]any{"op": "list"})
	if reply["ok"] != true {
		t.Fatalf("live client after heartbeats: %v", reply)
	}
}

func asNetErr(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

func TestShutdownClosesAndFailsSafe(t *testing.T) {
	cfg := writeConfig(t, `
relays:
  - {name: pump, driver: gpio, pin: GPIO17, active_low: true, failsafe: off}
  - {name: fan, driver: gpio, pin: GPIO18, failsafe: on}
  - {name: lamp, driver: gpio, pin: GPIO19, failsafe: hold}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	c, _ := dialRelay(t, p, "")
	for _, r := range []string{"pump", "lamp"} {
		reply, _ := c.call(map[string]any{"op": "set", "relay": r, "state": "on"})
		wantOK(t, reply, r, "on")
	}
	done := make(chan int, 1)
	go func() { done <- p.stop() }()
	c.expectClose(ws.StatusGoingAway)
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	j := readJournal(t, p.dataDir)
	last := func(pin string) string { l := j[pin]; return l[len(l)-1] }
	if last("GPIO17") != "high" { // active-low pump: failsafe off = high
		t.Fatalf("pump ended %s, want high (off): %v", last("GPIO17"), j["GPIO17"])
	}
	if last("GPIO18") != "high" { // fan: failsafe on
		t.Fatalf("fan ended %s, want high (on): %v", last("GPIO18"), j["GPIO18"])
	}
	if last("GPIO19") != "high" { // lamp: hold keeps it on
		t.Fatalf("lamp ended %s, want high (held on): %v", last("GPIO19"), j["GPIO19"])
	}
}

func TestNoGlitchAtStartAndStop(t *testing.T) {
	cfg := writeConfig(t, `
relays:
  - {name: pump, driver: gpio, pin: GPIO17, active_low: true, initial: off, failsafe: off}
  - {name: heater, driver: gpio, pin: GPIO18, active_low: true, initial: on, failsafe: hold}
  - {name: fan, driver: gpio, pin: GPIO19, initial: on, failsafe: hold}
  - {name: lamp, driver: gpio, pin: GPIO20, initial: off, failsafe: off}
  - {name: valve_a, driver: gpio, pin: GPIO21, interlock: v, initial: on, failsafe: hold}
  - {name: valve_b, driver: gpio, pin: GPIO22, interlock: v, initial: off}
`)
	dataDir := t.TempDir()
	for run := 0; run < 2; run++ { // a restart must not pulse anything either
		p := startGateway(t, "--sim", "--config", cfg, "--data-dir", dataDir)
		if code := p.stop(); code != 0 {
			t.Fatalf("exit %d", code)
		}
	}
	j := readJournal(t, dataDir)
	want := map[string]string{"GPIO17": "high", "GPIO18": "low", "GPIO19": "high", "GPIO20": "low", "GPIO21": "high", "GPIO22": "low"}
	for pin, level := range want {
		if len(j[pin]) == 0 {
			t.Fatalf("%s never driven", pin)
		}
		for i, l := range j[pin] {
			if l != level {
				t.Fatalf("%s: level %d of %v is %s: a transient (want only %s)", pin, i, j[pin], l, level)
			}
		}
	}
}

func TestWatchdogFailsafe(t *testing.T) {
	cfg := writeConfig(t, `
gateway:
  watchdog: 500ms
auth:
  enabled: true
  keys:
    - {name: dash, key: viewer-key-0123456789, role: viewer}
    - {name: ops, key: operator-key-0123456789, role: operator}
relays:
  - {name: heater, driver: gpio, pin: GPIO17, failsafe: off}
  - {name: lamp, driver: gpio, pin: GPIO18, failsafe: hold}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	viewer, _ := dialRelay(t, p, "token=viewer-key-0123456789")
	op, _ := dialRelay(t, p, "token=operator-key-0123456789")
	for _, r := range []string{"heater", "lamp"} {
		reply, _ := op.call(map[string]any{"op": "set", "relay": r, "state": "on"})
		wantOK(t, reply, r, "on")
		wantEvent(t, viewer, r, "on", "client")
	}
	// While the operator is connected, nothing happens.
	viewer.expectSilence(800 * time.Millisecond)
	// The operator vanishes; the watchdog turns the heater off (lamp holds).
	op.conn.Close()
	gone := time.Now()
	wantEvent(t, viewer, "heater", "off", "failsafe")
	if el := time.Since(gone); el < 400*time.Millisecond {
		t.Fatalf("failsafe after %v, want ≥ the 500ms watchdog", el)
	}
	viewer.expectSilence(300 * time.Millisecond)
}

func TestBrokenConfig(t *testing.T) {
	cfg := writeConfig(t, `gateway:
  listen: 127.0.0.1:0
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
  - {name: fan, driver: gpio, pin: GPIO17}
`)
	for _, args := range [][]string{{"--sim", "--config", cfg}, {"check-config", cfg}} {
		out, err := exec.Command(binPath, args...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Fatalf("%v: %v, want exit 1\n%s", args, err, out)
		}
		want := cfg + ":5: relays[1].pin: "
		if !strings.Contains(string(out), want) {
			t.Fatalf("%v printed %q, want it to contain %q", args, out, want)
		}
	}
	good := writeConfig(t, "relays:\n  - {name: pump, driver: gpio, pin: GPIO17}\n")
	if out, err := exec.Command(binPath, "check-config", good).CombinedOutput(); err != nil {
		t.Fatalf("check-config of a good file: %v\n%s", err, out)
	}
}

func TestRefusesExposureWithoutAuth(t *testing.T) {
	out, err := exec.Command(binPath, "--sim", "--listen", "0.0.0.0:0", "--data-dir", t.TempDir()).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "--insecure") {
		t.Fatalf("listening on 0.0.0.0 without auth: %v\n%s", err, out)
	}
}

func TestSignedTokens(t *testing.T) {
	cfg := writeConfig(t, `
auth:
  enabled: true
  secret: "a-test-secret-of-enough-length"
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	mint := func(args ...string) string {
		out, err := exec.Command(binPath, append([]string{"token", "--config", cfg}, args...)...).Output()
		if err != nil {
			t.Fatalf("token %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	op, view, short := mint("--role", "operator", "--ttl", "1h"), mint("--role", "viewer"), mint("--role", "operator", "--ttl", "1s")
	p := startGateway(t, "--sim", "--config", cfg)

	c, hello := dialRelay(t, p, "token="+op)
	if hello["role"] != "operator" {
		t.Fatalf("hello %v", hello)
	}
	reply, _ := c.call(map[string]any{"op": "set", "relay": "pump", "state": "on"})
	wantOK(t, reply, "pump", "on")
	v, _ := dialRelay(t, p, "token="+view)
	reply, _ = v.call(map[string]any{"op": "toggle", "relay": "pump"})
	wantError(t, reply, "forbidden")

	tampered := strings.Replace(view, ".viewer.", ".operator.", 1)
	time.Sleep(1100 * time.Millisecond) // let the 1 s token expire
	for name, tok := range map[string]string{"tampered": tampered, "expired": short, "garbage": "eg1.x.y.z.w"} {
		if _, err := dialWS(t, p.wsURL("token="+tok), nil, "relay-control.v1"); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("%s token: %v, want 401", name, err)
		}
	}
	if strings.Contains(p.out.String(), op) || strings.Contains(p.out.String(), view) {
		t.Fatal("a token appears in the gateway's log")
	}
	// Refusals of the subcommand itself.
	if err := exec.Command(binPath, "token", "--config", cfg, "--role", "admin").Run(); err == nil {
		t.Fatal("token --role admin succeeded")
	}
}
