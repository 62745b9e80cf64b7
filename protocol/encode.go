package protocol

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// The Append* functions encode messages into a caller-owned buffer and return
// it extended, so that the hot path allocates nothing once buffers are warm.

// AppendString appends s as a JSON string literal.
func AppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendID(b []byte, id json.RawMessage) []byte {
	if len(id) == 0 {
		return b
	}
	b = append(b, `"id":`...)
	b = append(b, id...)
	return append(b, ',')
}

// AppendError encodes an error reply.
func AppendError(b []byte, id json.RawMessage, code, message string) []byte {
	b = append(b, '{')
	b = appendID(b, id)
	b = append(b, `"ok":false,"error":{"code":`...)
	b = AppendString(b, code)
	b = append(b, `,"message":`...)
	b = AppendString(b, message)
	return append(b, "}}"...)
}

// AppendRelayReply encodes the success reply of get, set, toggle and pulse.
// changedAt is included when non-zero (get).
func AppendRelayReply(b []byte, id json.RawMessage, relay string, on bool, changedAt int64) []byte {
	b = append(b, '{')
	b = appendID(b, id)
	b = append(b, `"ok":true,"relay":`...)
	b = AppendString(b, relay)
	b = append(b, `,"state":"`...)
	b = append(b, StateString(on)...)
	b = append(b, '"')
	if changedAt != 0 {
		b = append(b, `,"changed_at":`...)
		b = strconv.AppendInt(b, changedAt, 10)
	}
	return append(b, '}')
}

// AppendRelay encodes one relay object.
func AppendRelay(b []byte, r *RelayInfo) []byte {
	b = append(b, `{"name":`...)
	b = AppendString(b, r.Name)
	b = append(b, `,"state":"`...)
	b = append(b, StateString(r.On)...)
	b = append(b, `","driver":`...)
	b = AppendString(b, r.Driver)
	b = append(b, `,"changed_at":`...)
	b = strconv.AppendInt(b, r.ChangedAt, 10)
	if r.Interlock != "" {
		b = append(b, `,"interlock":`...)
		b = AppendString(b, r.Interlock)
	}
	if r.MaxPulse > 0 {
		b = append(b, `,"max_pulse_ms":`...)
		b = strconv.AppendInt(b, r.MaxPulse, 10)
	}
	if r.ChangedBy != "" {
		b = append(b, `,"changed_by":`...)
		b = AppendString(b, r.ChangedBy)
		if r.Automation != "" {
			b = append(b, `,"automation":`...)
			b = AppendString(b, r.Automation)
		}
	}
	return append(b, '}')
}

func appendRelays(b []byte, relays []RelayInfo) []byte {
	b = append(b, `"relays":[`...)
	for i := range relays {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendRelay(b, &relays[i])
	}
	return append(b, ']')
}

// AppendRelayList encodes the reply of list.
func AppendRelayList(b []byte, id json.RawMessage, relays []RelayInfo) []byte {
	b = append(b, '{')
	b = appendID(b, id)
	b = append(b, `"ok":true,`...)
	b = appendRelays(b, relays)
	return append(b, '}')
}

// appendHelloStart encodes what every hello event starts with (the
// uplink's too), up to the comma after the version.
func appendHelloStart(b []byte, gateway, version string) []byte {
	b = append(b, `{"event":"hello","gateway":`...)
	b = AppendString(b, gateway)
	b = append(b, `,"version":`...)
	b = AppendString(b, version)
	return append(b, ',')
}

// appendHelloHead encodes what the hello events of both subprotocols
// start with, up to the comma before their device list.
func appendHelloHead(b []byte, gateway, version, role string) []byte {
	b = appendHelloStart(b, gateway, version)
	b = append(b, `"role":`...)
	b = AppendString(b, role)
	return append(b, ',')
}

// AppendRelayHello encodes the hello event of relay-control.v1.
func AppendRelayHello(b []byte, gateway, version, role string, relays []RelayInfo) []byte {
	b = appendHelloHead(b, gateway, version, role)
	b = appendRelays(b, relays)
	return append(b, '}')
}

// AppendStateEvent encodes a relay state event.
func AppendStateEvent(b []byte, relay string, on bool, source string, ts int64) []byte {
	return AppendStateEventBy(b, relay, on, source, "", ts)
}

// AppendStateEventBy encodes a relay state event; automation, when not
// empty, names the automation that made the change (source automation).
func AppendStateEventBy(b []byte, relay string, on bool, source, automation string, ts int64) []byte {
	b = append(b, `{"event":"state","relay":`...)
	b = AppendString(b, relay)
	b = append(b, `,"state":"`...)
	b = append(b, StateString(on)...)
	b = append(b, `","source":`...)
	b = AppendString(b, source)
	if automation != "" {
		b = append(b, `,"automation":`...)
		b = AppendString(b, automation)
	}
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	return append(b, '}')
}
