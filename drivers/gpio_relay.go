package drivers

import (
	"context"
	"fmt"
	"strings"

	"periph.io/x/conn/v3/gpio"
)

// GPIORelayDriver is the name of the gpio relay driver.
const GPIORelayDriver = "gpio"

// GPIORelayOpts describe a relay wired to one GPIO pin.
type GPIORelayOpts struct {
	Name      string
	Pin       string // "GPIO17"
	ActiveLow bool   // on is a low level
}

// Validate checks the options.
func (o GPIORelayOpts) Validate() error {
	if strings.TrimSpace(o.Pin) == "" {
		return fieldError("pin", "a gpio relay needs the pin it drives, e.g. pin: GPIO17")
	}
	return nil
}

// gpioRelay switches a relay wired to one GPIO pin, optionally active-low
// (most relay HATs and opto-isolated boards switch on a low level).
type gpioRelay struct {
	name      string
	pin       gpio.PinIO
	activeLow bool
}

// OpenGPIORelay opens a gpio relay; its output is not touched until the
// first Set.
func OpenGPIORelay(o GPIORelayOpts, env Env) (Relay, error) {
	buses, err := env.buses(o, GPIORelayDriver)
	if err != nil {
		return nil, err
	}
	pin, err := buses.GPIOPin(o.Pin)
	if err != nil {
		return nil, err
	}
	return &gpioRelay{name: o.Name, pin: pin, activeLow: o.ActiveLow}, nil
}

func (r *gpioRelay) Name() string   { return r.name }
func (r *gpioRelay) Driver() string { return GPIORelayDriver }
func (r *gpioRelay) Close() error   { return nil }

func (r *gpioRelay) level(on bool) gpio.Level {
	return gpio.Level(on != r.activeLow)
}

// Set drives the pin with a single Out call (on a pin that is not an output
// yet this requests it as an output at that very level, so no other level
// ever appears) and confirms by reading the pin back.
func (r *gpioRelay) Set(ctx context.Context, on bool) error {
	want := r.level(on)
	if err := r.pin.Out(want); err != nil {
		return fmt.Errorf("%s: write %s: %w", r.pin.Name(), want, err)
	}
	if got := r.pin.Read(); got != want {
		return fmt.Errorf("%s: wrote %s but the pin reads %s: check the wiring, or the pin is held by another driver", r.pin.Name(), want, got)
	}
	return nil
}
