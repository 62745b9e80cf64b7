package drivers

import (
	"context"
	"fmt"

	"github.com/edgegate/edgegate/gateway/config"
	"periph.io/x/conn/v3/gpio"
)

func init() { RegisterRelay("gpio", openGPIORelay) }

// gpioRelay switches a relay wired to one GPIO pin, optionally active-low
// (most relay HATs and opto-isolated boards switch on a low level).
type gpioRelay struct {
	name      string
	pin       gpio.PinIO
	activeLow bool
}

func openGPIORelay(cfg config.Relay, env Env) (Relay, error) {
	pin, err := env.Buses.GPIOPin(cfg.Pin)
	if err != nil {
		return nil, err
	}
	return &gpioRelay{name: cfg.Name, pin: pin, activeLow: cfg.ActiveLow}, nil
}

func (r *gpioRelay) Name() string   { return r.name }
func (r *gpioRelay) Driver() string { return "gpio" }
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
