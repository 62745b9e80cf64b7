package protocol

import (
	"errors"
	"math"
	"strconv"
)

// Ops a backend sends on edge-uplink.v1, besides the relay-control.v1 ops.
const (
	// OpAck: {"op":"ack","seq":N}, every sample with seq ≤ N is safe
	// upstream.
	OpAck = "ack"
)

// AppendUplinkHello encodes the hello event the gateway sends a backend
// first on edge-uplink.v1:
// {"event":"hello","gateway":…,"version":…,"relays":[…],"sensors":[…]}.
func AppendUplinkHello(b []byte, gateway, version string, relays []RelayInfo, sensors []SensorInfo) []byte {
	b = appendHelloStart(b, gateway, version)
	b = appendRelays(b, relays)
	b = append(b, ',')
	b = appendSensors(b, "sensors", sensors)
	return append(b, '}')
}

// AppendSamples encodes a samples batch of edge-uplink.v1:
// {"event":"samples","samples":[<JSON sample>…]}, where sample(i) returns
// the i-th of n samples, each already encoded by AppendSample. It
// allocates nothing beyond growing b.
func AppendSamples(b []byte, n int, sample func(i int) []byte) []byte {
	b = append(b, `{"event":"samples","samples":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, sample(i)...)
	}
	return append(b, "]}"...)
}

// AppendAck encodes a backend's acknowledgement: {"op":"ack","seq":N}.
func AppendAck(b []byte, seq uint64) []byte {
	b = append(b, `{"op":"ack","seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}')
}

var errAckSeq = errors.New(`ack needs "seq": the highest sample seq stored, a whole number`)

// AckSeq returns the "seq" of an ack request: a whole number from 0 to
// 2^64-1; null counts as 0 (it acknowledges nothing). A missing seq, or one
// of another type, is an error whose message tells the backend what to send
// (for an error reply with code bad_request). It allocates nothing.
func (r *Request) AckSeq() (uint64, error) {
	switch {
	case len(r.Seq) == 0:
		return 0, errAckSeq
	case string(r.Seq) == "null":
		return 0, nil
	}
	seq, ok := parseWhole(r.Seq)
	if !ok {
		return 0, errAckSeq
	}
	return seq, nil
}

// parseWhole reads a JSON number that is a whole number without sign,
// fraction or exponent and fits in a uint64.
func parseWhole(b []byte) (uint64, bool) {
	if len(b) == 0 || (len(b) > 1 && b[0] == '0') {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
