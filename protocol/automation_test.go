package protocol

import (
	"encoding/json"
	"testing"
)

func TestAutomationEncoders(t *testing.T) {
	a := AutomationInfo{Name: "keep_warm", Kind: KindThermostat, Enabled: true, LastFired: 1700000000000, Error: `a "b"`}
	for name, b := range map[string][]byte{
		"list":  AppendAutomationList(nil, json.RawMessage(`7`), []AutomationInfo{a, {Name: "x", Kind: KindSchedule, Next: 5}}),
		"reply": AppendAutomationReply(nil, json.RawMessage(`"a"`), "keep_warm", false),
		"event": AppendAutomationEvent(nil, &a, 12),
		"state": AppendStateEventBy(nil, "heater", true, SourceAutomation, "keep_warm", 3),
	} {
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %s: %v", name, b, err)
		}
	}
	got := string(AppendAutomation(nil, &a))
	want := `{"name":"keep_warm","kind":"thermostat","enabled":true,"active":false,"last_fired":1700000000000,"next":null,"error":"a \"b\""}`
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if got := string(AppendStateEventBy(nil, "heater", true, SourceAutomation, "keep_warm", 3)); got != `{"event":"state","relay":"heater","state":"on","source":"automation","automation":"keep_warm","ts":3}` {
		t.Fatal(got)
	}
	var req Request
	if err := DecodeRequest([]byte(`{"id":1,"op":"disable","automation":"keep_warm"}`), &req); err != nil || req.Op != OpDisable || req.Automation != "keep_warm" {
		t.Fatalf("%v %+v", err, req)
	}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() {
		buf = AppendStateEventBy(buf[:0], "heater", true, SourceAutomation, "keep_warm", 3)
	}); n != 0 {
		t.Fatalf("AppendStateEventBy allocates %v", n)
	}
}
