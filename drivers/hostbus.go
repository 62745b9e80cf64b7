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
	"periph.io/x/host/v3/gpioioctl"
)

// HostBuses is the real hardware, through periph.io's host drivers.
type HostBuses struct {
	mu   sync.Mutex
	i2cs map[string]i2c.BusCloser // by i2cbus.Key: one handle per bus however it is spelled
	// openI2C opens a bus by periph's name for it ("1"); nil is i2creg.Open.
	openI2C func(name string) (i2c.BusCloser, error)
	// listChips lists the GPIO chips; nil is periph's gpioioctl.Chips.
	listChips func() []gpioChip
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

// GPIOPin looks a pin up by name ("GPIO17", "17", or a header name like
// "P1_11"): in periph's registry, then by line name on the GPIO character
// devices (gpioioctl), which is where a Raspberry Pi 5 has its pins (the
// RP1's lines, on gpiochip4 or gpiochip0 by kernel version, named GPIO0 to
// GPIO27). A pin that is not found names the chips and lines the gateway saw.
func (h *HostBuses) GPIOPin(name string) (gpio.PinIO, error) {
	if p := gpioreg.ByName(name); p != nil {
		return p, nil
	}
	chips := h.chips()
	want := []string{name}
	if strings.Trim(name, "0123456789") == "" && name != "" {
		want = append(want, "GPIO"+name) // a bare number: the BCM/RP1 line of that number
	}
	for _, c := range chips {
		for _, w := range want {
			if p := c.byName(w); p != nil {
				return p, nil
			}
		}
	}
	return nil, fmt.Errorf("no GPIO pin named %q on this board (names look like GPIO17); %s", name, describeChips(chips))
}

// gpioChip is what GPIOPin needs of a GPIO character device.
type gpioChip struct {
	name, label string
	lines       []string // line names, "" for unnamed lines
	byName      func(string) gpio.PinIO
}

// chips lists the GPIO chips periph's gpioioctl opened.
func (h *HostBuses) chips() []gpioChip {
	if h.listChips != nil {
		return h.listChips()
	}
	var out []gpioChip
	for _, c := range gpioioctl.Chips {
		gc := gpioChip{name: c.Name(), label: c.Label(), byName: func(n string) gpio.PinIO {
			if l := c.ByName(n); l != nil {
				return l
			}
			return nil
		}}
		for _, l := range c.Lines() {
			gc.lines = append(gc.lines, l.Name())
		}
		out = append(out, gc)
	}
	return out
}

// maxListedLines bounds how many line names of one chip an error lists.
const maxListedLines = 32

// describeChips says which GPIO chips and line names were seen.
func describeChips(chips []gpioChip) string {
	if len(chips) == 0 {
		return "the gateway sees no GPIO chip at all (no readable /dev/gpiochip*: is this user in the gpio group?)"
	}
	var parts []string
	for _, c := range chips {
		var named []string
		for _, l := range c.lines {
			if l != "" {
				named = append(named, l)
			}
		}
		desc := fmt.Sprintf("%s [%s] %d lines", c.name, c.label, len(c.lines))
		switch {
		case len(named) == 0:
			desc += ", none named"
		case len(named) > maxListedLines:
			desc += ": " + strings.Join(named[:maxListedLines], ", ") + fmt.Sprintf(", ... (%d more)", len(named)-maxListedLines)
		default:
			desc += ": " + strings.Join(named, ", ")
		}
		parts = append(parts, desc)
	}
	return "the gateway saw " + strings.Join(parts, "; ")
}
