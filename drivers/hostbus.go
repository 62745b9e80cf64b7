package drivers

import (
	"fmt"
	"strings"
	"sync"

	"github.com/edgegate/edgegate/drivers/i2cbus"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/host/v3"
)

// HostBuses is the real hardware, through periph.io's host drivers.
type HostBuses struct {
	mu   sync.Mutex
	i2cs map[string]i2c.BusCloser // by i2cbus.Key: one handle per bus however it is spelled
	// openI2C opens a bus by periph's name for it ("1"); nil is i2creg.Open.
	openI2C func(name string) (i2c.BusCloser, error)
}

// OpenHost initialises periph.io's host drivers once.
func OpenHost() (*HostBuses, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("initialise GPIO/I2C host drivers: %w", err)
	}
	return &HostBuses{i2cs: map[string]i2c.BusCloser{}}, nil
}

// I2CBus opens an I2C bus by name ("/dev/i2c-1", "I2C1" or "1"), once: every
// spelling of one bus gets the same handle.
func (h *HostBuses) I2CBus(name string) (i2c.Bus, error) {
	key := i2cbus.Key(name)
	h.mu.Lock()
	defer h.mu.Unlock()
	if b, ok := h.i2cs[key]; ok {
		return b, nil
	}
	open := h.openI2C
	if open == nil {
		open = i2creg.Open
	}
	b, err := open(strings.TrimPrefix(key, "/dev/i2c-"))
	if err != nil {
		return nil, fmt.Errorf("open I2C bus %q: %w (is I2C enabled in raspi-config, and this user in the i2c group?)", name, err)
	}
	if h.i2cs == nil {
		h.i2cs = map[string]i2c.BusCloser{}
	}
	h.i2cs[key] = b
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
