package protocol

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

// minGapByJSON reads max_hz as the gateway did before MinGapNanos.
func minGapByJSON(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var hz float64
	if err := json.Unmarshal(raw, &hz); err != nil || hz < 0 || math.IsInf(hz, 0) {
		return 0, errors.New("bad max_hz")
	}
	if hz > 0 {
		return int64(1e9 / hz), nil
	}
	return 0, nil
}

// A subscribe's max_hz and format decode to the decimation gap and the
// sample format; bad values are refused with the messages the client is
// answered with.
func TestSubscribeOptions(t *testing.T) {
	const badHz, badFormat = `"max_hz" must be a number ≥ 0 (0: every sample)`, `"format" must be "json" or "binary"`
	for _, c := range []struct {
		msg       string
		gap       int64
		binary    bool
		hzErr     bool
		formatErr bool
	}{
		{msg: `{"op":"subscribe","sensors":["*"]}`},
		{msg: `{"op":"subscribe","sensors":["*"],"format":"json"}`},
		{msg: `{"op":"subscribe","sensors":["*"],"format":"binary"}`, binary: true},
		{msg: `{"op":"subscribe","sensors":["room.*"],"max_hz":2,"format":"binary"}`, gap: 500_000_000, binary: true},
		{msg: `{"op":"subscribe","sensors":["*"],"max_hz":2.5}`, gap: 400_000_000},
		{msg: `{"op":"subscribe","sensors":["*"],"max_hz":1e3}`, gap: 1_000_000},
		{msg: `{"op":"subscribe","sensors":["*"],"max_hz":0}`},
		{msg: `{"op":"subscribe","sensors":["*"],"max_hz":-0}`},
		{msg: `{"op":"subscribe","sensors":["*"],"max_hz":null}`},
		{msg: `{"op":"subscribe","sensors":["*"],"max_hz":-1}`, hzErr: true},
		{msg: `{"op":"subscribe","sensors":["*"],"max_hz":"2"}`, hzErr: true},
		{msg: `{"op":"subscribe","sensors":["*"],"max_hz":true}`, hzErr: true},
		{msg: `{"op":"subscribe","sensors":["*"],"max_hz":1e999}`, hzErr: true},
		{msg: `{"op":"subscribe","sensors":["*"],"format":"BINARY"}`, formatErr: true},
		{msg: `{"op":"subscribe","sensors":["*"],"format":"csv","max_hz":[]}`, formatErr: true, hzErr: true},
	} {
		var r Request
		if err := DecodeRequest([]byte(c.msg), &r); err != nil {
			t.Fatalf("%s: %v", c.msg, err)
		}
		if r.Op != OpSubscribe {
			t.Fatalf("%s: op %q", c.msg, r.Op)
		}
		binary, err := r.BinaryFormat()
		if c.formatErr != (err != nil) || (err != nil && err.Error() != badFormat) || binary != c.binary {
			t.Errorf("%s: format %v, %v", c.msg, binary, err)
		}
		gap, err := r.MinGapNanos()
		if c.hzErr != (err != nil) || (err != nil && err.Error() != badHz) || gap != c.gap {
			t.Errorf("%s: gap %d, %v; want %d", c.msg, gap, err, c.gap)
		}
		oldGap, oldErr := minGapByJSON(r.MaxHz)
		if (oldErr != nil) != (err != nil) || oldGap != gap {
			t.Errorf("%s: encoding/json reads %d, %v", c.msg, oldGap, oldErr)
		}
	}
}

// FuzzSubscribeOptionsMatchJSON: for any request DecodeRequest accepts,
// MinGapNanos and BinaryFormat never panic, MinGapNanos agrees with
// encoding/json's reading of "max_hz" as a float64 (what the gateway did
// before), and BinaryFormat takes exactly "", "json" and "binary".
func FuzzSubscribeOptionsMatchJSON(f *testing.F) {
	fuzzDecoded(f, []string{
		`{"op":"subscribe","sensors":["*"],"max_hz":2.5,"format":"binary"}`, `{"op":"subscribe","max_hz":1e-320}`,
		`{"op":"subscribe","max_hz":-0.0}`, `{"op":"subscribe","max_hz":"1"}`, `{"op":"subscribe","max_hz":1e400}`,
		`{"op":"subscribe","max_hz":0.000001}`, `{"op":"subscribe","format":"json"}`, `{"op":"subscribe","format":"\u0062inary"}`,
	}, func(t *testing.T, data []byte, r *Request) {
		gap, err := r.MinGapNanos()
		oldGap, oldErr := minGapByJSON(r.MaxHz)
		if (err != nil) != (oldErr != nil) || gap != oldGap {
			t.Fatalf("%q: MinGapNanos %d, %v; encoding/json %d, %v", data, gap, err, oldGap, oldErr)
		}
		if _, err := r.BinaryFormat(); (err != nil) != (r.Format != "" && r.Format != FormatJSON && r.Format != FormatBinary) {
			t.Fatalf("%q: format %q: %v", data, r.Format, err)
		}
	})
}
