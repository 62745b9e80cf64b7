package config

import (
	"strings"
	"testing"
	"time"
)

const modbusYAML = `
devices:
  - {name: rs485, driver: modbus-rtu, port: /dev/ttyUSB0, baud: 19200, parity: even, timeout: 300ms}
  - {name: plc, driver: modbus-tcp, address: 192.168.1.50:502}
relays:
  - {name: pump2, driver: modbus, device: rs485, unit: 1, coil: 0}
  - {name: valve, driver: modbus, device: plc, unit: 1, coil: 0}
sensors:
  - name: tank
    driver: modbus
    device: rs485
    unit: 2
    interval: 2s
    registers:
      - {name: temperature, address: 1, type: int16, scale: 0.1, unit: "°C"}
      - {name: level, address: 0, table: holding, type: uint16, scale: 0.01, unit: "m"}
      - {name: flow, address: 4, type: float32, word_order: little}
`

func TestModbusConfig(t *testing.T) {
	c, err := Parse("t.yaml", []byte(modbusYAML))
	if err != nil {
		t.Fatal(err)
	}
	rtu, tcp := c.Devices[0], c.Devices[1]
	if rtu.Baud != 19200 || rtu.Parity != "even" || rtu.StopBits != 1 || rtu.Timeout.Std() != 300*time.Millisecond {
		t.Errorf("rtu %+v", rtu)
	}
	if tcp.Address != "192.168.1.50:502" || tcp.Timeout.Std() != time.Second {
		t.Errorf("tcp %+v", tcp)
	}
	o := c.Sensors[0].ModbusOpts()
	if o.Unit != 2 || len(o.Registers) != 3 || o.Registers[0].Scale != 0.1 || o.Registers[2].Scale != 1 || o.Registers[2].Table != "input" || o.Registers[2].WordOrder != "little" {
		t.Errorf("sensor opts %+v", o)
	}
	if r := c.Relays[0].ModbusOpts(); r.Device != "rs485" || r.Unit != 1 || r.Coil != 0 {
		t.Errorf("relay opts %+v", r)
	}
}

func TestModbusRefusals(t *testing.T) {
	for _, tc := range []edit{
		{"unknown device", "device: rs485, unit: 1, coil: 0}", "device: rs458, unit: 1, coil: 0}",
			`t.yaml:6: relays[0].device: no device named "rs458"; use one of the modbus-rtu or modbus-tcp devices: rs485, plc`},
		{"no unit", "device: rs485, unit: 1, coil: 0}", "device: rs485, coil: 0}", "relays[0].unit: missing; give the unit (slave) id"},
		{"unit 0", "device: rs485, unit: 1, coil: 0}", "device: rs485, unit: 0, coil: 0}", "relays[0].unit: want the unit (slave) id of the device, 1 to 247, got 0"},
		{"same coil", "device: plc, unit: 1, coil: 0}", "device: rs485, unit: 1, coil: 0}", `relays[1].coil: coil 0 of unit 1 on "rs485" is already used by relays[0] "pump2"`},
		{"register type", "type: int16, scale: 0.1", "type: int64, scale: 0.1", "t.yaml:15: sensors[0].registers[0].type: want one of int16, uint16, int32, uint32, float32, got \"int64\""},
		{"table", "table: holding", "table: coils", "t.yaml:16: sensors[0].registers[1].table: want input"},
		{"word order", "word_order: little", "word_order: middle", "sensors[0].registers[2].word_order: want big"},
		{"scale 0", "scale: 0.01", "scale: 0", "sensors[0].registers[1].scale: must be a finite number other than 0"},
		{"tcp port", "address: 192.168.1.50:502}", "port: /dev/ttyUSB1}", "devices[1].port: a modbus-tcp device takes no port"},
		{"tcp address", "address: 192.168.1.50:502}", "address: 192.168.1.50}", "devices[1].address: want host:port"},
		{"parity", "parity: even", "parity: mark", "devices[0].parity: want one of none, even, odd"},
		{"device driver", "{name: rs485, driver: modbus-rtu", "{name: rs485, driver: serial-board", `relays[0].device: "rs485" is a serial-board device`},
	} {
		refuse(t, modbusYAML, tc.name, tc.from, tc.to, tc.want)
	}
}

const probesYAML = `
sensors:
  - {name: tank_temp, driver: ds18b20, id: 28-0316a2795eff}
  - name: soil_probe
    driver: ads1115
    bus: /dev/i2c-1
    address: 0x48
    channels:
      - {name: moisture, input: 0, gain: 4.096, scale: 30.3, offset: 0, unit: "%"}
      - {name: supply, input: 1, gain: 6.144, unit: "V"}
`

func TestDS18B20AndADS1115Config(t *testing.T) {
	c, err := Parse("t.yaml", []byte(probesYAML))
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Sensors[0].DS18B20Opts(); o.ID != "28-0316a2795eff" || o.Interval != 5*time.Second {
		t.Errorf("ds18b20 %+v", o)
	}
	o := c.Sensors[1].ADS1115Opts()
	if o.Address != 0x48 || len(o.Channels) != 2 || o.Channels[0].Scale != 30.3 || o.Channels[1].Scale != 1 || o.Channels[1].Gain != 6.144 {
		t.Errorf("ads1115 %+v", o)
	}
	for _, tc := range []edit{
		{"bad id", "id: 28-0316a2795eff", "id: 28-0316A2795E", "t.yaml:3: sensors[0].id: want the probe's 1-wire id"},
		{"no id", ", id: 28-0316a2795eff}", "}", "sensors[0].id: missing"},
		{"input 4", "input: 1,", "input: 4,", "t.yaml:10: sensors[1].channels[1].input: the ADS1115 has inputs 0 to 3 (AIN0 to AIN3), got 4"},
		{"gain", "gain: 4.096", "gain: 5", "sensors[1].channels[0].gain: want the full-scale range in volts"},
		{"address", "address: 0x48", "address: 0x40", "sensors[1].address: an ADS1115 answers at 0x48"},
		{"no channels", probesYAML[strings.Index(probesYAML, "    channels:"):], "    interval: 1s\n", "sensors[1].channels: missing"},
	} {
		refuse(t, probesYAML, tc.name, tc.from, tc.to, tc.want)
	}
}

// edit is a change to a valid config and what the checks must say of it.
type edit struct{ name, from, to, want string }

// refuse checks that base with from replaced by to is refused with want.
func refuse(t *testing.T, base, name, from, to, want string) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		in := strings.Replace(base, from, to, 1)
		if in == base {
			t.Fatalf("%q not in the config", from)
		}
		_, err := Parse("t.yaml", []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v\nwant %s", err, want)
		}
	})
}
