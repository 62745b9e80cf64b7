package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edgegate/edgegate/gateway/automation/schedule"
)

// Relay guards and the automations section (AUTOMATIONS.md): kept in a
// file of their own, apart from the other sections' checks.

// checkRelayGuards checks a relay's max_on, min_on and min_off.
func (p *parser) checkRelayGuards(item string, x *Relay) {
	for _, g := range []struct {
		key string
		d   Duration
	}{{"max_on", x.MaxOn}, {"min_on", x.MinOn}, {"min_off", x.MinOff}} {
		if p.present(item + "." + g.key) {
			p.atLeast(item+"."+g.key, g.d, minTick, x.Line)
		}
	}
	if x.MaxOn > 0 && x.MinOn > 0 && x.MinOn > x.MaxOn && p.use(item+".min_on") {
		p.fieldf(item+".min_on", x.Line, "must not be longer than max_on (%v), got %v", x.MaxOn, x.MinOn)
	}
}

// Automation is one entry of automations: exactly one of Thermostat, When
// or a schedule (At, Cron, Every), and for When and schedules the actions
// Do.
type Automation struct {
	Name       string      `yaml:"name"`
	Thermostat *Thermostat `yaml:"thermostat"`
	When       *When       `yaml:"when"`
	At         string      `yaml:"at"`    // daily, "HH:MM" local time
	Cron       string      `yaml:"cron"`  // "minute hour dom month dow", local time
	Every      Duration    `yaml:"every"` // from the gateway's start
	Do         []Action    `yaml:"do"`
	Cooldown   Duration    `yaml:"cooldown"` // least time between two firings
	Line       int         `yaml:"-"`
}

// Thermostat switches Relay on below Target-Hysteresis/2 and off above
// Target+Hysteresis/2 (mode heat; the other way round for cool).
type Thermostat struct {
	Sensor     string  `yaml:"sensor"`
	Relay      string  `yaml:"relay"`
	Target     float64 `yaml:"target"`
	Hysteresis float64 `yaml:"hysteresis"`
	Mode       string  `yaml:"mode"` // heat (default) | cool
}

// When is a condition on a sensor (Below, Above or Equals) or on a relay
// (Is on or off), which must hold For a while before it fires.
type When struct {
	Sensor string   `yaml:"sensor"`
	Below  float64  `yaml:"below"`
	Above  float64  `yaml:"above"`
	Equals float64  `yaml:"equals"`
	Relay  string   `yaml:"relay"`
	Is     string   `yaml:"is"` // on | off
	For    Duration `yaml:"for"`
	// Which of below, above and equals is given ("" for a relay condition).
	Op string `yaml:"-"`
}

// Action is one step of do: exactly one of Set (with State), Toggle and
// Pulse (with For).
type Action struct {
	Set    string   `yaml:"set"`
	State  string   `yaml:"state"`
	Toggle string   `yaml:"toggle"`
	Pulse  string   `yaml:"pulse"`
	For    Duration `yaml:"for"`
	Line   int      `yaml:"-"`
}

// Relay is the relay the action switches.
func (a *Action) Relay() string { return a.Set + a.Toggle + a.Pulse }

// Kind is "thermostat", "when" or "schedule".
func (a *Automation) Kind() string {
	switch {
	case a.Thermostat != nil:
		return "thermostat"
	case a.When != nil:
		return "when"
	}
	return "schedule"
}

// fixedQuantities are the quantities of the sensor drivers that have fixed
// ones; a serial board announces its own at run time, so only its device
// name is checked here (and the rest when the gateway starts).
var fixedQuantities = map[string][]string{
	DriverBME280:    {"temperature", "humidity", "pressure"},
	DriverGPIOInput: {"state"},
	DriverSimWave:   {"value"},
}

