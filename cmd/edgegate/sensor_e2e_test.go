package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
)

func dialSensors(t *testing.T, p *gatewayProc, query string) (*client, map[string]any) {
	t.Helper()
	c, err := dialWS(t, p.wsURL(query), nil, "sensor-stream.v1")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if c.hs.Protocol != "sensor-stream.v1" {
		t.Fatalf("negotiated %q", c.hs.Protocol)
	}
	hello := c.read()
	if hello["event"] != "hello" {
		t.Fatalf("first message is not hello: %v", hello)
	}
	return c, hello
}

// sensorIndex maps sensor names to their hello index.
func sensorIndex(t *testing.T, hello map[string]any) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, s := range hello["sensors"].([]any) {
		m := s.(map[string]any)
		out[m["name"].(string)] = int(m["index"].(float64))
	}
	return out
}

const waveConfig = `
gateway:
  limits: {subscriber_queue: 64, write_timeout: 20s}
sensors:
  - {name: wave, driver: sim-wave, interval: 1ms, period: 1s}
  - {name: slow, driver: sim-wave, interval: 200ms, period: 10s}
`

func TestSensorStreamJSONAndBinary(t *testing.T) {
	p := startGateway(t, "--sim", "--config", writeConfig(t, waveConfig))
	c, hello := dialSensors(t, p, "")
	idx := sensorIndex(t, hello)
	if len(idx) != 2 || idx["wave.value"] == idx["slow.value"] {
		t.Fatalf("hello sensors: %v", hello["sensors"])
	}

	// a plain name that matches nothing is an error; a pattern is not
	c.send(map[string]any{"id": 1, "op": "subscribe", "sensors": []string{"nope.value"}})
	wantError(t, c.read(), "unknown_sensor")
	reply, _ := c.call(map[string]any{"id": 2, "op": "subscribe", "sensors": []string{"nothing.*"}})
	if reply["ok"] != true || len(reply["sensors"].([]any)) != 0 {
		t.Fatalf("empty pattern: %v", reply)
	}
	for _, bad := range []map[string]any{
		{"op": "subscribe"},
		{"op": "subscribe", "sensors": []string{"*"}, "format": "xml"},
		{"op": "subscribe", "sensors": []string{"*"}, "max_hz": -1},
		{"op": "subscribe", "sensors": []string{"[bad"}},
	} {
		c.send(bad)
		wantError(t, c.read(), "bad_request")
	}
	c.send(map[string]any{"op": "fly"})
	wantError(t, c.read(), "unknown_op")

	// JSON: the reply, then the latest sample of each matched sensor, then new ones in seq order
	c.send(map[string]any{"id": 3, "op": "subscribe", "sensors": []string{"slow.*"}})
	reply = c.read()
	if reply["id"] != float64(3) || reply["ok"] != true || len(reply["sensors"].([]any)) != 1 {
		t.Fatalf("subscribe reply: %v", reply)
	}
	var lastSeq float64
	for i := 0; i < 3; i++ {
		s := c.read()
		if s["sensor"] != "slow.value" || s["unit"] != "" {
			t.Fatalf("sample %v", s)
		}
		v, seq, ts := s["value"].(float64), s["seq"].(float64), s["ts"].(float64)
		if v < -1 || v > 1 || seq <= lastSeq || ts < 1.7e12 {
			t.Fatalf("sample %v after seq %v", s, lastSeq)
		}
		lastSeq = seq
	}
	// unsubscribe names only what it removed: slow.value, not wave.value.
	reply, _ = c.call(map[string]any{"op": "unsubscribe", "sensors": []string{"*"}})
	if reply["ok"] != true || len(reply["sensors"].([]any)) != 1 || reply["sensors"].([]any)[0] != "slow.value" {
		t.Fatalf("unsubscribe: %v", reply)
	}
	c.expectSilence(500 * time.Millisecond)

	// binary: records whose index matches hello, max_hz decimation
	c.send(map[string]any{"op": "subscribe", "sensors": []string{"wave.value"}, "format": "binary", "max_hz": 50})
	if r := c.read(); r["ok"] != true {
		t.Fatalf("binary subscribe: %v", r)
	}
	var recs []protocol.Record
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		msg, op, err := c.readMsg(2 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if op != ws.OpBinary {
			t.Fatalf("got %v message %q, want binary records", op, msg)
		}
		var ok bool
		if recs, ok = protocol.DecodeRecords(msg, recs); !ok {
			t.Fatalf("binary message of %d bytes is not whole records", len(msg))
		}
	}
	if len(recs) < 20 || len(recs) > 70 {
		t.Fatalf("%d records in 1 s at max_hz 50", len(recs))
	}
	for i, r := range recs {
		if int(r.Index) != idx["wave.value"] || r.Flags != 0 || r.Value < -1 || r.Value > 1 {
			t.Fatalf("record %+v", r)
		}
		if i > 0 && (r.Seq <= recs[i-1].Seq || r.TsNanos-recs[i-1].TsNanos < int64(15*time.Millisecond)) {
			t.Fatalf("records %+v then %+v: not increasing or not decimated", recs[i-1], r)
		}
	}
}

