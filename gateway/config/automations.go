package config

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
