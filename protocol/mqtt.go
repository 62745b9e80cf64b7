package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// This file holds the payloads of the MQTT bridge (MQTT.md): commands on
// <base>/<id>/relay/<relay>/set, the state, samples and error payloads,
// and Home Assistant discovery configs.

// SourceMQTT is the source of a relay change commanded over MQTT.
const SourceMQTT = "mqtt"

// TopicLevel is s as one MQTT topic level or discovery id: every character
// outside [A-Za-z0-9_-] replaced by _.
func TopicLevel(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	// A multi-byte rune becomes one _ per byte: ids stay distinct as long
	// as their ASCII parts are.
	return string(b)
}

// DecodeMQTTCommand reads the payload of a command for relay: on, off or
// toggle (any case, white space around ignored), or a relay-control.v1
// request as JSON without the relay ({"op":"pulse","ms":1500,"id":7}),
// into req, with req.Relay set to relay. Only set, toggle and pulse are
// commands; anything else is a *RequestError (its ID set when the JSON
// carried one).
func DecodeMQTTCommand(payload []byte, relay string, req *Request) error {
	p := bytes.TrimSpace(payload)
	if len(p) > 0 && p[0] == '{' {
		if err := DecodeRequest(p, req); err != nil {
			return err
		}
		switch req.Op {
		case OpSet, OpToggle, OpPulse:
		default:
			return &RequestError{ID: req.ID, Code: CodeUnknownOp, Message: fmt.Sprintf("unknown command op %q; a command is set, toggle or pulse", req.Op)}
		}
		if req.Relay != "" && req.Relay != relay {
			return &RequestError{ID: req.ID, Code: CodeBadRequest, Message: fmt.Sprintf("the command names relay %q on the topic of relay %q; leave \"relay\" out", req.Relay, relay)}
		}
		req.Relay = relay
		return nil
	}
	*req = Request{Relay: relay, Sensors: req.Sensors[:0], idBuf: req.idBuf}
	switch strings.ToLower(string(p)) {
	case "on":
		req.Op, req.State = OpSet, "on"
	case "off":
		req.Op, req.State = OpSet, "off"
	case "toggle":
		req.Op = OpToggle
	default:
		shown := string(p)
		if len(shown) > 64 {
			shown = shown[:64] + "…"
		}
		return &RequestError{Code: CodeBadRequest, Message: fmt.Sprintf("unknown command %q; send on, off, toggle or a JSON request such as {\"op\":\"pulse\",\"ms\":1500}", shown)}
	}
	return nil
}

// AppendMQTTError encodes the error event of a command that failed:
// {"event":"error","relay":"pump","code":"forbidden","message":"…"}.
func AppendMQTTError(b []byte, relay, code, message string) []byte {
	b = append(b, `{"event":"error","relay":`...)
	b = AppendString(b, relay)
	b = append(b, `,"code":`...)
	b = AppendString(b, code)
	b = append(b, `,"message":`...)
	b = AppendString(b, message)
	return append(b, '}')
}

// AppendMQTTSamples encodes a batch on <base>/<id>/samples:
// {"samples":[<JSON sample>…]}, sample(i) returning the i-th of n samples
// as AppendSample encoded it.
func AppendMQTTSamples(b []byte, n int, sample func(i int) []byte) []byte {
	b = append(b, `{"samples":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, sample(i)...)
	}
	return append(b, "]}"...)
}

// AppendMQTTSensorState encodes a sensor's retained state:
// {"value":21.5,"unit":"°C","ts":1732450000123,"seq":41}.
func AppendMQTTSensorState(b []byte, value float64, unit string, tsMillis int64, seq uint64) []byte {
	return appendReading(append(b, '{'), value, unit, tsMillis, seq)
}

// DecodeStateEvent reads the relay and state of a state event (as
// AppendStateEvent encodes it).
func DecodeStateEvent(data []byte) (relay string, on bool, err error) {
	var ev struct {
		Event, Relay, State string
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return "", false, err
	}
	if ev.Event != "state" || ev.Relay == "" {
		return "", false, errors.New("not a state event")
	}
	on, ok := ParseState(ev.State)
	if !ok {
		return "", false, fmt.Errorf("state %q", ev.State)
	}
	return ev.Relay, on, nil
}

// DecodeErrorReply reads the code and message of an error reply (as
// AppendError encodes it); ok is false for any other reply.
func DecodeErrorReply(data []byte) (code, message string, ok bool) {
	var r struct {
		OK    *bool `json:"ok"`
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &r) != nil || r.OK == nil || *r.OK {
		return "", "", false
	}
	return r.Error.Code, r.Error.Message, true
}

// HADevice is the device object of a Home Assistant discovery config.
type HADevice struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
	SWVersion    string   `json:"sw_version"`
}

// HAConfig is a Home Assistant MQTT discovery config of a switch, sensor
// or binary_sensor; empty optional keys are left out.
type HAConfig struct {
	Name                string    `json:"name"`
	UniqueID            string    `json:"unique_id"`
	ObjectID            string    `json:"object_id,omitempty"`
	StateTopic          string    `json:"state_topic"`
	CommandTopic        string    `json:"command_topic,omitempty"`
	ValueTemplate       string    `json:"value_template,omitempty"`
	PayloadOn           string    `json:"payload_on,omitempty"`
	PayloadOff          string    `json:"payload_off,omitempty"`
	StateOn             string    `json:"state_on,omitempty"`
	StateOff            string    `json:"state_off,omitempty"`
	UnitOfMeasurement   string    `json:"unit_of_measurement,omitempty"`
	StateClass          string    `json:"state_class,omitempty"`
	DeviceClass         string    `json:"device_class,omitempty"`
	AvailabilityTopic   string    `json:"availability_topic"`
	PayloadAvailable    string    `json:"payload_available"`
	PayloadNotAvailable string    `json:"payload_not_available"`
	QoS                 int       `json:"qos"`
	Device              *HADevice `json:"device"`
}

// AppendHAConfig encodes c.
func AppendHAConfig(b []byte, c *HAConfig) []byte {
	j, err := json.Marshal(c)
	if err != nil {
		panic(err) // only strings, ints and slices of strings: cannot fail
	}
	return append(b, j...)
}

// HASensorUnit is the unit_of_measurement and device_class Home Assistant
// gets for a sensor's unit: %RH is published as % (what the humidity
// class requires); the class is "" where the unit does not make it clear.
func HASensorUnit(unit string) (haUnit, deviceClass string) {
	switch unit {
	case "°C":
		return unit, "temperature"
	case "%RH":
		return "%", "humidity"
	case "hPa":
		return unit, "pressure"
	case "V":
		return unit, "voltage"
	case "A":
		return unit, "current"
	case "W":
		return unit, "power"
	}
	return unit, ""
}

// AppendCommandRequest encodes req (a command DecodeMQTTCommand read) as
// the relay-control.v1 request it stands for, relay included.
func AppendCommandRequest(b []byte, req *Request) []byte {
	b = append(b, '{')
	b = appendID(b, req.ID)
	b = append(b, `"op":`...)
	b = AppendString(b, req.Op)
	b = append(b, `,"relay":`...)
	b = AppendString(b, req.Relay)
	if req.State != "" {
		b = append(b, `,"state":`...)
		b = AppendString(b, req.State)
	}
	if len(req.MS) > 0 {
		b = append(b, `,"ms":`...)
		b = append(b, req.MS...)
	}
	return append(b, '}')
}
