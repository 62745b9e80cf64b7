package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/hardware"
	mt "github.com/edgegate/edgegate/gateway/mqtt/mosquittotest"
	"github.com/edgegate/edgegate/gateway/relay"
	"github.com/edgegate/edgegate/gateway/sensor"
	"github.com/edgegate/edgegate/protocol"
)

// rig is a relay service and a sensor hub on simulated hardware with a
// bridge to a broker.
type rig struct {
	t      testing.TB
	cfg    *config.Config
	relays *relay.Service
	hub    *sensor.Hub
	bridge *Bridge
	logs   *logBuf
	once   sync.Once
}

type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const rigYAML = `
gateway: {id: unit.one}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
  - {name: lamp, driver: gpio, pin: GPIO18, failsafe: on}
sensors:
  - {name: wave, driver: sim-wave, interval: 10ms, period: 1s}
  - {name: door, driver: gpio-input, pin: GPIO27, device_class: door}
mqtt:
  url: %s
%s`

func startRig(t *testing.T, dataDir, url, extra string) *rig {
	t.Helper()
	return startRigYAML(t, dataDir, fmt.Sprintf(rigYAML, url, extra))
}

func startRigYAML(t testing.TB, dataDir, yaml string) *rig {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	hw := firmwaresim.NewHardware(nil)
	t.Cleanup(func() { hw.Close() })
	if err := hardware.Simulate(hw, cfg); err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	initial, err := relay.LoadInitial(dataDir, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	devs := hardware.NewDevicePool(cfg.Devices, hw, log)
	t.Cleanup(func() { devs.Close() })
	env := hardware.Env{Buses: hw, Logger: log, Sim: true, Relays: cfg.Relays, Initial: initial.On, Devices: devs, DataDir: dataDir}
	rs, err := relay.New(cfg, env, relay.Options{Initial: initial})
	if err != nil {
		t.Fatal(err)
	}
	hub, err := sensor.New(cfg, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{MQTT: cfg.MQTT, Config: cfg, Version: "test", DataDir: dataDir, Relays: rs, Hub: hub, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	rs.Start(context.Background())
	hub.Start()
	b.Start()
	r := &rig{t: t, cfg: cfg, relays: rs, hub: hub, bridge: b, logs: logs}
	t.Cleanup(r.stop)
	return r
}

// stop shuts down in the gateway's order: hub, relays (failsafe), bridge.
func (r *rig) stop() {
	r.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.hub.Stop()
		r.relays.Shutdown(ctx)
		r.bridge.Stop(ctx)
		if r.t.Failed() {
			r.t.Logf("gateway log:\n%s", r.logs.String())
		}
	})
}

func waitState(t testing.TB, b *Bridge, state string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for b.Health().State != state {
		if time.Now().After(deadline) {
			t.Fatalf("bridge state %q, want %q (last error %q)", b.Health().State, state, b.Health().LastError)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCommandsStatesAndShutdown(t *testing.T) {
	br := mt.Start(t, mt.Options{})
	base := "edgegate/unit_one"
	w := br.Watch(t, "", "", base+"/#")
	// A retained command left on the broker before the gateway connects.
	w.Publish(t, base+"/relay/pump/set", true, "on")
	r := startRig(t, t.TempDir(), br.URL, "")
	w.WaitFor(t, 10*time.Second, "status online", mt.Topic(base+"/status", "online"))
	w.WaitFor(t, 5*time.Second, "pump off", mt.Topic(base+"/relay/pump", "off"))
	w.WaitFor(t, 5*time.Second, "lamp off", mt.Topic(base+"/relay/lamp", "off"))
	w.WaitFor(t, 5*time.Second, "retained command cleared", func(m mt.Message) bool {
		return m.Topic == base+"/relay/pump/set" && m.Payload == ""
	})
	w.WaitFor(t, 5*time.Second, "error event for the retained command", func(m mt.Message) bool {
		return m.Topic == base+"/events" && strings.Contains(m.Payload, `"event":"error"`) && strings.Contains(m.Payload, "retained")
	})
	if info, _ := r.relays.Get("pump"); info.On {
		t.Fatal("a retained command switched the pump")
	}
	if r.bridge.Metrics().CommandsIgnored != 1 {
		t.Errorf("ignored = %d", r.bridge.Metrics().CommandsIgnored)
	}
	// A fresh subscriber gets no retained command.
	w2 := br.Watch(t, "", "", base+"/relay/pump/set")
	time.Sleep(300 * time.Millisecond)
	if msgs := w2.Messages(); len(msgs) != 0 {
		t.Fatalf("retained command still on the broker: %+v", msgs)
	}

	for _, tc := range []struct{ payload, want string }{{"on", "on"}, {" OFF ", "off"}, {"toggle", "on"}, {`{"op":"set","state":"off"}`, "off"}} {
		w.Reset()
		w.Publish(t, base+"/relay/pump/set", false, tc.payload)
		w.WaitFor(t, 5*time.Second, "pump "+tc.want, mt.Topic(base+"/relay/pump", tc.want))
		w.WaitFor(t, 5*time.Second, "state event from mqtt", func(m mt.Message) bool {
			return m.Topic == base+"/events" && strings.Contains(m.Payload, `"source":"mqtt"`) && strings.Contains(m.Payload, `"state":"`+tc.want+`"`)
		})
	}
	w.Reset()
	w.Publish(t, base+"/relay/pump/set", false, `{"op":"pulse","ms":200,"id":7}`)
	w.WaitFor(t, 5*time.Second, "reply", func(m mt.Message) bool {
		return m.Topic == base+"/reply" && strings.Contains(m.Payload, `"id":7`) && strings.Contains(m.Payload, `"ok":true`)
	})
	w.WaitFor(t, 5*time.Second, "pulse on", mt.Topic(base+"/relay/pump", "on"))
	w.WaitFor(t, 5*time.Second, "pulse end", mt.Topic(base+"/relay/pump", "off"))
	for _, tc := range []struct{ topic, payload, code string }{
		{base + "/relay/pump/set", "explode", "bad_request"},
		{base + "/relay/nope/set", "on", "unknown_relay"},
		{base + "/relay/pump/set", `{"op":"pulse","ms":999999999,"id":"x"}`, "bad_request"},
	} {
		w.Reset()
		w.Publish(t, tc.topic, false, tc.payload)
		w.WaitFor(t, 5*time.Second, "error "+tc.code, func(m mt.Message) bool {
			var ev struct{ Event, Relay, Code, Message string }
			return m.Topic == base+"/events" && json.Unmarshal([]byte(m.Payload), &ev) == nil && ev.Event == "error" && ev.Code == tc.code && ev.Message != ""
		})
	}
	// Sensor states: retained, rate-capped at 1 Hz.
	w.Reset()
	time.Sleep(2200 * time.Millisecond)
	n := 0
	for _, m := range w.Messages() {
		if m.Topic == base+"/sensor/wave/value" {
			n++
			var st struct {
				Value float64
				Unit  string
				TS    int64
				Seq   uint64
			}
			if err := json.Unmarshal([]byte(m.Payload), &st); err != nil || st.Seq == 0 || st.TS == 0 {
				t.Fatalf("sensor state %q: %v", m.Payload, err)
			}
		}
	}
	if n < 1 || n > 3 {
		t.Errorf("%d wave states in 2.2 s at sensor_max_hz 1", n)
	}
	// Shutdown: failsafe states (lamp on), then offline.
	r.relays.Set(context.Background(), "lamp", false, "test")
	w.Reset()
	r.stop()
	w.WaitFor(t, 5*time.Second, "offline", mt.Topic(base+"/status", "offline"))
	var order []string
	for _, m := range w.Messages() {
		if m.Topic == base+"/relay/lamp" || m.Topic == base+"/status" {
			order = append(order, m.Topic[len(base)+1:]+"="+m.Payload)
		}
	}
	if strings.Join(order, ",") != "relay/lamp=on,status=offline" {
		t.Errorf("at shutdown: %v", order)
	}
}

func TestCommandsOff(t *testing.T) {
	br := mt.Start(t, mt.Options{})
	base := "edgegate/unit_one"
	w := br.Watch(t, "", "", base+"/#")
	r := startRig(t, t.TempDir(), br.URL, "  commands: false\n  discovery: false\n")
	w.WaitFor(t, 10*time.Second, "status online", mt.Topic(base+"/status", "online"))
	w.Publish(t, base+"/relay/pump/set", false, "on")
	w.WaitFor(t, 5*time.Second, "forbidden", func(m mt.Message) bool {
		return m.Topic == base+"/events" && strings.Contains(m.Payload, `"code":"forbidden"`)
	})
	if info, _ := r.relays.Get("pump"); info.On {
		t.Fatal("commands: false switched the pump")
	}
}

func TestWrongPasswordAndTLS(t *testing.T) {
	br := mt.Start(t, mt.Options{User: "gw", Password: "right", TLS: true})
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("wrong\n"), 0o600)
	r := startRig(t, t.TempDir(), br.URL, fmt.Sprintf("  username: gw\n  password_file: %s\n  ca_file: %s\n", pwFile, br.CAFile))
	time.Sleep(3 * time.Second)
	h := r.bridge.Health()
	if h.State != StateConnecting || !strings.Contains(h.LastError, "refused the credentials") {
		t.Fatalf("health with a wrong password: %+v", h)
	}
	if h.Reconnects > 5 {
		t.Errorf("%d attempts in 3 s: busy-looping", h.Reconnects)
	}
	// The right password (read at each attempt) connects, over TLS.
	os.WriteFile(pwFile, []byte("right\n"), 0o600)
	waitState(t, r.bridge, StateConnected, 40*time.Second)
	w := br.Watch(t, "gw", "right", "edgegate/unit_one/status")
	w.WaitFor(t, 5*time.Second, "online over TLS", mt.Topic("edgegate/unit_one/status", "online"))
}

func TestDiscovery(t *testing.T) {
	br := mt.Start(t, mt.Options{})
	data := t.TempDir()
	w := br.Watch(t, "", "", "homeassistant/#")
	r := startRig(t, data, br.URL, "")
	node := "edgegate_unit_one"
	want := map[string]string{
		"homeassistant/switch/" + node + "/pump/config":              "switch",
		"homeassistant/switch/" + node + "/lamp/config":              "switch",
		"homeassistant/sensor/" + node + "/wave_value/config":        "sensor",
		"homeassistant/binary_sensor/" + node + "/door_state/config": "binary_sensor",
	}
	configs := map[string]map[string]any{}
	for topic := range want {
		m := w.WaitFor(t, 10*time.Second, topic, mt.Topic(topic, "*"))
		var c map[string]any
		if err := json.Unmarshal([]byte(m.Payload), &c); err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		configs[topic] = c
	}
	sw := configs["homeassistant/switch/"+node+"/pump/config"]
	for k, v := range map[string]any{"command_topic": "edgegate/unit_one/relay/pump/set", "state_topic": "edgegate/unit_one/relay/pump",
		"payload_on": "on", "payload_off": "off", "state_on": "on", "state_off": "off", "name": "pump", "unique_id": node + "_pump",
		"availability_topic": "edgegate/unit_one/status", "payload_available": "online", "payload_not_available": "offline", "qos": 1.0} {
		if sw[k] != v {
			t.Errorf("switch %s = %v, want %v", k, sw[k], v)
		}
	}
	dev := sw["device"].(map[string]any)
	if dev["name"] != "unit.one" || dev["manufacturer"] != "edgegate" || dev["sw_version"] != "test" || dev["identifiers"].([]any)[0] != node {
		t.Errorf("device %v", dev)
	}
	bs := configs["homeassistant/binary_sensor/"+node+"/door_state/config"]
	if bs["device_class"] != "door" || bs["payload_on"] != "1" || bs["value_template"] != "{{ value_json.value }}" {
		t.Errorf("binary_sensor %v", bs)
	}
	s := configs["homeassistant/sensor/"+node+"/wave_value/config"]
	if s["state_class"] != "measurement" || s["state_topic"] != "edgegate/unit_one/sensor/wave/value" {
		t.Errorf("sensor %v", s)
	}
	// Home Assistant's birth message: every config again.
	w.Reset()
	w.Publish(t, "homeassistant/status", false, "online")
	for topic := range want {
		w.WaitFor(t, 5*time.Second, "re-published "+topic, mt.Topic(topic, "*"))
	}
	// A relay removed from the configuration: its config is cleared.
	r.stop()
	w.Reset()
	yaml := strings.Replace(fmt.Sprintf(rigYAML, br.URL, ""), "  - {name: lamp, driver: gpio, pin: GPIO18, failsafe: on}\n", "", 1)
	startRigYAML(t, data, yaml)
	w.WaitFor(t, 10*time.Second, "lamp config cleared", mt.Topic("homeassistant/switch/"+node+"/lamp/config", ""))
}

func TestSamplesNoGapAcrossOutage(t *testing.T) {
	br := mt.Start(t, mt.Options{Persist: true})
	base := "edgegate/unit_one"
	w := br.WatchDurable(t, "samples-watcher", base+"/samples")
	r := startRig(t, t.TempDir(), br.URL, "  discovery: false\n")
	waitState(t, r.bridge, StateConnected, 10*time.Second)
	time.Sleep(time.Second)
	br.Stop()
	time.Sleep(2 * time.Second)
	br.Restart()
	waitState(t, r.bridge, StateConnected, 30*time.Second)
	time.Sleep(time.Second)
	// Every sample taken so far arrives (those of the outage included).
	w.WaitNoGap(t, 1, r.bridge.Metrics().LastSeq, 20*time.Second)
}

func TestNoGoroutineLeak(t *testing.T) {
	br := mt.Start(t, mt.Options{})
	before := runtime.NumGoroutine()
	for range 3 {
		r := startRig(t, t.TempDir(), br.URL, "")
		waitState(t, r.bridge, StateConnected, 10*time.Second)
		br.Stop()
		waitState(t, r.bridge, StateConnecting, 10*time.Second)
		br.Restart()
		waitState(t, r.bridge, StateConnected, 30*time.Second)
		r.stop()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines %d → %d:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = protocol.SourceMQTT
}

// TestBufferBoundBrokerAway: with no broker the gateway runs, the buffer
// keeps to buffer_max_bytes by dropping the oldest samples (counted), and
// relay control does not wait.
func TestBufferBoundBrokerAway(t *testing.T) {
	port := mt.FreePort(t) // nothing listens there
	r := startRig(t, t.TempDir(), fmt.Sprintf("mqtt://127.0.0.1:%d", port), "  buffer_max_bytes: 16KiB\n")
	start := time.Now()
	if err := r.relays.Set(context.Background(), "pump", true, "test"); err != nil || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("set with no broker: %v after %v", err, time.Since(start))
	}
	deadline := time.Now().Add(30 * time.Second)
	for r.bridge.Metrics().Dropped == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing dropped: %+v", r.bridge.Metrics())
		}
		time.Sleep(50 * time.Millisecond)
	}
	h := r.bridge.Health()
	if h.State != StateConnecting || !strings.Contains(h.LastError, "connection refused") || h.Dropped == 0 {
		t.Fatalf("health: %+v", h)
	}
	if m := r.bridge.Metrics(); m.BufferBytes > 40<<10 {
		t.Fatalf("buffer %d bytes for a bound of 16 KiB", m.BufferBytes)
	}
	if !strings.Contains(r.logs.String(), "mqtt.buffer_max_bytes") {
		t.Fatalf("no log line naming mqtt.buffer_max_bytes:\n%s", r.logs.String())
	}
}

// TestMutualTLS: a broker that requires a client certificate takes the
// configured cert_file and key_file.
func TestMutualTLS(t *testing.T) {
	br := mt.Start(t, mt.Options{TLS: true, ClientCerts: true})
	r := startRig(t, t.TempDir(), br.URL, fmt.Sprintf("  ca_file: %s\n  cert_file: %s\n  key_file: %s\n", br.CAFile, br.ClientCert, br.ClientKey))
	waitState(t, r.bridge, StateConnected, 10*time.Second)
	// Without the certificate the broker refuses the handshake.
	r2 := startRig(t, t.TempDir(), br.URL, fmt.Sprintf("  ca_file: %s\n  client_id: other\n", br.CAFile))
	time.Sleep(time.Second)
	if h := r2.bridge.Health(); h.State == StateConnected || h.LastError == "" {
		t.Fatalf("connected without a client certificate: %+v", h)
	}
}
