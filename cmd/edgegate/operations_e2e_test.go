package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics with the Prometheus text parser and returns every
// sample as "name{label="v",...}" → value.
func scrape(t *testing.T, p *gatewayProc) map[string]float64 {
	t.Helper()
	resp, body := p.httpGet("/metrics")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse as Prometheus text: %v\n%s", err, body)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			key := name
			if len(m.GetLabel()) > 0 {
				var parts []string
				for _, l := range m.GetLabel() {
					parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
				}
				key += "{" + strings.Join(parts, ",") + "}"
			}
			out[key] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

func TestMetricsMoveWithTraffic(t *testing.T) {
	p := startGateway(t, "--sim")
	before := scrape(t, p)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_open_fds", "edgegate_uptime_seconds"} {
		if _, ok := before[name]; !ok {
			t.Fatalf("/metrics lacks %s", name)
		}
	}
	if !hasBuildInfo(before) {
		t.Fatal("/metrics lacks edgegate_build_info with the version and Go version")
	}
	if before[`edgegate_device_up{device="room"}`] != 1 || before[`edgegate_device_up{device="board"}`] != 1 {
		t.Fatalf("device health gauges: room=%v board=%v", before[`edgegate_device_up{device="room"}`], before[`edgegate_device_up{device="board"}`])
	}

	c, _ := dialRelay(t, p, "")
	s, _ := dialSensors(t, p, "")
	s.call(map[string]any{"op": "subscribe", "sensors": []string{"room.*"}})
	for _, st := range []string{"on", "off", "on"} {
		reply, _ := c.call(map[string]any{"op": "set", "relay": "pump", "state": st})
		wantOK(t, reply, "pump", st)
	}
	p.httpPost("/sim/gpio/GPIO22?fail=unplugged")
	reply, _ := c.call(map[string]any{"op": "set", "relay": "valve_open", "state": "on"})
	wantError(t, reply, "device_error")
	dialWS(t, p.wsURL(""), nil, "no-such-protocol") // refused: 400
	time.Sleep(1500 * time.Millisecond)             // a BME280 sample or two

	after := scrape(t, p)
	checks := []struct {
		name string
		min  float64 // at least this much more than before
	}{
		{`edgegate_relay_changes_total{relay="pump",source="client"}`, 3},
		{`edgegate_relay_write_errors_total{relay="valve_open"}`, 1},
		{`edgegate_messages_received_total{protocol="relay-control.v1"}`, 4},
		{`edgegate_messages_sent_total{protocol="relay-control.v1"}`, 4},
		{`edgegate_bytes_received_total{protocol="relay-control.v1"}`, 100},
		{`edgegate_messages_sent_total{protocol="sensor-stream.v1"}`, 3},
		{`edgegate_handshakes_rejected_total{reason="subprotocol"}`, 1},
		{`edgegate_sensor_samples_total`, 1},
	}
	for _, ck := range checks {
		if got := after[ck.name] - before[ck.name]; got < ck.min {
			t.Errorf("%s moved by %v, want at least %v", ck.name, got, ck.min)
		}
	}
	if after[`edgegate_connections{protocol="relay-control.v1"}`] != 1 || after[`edgegate_connections{protocol="sensor-stream.v1"}`] != 1 {
		t.Errorf("connection gauges: %v %v", after[`edgegate_connections{protocol="relay-control.v1"}`], after[`edgegate_connections{protocol="sensor-stream.v1"}`])
	}
	// The default sample_batch (5 ms); no stream here is faster.
	if w, ok := after[`edgegate_sensor_batch_window_seconds`]; !ok || w != 0.005 || after[`edgegate_sensor_batched_streams`] != 0 {
		t.Errorf("batch gauges: window %v (present %v), %v streams", w, ok, after[`edgegate_sensor_batched_streams`])
	}
	if after[`edgegate_device_up{device="valve_open"}`] != 0 {
		t.Errorf("valve_open's failed write not shown as down")
	}
}

func hasBuildInfo(m map[string]float64) bool {
	for k, v := range m {
		if strings.HasPrefix(k, "edgegate_build_info{") && strings.Contains(k, `version="dev"`) && strings.Contains(k, `go_version="go1.`) && v == 1 {
			return true
		}
	}
	return false
}

var auditRe = regexp.MustCompile(`(?m)^time=(\S+) level=INFO msg=audit (.*)$`)

// Every request to change a relay leaves one audit line: who, what, the
// source and the result, refusals included.
func TestAuditLog(t *testing.T) {
	cfg := writeConfig(t, `
auth:
  enabled: true
  keys:
    - {name: wallboard, key: viewer-key-0123456789, role: viewer}
    - {name: ops, key: operator-key-0123456789, role: operator}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
  - {name: door, driver: gpio, pin: GPIO24, max_pulse: 5s}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	op, _ := dialRelay(t, p, "token=operator-key-0123456789")
	v, _ := dialRelay(t, p, "token=viewer-key-0123456789")
	reply, _ := op.call(map[string]any{"op": "set", "relay": "pump", "state": "on"})
	wantOK(t, reply, "pump", "on")
	reply, _ = op.call(map[string]any{"op": "toggle", "relay": "pump"})
	wantOK(t, reply, "pump", "off")
	reply, _ = op.call(map[string]any{"op": "pulse", "relay": "door", "ms": 100})
	wantOK(t, reply, "door", "on")
	reply, _ = v.call(map[string]any{"op": "set", "relay": "pump", "state": "on"})
	wantError(t, reply, "forbidden")
	reply, _ = op.call(map[string]any{"op": "get", "relay": "pump"}) // reads are not audited
	wantOK(t, reply, "pump", "off")

	var lines []string
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		lines = lines[:0]
		for _, m := range auditRe.FindAllStringSubmatch(p.out.String(), -1) {
			lines = append(lines, m[2])
			if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`).MatchString(m[1]) {
				t.Fatalf("audit timestamp %q is not to the microsecond", m[1])
			}
		}
		if len(lines) >= 4 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := []string{
		`op=set relay=pump source=client who=ops role=operator remote=127.0.0.1:\d+ result=ok state=on`,
		`op=toggle relay=pump source=client who=ops role=operator remote=127.0.0.1:\d+ result=ok state=off`,
		`op=pulse relay=door source=client who=ops role=operator remote=127.0.0.1:\d+ result=ok state=on ms=100`,
		`op=set relay=pump source=client who=wallboard role=viewer remote=127.0.0.1:\d+ result=forbidden state=on`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d audit lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if !regexp.MustCompile("^" + w + "$").MatchString(lines[i]) {
			t.Fatalf("audit line %d:\n%s\nwant\n%s", i, lines[i], w)
		}
	}
}

// --log-level debug shows each connection and each message in and out.
func TestDebugLogShowsMessages(t *testing.T) {
	p := startGateway(t, "--sim", "--log-level", "debug")
	c, _ := dialRelay(t, p, "")
	reply, _ := c.call(map[string]any{"id": 42, "op": "get", "relay": "pump"})
	wantOK(t, reply, "pump", "off")
	deadline := time.Now().Add(3 * time.Second)
	for {
		out := p.out.String()
		if strings.Contains(out, "msg=\"session start\"") && strings.Contains(out, `msg="message in"`) &&
			strings.Contains(out, `msg="message out"`) && strings.Contains(out, `\"id\":42`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("debug log lacks per-connection and per-message lines:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
