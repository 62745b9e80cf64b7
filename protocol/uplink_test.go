package protocol

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"
)

var (
	goldenRelays = []RelayInfo{
		{Name: "pump", On: true, Driver: "gpio", ChangedAt: 1732450000123, MaxPulse: 60000},
		{Name: "valve", Driver: "serial-board", Interlock: "valves"},
	}
	goldenSensors = []SensorInfo{
		{Name: "room.temperature", Unit: "°C", Index: 0, IntervalMS: 1000},
		{Name: "door.open", Index: 1, IntervalMS: 50},
	}
)

// The uplink's messages, byte for byte as the gateway has always sent them.
func TestUplinkGolden(t *testing.T) {
	samples := [][]byte{
		AppendSample(nil, "room.temperature", "°C", 21.37, 1732450000123, 41),
		AppendSample(nil, "door.open", "", 1, 1732450000124, 42),
	}
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"hello", AppendUplinkHello(nil, `gw"1`, "v1.2", goldenRelays, goldenSensors),
			`{"event":"hello","gateway":"gw\"1","version":"v1.2","relays":[` +
				`{"name":"pump","state":"on","driver":"gpio","changed_at":1732450000123,"max_pulse_ms":60000},` +
				`{"name":"valve","state":"off","driver":"serial-board","changed_at":0,"interlock":"valves"}],"sensors":[` +
				`{"name":"room.temperature","unit":"°C","index":0,"interval_ms":1000},` +
				`{"name":"door.open","unit":"","index":1,"interval_ms":50}]}`},
		{"empty hello", AppendUplinkHello(nil, "gw", "dev", nil, nil),
			`{"event":"hello","gateway":"gw","version":"dev","relays":[],"sensors":[]}`},
		{"samples", AppendSamples(nil, len(samples), func(i int) []byte { return samples[i] }),
			`{"event":"samples","samples":[` +
				`{"sensor":"room.temperature","value":21.37,"unit":"°C","ts":1732450000123,"seq":41},` +
				`{"sensor":"door.open","value":1,"unit":"","ts":1732450000124,"seq":42}]}`},
		{"one sample", AppendSamples([]byte("old"), 1, func(int) []byte { return samples[1] })[3:],
			`{"event":"samples","samples":[{"sensor":"door.open","value":1,"unit":"","ts":1732450000124,"seq":42}]}`},
		{"no samples", AppendSamples(nil, 0, nil), `{"event":"samples","samples":[]}`},
		{"ack", AppendAck(nil, 42), `{"op":"ack","seq":42}`},
		{"ack max", AppendAck(nil, math.MaxUint64), `{"op":"ack","seq":18446744073709551615}`},
	} {
		if string(c.got) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, c.got, c.want)
		}
		if !json.Valid(c.got) {
			t.Errorf("%s: %s is not JSON", c.name, c.got)
		}
	}
}

// A hello decodes back to what it was made of: every relay and sensor
// as AppendRelay and AppendSensor encode it alone, in order.
func TestUplinkHelloRoundTrip(t *testing.T) {
	var hello struct {
		Event, Gateway, Version string
		Relays, Sensors         []json.RawMessage
	}
	if err := json.Unmarshal(AppendUplinkHello(nil, "gw\n<1>", "v\u2028", goldenRelays, goldenSensors), &hello); err != nil {
		t.Fatal(err)
	}
	if hello.Event != "hello" || hello.Gateway != "gw\n<1>" || hello.Version != "v\u2028" ||
		len(hello.Relays) != len(goldenRelays) || len(hello.Sensors) != len(goldenSensors) {
		t.Fatalf("hello decodes to %+v", hello)
	}
	for i := range goldenRelays {
		if want := AppendRelay(nil, &goldenRelays[i]); string(hello.Relays[i]) != string(want) {
			t.Errorf("relay %d: %s, want %s", i, hello.Relays[i], want)
		}
	}
	for i := range goldenSensors {
		if want := AppendSensor(nil, &goldenSensors[i]); string(hello.Sensors[i]) != string(want) {
			t.Errorf("sensor %d: %s, want %s", i, hello.Sensors[i], want)
		}
	}
}

