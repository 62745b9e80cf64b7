package config

import (
	"strings"
	"testing"
	"time"
)

const autoBase = `relays:
  - {name: heater, driver: gpio, pin: GPIO5, max_on: 2h, min_off: 30s, min_on: 10s}
  - {name: pump, driver: gpio, pin: GPIO6, max_pulse: 10m}
sensors:
  - {name: room, driver: bme280, bus: /dev/i2c-1, address: 0x76}
  - {name: door_contact, driver: gpio-input, pin: GPIO27}
automations:
`

func TestAutomationsAccepted(t *testing.T) {
	c, err := Parse("t.yaml", []byte(autoBase+`  - name: keep_warm
    thermostat: {sensor: room.temperature, relay: heater, target: 19, hysteresis: 1}
  - name: door_light
    when: {sensor: door_contact.state, equals: 1, for: 2s}
    do: [{set: pump, state: on}, {toggle: heater}]
    cooldown: 1m
  - name: vent
    when: {relay: heater, is: off}
    do: [{pulse: pump, for: 2m}]
  - {name: morning, at: "06:30", do: [{pulse: pump, for: 10m}]}
  - {name: weekdays, cron: "30 6 * * 1-5", do: [{set: pump, state: off}]}
  - {name: often, every: 15m, do: [{set: pump, state: off}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Automations) != 6 || c.Automations[0].Thermostat.Mode != "heat" || c.Automations[1].When.Op != "equals" ||
		c.Automations[1].When.For != Duration(2*time.Second) || c.Automations[2].Do[0].For != Duration(2*time.Minute) ||
		c.Relays[0].MaxOn != Duration(2*time.Hour) || c.Automations[0].Kind() != "thermostat" || c.Automations[5].Kind() != "schedule" {
		t.Fatalf("%+v", c.Automations)
	}
}

func TestAutomationsRefused(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`  - {name: a, thermostat: {sensor: cellar.temperature, relay: heater, target: 19}}`, `t.yaml:8: automations[0].thermostat.sensor: unknown sensor "cellar.temperature"`},
		{`  - {name: a, thermostat: {sensor: room.colour, relay: heater, target: 19}}`, `reads temperature, humidity, pressure`},
		{"  - {name: a, thermostat: {sensor: room.temperature, relay: heater, target: 19}}\n  - {name: b, thermostat: {sensor: room.temperature, relay: heater, target: 5}}", `t.yaml:9: automations[1].thermostat.relay: relay "heater" already has a thermostat`},
		{`  - {name: a, at: "06:30", do: [{pulse: pump, for: 11m}]}`, `t.yaml:8: automations[0].do[0].for: a pulse of 11m is longer than relay "pump" takes (max_pulse 10m)`},
		{`  - {name: a, cron: "61 * * * *", do: [{toggle: pump}]}`, `t.yaml:8: automations[0].cron: minute field "61"`},
		{`  - {name: a, at: "25:00", do: [{toggle: pump}]}`, `t.yaml:8: automations[0].at: want a time of day`},
		{`  - {name: a, when: {sensor: room.temperature, below: 3}, do: [{toggle: nope}]}`, `automations[0].do[0].toggle: unknown relay "nope"`},
		{`  - {name: a, every: 5m}`, `automations[0].do: missing`},
		{`  - {name: a, every: 5m, at: "01:00", do: [{toggle: pump}]}`, `exactly one of thermostat, when, at, cron or every`},
		{"relays_are_fine: 1", `unknown field`},
	} {
		_, err := Parse("t.yaml", []byte(autoBase+tc.in+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\ngot  %v\nwant %s", tc.in, err, tc.want)
		}
	}
	_, err := Parse("t.yaml", []byte(strings.Replace(autoBase, "min_on: 10s", "min_on: 3h", 1)))
	if err == nil || !strings.Contains(err.Error(), "relays[0].min_on: must not be longer than max_on") {
		t.Fatal(err)
	}
}
