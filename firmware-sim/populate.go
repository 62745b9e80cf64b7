package firmwaresim

import (
	"fmt"

	"github.com/edgegate/edgegate/gateway/config"
)

// Models of what a configuration's devices need on the simulated side, by
// driver name. The files that define a model register it from init. A model
// may rewrite the entry it is given (a simulated serial board replaces the
// device's port with the path of its pseudo-terminal).
var (
	sensorModels = map[string]func(*Hardware, *config.Sensor) error{}
	relayModels  = map[string]func(*Hardware, *config.Relay) error{}
	deviceModels = map[string]func(*Hardware, *config.Device) error{}
)

// Populate attaches a simulated chip or board for every device of cfg that
// needs one (a BME280 for each bme280 sensor, an expander for each
// i2c-relay chip, a board firmware on a pseudo-terminal for each serial
// device, ...), so that the real drivers find what they expect. Devices that
// need nothing (GPIO pins, sim-wave) are left alone. A chip already present
// at an address is kept. Call Close to stop whatever the models run.
func (h *Hardware) Populate(cfg *config.Config) error {
	for i := range cfg.Devices {
		d := &cfg.Devices[i]
		if attach := deviceModels[d.Driver]; attach != nil {
			if err := attach(h, d); err != nil {
				return fmt.Errorf("simulating device %q: %w", d.Name, err)
			}
		}
	}
	for i := range cfg.Sensors {
		s := &cfg.Sensors[i]
		if attach := sensorModels[s.Driver]; attach != nil {
			if err := attach(h, s); err != nil {
				return fmt.Errorf("simulating sensor %q: %w", s.Name, err)
			}
		}
	}
	for i := range cfg.Relays {
		r := &cfg.Relays[i]
		if attach := relayModels[r.Driver]; attach != nil {
			if err := attach(h, r); err != nil {
				return fmt.Errorf("simulating relay %q: %w", r.Name, err)
			}
		}
	}
	return nil
}

// OnClose registers f to run (once, in reverse order) when the simulated
// hardware is closed: how models stop the goroutines they run.
func (h *Hardware) OnClose(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closers = append(h.closers, f)
}

// Close stops everything the models run.
func (h *Hardware) Close() error {
	h.mu.Lock()
	fs := h.closers
	h.closers = nil
	h.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	return nil
}
