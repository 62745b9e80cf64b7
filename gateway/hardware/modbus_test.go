package hardware

import (
	"context"
	"slices"
	"testing"

	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"github.com/edgegate/edgegate/gateway/config"
)

// Modbus devices, DS18B20 probes and ADS1115s of a configuration are
// simulated below the drivers: the pool opens the simulated bus and server
// in place of the configured port and address, the probe's driver reads the
// simulated w1 tree.
func TestSimulateModbusAndProbes(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`
devices:
  - {name: rs485, driver: modbus-rtu, port: /dev/ttyUSB3}
  - {name: plc, driver: modbus-tcp, address: 10.1.2.3:502}
relays:
  - {name: pump, driver: modbus, device: rs485, unit: 4, coil: 2}
  - {name: valve, driver: modbus, device: plc, unit: 1, coil: 0}
sensors:
  - {name: tank, driver: modbus, device: rs485, unit: 5, registers: [{name: level, address: 0}]}
  - {name: probe, driver: ds18b20, id: 28-0316a2795eff}
  - {name: soil, driver: ads1115, bus: /dev/i2c-1, address: 0x49, channels: [{name: m, gain: 4.096}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	d := SimDevices(cfg)
	if len(d.Modbus) != 2 || !slices.Equal(d.Modbus[0].Units, []int{4, 5}) || !slices.Equal(d.Modbus[1].Units, []int{1}) ||
		!slices.Equal(d.W1, []string{"28-0316a2795eff"}) || len(d.ADS1115s) != 1 {
		t.Fatalf("SimDevices = %+v", d)
	}
	hw := firmwaresim.NewHardware(nil)
	defer hw.Close()
	if err := Simulate(hw, cfg); err != nil {
		t.Fatal(err)
	}
	pool := NewDevicePool(cfg.Devices, hw, nil)
	defer pool.Close()
	env := Env{Buses: hw, Devices: pool}
	for i, r := range cfg.Relays {
		relay, err := OpenRelay(r, env)
		if err != nil {
			t.Fatal(err)
		}
		if err := relay.Set(context.Background(), true); err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		dev, unit, coil := []string{"rs485", "plc"}[i], r.Unit, r.Coil
		if !hw.Modbus(dev).Unit(unit).Coil(coil) {
			t.Fatalf("%s: coil %d of unit %d on %s is off", r.Name, coil, unit, dev)
		}
	}
	for _, sc := range cfg.Sensors {
		s, err := OpenSensor(sc, env)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Read(context.Background(), make([]float64, len(s.Quantities()))); err != nil {
			t.Fatalf("%s: %v", sc.Name, err)
		}
	}
}
