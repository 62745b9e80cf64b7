package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

const probesConfig = `
gateway:
  id: probes-e2e
sensors:
  - {name: tank_temp, driver: ds18b20, id: 28-0316a2795eff, interval: 100ms}
  - name: soil_probe
    driver: ads1115
    bus: /dev/i2c-1
    address: 0x48
    interval: 100ms
    channels:
      - {name: moisture, input: 0, gain: 4.096, scale: 30.3, offset: 0, unit: "%"}
      - {name: supply, input: 1, gain: 6.144, unit: "V"}
`

func TestDS18B20AndADS1115E2E(t *testing.T) {
	p := startGateway(t, "--sim", "--config", writeConfig(t, probesConfig))
	s, hello := dialSensors(t, p, "")
	idx := sensorIndex(t, hello)
	for _, n := range []string{"tank_temp.temperature", "soil_probe.moisture", "soil_probe.supply"} {
		if _, ok := idx[n]; !ok {
			t.Fatalf("hello has no %s: %v", n, hello["sensors"])
		}
	}
	if r, _ := s.call(map[string]any{"id": 1, "op": "subscribe", "sensors": []string{"tank_temp.*", "soil_probe.*"}}); r["ok"] != true {
		t.Fatalf("subscribe: %v", r)
	}

	// pinned at 21.5 reads 21.5
	p.httpPost("/sim/w1/28-0316a2795eff?temperature=21.5")
	waitSample(t, s, "tank_temp.temperature", 21.5)
	// each fault is a sensor_error, never a sample, until cleared
	for fault, part := range map[string]string{"crc": "CRC error", "missing": "not on the 1-wire bus", "85": "85.000 °C"} {
		p.httpPost("/sim/w1/28-0316a2795eff?fault=" + fault)
		waitSensorError(t, s, "tank_temp.temperature", part)
		// a later read must be the same error, not a value
		m, _ := s.readUntil(5*time.Second, func(m map[string]any) bool { return m["sensor"] == "tank_temp.temperature" })
		if m["event"] != "sensor_error" {
			t.Fatalf("fault %s: %v, want a sensor_error", fault, m)
		}
		p.httpPost("/sim/w1/28-0316a2795eff?fault=none")
		waitSample(t, s, "tank_temp.temperature", 21.5)
	}

	// 1.65 V with scale 30.3 reads 50.0 (±0.1)
	p.httpPost("/sim/i2c/0x48?ch0=1.65&ch1=3.3")
	s.readUntil(5*time.Second, func(m map[string]any) bool {
		v, ok := m["value"].(float64)
		return m["sensor"] == "soil_probe.moisture" && ok && v > 49.9 && v < 50.1
	})
	waitSample(t, s, "soil_probe.supply", 3.3)
	p.httpPost("/sim/i2c/0x48?nack=1")
	waitSensorError(t, s, "soil_probe.moisture", "0x48")
}

// check-config refuses a Modbus relay on an unknown device, a register type
// that does not exist, an ADS1115 input of 4 and a bad DS18B20 id, each at
// its line.
func TestCheckConfigRefusesBadHardware(t *testing.T) {
	cfg := writeConfig(t, `devices:
  - {name: rs485, driver: modbus-rtu, port: /dev/ttyUSB0}
relays:
  - {name: pump, driver: modbus, device: rs458, unit: 1, coil: 0}
sensors:
  - {name: tank, driver: modbus, device: rs485, unit: 2, registers: [{name: t, address: 1, type: int64}]}
  - {name: soil, driver: ads1115, bus: /dev/i2c-1, address: 0x48, channels: [{name: m, input: 4, gain: 4.096}]}
  - {name: probe, driver: ds18b20, id: 28-XYZ}
`)
	out, err := exec.Command(binPath, "check-config", cfg).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("check-config: %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{
		cfg + `:4: relays[0].device: no device named "rs458"`,
		cfg + `:6: sensors[0].registers[0].type: want one of int16, uint16, int32, uint32, float32, got "int64"`,
		cfg + `:7: sensors[1].channels[0].input: the ADS1115 has inputs 0 to 3`,
		cfg + `:8: sensors[2].id: want the probe's 1-wire id`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check-config printed\n%s\nwant it to contain %q", out, want)
		}
	}
}
