package firmwaresim

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/edgegate/edgegate/drivers/i2cbus"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
)

// Hardware is the whole simulated board: GPIO pins and I2C buses (and, in
// later files, serial devices). It is the bus provider that --sim hands to
// the drivers in place of the real host.
type Hardware struct {
	GPIO *GPIO

	mu      sync.Mutex
	i2cs    map[string]*I2CBus // by i2cbus.Key
	w1      *W1Tree            // nil until a probe is simulated
	closers []func()
}

// NewHardware returns an empty simulated board whose GPIO journal goes to
// journal (nil: none).
func NewHardware(journal io.Writer) *Hardware {
	return &Hardware{GPIO: NewGPIO(journal), i2cs: map[string]*I2CBus{}}
}

// GPIOPin implements the drivers' bus provider.
func (h *Hardware) GPIOPin(name string) (gpio.PinIO, error) { return h.GPIO.GPIOPin(name) }

// I2CBus implements the drivers' bus provider.
func (h *Hardware) I2CBus(name string) (i2c.Bus, error) {
	if strings.TrimSpace(name) == "" {
		return nil, fmt.Errorf("empty I2C bus name")
	}
	return h.I2C(name), nil
}

// I2C returns the simulated bus with that name, creating it. Names that
// spell the same bus (/dev/i2c-1, I2C1, 1: see i2cbus.Key) give the same
// bus, named as it was first asked for.
func (h *Hardware) I2C(name string) *I2CBus {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := i2cbus.Key(name)
	b, ok := h.i2cs[key]
	if !ok {
		b = NewI2CBus(name)
		h.i2cs[key] = b
	}
	return b
}
