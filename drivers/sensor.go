package drivers

import (
	"context"
	"time"
)

// Quantity is one measured value of a sensor device; on the wire the sensor
// is named "<device>.<quantity>" (room.temperature).
type Quantity struct {
	Name string `json:"name"` // "temperature"
	Unit string `json:"unit"` // "°C"
}

// Sensor is one sensor device with one or more quantities. The gateway's
// sampler calls Read every Interval from one goroutine per device; a device
// whose values change by events (a door contact) implements Watcher instead.
type Sensor interface {
	// Name is the device's configured name ("room").
	Name() string
	// Driver is the driver's registered name ("bme280", ...).
	Driver() string
	// Quantities lists what the device measures, in a fixed order.
	Quantities() []Quantity
	// Interval is how often the sampler reads it.
	Interval() time.Duration
	// Read takes one reading of every quantity into dst (len(dst) ==
	// len(Quantities())). An error means no value is valid; the sampler
	// reports it and tries again next interval.
	Read(ctx context.Context, dst []float64) error
	// Close releases the device.
	Close() error
}

// Watcher is a Sensor whose samples are pushed by the device (edges on an
// input pin) rather than polled. Watch runs until ctx ends, calling emit for
// every new value (quantity index, value, time) and fail for every read
// error; it returns nil when ctx ends.
type Watcher interface {
	Sensor
	Watch(ctx context.Context, emit func(q int, v float64, at time.Time), fail func(err error)) error
}
