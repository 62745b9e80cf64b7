package sensor

import (
	"sync"
	"sync/atomic"

	"github.com/edgegate/edgegate/protocol"
)

// Sample is one sample or sensor error, encoded once (JSON, and binary for
// a sample) and shared by every subscriber that gets it: a subscriber is
// handed a reference with it and gives it back with Release; the last one
// returns it to the pool. Its methods Text, Record, Time and Release are
// what a connection's writer (wsconn.Sample) needs of it.
type Sample struct {
	refs   atomic.Int32
	index  uint32
	seq    uint64
	tsNano int64
	value  float64
	isErr  bool
	text   []byte // the JSON message
	record [protocol.RecordSize]byte
}

var samplePool = sync.Pool{New: func() any { return &Sample{text: make([]byte, 0, 160)} }}

// Release gives back one reference.
func (s *Sample) Release() {
	if s.refs.Add(-1) == 0 {
		samplePool.Put(s)
	}
}

// Text is the JSON message: a sample, or a sensor_error event.
func (s *Sample) Text() []byte { return s.text }

// Record is the binary record of a sample; nil for a sensor error, which
// goes as text to every subscriber.
func (s *Sample) Record() []byte {
	if s.isErr {
		return nil
	}
	return s.record[:]
}

// Time is when the sensor was read (unix ns).
func (s *Sample) Time() int64 { return s.tsNano }

// Seq is the gateway-wide sample number; 0 for a sensor error.
func (s *Sample) Seq() uint64 { return s.seq }

// Index is the sensor's index in the catalog.
func (s *Sample) Index() int { return int(s.index) }

// Value is the value read (0 for a sensor error).
func (s *Sample) Value() float64 { return s.value }

// IsError reports whether this is a sensor_error event, not a sample.
func (s *Sample) IsError() bool { return s.isErr }