// A subscriber that stops reading must not slow another; when it reads
// again it is told exactly how many samples it lost.
func TestSlowSubscriberDoesNotDelayOthers(t *testing.T) {
	p := startGateway(t, "--sim", "--config", writeConfig(t, strings.Replace(waveConfig, "  - {name: slow, driver: sim-wave, interval: 200ms, period: 10s}\n", "", 1)))

	// The stalled client has a tiny receive buffer, so the gateway's queue
	// for it fills within the stall.
	d := ws.Dialer{Protocols: []string{"sensor-stream.v1"}, Timeout: 5 * time.Second,
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			conn, err := nd.DialContext(ctx, network, addr)
			if err == nil {
				conn.(*net.TCPConn).SetReadBuffer(4096)
			}
			return conn, err
		}}
	conn, br, hs, err := d.Dial(context.Background(), p.wsURL(""))
	if err != nil {
		t.Fatal(err)
	}
	stalled := newClient(t, conn, br, hs)
	stalled.read() // hello
	stalled.send(map[string]any{"op": "subscribe", "sensors": []string{"*"}})

	fast, _ := dialSensors(t, p, "")
	fast.send(map[string]any{"op": "subscribe", "sensors": []string{"*"}})
	if r := fast.read(); r["ok"] != true {
		t.Fatalf("subscribe: %v", r)
	}

	// The fast one reads for 4 s while the stalled one reads nothing.
	start := time.Now()
	last := start
	var n int
	var maxGap time.Duration
	for time.Since(start) < 4*time.Second {
		m := fast.read()
		now := time.Now()
		if m["sensor"] == "wave.value" {
			n++
		}
		if gap := now.Sub(last); gap > maxGap && n > 1 {
			maxGap = gap
		}
		last = now
	}
	if maxGap > 100*time.Millisecond {
		t.Fatalf("the reading subscriber had a gap of %v while the other stalled", maxGap)
	}
	if n < 2400 { // ≥ 60% of the 4000 samples a 1 kHz sensor makes in 4 s, under -race on 2 cores
		t.Fatalf("the reading subscriber got %d samples in 4 s from a 1 kHz sensor", n)
	}

	// The stalled one reads again: every seq it missed is counted in dropped events.
	reply := stalled.read()
	if reply["ok"] != true {
		t.Fatalf("stalled subscribe reply: %v", reply)
	}
	var prevSeq, dropped, missing, got float64
	sawDropped := false
	for got < 3000 {
		b, _, err := stalled.readMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("stalled client, after %v samples: %v", got, err)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		if m["event"] == "dropped" {
			dropped += m["count"].(float64)
			sawDropped = true
			continue
		}
		seq := m["seq"].(float64)
		if prevSeq != 0 && seq != prevSeq+1 {
			missing += seq - prevSeq - 1
		}
		prevSeq = seq
		got++
		if sawDropped && got > 200 && missing == dropped {
			break
		}
	}
	if !sawDropped {
		t.Fatal("the stalled subscriber never saw a dropped event")
	}
	if missing != dropped {
		t.Fatalf("%v samples missing from the seq sequence, dropped events counted %v", missing, dropped)
	}
}

