package drivers_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/edgegate/edgegate/drivers"
)

// Each driver checks its own options; the problems are named by field, so
// that the configuration checks can report each at its line.
func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts interface{ Validate() error }
		want map[string]string
	}{
		{"gpio relay ok", drivers.GPIORelayOpts{Pin: "GPIO17"}, map[string]string{}},
		{"gpio relay no pin", drivers.GPIORelayOpts{Pin: " "}, map[string]string{"pin": "a gpio relay needs the pin it drives, e.g. pin: GPIO17"}},
		{"i2c relay ok", drivers.I2CRelayOpts{Bus: "1", Address: 0x20, Chip: drivers.ChipMCP23017, Channel: 16}, map[string]string{}},
		{"i2c relay all wrong", drivers.I2CRelayOpts{Address: 0x78, Chip: "pcf8575", Channel: 0}, map[string]string{
			"bus":     "no I2C bus given: set bus, e.g. bus: /dev/i2c-1",
			"address": "0x78 is not a 7-bit I2C device address (0x03 to 0x77)",
			"chip":    `want one of pcf8574, mcp23017, got "pcf8575"`,
			"channel": "channels are numbered from 1, got 0",
		}},
		{"i2c relay channel past the chip", drivers.I2CRelayOpts{Bus: "1", Address: 0x20, Chip: drivers.ChipPCF8574, Channel: 9}, map[string]string{"channel": "a pcf8574 has channels 1 to 8, got 9"}},
		{"bme280 ok", drivers.BME280Opts{Bus: "/dev/i2c-1", Address: 0x77}, map[string]string{}},
		{"bme280 other address", drivers.BME280Opts{Bus: "/dev/i2c-1", Address: 0x40}, map[string]string{"address": "a bme280 answers at 0x76 or 0x77, got 0x40"}},
		{"bme280 no address", drivers.BME280Opts{Bus: "/dev/i2c-1"}, map[string]string{"address": "0x0 is not a 7-bit I2C device address (0x03 to 0x77)"}},
		{"usb relay ok", drivers.USBRelayOpts{Port: "/dev/ttyUSB0", Channel: 8}, map[string]string{}},
		{"usb relay channel 9", drivers.USBRelayOpts{Device: "lcus", Channel: 9}, map[string]string{"channel": "LCUS USB relay modules have channels 1 to 8, got 9"}},
		{"usb relay nowhere", drivers.USBRelayOpts{Channel: 1}, map[string]string{"port": "a usb-relay relay needs port: (e.g. /dev/ttyUSB0) or device: naming a usb-relay entry of devices"}},
		{"usb relay both", drivers.USBRelayOpts{Port: "/dev/ttyUSB0", Device: "lcus", Channel: 1}, map[string]string{"device": "give either port or device, not both"}},
		{"board relay", drivers.BoardRelayOpts{Channel: -1}, map[string]string{
			"device":  "a serial-board relay needs the name of its board in devices, e.g. device: board",
			"channel": "channels are numbered from 1, got -1",
		}},
		{"board sensor ok", drivers.BoardSensorOpts{Device: "board"}, map[string]string{}},
		{"gpio input", drivers.GPIOInputOpts{Pin: "GPIO27", Pull: "sideways", Debounce: -20 * time.Millisecond}, map[string]string{
			"pull":     `want one of up, down, none, got "sideways"`,
			"debounce": "must not be negative, got -20ms",
		}},
		{"gpio input ok", drivers.GPIOInputOpts{Pin: "GPIO27", Pull: "none"}, map[string]string{}},
		{"sim-wave period", drivers.SimWaveOpts{Period: 500 * time.Microsecond}, map[string]string{"period": "must be at least 1ms, got 500µs"}},
	} {
		err := tc.opts.Validate()
		if got := drivers.FieldProblems(err); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: problems %q, want %q", tc.name, got, tc.want)
		}
		if (err == nil) != (len(tc.want) == 0) {
			t.Errorf("%s: Validate = %v", tc.name, err)
		}
		var fe *drivers.FieldError
		if err != nil && !errors.As(err, &fe) {
			t.Errorf("%s: %v is no FieldError", tc.name, err)
		}
	}
}

func TestFieldProblemsOfOtherErrors(t *testing.T) {
	got := drivers.FieldProblems(errors.New("no bus provider"))
	if want := map[string]string{"": "no bus provider"}; !reflect.DeepEqual(got, want) {
		t.Errorf("FieldProblems = %q, want %q", got, want)
	}
	if got := drivers.FieldProblems(nil); len(got) != 0 {
		t.Errorf("FieldProblems(nil) = %q", got)
	}
}
