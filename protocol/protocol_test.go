package protocol

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "pump", `q"uote\back`, "tab\tnl\nCR\r", "\x00\x01\x1f", "°C ünïcødé 日本", "<script>&", "\u2028\u2029", "bad\xffutf8", "emoji 🚰"} {
		got := AppendString(nil, s)
		want, _ := json.Marshal(s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, got, err)
		}
		var wantBack string
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("%q round-trips to %q, want %q", s, back, wantBack)
		}
	}
}

func TestEncodersProduceValidJSON(t *testing.T) {
	relays := []RelayInfo{{Name: "pump", On: true, Driver: "gpio", ChangedAt: 1732450000123, MaxPulse: 60000},
		{Name: "valve", Driver: "gpio", Interlock: "valves"}}
	msgs := map[string][]byte{
		"hello": AppendRelayHello(nil, "gw\"1", "v1", RoleOperator, relays),
		"list":  AppendRelayList(nil, json.RawMessage(`"a"`), relays),
		"reply": AppendRelayReply(nil, json.RawMessage(`7`), "pump", true, 1732450000123),
		"error": AppendError(nil, nil, CodeUnknownRelay, `no relay named "pmp"`),
		"event": AppendStateEvent(nil, "pump", false, SourcePulse, 1732450000123),
	}
	for name, m := range msgs {
		var v map[string]any
		if err := json.Unmarshal(m, &v); err != nil {
			t.Fatalf("%s: %s is not JSON: %v", name, m, err)
		}
	}
	var hello struct {
		Event, Gateway, Role string
		Relays               []struct {
			Name, State, Driver, Interlock string
			ChangedAt                      int64 `json:"changed_at"`
			MaxPulseMS                     int64 `json:"max_pulse_ms"`
		}
	}
	json.Unmarshal(msgs["hello"], &hello)
	if hello.Event != "hello" || hello.Gateway != `gw"1` || len(hello.Relays) != 2 ||
		hello.Relays[0].State != "on" || hello.Relays[0].ChangedAt != 1732450000123 || hello.Relays[0].MaxPulseMS != 60000 ||
		hello.Relays[1].Interlock != "valves" || hello.Relays[1].State != "off" {
		t.Fatalf("hello decodes to %+v", hello)
	}
	if got := string(msgs["error"]); got != `{"ok":false,"error":{"code":"unknown_relay","message":"no relay named \"pmp\""}}` {
		t.Fatalf("error reply %s", got)
	}
	if got := string(msgs["reply"]); got != `{"id":7,"ok":true,"relay":"pump","state":"on","changed_at":1732450000123}` {
		t.Fatalf("reply %s", got)
	}
}

