// Package drivers holds the Relay and Sensor interfaces and their
// implementations. A driver is a small type over a bus interface (gpio.PinIO,
// i2c.Bus, a serial port); it never knows whether the bus is real hardware or
// the simulator in firmware-sim. Each driver takes its own options struct
// (GPIORelayOpts, BME280Opts, ...) and checks it (Validate); it knows nothing
// of the gateway's configuration file: gateway/hardware maps that onto the
// drivers.
package drivers

import (
	"context"
	"log/slog"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
)

// Relay is one switchable output.
type Relay interface {
	// Name is the relay's configured name.
	Name() string
	// Driver is the driver's registered name ("gpio", ...).
	Driver() string
	// Set drives the relay and returns only once the device confirmed the
	// new state (nil), or with the reason it could not (the state is then
	// whatever the device last confirmed). The first Set after opening is
	// the first level the relay's output ever sees.
	Set(ctx context.Context, on bool) error
	// Close releases the relay's resources without changing its output.
	Close() error
}

// Buses provides the buses that drivers talk to. Real hardware and the
// simulator both implement it; drivers cannot tell them apart.
type Buses interface {
	// GPIOPin returns the pin with the given name (e.g. "GPIO17").
	GPIOPin(name string) (gpio.PinIO, error)
	// I2CBus returns the I2C bus with the given name ("/dev/i2c-1" or "1").
	// Several devices may share one bus: the provider hands out one
	// i2c.Bus per name and owns closing it.
	I2CBus(name string) (i2c.Bus, error)
}

// Env is what a driver gets besides its own options.
type Env struct {
	Buses  Buses
	Logger *slog.Logger
	// Sim is true when Buses is the simulator (sim-only drivers refuse
	// to open otherwise).
	Sim bool
	// Devices holds the serial devices that several relays and sensors
	// share; the gateway creates it before opening relays and sensors and
	// closes it after them. Serial drivers refuse to open without it.
	Devices *DevicePool
	// State keeps what a driver must remember across restarts (nil:
	// nothing is kept): a serial board's sensors remember there what the
	// board announced, so that they can start while the board is unplugged.
	State StateStore
}

// StateStore keeps small named records across restarts for the drivers
// (the gateway keeps them as files in its data dir, written atomically).
type StateStore interface {
	// Load returns the record saved under name; an error when there is none.
	Load(name string) ([]byte, error)
	// Save replaces the record under name, whole or not at all.
	Save(name string, data []byte) error
}

// Reporter is a Relay whose output can also change on the device itself: a
// push button on a serial board, a board that rebooted (its relays back to
// their power-on state), a state read back after a reconnect that differs
// from the last one confirmed. The gateway registers a callback right after
// opening the relay.
//
// The driver calls f from a goroutine of its own, one call at a time, never
// from inside Set and never while holding a lock that Set needs, whenever
// the device reported a state for the relay other than the last one it
// confirmed. f may block (the gateway waits for a Set in flight to finish)
// and then asks DeviceState for the state to record: reading the state after
// that wait, not before, keeps the gateway's view in the order the device
// reported its changes.
type Reporter interface {
	Relay
	// OnDeviceChange registers f (nil removes it).
	OnDeviceChange(f func())
	// DeviceState returns the last state the device reported for the relay
	// (in a reply, a readback or an unsolicited report), and whether it has
	// reported one since the relay was opened.
	DeviceState() (on, known bool)
}

// logger is the Env's logger, or the default one.
func (e Env) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}
