package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mt "github.com/edgegate/edgegate/gateway/mqtt/mosquittotest"
)

// The MQTT tests run the real binary against a real Mosquitto and check
// what it publishes with a paho client subscribed from outside.

// mqttConfig is a gateway id with two relays (lamp's failsafe is on), a
// 100 Hz sensor and a door contact, bridged to url.
func mqttConfig(t *testing.T, id, url, extra string) string {
	t.Helper()
	return writeConfig(t, mqttYAML(id, url, extra))
}

func mqttYAML(id, url, extra string) string {
	return fmt.Sprintf(`
gateway:
  id: %s
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
  - {name: lamp, driver: gpio, pin: GPIO18, failsafe: on}
sensors:
  - {name: wave, driver: sim-wave, interval: 10ms, period: 1s}
  - {name: room, driver: bme280, bus: /dev/i2c-1, address: 0x76, interval: 1s}
  - {name: door, driver: gpio-input, pin: GPIO27, pull: up, device_class: door}
mqtt:
  url: %s
%s`, id, url, extra)
}

// mqttHealth returns /healthz's mqtt object.
func mqttHealth(t *testing.T, p *gatewayProc) map[string]any {
	t.Helper()
	_, body := p.httpGet("/healthz")
	var h struct {
		MQTT map[string]any `json:"mqtt"`
	}
	if err := json.Unmarshal(body, &h); err != nil || h.MQTT == nil {
		t.Fatalf("healthz without an mqtt object: %s", body)
	}
	return h.MQTT
}

