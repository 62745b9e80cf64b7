package protocol

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strconv"
)

// AppendSample encodes a JSON sample:
// {"sensor":"room.temperature","value":21.37,"unit":"°C","ts":1732450000123,"seq":42}
// ts is Unix milliseconds. The value must be finite.
func AppendSample(b []byte, sensor, unit string, value float64, tsMillis int64, seq uint64) []byte {
	b = append(b, `{"sensor":`...)
	b = AppendString(b, sensor)
	b = append(b, ',')
	return appendReading(b, value, unit, tsMillis, seq)
}

// appendReading encodes the rest of a sample, after its "{" or its sensor:
// "value":21.37,"unit":"°C","ts":1732450000123,"seq":42}
func appendReading(b []byte, value float64, unit string, tsMillis int64, seq uint64) []byte {
	b = append(b, `"value":`...)
	b = strconv.AppendFloat(b, value, 'g', -1, 64)
	b = append(b, `,"unit":`...)
	b = AppendString(b, unit)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, tsMillis, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}')
}

// AppendSensorError encodes a sensor_error event.
func AppendSensorError(b []byte, sensor, message string, tsMillis int64) []byte {
	b = append(b, `{"event":"sensor_error","sensor":`...)
	b = AppendString(b, sensor)
	b = append(b, `,"message":`...)
	b = AppendString(b, message)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, tsMillis, 10)
	return append(b, '}')
}

// AppendDropped encodes the notice that a subscriber's queue overflowed.
func AppendDropped(b []byte, count uint64) []byte {
	b = append(b, `{"event":"dropped","count":`...)
	b = strconv.AppendUint(b, count, 10)
	return append(b, '}')
}

// PutRecord writes one 32-byte little-endian binary record:
// u64 seq, i64 ts_unix_ns, f64 value, u32 sensor index, u32 flags (0).
func PutRecord(r []byte, seq uint64, tsNanos int64, value float64, index uint32) {
	_ = r[RecordSize-1]
	binary.LittleEndian.PutUint64(r[0:], seq)
	binary.LittleEndian.PutUint64(r[8:], uint64(tsNanos))
	binary.LittleEndian.PutUint64(r[16:], math.Float64bits(value))
	binary.LittleEndian.PutUint32(r[24:], index)
	binary.LittleEndian.PutUint32(r[28:], 0)
}

// Record is one decoded binary sample record.
type Record struct {
	Seq     uint64
	TsNanos int64
	Value   float64
	Index   uint32
	Flags   uint32
}

// DecodeRecords decodes a binary message of records; ok is false when its
// length is not a multiple of RecordSize.
func DecodeRecords(msg []byte, dst []Record) ([]Record, bool) {
	if len(msg)%RecordSize != 0 {
		return dst, false
	}
	for i := 0; i+RecordSize <= len(msg); i += RecordSize {
		r := msg[i : i+RecordSize]
		dst = append(dst, Record{
			Seq:     binary.LittleEndian.Uint64(r[0:]),
			TsNanos: int64(binary.LittleEndian.Uint64(r[8:])),
			Value:   math.Float64frombits(binary.LittleEndian.Uint64(r[16:])),
			Index:   binary.LittleEndian.Uint32(r[24:]),
			Flags:   binary.LittleEndian.Uint32(r[28:]),
		})
	}
	return dst, true
}

// AppendSensor encodes one sensor object.
func AppendSensor(b []byte, s *SensorInfo) []byte {
	b = append(b, `{"name":`...)
	b = AppendString(b, s.Name)
	b = append(b, `,"unit":`...)
	b = AppendString(b, s.Unit)
	b = append(b, `,"index":`...)
	b = strconv.AppendInt(b, int64(s.Index), 10)
	b = append(b, `,"interval_ms":`...)
	b = strconv.AppendInt(b, s.IntervalMS, 10)
	return append(b, '}')
}

func appendSensors(b []byte, key string, sensors []SensorInfo) []byte {
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, `":[`...)
	for i := range sensors {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendSensor(b, &sensors[i])
	}
	return append(b, ']')
}

// AppendSensorHello encodes the hello event of sensor-stream.v1.
func AppendSensorHello(b []byte, gateway, version, role string, sensors []SensorInfo) []byte {
	b = appendHelloHead(b, gateway, version, role)
	b = appendSensors(b, "sensors", sensors)
	return append(b, '}')
}

// AppendSensorList encodes the reply of list.
func AppendSensorList(b []byte, id json.RawMessage, sensors []SensorInfo) []byte {
	b = append(b, '{')
	b = appendID(b, id)
	b = append(b, `"ok":true,`...)
	b = appendSensors(b, "sensors", sensors)
	return append(b, '}')
}

// AppendSensorNames encodes the reply of subscribe and unsubscribe.
func AppendSensorNames(b []byte, id json.RawMessage, names []string) []byte {
	b = append(b, '{')
	b = appendID(b, id)
	b = append(b, `"ok":true,"sensors":[`...)
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, n)
	}
	return append(b, "]}"...)
}

var (
	errFormat = errors.New(`"format" must be "json" or "binary"`)
	errMaxHz  = errors.New(`"max_hz" must be a number ≥ 0 (0: every sample)`)
)

// BinaryFormat reports whether a subscribe asks for binary records
// ("format":"binary") rather than JSON samples ("json", the default). Any
// other format is an error whose message says what to send (for an error
// reply with code bad_request).
func (r *Request) BinaryFormat() (bool, error) {
	switch r.Format {
	case "", FormatJSON:
		return false, nil
	case FormatBinary:
		return true, nil
	}
	return false, errFormat
}

// MinGapNanos returns the least time between two samples of a sensor that
// a subscribe's "max_hz" asks for, in nanoseconds: 1e9/max_hz, or 0 (every
// sample) when max_hz is 0, null or absent. A max_hz that is not a number
// ≥ 0 is an error whose message says what to send (for an error reply
// with code bad_request).
func (r *Request) MinGapNanos() (int64, error) {
	if len(r.MaxHz) == 0 || string(r.MaxHz) == "null" {
		return 0, nil
	}
	if end, ok := scanNumber(r.MaxHz, 0); !ok || end != len(r.MaxHz) {
		return 0, errMaxHz
	}
	hz, err := strconv.ParseFloat(string(r.MaxHz), 64)
	if err != nil || hz < 0 || math.IsInf(hz, 0) {
		return 0, errMaxHz
	}
	if hz == 0 {
		return 0, nil
	}
	return int64(1e9 / hz), nil
}