// An ack the backend sends decodes to its seq; what is not a whole number
// is refused with the message the backend is answered with.
func TestAckSeq(t *testing.T) {
	const bad = `ack needs "seq": the highest sample seq stored, a whole number`
	for _, seq := range []uint64{0, 1, 42, 1 << 53, math.MaxUint64} {
		var r Request
		if err := DecodeRequest(AppendAck(nil, seq), &r); err != nil || r.Op != OpAck {
			t.Fatalf("decode ack %d: %v %+v", seq, err, r)
		}
		if got, err := r.AckSeq(); err != nil || got != seq {
			t.Fatalf("ack %d decodes to %d, %v", seq, got, err)
		}
	}
	for _, c := range []struct {
		msg     string
		want    uint64
		wantErr bool
	}{
		{`{"op":"ack","seq":7}`, 7, false},
		{`{"id":3,"op":"ack","seq": 7 }`, 7, false},
		{`{"op":"ack","SEQ":8}`, 8, false}, // keys match as encoding/json matches them
		{`{"op":"ack","seq":1,"seq":9}`, 9, false},
		{`{"op":"ack","seq":null}`, 0, false}, // acknowledges nothing
		{`{"op":"ack"}`, 0, true},
		{`{"op":"ack","seq":-1}`, 0, true},
		{`{"op":"ack","seq":1.5}`, 0, true},
		{`{"op":"ack","seq":1.0}`, 0, true},
		{`{"op":"ack","seq":1e3}`, 0, true},
		{`{"op":"ack","seq":18446744073709551616}`, 0, true},
		{`{"op":"ack","seq":"5"}`, 0, true},
		{`{"op":"ack","seq":true}`, 0, true},
		{`{"op":"ack","seq":[1]}`, 0, true},
		{`{"op":"ack","seq":{}}`, 0, true},
	} {
		var r Request
		if err := DecodeRequest([]byte(c.msg), &r); err != nil {
			t.Fatalf("%s: %v", c.msg, err)
		}
		got, err := r.AckSeq()
		if c.wantErr {
			if err == nil || err.Error() != bad {
				t.Errorf("%s: %d, %v; want the error %q", c.msg, got, err, bad)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %d, %v; want %d", c.msg, got, err, c.want)
		}
		if oldSeq, oldErr := ackSeqByJSON([]byte(c.msg)); oldErr != nil || oldSeq != got {
			t.Errorf("%s: encoding/json reads %d, %v", c.msg, oldSeq, oldErr)
		}
	}
}

// ackSeqByJSON reads an ack's seq as the gateway did before AckSeq, with
// encoding/json: the reference AckSeq must agree with.
func ackSeqByJSON(payload []byte) (uint64, error) {
	var ack struct {
		Seq json.RawMessage `json:"seq"`
	}
	json.Unmarshal(payload, &ack)
	var seq uint64
	err := json.Unmarshal(ack.Seq, &seq)
	return seq, err
}

// FuzzAckSeqMatchesJSON: for any request DecodeRequest accepts, AckSeq
// never panics and agrees with encoding/json's reading of "seq" as a
// uint64 (what the gateway did before).
func FuzzAckSeqMatchesJSON(f *testing.F) {
	fuzzDecoded(f, []string{
		`{"op":"ack","seq":42}`, `{"op":"ack","seq":null}`, `{"op":"ack"}`, `{"op":"ack","seq":-1}`,
		`{"op":"ack","seq":18446744073709551616}`, `{"op":"ack","seq":1.0}`, `{"op":"ack","seq":0}`,
		`{"op":"ack","seq":007}`, `{"op":"ack","Seq":"1"}`,
	}, func(t *testing.T, data []byte, r *Request) {
		seq, err := r.AckSeq()
		oldSeq, oldErr := ackSeqByJSON(data)
		if (err != nil) != (oldErr != nil) || seq != oldSeq {
			t.Fatalf("%q: AckSeq %d, %v; encoding/json %d, %v", data, seq, err, oldSeq, oldErr)
		}
	})
}

// The uplink's encoders and AckSeq allocate nothing once the buffer is
// warm, as the sample path needs.
func TestUplinkAllocs(t *testing.T) {
	samples := make([][]byte, 256)
	for i := range samples {
		samples[i] = AppendSample(nil, "room.temperature", "°C", 21.37, 1732450000123, uint64(i))
	}
	buf := make([]byte, 0, 64<<10)
	r := Request{Op: OpAck, Seq: json.RawMessage(strconv.FormatUint(math.MaxUint64, 10))}
	for name, fn := range map[string]func(){
		"AppendSamples":     func() { buf = AppendSamples(buf[:0], len(samples), func(i int) []byte { return samples[i] }) },
		"AppendUplinkHello": func() { buf = AppendUplinkHello(buf[:0], "gw", "v1", goldenRelays, goldenSensors) },
		"AppendAck":         func() { buf = AppendAck(buf[:0], 42) },
		"AckSeq":            func() { r.AckSeq() },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}

func BenchmarkAppendSamples(b *testing.B) {
	samples := make([][]byte, 256)
	for i := range samples {
		samples[i] = AppendSample(nil, "room.temperature", "°C", 21.37, 1732450000123, uint64(i))
	}
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendSamples(buf[:0], len(samples), func(i int) []byte { return samples[i] })
	}
}
