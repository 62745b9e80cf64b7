package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// modbusConfig: an RTU bus with a relay board (unit 1), a second board
// (unit 3) and a transmitter (unit 2), and a TCP server with a relay and a
// sensor of its own.
const modbusConfig = `
gateway:
  id: modbus-e2e
devices:
  - {name: rs485, driver: modbus-rtu, port: /dev/ttyUSB0, baud: 9600, timeout: 300ms}
  - {name: plc, driver: modbus-tcp, address: 192.168.1.50:502, timeout: 300ms}
relays:
  - {name: pump, driver: modbus, device: rs485, unit: 1, coil: 0}
  - {name: fan, driver: modbus, device: rs485, unit: 3, coil: 2}
  - {name: valve, driver: modbus, device: plc, unit: 1, coil: 5}
sensors:
  - name: tank
    driver: modbus
    device: rs485
    unit: 2
    interval: 100ms
    registers:
      - {name: temperature, address: 1, type: int16, scale: 0.1, unit: "°C"}
      - {name: big, address: 10, table: holding, type: float32}
      - {name: little, address: 20, table: holding, type: float32, word_order: little}
  - name: meter
    driver: modbus
    device: plc
    unit: 2
    interval: 100ms
    registers:
      - {name: power, address: 1, type: uint16, scale: 0.1, unit: "W"}
      - {name: energy, address: 10, table: holding, type: float32}
      - {name: energy_le, address: 20, table: holding, type: float32, word_order: little}
`

// simModbusCoil reads a coil of a simulated unit from GET /sim/modbus.
func (p *gatewayProc) simModbusCoil(device string, unit, coil int) bool {
	p.t.Helper()
	_, body := p.httpGet("/sim/modbus")
	var devs []struct {
		Name  string `json:"name"`
		Units []struct {
			Unit  int             `json:"unit"`
			Coils map[string]bool `json:"coils"`
		} `json:"units"`
	}
	if err := json.Unmarshal(body, &devs); err != nil {
		p.t.Fatalf("%s: %v", body, err)
	}
	for _, d := range devs {
		for _, u := range d.Units {
			if d.Name == device && u.Unit == unit {
				return u.Coils[fmt.Sprint(coil)]
			}
		}
	}
	p.t.Fatalf("no unit %d on %s in %s", unit, device, body)
	return false
}

// waitSample reads samples until sensor has a value within 0.01 of want.
func waitSample(t *testing.T, c *client, sensor string, want float64) {
	t.Helper()
	c.readUntil(5*time.Second, func(m map[string]any) bool {
		v, ok := m["value"].(float64)
		return m["sensor"] == sensor && ok && math.Abs(v-want) < 0.01
	})
}

// waitSensorError reads until a sensor_error of sensor whose message holds
// part; no sample of sensor may come between (the error is never a value).
func waitSensorError(t *testing.T, c *client, sensor, part string) {
	t.Helper()
	c.readUntil(5*time.Second, func(m map[string]any) bool {
		msg, _ := m["message"].(string)
		return m["event"] == "sensor_error" && m["sensor"] == sensor && strings.Contains(msg, part)
	})
}

func TestModbusE2E(t *testing.T) {
	p := startGateway(t, "--sim", "--config", writeConfig(t, modbusConfig))
	a, hello := dialRelay(t, p, "")
	relays := relayNames(t, hello["relays"])
	if r := relays["pump"]; r == nil || r["driver"] != "modbus" {
		t.Fatalf("hello relay pump: %v", r)
	}
	s, _ := dialSensors(t, p, "")
	if r, _ := s.call(map[string]any{"id": 1, "op": "subscribe", "sensors": []string{"tank.*", "meter.*"}}); r["ok"] != true {
		t.Fatalf("subscribe: %v", r)
	}

	for _, bus := range []struct{ relay, device, other, sensor, reg string }{
		{"pump", "rs485", "fan", "tank", "temperature"},
		{"valve", "plc", "", "meter", "power"},
	} {
		unit, coil := 1, 0
		if bus.device == "plc" {
			coil = 5
		}
		// switched and confirmed by its coil
		reply, _ := a.call(map[string]any{"op": "set", "relay": bus.relay, "state": "on"})
		wantOK(t, reply, bus.relay, "on")
		if !p.simModbusCoil(bus.device, unit, coil) {
			t.Fatalf("%s: coil %d of unit 1 is off after set on", bus.device, coil)
		}
		// register 215 with scale 0.1 reads 21.5; float32 in both word orders
		p.httpPost(fmt.Sprintf("/sim/modbus/%s/2?input=1&value=215", bus.device))
		waitSample(t, s, bus.sensor+"."+bus.reg, 21.5)
		p.httpPost(fmt.Sprintf("/sim/modbus/%s/2?holding=10&value=%d", bus.device, 0x4148)) // 12.5 = 0x41480000
		p.httpPost(fmt.Sprintf("/sim/modbus/%s/2?holding=21&value=%d", bus.device, 0x4148))
		names := map[string][2]string{"tank": {"big", "little"}, "meter": {"energy", "energy_le"}}[bus.sensor]
		waitSample(t, s, bus.sensor+"."+names[0], 12.5)
		waitSample(t, s, bus.sensor+"."+names[1], 12.5)

		// a silent unit: device_error, while the other units keep working
		p.httpPost(fmt.Sprintf("/sim/modbus/%s/1?fault=silent", bus.device))
		reply, _ = a.call(map[string]any{"op": "set", "relay": bus.relay, "state": "off"})
		wantError(t, reply, "device_error")
		if msg := reply["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "unit 1") {
			t.Fatalf("%s: silent unit: %q", bus.device, msg)
		}
		if bus.other != "" {
			reply, _ = a.call(map[string]any{"op": "set", "relay": bus.other, "state": "on"})
			wantOK(t, reply, bus.other, "on")
		}
		p.httpPost(fmt.Sprintf("/sim/modbus/%s/2?input=1&value=216", bus.device))
		waitSample(t, s, bus.sensor+"."+bus.reg, 21.6)

		// an exception response names the exception
		p.httpPost(fmt.Sprintf("/sim/modbus/%s/1?fault=exception&code=4", bus.device))
		reply, _ = a.call(map[string]any{"op": "set", "relay": bus.relay, "state": "off"})
		wantError(t, reply, "device_error")
		if msg := reply["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "exception 4 (server device failure)") {
			t.Fatalf("%s: exception: %q", bus.device, msg)
		}
		p.httpPost(fmt.Sprintf("/sim/modbus/%s/2?fault=exception&code=2", bus.device))
		waitSensorError(t, s, bus.sensor+"."+bus.reg, "exception 2 (illegal data address)")
		p.httpPost(fmt.Sprintf("/sim/modbus/%s/2?fault=none", bus.device))
		waitSample(t, s, bus.sensor+"."+bus.reg, 21.6)

		// cleared: switches again
		p.httpPost(fmt.Sprintf("/sim/modbus/%s/1?fault=none", bus.device))
		reply, _ = a.call(map[string]any{"op": "set", "relay": bus.relay, "state": "off"})
		wantOK(t, reply, bus.relay, "off")
		if p.simModbusCoil(bus.device, unit, coil) {
			t.Fatalf("%s: coil still on", bus.device)
		}
	}
}
