package protocol

import (
	"encoding/json"
	"strconv"
)

// Kinds of automation, as AutomationInfo.Kind carries them.
const (
	KindThermostat = "thermostat"
	KindWhen       = "when"
	KindSchedule   = "schedule"
)

// AutomationInfo is one automation as the automations reply and the
// automation event carry it.
type AutomationInfo struct {
	Name      string
	Kind      string // KindThermostat, KindWhen or KindSchedule
	Enabled   bool
	Active    bool   // a thermostat's relay is on by it, a when's condition holds
	LastFired int64  // Unix milliseconds; 0: never (null)
	Next      int64  // Unix milliseconds of a schedule's next run; 0: null
	Error     string // the last failure, "" when none
}

func appendTimeOrNull(b []byte, ms int64) []byte {
	if ms == 0 {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, ms, 10)
}

// AppendAutomation encodes one automation object.
func AppendAutomation(b []byte, a *AutomationInfo) []byte {
	b = append(b, `{"name":`...)
	b = AppendString(b, a.Name)
	b = append(b, `,"kind":`...)
	b = AppendString(b, a.Kind)
	b = append(b, `,"enabled":`...)
	b = strconv.AppendBool(b, a.Enabled)
	b = append(b, `,"active":`...)
	b = strconv.AppendBool(b, a.Active)
	b = append(b, `,"last_fired":`...)
	b = appendTimeOrNull(b, a.LastFired)
	b = append(b, `,"next":`...)
	b = appendTimeOrNull(b, a.Next)
	b = append(b, `,"error":`...)
	b = AppendString(b, a.Error)
	return append(b, '}')
}

// AppendAutomationList encodes the reply of automations.
func AppendAutomationList(b []byte, id json.RawMessage, list []AutomationInfo) []byte {
	b = append(b, '{')
	b = appendID(b, id)
	b = append(b, `"ok":true,"automations":[`...)
	for i := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendAutomation(b, &list[i])
	}
	return append(b, "]}"...)
}

// AppendAutomationReply encodes the reply of enable and disable.
func AppendAutomationReply(b []byte, id json.RawMessage, name string, enabled bool) []byte {
	b = append(b, '{')
	b = appendID(b, id)
	b = append(b, `"ok":true,"automation":`...)
	b = AppendString(b, name)
	b = append(b, `,"enabled":`...)
	b = strconv.AppendBool(b, enabled)
	return append(b, '}')
}

// AppendAutomationEvent encodes the automation event: a change of an
// automation's state (enabled, disabled, fired, failed).
func AppendAutomationEvent(b []byte, a *AutomationInfo, ts int64) []byte {
	b = append(b, `{"event":"automation","automation":`...)
	b = AppendAutomation(b, a)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	return append(b, '}')
}
