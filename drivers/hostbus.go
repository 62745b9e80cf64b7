package drivers

import (
	"fmt"
	"strings"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/host/v3"
)

// HostBuses is the real hardware, through periph.io's host drivers.
type HostBuses struct {
	mu   sync.Mutex
	i2cs map[string]i2c.BusCloser
}

// OpenHost initialises periph.io's host drivers once.
func OpenHost() (*HostBuses, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("initialise GPIO/I2C host drivers: %w", err)
	}
	return &HostBuses{i2cs: map[string]i2c.BusCloser{}}, nil
}

// I2CBus opens an I2C bus by name ("/dev/i2c-1", "I2C1" or "1"), once.
func (h *HostBuses) I2CBus(name string) (i2c.Bus, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if b, ok := h.i2cs[name]; ok {
		return b, nil
	}
	b, err := i2creg.Open(strings.TrimPrefix(name, "/dev/i2c-"))
	if err != nil {
		return nil, fmt.Errorf("open I2C bus %q: %w (is I2C enabled in raspi-config, and this user in the i2c group?)", name, err)
	}
	h.i2cs[name] = b
	return b, nil
}

// Close closes the buses it opened.
func (h *HostBuses) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for n, b := range h.i2cs {
		b.Close()
		delete(h.i2cs, n)
	}
	return nil
}

// GPIOPin looks a pin up by name ("GPIO17", "17", or a header name like "P1_11").
func (*HostBuses) GPIOPin(name string) (gpio.PinIO, error) {
	p := gpioreg.ByName(name)
	if p == nil {
		return nil, fmt.Errorf("no GPIO pin named %q on this board (names look like GPIO17; is this user in the gpio group?)", name)
	}
	return p, nil
}
