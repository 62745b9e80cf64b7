package hardware

import (
	"strings"
	"testing"

	"github.com/edgegate/edgegate/drivers"
	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"github.com/edgegate/edgegate/gateway/config"
)

func TestUnknownDriverNamesTheAvailableOnes(t *testing.T) {
	_, err := OpenRelay(config.Relay{Name: "pump", Driver: "nope"}, Env{})
	if err == nil || !strings.Contains(err.Error(), `relay "pump": driver "nope" is not available in this build (available: `+strings.Join(relayDriverNames(), ", ")+")") {
		t.Fatalf("relay: %v", err)
	}
	_, err = OpenSensor(config.Sensor{Name: "room", Driver: "nope"}, Env{})
	if err == nil || !strings.Contains(err.Error(), `sensor "room": driver "nope" is not available in this build (available: `+strings.Join(sensorDriverNames(), ", ")+")") {
		t.Fatalf("sensor: %v", err)
	}
	_, err = OpenRelay(config.Relay{Name: "x", Driver: "telepathy"}, Env{Buses: firmwaresim.NewHardware(nil)})
	if err == nil || !strings.Contains(err.Error(), "gpio") {
		t.Fatalf("got %v, want an error listing the available drivers", err)
	}
}

// Every driver the configuration accepts can be opened by this build.
func TestEveryConfigDriverIsRegistered(t *testing.T) {
	for _, d := range []string{config.DriverGPIO, config.DriverSerialBoard, config.DriverUSBRelay, config.DriverI2CRelay, config.DriverModbus} {
		if relayDrivers[d] == nil {
			t.Errorf("relay driver %q is not registered", d)
		}
	}
	for _, d := range []string{config.DriverBME280, config.DriverGPIOInput, config.DriverSerialBoard, config.DriverSimWave, config.DriverModbus, config.DriverDS18B20, config.DriverADS1115} {
		if sensorDrivers[d] == nil {
			t.Errorf("sensor driver %q is not registered", d)
		}
	}
}

// Simulating a configuration leaves it as it was: the device pool opens the
// simulated ports in its place.
func TestSimulateKeepsTheConfig(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`
devices:
  - {name: board, driver: serial-board, port: /dev/ttyACM0}
relays:
  - {name: lamp, driver: usb-relay, port: /dev/ttyUSB0, channel: 1}
sensors:
  - {name: door, driver: gpio-input, pin: GPIO27, pull: up}
  - {name: wave, driver: sim-wave}
`))
	if err != nil {
		t.Fatal(err)
	}
	hw := firmwaresim.NewHardware(nil)
	defer hw.Close()
	if err := Simulate(hw, cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Devices[0].Port != "/dev/ttyACM0" || cfg.Relays[0].Port != "/dev/ttyUSB0" {
		t.Fatalf("the config was rewritten: %+v %+v", cfg.Devices, cfg.Relays)
	}
	b, m := hw.SerialBoard("board"), hw.SerialLCUS("ttyUSB0")
	if b == nil || m == nil {
		t.Fatal("serial devices not simulated")
	}
	pool := NewDevicePool(cfg.Devices, hw, nil)
	defer pool.Close()
	if got := serialPath(hw, "/dev/ttyUSB0"); got != m.Path() {
		t.Errorf("usb-relay port resolves to %q, want %q", got, m.Path())
	}
	if got := serialPath(hw, "/dev/ttyS9"); got != "/dev/ttyS9" {
		t.Errorf("a port with no simulated device resolves to %q", got)
	}
	r, err := OpenRelay(cfg.Relays[0], Env{Buses: hw, Devices: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var _ drivers.Relay = r
	if in := SimDevices(cfg); len(in.Serial) != 2 || len(in.BME280s) != 0 || len(in.Expanders) != 0 {
		t.Errorf("SimDevices = %+v", in)
	}
}