// checkAutomations checks the automations section against the relays and
// sensors.
func (p *parser) checkAutomations(c *Config) {
	relays := map[string]*Relay{}
	for i := range c.Relays {
		relays[c.Relays[i].Name] = &c.Relays[i]
	}
	sensors := map[string]*Sensor{}
	for i := range c.Sensors {
		sensors[c.Sensors[i].Name] = &c.Sensors[i]
	}
	names := map[string]owner{}
	thermostats := map[string]string{} // relay -> item of the thermostat on it
	for i := range c.Automations {
		a := &c.Automations[i]
		item := fmt.Sprintf("automations[%d]", i)
		if !p.use(item) {
			continue
		}
		p.checkName(item, "automation", a.Name, a.Line, names, "")
		kinds := 0
		for _, k := range []string{"thermostat", "when", "at", "cron", "every"} {
			if p.present(item + "." + k) {
				kinds++
			}
		}
		if kinds != 1 {
			p.fieldf(item, a.Line, "give exactly one of thermostat, when, at, cron or every (got %d)", kinds)
			continue
		}
		needSensor := func(path, name string) {
			if !p.use(path) {
				return
			}
			dev, q, ok := strings.Cut(name, ".")
			s := sensors[dev]
			switch {
			case name == "":
				p.fieldf(path, a.Line, "missing: the name of a sensor reading, like room.temperature")
			case !ok || s == nil:
				p.fieldf(path, a.Line, "unknown sensor %q: readings are named <sensor>.<quantity>, with a sensor of the sensors section", name)
			case fixedQuantities[s.Driver] != nil && !slices.Contains(fixedQuantities[s.Driver], q):
				p.fieldf(path, a.Line, "unknown sensor %q: sensor %q (%s) reads %s", name, dev, s.Driver, strings.Join(fixedQuantities[s.Driver], ", "))
			}
		}
		needRelay := func(path, name string) *Relay {
			if !p.use(path) {
				return nil
			}
			r := relays[name]
			if r == nil {
				if name == "" {
					p.fieldf(path, a.Line, "missing: the name of a relay")
				} else {
					p.fieldf(path, a.Line, "unknown relay %q", name)
				}
			}
			return r
		}
		switch {
		case a.Thermostat != nil:
			t, path := a.Thermostat, item+".thermostat"
			needSensor(path+".sensor", t.Sensor)
			if needRelay(path+".relay", t.Relay) != nil {
				if other, dup := thermostats[t.Relay]; dup {
					p.fieldf(path+".relay", a.Line, "relay %q already has a thermostat (%s); a relay takes one thermostat", t.Relay, other)
				} else {
					thermostats[t.Relay] = item
				}
			}
			if t.Mode == "" {
				t.Mode = "heat"
			}
			p.oneOf(path+".mode", t.Mode, a.Line, "heat", "cool")
			if !p.present(path + ".target") {
				p.fieldf(path+".target", a.Line, "missing: the temperature to keep, like 19")
			}
			if p.use(path+".hysteresis") && t.Hysteresis < 0 {
				p.fieldf(path+".hysteresis", a.Line, "must not be negative, got %v", t.Hysteresis)
			}
			if p.present(item+".do") || p.present(item+".cooldown") {
				p.fieldf(item, a.Line, "a thermostat takes no do or cooldown: it switches its own relay")
			}
			continue
		case a.When != nil:
			w, path := a.When, item+".when"
			var ops []string
			for _, k := range []string{"below", "above", "equals"} {
				if p.present(path + "." + k) {
					ops = append(ops, k)
				}
			}
			if p.present(path + ".sensor") {
				needSensor(path+".sensor", w.Sensor)
				if len(ops) != 1 {
					p.fieldf(path, a.Line, "a sensor condition takes exactly one of below, above, equals")
				} else {
					w.Op = ops[0]
				}
				if p.present(path+".relay") || p.present(path+".is") {
					p.fieldf(path, a.Line, "give a sensor or a relay, not both")
				}
			} else if p.present(path + ".relay") {
				needRelay(path+".relay", w.Relay)
				p.oneOf(path+".is", w.Is, a.Line, "on", "off")
				if len(ops) > 0 {
					p.fieldf(path, a.Line, "a relay condition takes is: on or off, not %s", strings.Join(ops, ", "))
				}
			} else {
				p.fieldf(path, a.Line, "give a sensor (with below, above or equals) or a relay (with is)")
			}
			if p.present(path + ".for") {
				p.atLeast(path+".for", w.For, minTick, a.Line)
			}
		case p.present(item + ".at"):
			if _, err := schedule.ParseAt(a.At); err != nil && p.use(item+".at") {
				p.fieldf(item+".at", a.Line, "%v", err)
			}
		case p.present(item + ".cron"):
			if _, err := schedule.ParseCron(a.Cron); err != nil && p.use(item+".cron") {
				p.fieldf(item+".cron", a.Line, "%v", err)
			}
		default:
			p.atLeast(item+".every", a.Every, Duration(time.Second), a.Line)
		}
		if p.present(item + ".cooldown") {
			p.atLeast(item+".cooldown", a.Cooldown, minTick, a.Line)
		}
		if len(a.Do) == 0 && p.use(item+".do") {
			p.fieldf(item+".do", a.Line, "missing: the actions to carry out, like [{set: light, state: on}]")
		}
		for j := range a.Do {
			p.checkAction(fmt.Sprintf("%s.do[%d]", item, j), &a.Do[j], a.Line, needRelay)
		}
	}
}

func (p *parser) checkAction(path string, x *Action, fallback int, needRelay func(path, name string) *Relay) {
	if !p.use(path) {
		return
	}
	line := fallback
	if x.Line > 0 {
		line = x.Line
	}
	var verbs []string
	for _, k := range []string{"set", "toggle", "pulse"} {
		if p.present(path + "." + k) {
			verbs = append(verbs, k)
		}
	}
	if len(verbs) != 1 {
		p.fieldf(path, line, "an action is exactly one of {set: RELAY, state: on|off}, {toggle: RELAY}, {pulse: RELAY, for: DURATION}")
		return
	}
	r := needRelay(path+"."+verbs[0], x.Relay())
	switch verbs[0] {
	case "set":
		p.oneOf(path+".state", x.State, line, "on", "off")
	case "pulse":
		if !p.present(path + ".for") {
			p.fieldf(path+".for", line, "missing: how long the pulse lasts, like 2m")
		} else if p.atLeast(path+".for", x.For, minTick, line) && r != nil && x.For > r.MaxPulse {
			p.fieldf(path+".for", line, "a pulse of %v is longer than relay %q takes (max_pulse %v)", x.For, r.Name, r.MaxPulse)
		}
	}
}