func waitMQTTHealth(t *testing.T, p *gatewayProc, d time.Duration, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		h := mqttHealth(t, p)
		if ok(h) {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("mqtt health never showed %s within %v: %v", what, d, h)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func connected(h map[string]any) bool { return h["state"] == "connected" }

func TestMQTTDiscoveryCommandsAndShutdown(t *testing.T) {
	br := mt.Start(t, mt.Options{})
	base, node := "edgegate/gw_1", "edgegate_gw_1"
	w := br.Watch(t, "", "", base+"/#", "homeassistant/#")
	// A retained command left on the broker before the gateway connects.
	w.Publish(t, base+"/relay/pump/set", true, "on")

	p := startGateway(t, "--sim", "--config", mqttConfig(t, "gw.1", br.URL, ""))
	waitMQTTHealth(t, p, 15*time.Second, "connected", connected)
	w.WaitFor(t, 10*time.Second, "online", mt.Topic(base+"/status", "online"))

	// Discovery: every relay and sensor, with the contract's keys.
	configs := map[string]map[string]any{}
	for _, topic := range []string{
		"homeassistant/switch/" + node + "/pump/config",
		"homeassistant/switch/" + node + "/lamp/config",
		"homeassistant/sensor/" + node + "/wave_value/config",
		"homeassistant/sensor/" + node + "/room_temperature/config",
		"homeassistant/sensor/" + node + "/room_humidity/config",
		"homeassistant/sensor/" + node + "/room_pressure/config",
		"homeassistant/binary_sensor/" + node + "/door_state/config",
	} {
		m := w.WaitFor(t, 10*time.Second, topic, mt.Topic(topic, "*"))
		var c map[string]any
		if err := json.Unmarshal([]byte(m.Payload), &c); err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		for _, k := range []string{"name", "unique_id", "availability_topic", "payload_available", "payload_not_available", "qos", "device", "state_topic"} {
			if _, ok := c[k]; !ok {
				t.Errorf("%s has no %s: %v", topic, k, c)
			}
		}
		if c["availability_topic"] != base+"/status" || c["device"].(map[string]any)["name"] != "gw.1" {
			t.Errorf("%s: %v", topic, c)
		}
		configs[topic] = c
	}
	// Retained: a subscriber that comes later (Home Assistant restarting) gets them.
	late := br.Watch(t, "", "", "homeassistant/switch/"+node+"/+/config", base+"/relay/+")
	for _, topic := range []string{"homeassistant/switch/" + node + "/pump/config", base + "/relay/pump", base + "/relay/lamp"} {
		if m := late.WaitFor(t, 5*time.Second, "retained "+topic, mt.Topic(topic, "*")); !m.Retained {
			t.Errorf("%s is not retained", topic)
		}
	}
	late.C.Disconnect(0)
	sw := configs["homeassistant/switch/"+node+"/pump/config"]
	if sw["command_topic"] != base+"/relay/pump/set" || sw["state_topic"] != base+"/relay/pump" || sw["payload_on"] != "on" || sw["state_off"] != "off" || sw["unique_id"] != node+"_pump" {
		t.Errorf("switch: %v", sw)
	}
	hum := configs["homeassistant/sensor/"+node+"/room_humidity/config"]
	if hum["unit_of_measurement"] != "%" || hum["device_class"] != "humidity" || hum["state_class"] != "measurement" || hum["value_template"] != "{{ value_json.value }}" {
		t.Errorf("humidity: %v", hum)
	}
	if tc := configs["homeassistant/sensor/"+node+"/room_temperature/config"]; tc["device_class"] != "temperature" || tc["unit_of_measurement"] != "°C" {
		t.Errorf("temperature: %v", tc)
	}
	if door := configs["homeassistant/binary_sensor/"+node+"/door_state/config"]; door["device_class"] != "door" || door["payload_on"] != "1" || door["payload_off"] != "0" {
		t.Errorf("door: %v", door)
	}

	// The retained command switched nothing and was cleared.
	w.WaitFor(t, 5*time.Second, "the retained command cleared", func(m mt.Message) bool { return m.Topic == base+"/relay/pump/set" && m.Payload == "" })
	c, hello := dialRelay(t, p, "")
	for _, r := range hello["relays"].([]any) {
		if r := r.(map[string]any); r["name"] == "pump" && r["state"] != "off" {
			t.Fatalf("a retained command switched the pump: %v", r)
		}
	}

	// Commands: the relay switches and a relay-control.v1 client sees source mqtt.
	for _, tc := range []struct{ payload, want string }{{"on", "on"}, {"OFF", "off"}, {"toggle", "on"}, {`{"op":"set","state":"off"}`, "off"}, {`{"op":"pulse","ms":300,"id":7}`, "on"}} {
		w.Publish(t, base+"/relay/pump/set", false, tc.payload)
		ev := c.read()
		if ev["event"] != "state" || ev["relay"] != "pump" || ev["state"] != tc.want || ev["source"] != "mqtt" {
			t.Fatalf("after %q: %v", tc.payload, ev)
		}
		w.WaitFor(t, 5*time.Second, "pump "+tc.want, mt.Topic(base+"/relay/pump", tc.want))
	}
	w.WaitFor(t, 5*time.Second, "reply 7", func(m mt.Message) bool {
		return m.Topic == base+"/reply" && strings.Contains(m.Payload, `"id":7`) && strings.Contains(m.Payload, `"ok":true`)
	})
	if ev := c.read(); ev["state"] != "off" || ev["source"] != "pulse" {
		t.Fatalf("pulse end: %v", ev)
	}
	w.Publish(t, base+"/relay/pump/set", false, "bogus")
	w.WaitFor(t, 5*time.Second, "error event", func(m mt.Message) bool {
		return m.Topic == base+"/events" && strings.Contains(m.Payload, `"event":"error"`) && strings.Contains(m.Payload, `"code":"bad_request"`)
	})

	// Home Assistant's birth message: every config again.
	w.Reset()
	w.Publish(t, "homeassistant/status", false, "online")
	for topic := range configs {
		w.WaitFor(t, 5*time.Second, "re-published "+topic, mt.Topic(topic, "*"))
	}
	_, metrics := p.httpGet("/metrics")
	for _, want := range []string{"edgegate_mqtt_connected 1", `edgegate_mqtt_commands_total{result="ignored_retained"} 1`, "edgegate_mqtt_samples_sent_total"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
	c.conn.Close()

	// SIGTERM: the failsafe states are published, then offline.
	w.Reset()
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	w.WaitFor(t, 5*time.Second, "offline", mt.Topic(base+"/status", "offline"))
	var order []string
	for _, m := range w.Messages() {
		if m.Topic == base+"/relay/lamp" || m.Topic == base+"/status" {
			order = append(order, strings.TrimPrefix(m.Topic, base+"/")+"="+m.Payload)
		}
	}
	if strings.Join(order, " ") != "relay/lamp=on status=offline" {
		t.Fatalf("at SIGTERM: %v", order)
	}
	// A relay removed from the configuration: its discovery config is cleared.
	w.Reset()
	yaml := strings.Replace(mqttYAML("gw.1", br.URL, ""), "  - {name: lamp, driver: gpio, pin: GPIO18, failsafe: on}\n", "", 1)
	startGateway(t, "--sim", "--config", writeConfig(t, yaml), "--data-dir", p.dataDir)
	w.WaitFor(t, 10*time.Second, "lamp's config cleared", mt.Topic("homeassistant/switch/"+node+"/lamp/config", ""))
}

func TestMQTTBrokerOutageNoGap(t *testing.T) {
	br := mt.Start(t, mt.Options{Persist: true})
	w := br.WatchDurable(t, "e2e-samples", "edgegate/gw1/samples")
	p := startGateway(t, "--sim", "--config", mqttConfig(t, "gw1", br.URL, "  discovery: false\n"))
	waitMQTTHealth(t, p, 15*time.Second, "connected", connected)
	time.Sleep(time.Second)
	br.Stop()
	waitMQTTHealth(t, p, 10*time.Second, "the outage", func(h map[string]any) bool { return h["state"] != "connected" && h["last_error"] != "" })
	time.Sleep(10 * time.Second)
	if h := mqttHealth(t, p); num(h["buffered"]) < 800 {
		t.Fatalf("after 10 s down %v samples buffered, want ≥ 800 (100 Hz)", h["buffered"])
	}
	// Relay control never waits for the broker.
	c, _ := dialRelay(t, p, "")
	start := time.Now()
	if reply, _ := c.call(map[string]any{"op": "set", "relay": "pump", "state": "on", "id": 1}); reply["ok"] != true {
		t.Fatalf("set while the broker is down: %v", reply)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a relay set took %v with the broker down", d)
	}
	br.Restart()
	h := waitMQTTHealth(t, p, 40*time.Second, "reconnected and caught up", func(h map[string]any) bool { return connected(h) && num(h["buffered"]) < 50 })
	if num(h["reconnects"]) == 0 || num(h["dropped"]) != 0 {
		t.Fatalf("after the outage: %v", h)
	}
	var last uint64
	for s := range w.Seqs(t) {
		last = max(last, s)
	}
	w.WaitNoGap(t, 1, last, 20*time.Second)
}

func TestMQTTGatewayKilledLastWillNoGap(t *testing.T) {
	br := mt.Start(t, mt.Options{})
	w := br.Watch(t, "", "", "edgegate/gw1/samples", "edgegate/gw1/status")
	cfg := mqttConfig(t, "gw1", br.URL, "  discovery: false\n  keepalive: 1s\n")
	dataDir := t.TempDir()
	p := startGateway(t, "--sim", "--config", cfg, "--data-dir", dataDir)
	w.WaitFor(t, 15*time.Second, "online", mt.Topic("edgegate/gw1/status", "online"))
	time.Sleep(2 * time.Second)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	w.WaitFor(t, 10*time.Second, "the Last Will", mt.Topic("edgegate/gw1/status", "offline"))
	var killedAt uint64
	for s := range w.Seqs(t) {
		killedAt = max(killedAt, s)
	}
	startGateway(t, "--sim", "--config", cfg, "--data-dir", dataDir)
	w.WaitFor(t, 15*time.Second, "online again", mt.Topic("edgegate/gw1/status", "online"))
	w.WaitNoGap(t, 1, killedAt+300, 30*time.Second)
}

func TestMQTTThreeGateways(t *testing.T) {
	br := mt.Start(t, mt.Options{})
	w := br.Watch(t, "", "", "edgegate/#", "homeassistant/#")
	ids := []string{"alpha", "beta.2", "gamma"}
	levels := []string{"alpha", "beta_2", "gamma"}
	var gws []*gatewayProc
	for _, id := range ids {
		gws = append(gws, startGateway(t, "--sim", "--config", mqttConfig(t, id, br.URL, "")))
	}
	for i, l := range levels {
		w.WaitFor(t, 15*time.Second, l+" online", mt.Topic("edgegate/"+l+"/status", "online"))
		m := w.WaitFor(t, 10*time.Second, l+" pump config", mt.Topic("homeassistant/switch/edgegate_"+l+"/pump/config", "*"))
		var c struct {
			UniqueID          string `json:"unique_id"`
			CommandTopic      string `json:"command_topic"`
			AvailabilityTopic string `json:"availability_topic"`
			Device            struct {
				Identifiers []string
				Name        string
			}
		}
		json.Unmarshal([]byte(m.Payload), &c)
		if c.UniqueID != "edgegate_"+l+"_pump" || c.CommandTopic != "edgegate/"+l+"/relay/pump/set" ||
			c.AvailabilityTopic != "edgegate/"+l+"/status" || c.Device.Identifiers[0] != "edgegate_"+l || c.Device.Name != ids[i] {
			t.Errorf("%s: %+v", l, c)
		}
	}
	// A command to one gateway switches its pump only.
	w.Reset()
	w.Publish(t, "edgegate/beta_2/relay/pump/set", false, "on")
	w.WaitFor(t, 5*time.Second, "beta's pump on", mt.Topic("edgegate/beta_2/relay/pump", "on"))
	time.Sleep(500 * time.Millisecond)
	for _, m := range w.Messages() {
		if strings.HasSuffix(m.Topic, "/relay/pump") && m.Topic != "edgegate/beta_2/relay/pump" {
			t.Errorf("another gateway's pump changed: %+v", m)
		}
		if strings.HasSuffix(m.Topic, "/samples") {
			var b struct{ Samples []struct{ Sensor string } }
			json.Unmarshal([]byte(m.Payload), &b)
			if len(b.Samples) == 0 {
				t.Errorf("empty samples batch on %s", m.Topic)
			}
		}
	}
	for _, p := range gws {
		p.stop()
	}
	for _, l := range levels {
		w.WaitFor(t, 5*time.Second, l+" offline", mt.Topic("edgegate/"+l+"/status", "offline"))
	}
}

func TestMQTTCommandsOffAndWrongPassword(t *testing.T) {
	br := mt.Start(t, mt.Options{User: "gw", Password: "right", TLS: true})
	w := br.Watch(t, "gw", "right", "edgegate/#")
	pw := filepath.Join(t.TempDir(), "mqtt.password")
	os.WriteFile(pw, []byte("wrong\n"), 0o600)
	extra := fmt.Sprintf("  username: gw\n  password_file: %s\n  ca_file: %s\n  commands: false\n", pw, br.CAFile)
	p := startGateway(t, "--sim", "--config", mqttConfig(t, "gw1", br.URL, extra))
	h := waitMQTTHealth(t, p, 10*time.Second, "the refusal", func(h map[string]any) bool {
		return strings.Contains(fmt.Sprint(h["last_error"]), "refused the credentials")
	})
	if h["state"] != "connecting" || h["broker"] != br.URL {
		t.Fatalf("health: %v", h)
	}
	time.Sleep(3 * time.Second)
	if h := mqttHealth(t, p); num(h["reconnects"]) > 6 {
		t.Fatalf("%v attempts in about 3 s: busy-looping", h["reconnects"])
	}
	// The gateway serves meanwhile.
	if _, hello := dialRelay(t, p, ""); len(hello["relays"].([]any)) != 2 {
		t.Fatalf("hello: %v", hello)
	}
	// The password fixed in its file: connected over TLS, and with
	// commands: false nothing switches.
	os.WriteFile(pw, []byte("right\n"), 0o600)
	waitMQTTHealth(t, p, 40*time.Second, "connected", connected)
	w.WaitFor(t, 5*time.Second, "online", mt.Topic("edgegate/gw1/status", "online"))
	c, _ := dialRelay(t, p, "")
	w.Publish(t, "edgegate/gw1/relay/pump/set", false, "on")
	w.WaitFor(t, 5*time.Second, "forbidden", func(m mt.Message) bool {
		return m.Topic == "edgegate/gw1/events" && strings.Contains(m.Payload, `"code":"forbidden"`)
	})
	c.expectSilence(300 * time.Millisecond)
}

// TestMQTTAndUplinkCursors: the uplink and MQTT each have their own
// acknowledgement cursor; neither's acks trim the other's samples, and
// both get every sample.
func TestMQTTAndUplinkCursors(t *testing.T) {
	br := mt.Start(t, mt.Options{})
	out := filepath.Join(t.TempDir(), "samples.jsonl")
	backendAddr := freeAddr(t) // the backend starts later
	tokenFile := filepath.Join(t.TempDir(), "upstream.token")
	os.WriteFile(tokenFile, []byte(backendToken+"\n"), 0o600)
	extra := fmt.Sprintf("  discovery: false\nupstream:\n  url: ws://%s/uplink\n  token_file: %s\n", backendAddr, tokenFile)
	p := startGateway(t, "--sim", "--config", mqttConfig(t, "gw1", br.URL, extra))
	waitMQTTHealth(t, p, 15*time.Second, "connected", connected)
	// The backend is down: MQTT's acks do not trim the uplink's buffer.
	time.Sleep(3 * time.Second)
	if up, m := uplinkHealth(t, p), mqttHealth(t, p); num(up["buffer_depth"]) < 100 || num(m["buffered"]) > num(up["buffer_depth"])/2 {
		t.Fatalf("backend down: uplink buffer %v, mqtt buffer %v", up["buffer_depth"], m["buffered"])
	}
	// Now the broker is down and the backend up: the uplink's acks do not
	// trim MQTT's buffer.
	br.Stop()
	b := startBackend(t, backendAddr, out)
	waitHealth(t, p, 20*time.Second, "the uplink caught up", func(h map[string]any) bool {
		return h["state"] == "connected" && num(h["buffer_depth"]) < 50
	})
	time.Sleep(2 * time.Second)
	if m, up := mqttHealth(t, p), uplinkHealth(t, p); num(m["buffered"]) < 100 || num(up["buffer_depth"]) > num(m["buffered"])/2 {
		t.Fatalf("broker down: mqtt buffer %v, uplink buffer %v", m["buffered"], up["buffer_depth"])
	}
	br.Restart()
	waitMQTTHealth(t, p, 40*time.Second, "mqtt caught up", func(h map[string]any) bool { return connected(h) && num(h["buffered"]) < 50 })
	// The backend, which came up only after MQTT had acknowledged
	// hundreds of samples, still got the first ones (wave.value's, which
	// storedSeqs reads: the other sensors' seqs come between).
	seqs := waitStored(t, out, 1000, 20*time.Second)
	if seqs[0] > 5 {
		t.Fatalf("the backend's samples start at seq %d", seqs[0])
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] || seqs[i]-seqs[i-1] > 5 {
			t.Fatalf("the backend's seqs jump from %d to %d", seqs[i-1], seqs[i])
		}
	}
	if up, m := uplinkHealth(t, p), mqttHealth(t, p); num(up["dropped"]) != 0 || num(m["dropped"]) != 0 {
		t.Fatalf("dropped: uplink %v, mqtt %v", up["dropped"], m["dropped"])
	}
	b.stop()
}

// TestMQTTOutageCatchUp: a 60 s broker outage while a 100 Hz sensor
// streams is caught up (every seq at the subscriber) within 5 s of the
// broker's return.
func TestMQTTOutageCatchUp(t *testing.T) {
	t.Parallel() // a minute of waiting: let the other tests run meanwhile
	br := mt.Start(t, mt.Options{Persist: true})
	w := br.WatchDurable(t, "e2e-catch-up", "edgegate/gw1/samples")
	p := startGateway(t, "--sim", "--config", mqttConfig(t, "gw1", br.URL, "  discovery: false\n"))
	waitMQTTHealth(t, p, 15*time.Second, "connected", connected)
	br.Stop()
	time.Sleep(60 * time.Second)
	before := mqttHealth(t, p)
	if num(before["buffered"]) < 5000 {
		t.Fatalf("after 60 s down: %v", before)
	}
	br.Restart()
	back := time.Now()
	last := num(before["last_seq"])
	w.WaitNoGap(t, 1, last, 30*time.Second)
	took := time.Since(back)
	t.Logf("%v samples buffered over 60 s; every seq up to %d at the subscriber %v after the broker's return", before["buffered"], last, took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Fatalf("caught up %v after the broker's return, want < 5 s", took)
	}
}