func TestDecodeRequest(t *testing.T) {
	cases := []struct {
		in     string
		code   string // "" = decodes
		id     string
		op     string
		errSub string
	}{
		{in: `{"id":7,"op":"set","relay":"pump","state":"on"}`, id: "7", op: "set"},
		{in: `{"id":"abc","op":"list","extra":{"ignored":true}}`, id: `"abc"`, op: "list"},
		{in: ` {"op":"list"} `, op: "list"},
		{in: `{"op":"list"`, code: CodeBadRequest, errSub: "invalid JSON"},
		{in: `[]`, code: CodeBadRequest, errSub: "JSON object"},
		{in: ``, code: CodeBadRequest},
		{in: `{"id":true,"op":"list"}`, code: CodeBadRequest, errSub: "id"},
		{in: `{"id":5}`, code: CodeBadRequest, id: "5", errSub: "op"},
		{in: `{"id":5,"op":"set","relay":1}`, code: CodeBadRequest, id: "5", errSub: "relay"},
		// An id is bounded: 128 bytes of string, or a number of 128 digits.
		{in: `{"id":"` + strings.Repeat("a", 128) + `","op":"list"}`, id: `"` + strings.Repeat("a", 128) + `"`, op: "list"},
		{in: `{"id":"` + strings.Repeat("a", 129) + `","op":"list"}`, code: CodeBadRequest, errSub: "at most 128 bytes"},
		{in: `{"id":"` + strings.Repeat("a", 60000) + `","op":"list"}`, code: CodeBadRequest, errSub: "at most 128 bytes"},
		{in: `{"id":"` + strings.Repeat(`\u0041`, 128) + `","op":"list"}`, id: `"` + strings.Repeat(`\u0041`, 128) + `"`, op: "list"},
		{in: `{"id":"` + strings.Repeat(`\u0041`, 129) + `","op":"list"}`, code: CodeBadRequest, errSub: "at most 128 bytes"},
		{in: `{"id":` + strings.Repeat("9", 128) + `,"op":"list"}`, id: strings.Repeat("9", 128), op: "list"},
		{in: `{"id":` + strings.Repeat("9", 129) + `,"op":"list"}`, code: CodeBadRequest, errSub: "at most 128 bytes"},
		{in: `{"id":"` + strings.Repeat("a", 200) + `","op":"set","relay":1}`, code: CodeBadRequest, errSub: "relay"},
	}
	var req Request
	for _, tc := range cases {
		err := DecodeRequest([]byte(tc.in), &req)
		if tc.code == "" {
			if err != nil || req.Op != tc.op || string(req.ID) != tc.id {
				t.Fatalf("%s: %v %+v", tc.in, err, req)
			}
			continue
		}
		if len(req.ID) > MaxIDBytes+2 {
			t.Fatalf("%.80s…: an over-long id is left in the request for others to echo", tc.in)
		}
		re, ok := err.(*RequestError)
		if !ok || re.Code != tc.code || string(re.ID) != tc.id || !strings.Contains(re.Message, tc.errSub) {
			t.Fatalf("%s: got %#v, want code %s id %q message containing %q", tc.in, err, tc.code, tc.id, tc.errSub)
		}
	}
}

func TestPulseMS(t *testing.T) {
	for in, want := range map[string]int64{`{"op":"pulse","ms":250}`: 250, `{"op":"pulse","ms":1e3}`: -1, `{"op":"pulse","ms":"5"}`: -1, `{"op":"pulse"}`: -1, `{"op":"pulse","ms":2.5}`: -1} {
		var req Request
		if err := DecodeRequest([]byte(in), &req); err != nil {
			t.Fatal(err)
		}
		got, err := req.PulseMS()
		if want < 0 {
			if err == nil {
				t.Fatalf("%s: got %d, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Fatalf("%s: %d %v", in, got, err)
		}
	}
}

func BenchmarkAppendStateEvent(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = AppendStateEvent(buf[:0], "valve_open", true, SourceInterlock, 1732450000123)
	}
}

func BenchmarkAppendRelayReply(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 256)
	id := json.RawMessage(`12345`)
	for b.Loop() {
		buf = AppendRelayReply(buf[:0], id, "pump", true, 0)
	}
}

func BenchmarkAppendSample(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = AppendSample(buf[:0], "room.temperature", "°C", 21.37, 1732450000123, 42)
	}
}

func BenchmarkPutRecord(b *testing.B) {
	b.ReportAllocs()
	var r [RecordSize]byte
	for b.Loop() {
		PutRecord(r[:], 42, 1732450000123000000, 21.37, 3)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	var r [RecordSize * 2]byte
	PutRecord(r[:], 42, -5, 21.37, 3)
	PutRecord(r[RecordSize:], 43, 7, -1, 0)
	recs, ok := DecodeRecords(r[:], nil)
	if !ok || len(recs) != 2 || recs[0] != (Record{Seq: 42, TsNanos: -5, Value: 21.37, Index: 3}) || recs[1].Seq != 43 {
		t.Fatalf("%+v %v", recs, ok)
	}
	if _, ok := DecodeRecords(r[:31], nil); ok {
		t.Fatal("31 bytes decoded as records")
	}
}
