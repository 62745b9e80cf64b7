package protocol

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodeMQTTCommand(t *testing.T) {
	var req Request
	for _, tc := range []struct {
		payload, op, state, ms, id string
	}{
		{"on", OpSet, "on", "", ""},
		{" OFF\n", OpSet, "off", "", ""},
		{"Toggle", OpToggle, "", "", ""},
		{`{"op":"set","state":"on"}`, OpSet, "on", "", ""},
		{`{"op":"pulse","ms":1500,"id":7}`, OpPulse, "", "1500", "7"},
	} {
		if err := DecodeMQTTCommand([]byte(tc.payload), "pump", &req); err != nil {
			t.Fatalf("%q: %v", tc.payload, err)
		}
		if req.Relay != "pump" || req.Op != tc.op || req.State != tc.state || string(req.MS) != tc.ms || string(req.ID) != tc.id {
			t.Errorf("%q: got %+v", tc.payload, req)
		}
	}
	for _, p := range []string{"", "onn", `{"op":"list","id":3}`, `{"op":"set","relay":"lamp"}`, `{bad`} {
		err := DecodeMQTTCommand([]byte(p), "pump", &req)
		if err == nil {
			t.Errorf("%q: no error", p)
		}
	}
	var re *RequestError
	err := DecodeMQTTCommand([]byte(`{"op":"list","id":3}`), "pump", &req)
	if e, ok := err.(*RequestError); !ok || string(e.ID) != "3" || e.Code != CodeUnknownOp {
		t.Errorf("list: %v %v", err, re)
	}
}

func TestMQTTPayloads(t *testing.T) {
	if got := TopicLevel("greenhouse.pi/x+#"); got != "greenhouse_pi_x__" {
		t.Errorf("TopicLevel: %q", got)
	}
	b := AppendMQTTSamples(nil, 2, func(i int) []byte {
		return AppendSample(nil, "room.temperature", "°C", 21.5, 1732450000123, uint64(41+i))
	})
	want := `{"samples":[{"sensor":"room.temperature","value":21.5,"unit":"°C","ts":1732450000123,"seq":41},{"sensor":"room.temperature","value":21.5,"unit":"°C","ts":1732450000123,"seq":42}]}`
	if string(b) != want {
		t.Errorf("samples: %s", b)
	}
	if s := string(AppendMQTTSensorState(nil, 21.5, "°C", 1732450000123, 41)); s != `{"value":21.5,"unit":"°C","ts":1732450000123,"seq":41}` {
		t.Errorf("state: %s", s)
	}
	var ev map[string]string
	if err := json.Unmarshal(AppendMQTTError(nil, "pump", CodeForbidden, "no"), &ev); err != nil || ev["event"] != "error" || ev["relay"] != "pump" || ev["code"] != "forbidden" {
		t.Errorf("error event: %v %v", ev, err)
	}
	relay, on, err := DecodeStateEvent(AppendStateEvent(nil, "pump", true, SourceMQTT, 5))
	if err != nil || relay != "pump" || !on {
		t.Errorf("state event: %q %v %v", relay, on, err)
	}
	code, msg, ok := DecodeErrorReply(AppendError(nil, []byte("7"), CodeBusy, "wait"))
	if !ok || code != CodeBusy || msg != "wait" {
		t.Errorf("error reply: %q %q %v", code, msg, ok)
	}
	if _, _, ok := DecodeErrorReply(AppendRelayReply(nil, []byte("7"), "pump", true, 0)); ok {
		t.Error("ok reply read as an error")
	}
	c := string(AppendHAConfig(nil, &HAConfig{Name: "pump", UniqueID: "u", StateTopic: "s", PayloadOn: "on", Device: &HADevice{Identifiers: []string{"x"}}}))
	if !strings.Contains(c, `"payload_on":"on"`) || strings.Contains(c, "unit_of_measurement") || !strings.Contains(c, `"qos":0`) {
		t.Errorf("config: %s", c)
	}
	if u, dc := HASensorUnit("%RH"); u != "%" || dc != "humidity" {
		t.Errorf("%%RH: %q %q", u, dc)
	}
}
