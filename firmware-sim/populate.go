package firmwaresim

import (
	"fmt"

	"github.com/edgegate/edgegate/gateway/config"
)

// Models of chips that a configuration's devices need on the simulated
// buses, by driver name. The files that define a chip model register it
// from init.
var (
	sensorModels = map[string]func(*Hardware, config.Sensor) error{}
	relayModels  = map[string]func(*Hardware, config.Relay) error{}
)

// Populate attaches a simulated chip for every device of cfg that sits on a
// simulated bus (a BME280 for each bme280 sensor, an expander for each
// i2c-relay chip, ...), so that the real drivers find what they expect.
// Devices that need nothing (GPIO pins, sim-wave) are left alone. Calling it
// twice attaches nothing new where a chip is already present.
func (h *Hardware) Populate(cfg *config.Config) error {
	for _, s := range cfg.Sensors {
		if attach := sensorModels[s.Driver]; attach != nil {
			if err := attach(h, s); err != nil {
				return fmt.Errorf("simulating sensor %q: %w", s.Name, err)
			}
		}
	}
	for _, r := range cfg.Relays {
		if attach := relayModels[r.Driver]; attach != nil {
			if err := attach(h, r); err != nil {
				return fmt.Errorf("simulating relay %q: %w", r.Name, err)
			}
		}
	}
	return nil
}
