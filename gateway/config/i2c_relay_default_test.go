package config

import (
	"strings"
	"testing"
)

// An i2c-relay relay is active-low unless the file says otherwise; other
// drivers keep active_low false by default.
func TestI2CRelayActiveLowDefault(t *testing.T) {
	c, err := Parse("i.yaml", []byte(`relays:
  - {name: a, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: pcf8574, channel: 1}
  - {name: b, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: pcf8574, channel: 2, active_low: false}
  - {name: c, driver: i2c-relay, bus: /dev/i2c-1, address: 0x21, chip: mcp23017, channel: 9, active_low: true}
  - {name: d, driver: i2c-relay, bus: /dev/i2c-1, address: 0x21, chip: mcp23017, channel: 10}
  - {name: e, driver: gpio, pin: GPIO17}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"a": true, "b": false, "c": true, "d": true, "e": false}
	for _, r := range c.Relays {
		if r.ActiveLow != want[r.Name] {
			t.Errorf("relay %s (%s): active_low = %v, want %v", r.Name, r.Driver, r.ActiveLow, want[r.Name])
		}
	}
}

func TestUSBRelayBaudDefault(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(`
devices:
  - {name: lcus, driver: usb-relay, port: /dev/ttyUSB0}
  - {name: fast, driver: usb-relay, port: /dev/ttyUSB1, baud: 115200}
  - {name: board, driver: serial-board, port: /dev/ttyACM0}
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{DefaultUSBRelayBaud, 115200, DefaultBaud} {
		if got := cfg.Devices[i].Baud; got != want {
			t.Errorf("devices[%d] (%s): baud %d, want %d", i, cfg.Devices[i].Name, got, want)
		}
	}
}

func TestUSBRelayChannelRange(t *testing.T) {
	_, err := Parse("t.yaml", []byte("relays:\n  - {name: lamp, driver: usb-relay, port: /dev/ttyUSB0, channel: 9}\n"))
	if err == nil || !strings.Contains(err.Error(), "t.yaml:2: relays[0].channel: LCUS USB relay modules have channels 1 to 8, got 9") {
		t.Fatalf("channel 9 of a usb-relay: %v", err)
	}
	_, err = Parse("t.yaml", []byte("relays:\n  - {name: x, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: pcf8574, channel: 1, pin: GPIO4}\n"))
	if err == nil || !strings.Contains(err.Error(), "an i2c-relay relay takes no pin") {
		t.Fatalf("article: %v", err)
	}
}