// The embedded demo streams every sensor: a snapshot first, then samples in
// seq order with plausible values, and binary records indexed as in hello.
func TestSimDemoSensors(t *testing.T) {
	p := startGateway(t, "--sim")
	c, hello := dialSensors(t, p, "")
	idx := sensorIndex(t, hello)
	for _, name := range []string{"room.temperature", "room.humidity", "room.pressure", "door_contact.state", "soil.temperature", "soil.humidity"} {
		if _, ok := idx[name]; !ok {
			t.Fatalf("hello lacks %s: %v", name, hello["sensors"])
		}
	}
	reply, _ := c.call(map[string]any{"id": 1, "op": "subscribe", "sensors": []string{"*"}})
	if reply["ok"] != true || len(reply["sensors"].([]any)) != len(idx) {
		t.Fatalf("subscribe *: %v", reply)
	}
	// The snapshot (one sample per sensor that has one) comes before
	// anything newer; then seq keeps increasing.
	seen := map[string]bool{}
	var lastSeq float64
	deadline := time.Now().Add(5 * time.Second)
	for len(seen) < len(idx) && time.Now().Before(deadline) {
		m := c.read()
		name, _ := m["sensor"].(string)
		if m["event"] != nil || name == "" {
			t.Fatalf("unexpected message %v", m)
		}
		seq := m["seq"].(float64)
		if seen[name] && seq <= lastSeq {
			t.Fatalf("seq went from %v to %v", lastSeq, seq)
		}
		if seen[name] {
			lastSeq = seq
		}
		seen[name] = true
		v := m["value"].(float64)
		ok := true
		switch name {
		case "room.temperature":
			ok = v > 10 && v < 35 && m["unit"] == "°C"
		case "room.humidity":
			ok = v >= 20 && v <= 80 && m["unit"] == "%RH"
		case "room.pressure":
			ok = v > 950 && v < 1050 && m["unit"] == "hPa"
		case "door_contact.state":
			ok = v == 0 || v == 1
		}
		if !ok {
			t.Fatalf("implausible sample %v", m)
		}
	}
	if len(seen) != len(idx) {
		t.Fatalf("in 5 s, samples of only %v (want all of %v)", seen, idx)
	}

	// Binary: the BME280's records carry the indices hello gave.
	b, _ := dialSensors(t, p, "")
	b.send(map[string]any{"op": "subscribe", "sensors": []string{"room.*"}, "format": "binary"})
	if r := b.read(); r["ok"] != true {
		t.Fatalf("binary subscribe: %v", r)
	}
	want := map[uint32]bool{uint32(idx["room.temperature"]): true, uint32(idx["room.humidity"]): true, uint32(idx["room.pressure"]): true}
	got := map[uint32]bool{}
	for len(got) < 3 {
		msg, op, err := b.readMsg(5 * time.Second)
		if err != nil || op != ws.OpBinary {
			t.Fatalf("binary read: %v %v", op, err)
		}
		recs, ok := protocol.DecodeRecords(msg, nil)
		if !ok {
			t.Fatalf("%d bytes are not whole records", len(msg))
		}
		for _, r := range recs {
			if !want[r.Index] {
				t.Fatalf("record index %d is not one of room.*'s %v", r.Index, want)
			}
			got[r.Index] = true
		}
	}

	// /healthz lists every device, each ok.
	_, body := p.httpGet("/healthz")
	var h struct {
		Devices []struct {
			Name string
			OK   bool
		}
	}
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, d := range h.Devices {
		names[d.Name] = true
		if !d.OK {
			t.Fatalf("device %s not ok: %s", d.Name, body)
		}
	}
	for _, n := range []string{"room", "door_contact", "soil", "board", "pump"} {
		if !names[n] {
			t.Fatalf("/healthz lacks %s: %s", n, body)
		}
	}
}
