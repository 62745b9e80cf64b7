package config

import (
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/edgegate/edgegate/drivers"
	"github.com/edgegate/edgegate/drivers/i2cbus"
	"github.com/edgegate/edgegate/protocol"
)

// The drivers of each list, in the order messages list them.
var (
	relayDrivers  = []string{DriverGPIO, DriverSerialBoard, DriverUSBRelay, DriverI2CRelay, DriverModbus}
	sensorDrivers = []string{DriverBME280, DriverGPIOInput, DriverSerialBoard, DriverSimWave, DriverModbus, DriverDS18B20, DriverADS1115}
	deviceDrivers = []string{DriverSerialBoard, DriverUSBRelay, DriverModbusRTU, DriverModbusTCP}
	modbusDevices = []string{DriverModbusRTU, DriverModbusTCP}
)

// The fields each driver takes besides the common ones; any other field of
// the list item is refused.
var (
	relayCommon  = []string{"name", "driver", "initial", "failsafe", "interlock", "max_pulse", "max_on", "min_on", "min_off"}
	relayFields  = map[string][]string{DriverGPIO: {"pin", "active_low"}, DriverSerialBoard: {"device", "channel"}, DriverUSBRelay: {"port", "device", "channel"}, DriverI2CRelay: {"bus", "address", "chip", "channel", "active_low"}, DriverModbus: {"device", "unit", "coil"}}
	sensorCommon = []string{"name", "driver", "interval", "device_class"}
	sensorFields = map[string][]string{DriverBME280: {"bus", "address"}, DriverGPIOInput: {"pin", "pull", "debounce"}, DriverSerialBoard: {"device"}, DriverSimWave: {"period"}, DriverModbus: {"device", "unit", "registers"}, DriverDS18B20: {"id"}, DriverADS1115: {"bus", "address", "channels"}}
	deviceCommon = []string{"name", "driver"}
	deviceFields = map[string][]string{DriverSerialBoard: {"port", "baud"}, DriverUSBRelay: {"port", "baud"}, DriverModbusRTU: {"port", "baud", "parity", "stop_bits", "timeout"}, DriverModbusTCP: {"address", "timeout"}}
)

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

const (
	minHeartbeat = Duration(100 * time.Millisecond)
	minTick      = Duration(time.Millisecond)
	// maxSampleBatch bounds gateway.sample_batch: samples held longer
	// than this would no longer be live.
	maxSampleBatch = Duration(time.Second)
)

// applyLateDefaults fills the defaults that depend on the driver.
func (p *parser) applyLateDefaults(c *Config) {
	for i := range c.Sensors {
		s := &c.Sensors[i]
		path := fmt.Sprintf("sensors[%d]", i)
		if s.Driver == DriverSimWave && !p.present(path+".period") {
			s.Period = defaultInterval
		}
		if s.Driver == DriverGPIOInput && !p.present(path+".pull") {
			s.Pull = "none"
		}
		// The kernel takes 750 ms to read a DS18B20.
		if s.Driver == DriverDS18B20 && !p.present(path+".interval") {
			s.Interval = Duration(5 * time.Second)
		}
	}
	for i := range c.Relays {
		r := &c.Relays[i]
		r.MaxPulseSet = p.present(fmt.Sprintf("relays[%d].max_pulse", i))
		// I2C expander relay boards switch a channel on with a low level.
		if r.Driver == DriverI2CRelay && !p.present(fmt.Sprintf("relays[%d].active_low", i)) {
			r.ActiveLow = true
		}
	}
	for i := range c.Devices {
		d := &c.Devices[i]
		// LCUS-type USB relay modules talk at 9600 baud.
		if (d.Driver == DriverUSBRelay || d.Driver == DriverModbusRTU) && !p.present(fmt.Sprintf("devices[%d].baud", i)) {
			d.Baud = DefaultUSBRelayBaud
		}
		if d.Driver == DriverModbusRTU {
			if !p.present(fmt.Sprintf("devices[%d].parity", i)) {
				d.Parity = "none"
			}
			if !p.present(fmt.Sprintf("devices[%d].stop_bits", i)) {
				d.StopBits = 1
			}
			if !p.present(fmt.Sprintf("devices[%d].timeout", i)) {
				d.Timeout = Duration(500 * time.Millisecond)
			}
		}
		if d.Driver == DriverModbusTCP && !p.present(fmt.Sprintf("devices[%d].timeout", i)) {
			d.Timeout = Duration(time.Second)
		}
	}
}

// use reports whether path was decoded without error (whether or not it
// was present): checks of a value that could not be decoded are skipped.
func (p *parser) use(path string) bool { return !p.bad[path] }

// fieldf reports a problem with path, at its line if it is in the file and
// else at fallback (the line of the enclosing item).
func (p *parser) fieldf(path string, fallback int, format string, args ...any) {
	p.bad[path] = true
	p.errorf(p.line(path, fallback), path, format, args...)
}

// need checks that the string field path is set; missing explains what to
// write. It reports whether the value can be used.
func (p *parser) need(path, value string, fallback int, missing string) bool {
	if !p.use(path) {
		return false
	}
	if strings.TrimSpace(value) == "" {
		if p.present(path) {
			p.fieldf(path, fallback, "must not be empty; %s", missing)
		} else {
			p.fieldf(path, fallback, "missing; %s", missing)
		}
		return false
	}
	return true
}

// oneOf checks an enum.
func (p *parser) oneOf(path, value string, fallback int, allowed ...string) bool {
	if !p.use(path) {
		return false
	}
	if !slices.Contains(allowed, value) {
		p.fieldf(path, fallback, "want one of %s, got %q", strings.Join(allowed, ", "), value)
		return false
	}
	return true
}

func (p *parser) atLeast(path string, d, lo Duration, fallback int) bool {
	if p.use(path) && d < lo {
		p.fieldf(path, fallback, "must be at least %v, got %v", lo, d)
		return false
	}
	return p.use(path)
}

func (p *parser) positive(path string, n int, fallback int) {
	if p.use(path) && n < 1 {
		p.fieldf(path, fallback, "must be at least 1, got %d", n)
	}
}

// owner is the list item that first used a resource (a pin, a channel, a
// port, an I2C address), for "already used by relays[0] "pump" (line 9)".
type owner struct {
	item, name string
	line       int
}

func (o owner) String() string { return fmt.Sprintf("%s %q (line %d)", o.item, o.name, o.line) }

// checkName checks a list item's name and its uniqueness in the list.
func (p *parser) checkName(item, kind, name string, line int, names map[string]owner, why string) {
	path := item + ".name"
	if !p.need(path, name, line, fmt.Sprintf("every %s needs a name (letters, digits, _ and -)", kind)) {
		return
	}
	if !validName.MatchString(name) {
		p.fieldf(path, line, "%q may only contain letters, digits, _ and -%s", name, why)
		return
	}
	if o, dup := names[name]; dup {
		p.fieldf(path, line, "%q is also the name of %s (line %d); names must be unique", name, o.item, o.line)
		return
	}
	names[name] = owner{item, name, p.line(path, line)}
}

// checkDriver checks a driver name and that the item has no field the
// driver does not take. It reports whether the driver is known.
func (p *parser) checkDriver(item, kind, driver string, line int, drivers []string, common []string, fields map[string][]string, all []string) bool {
	path := item + ".driver"
	if !p.use(path) {
		return false
	}
	if driver == "" {
		if p.present(path) {
			p.fieldf(path, line, "must not be empty; use one of: %s", strings.Join(drivers, ", "))
		} else {
			p.fieldf(path, line, "missing; use one of: %s", strings.Join(drivers, ", "))
		}
		return false
	}
	if !slices.Contains(drivers, driver) {
		hint := ""
		if s := closest(driver, drivers); s != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", s)
		}
		p.fieldf(path, line, "unknown driver %q%s; use one of: %s", driver, hint, strings.Join(drivers, ", "))
		return false
	}
	if fields == nil {
		return true
	}
	takes := fields[driver]
	for _, key := range all {
		fpath := item + "." + key
		if p.present(fpath) && p.use(fpath) && !slices.Contains(common, key) && !slices.Contains(takes, key) {
			p.fieldf(fpath, line, "%s %s %s takes no %s (its own fields: %s); remove it or change the driver", article(driver), driver, kind, key, strings.Join(takes, ", "))
		}
	}
	return true
}

func (p *parser) validate(c *Config) {
	p.checkGateway(&c.Gateway)
	p.checkAuth(&c.Auth)
	devs := p.checkDevices(c.Devices)
	r := &resources{pins: map[string]owner{}, i2c: map[string]*i2cChip{}, ports: map[string]owner{}, channels: map[string]owner{}}
	for i, d := range c.Devices {
		if d.Port != "" && p.use(fmt.Sprintf("devices[%d].port", i)) {
			if _, dup := r.ports[d.Port]; !dup {
				r.ports[d.Port] = owner{fmt.Sprintf("devices[%d]", i), d.Name, p.line(fmt.Sprintf("devices[%d].port", i), d.Line)}
			}
		}
	}
	p.checkRelays(c, devs, r)
	p.checkSensors(c, devs, r)
	if c.Upstream != nil {
		p.checkUpstream(c.Upstream)
	}
	p.checkAutomations(c)
	if c.MQTT != nil {
		p.checkMQTT(c.MQTT)
	}
	p.checkDeviceClasses(c)
}

func (p *parser) checkGateway(g *Gateway) {
	const at = 1 // fallback line: these keys have defaults, so a problem is always at a key
	if p.use("gateway.id") && p.present("gateway.id") {
		switch {
		case strings.TrimSpace(g.ID) == "":
			p.fieldf("gateway.id", at, "must not be empty; leave it out to use the host name")
		case strings.IndexFunc(g.ID, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
			p.fieldf("gateway.id", at, "%q contains control characters", g.ID)
		}
	}
	if p.use("gateway.listen") {
		if err := checkHostPort(g.Listen); err != nil {
			p.fieldf("gateway.listen", at, "%v", err)
		}
	}
	if g.TLS != nil && p.use("gateway.tls") {
		tl := p.line("gateway.tls", at)
		p.need("gateway.tls.cert", g.TLS.Cert, tl, "tls needs the certificate file (PEM), e.g. cert: cert.pem")
		p.need("gateway.tls.key", g.TLS.Key, tl, "tls needs the private key file (PEM), e.g. key: key.pem")
	}
	for i, o := range g.AllowedOrigins {
		path := fmt.Sprintf("gateway.allowed_origins[%d]", i)
		if p.use(path) && !validOrigin(o) {
			p.fieldf(path, at, "want an origin such as %q (scheme://host[:port], nothing after it), got %q", "https://dash.example", o)
		}
	}
	for i, h := range g.AllowedHosts {
		path := fmt.Sprintf("gateway.allowed_hosts[%d]", i)
		if p.use(path) && !validHostName(h) {
			p.fieldf(path, at, "want a host name or IP address as browsers write it in their address bar, without scheme, port or wildcard, such as %q or %q, got %q", "raspberrypi.local", "192.168.1.20", h)
		}
	}
	if p.use("gateway.public_url") && p.present("gateway.public_url") && !validPublicURL(g.PublicURL) {
		p.fieldf("gateway.public_url", at, "want the URL browsers open the gateway at, such as %q (http:// or https://, a host, optionally a port and a path; no user, query or fragment), got %q", "https://pi.example", g.PublicURL)
	}
	hb := &g.Heartbeat
	iOK := p.atLeast("gateway.heartbeat.interval", hb.Interval, minHeartbeat, at)
	tOK := p.atLeast("gateway.heartbeat.timeout", hb.Timeout, minHeartbeat, at)
	if iOK && tOK && hb.Timeout <= hb.Interval {
		three := "three times the interval"
		if hb.Interval < Duration(1000*time.Hour) {
			three = (3 * hb.Interval).String()
		}
		if p.present("gateway.heartbeat.timeout") {
			p.fieldf("gateway.heartbeat.timeout", at, "must be longer than interval (%v), e.g. timeout: %v", hb.Interval, three)
		} else {
			p.fieldf("gateway.heartbeat.interval", at, "must be shorter than timeout (%v by default); also set timeout, e.g. timeout: %v", hb.Timeout, three)
		}
	}
	l := &g.Limits
	const lp = "gateway.limits."
	p.positive(lp+"max_connections", l.MaxConnections, at)
	p.positive(lp+"max_connections_per_ip", l.MaxConnectionsPerIP, at)
	p.positive(lp+"max_message_bytes", l.MaxMessageBytes, at)
	p.positive(lp+"subscriber_queue", l.SubscriberQueue, at)
	if p.use(lp+"requests_per_second") && l.RequestsPerSecond <= 0 {
		p.fieldf(lp+"requests_per_second", at, "must be more than 0, got %v", l.RequestsPerSecond)
	}
	p.atLeast(lp+"handshake_timeout", l.HandshakeTimeout, minTick, at)
	p.atLeast(lp+"write_timeout", l.WriteTimeout, minTick, at)
	if p.use("gateway.watchdog") && g.Watchdog < 0 {
		p.fieldf("gateway.watchdog", at, "must not be negative, got %v (leave it out for no watchdog)", g.Watchdog)
	}
	if p.use("gateway.sample_batch") && (g.SampleBatch < 0 || g.SampleBatch > maxSampleBatch) {
		p.fieldf("gateway.sample_batch", at, "want 0 (every sample written at once) up to %v, got %v (default %v)", maxSampleBatch, g.SampleBatch, Duration(DefaultSampleBatch))
	}
}

func checkHostPort(s string) error {
	bad := fmt.Errorf("want host:port such as %q or %q, got %q", "127.0.0.1:8080", ":8080", s)
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return bad
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func validOrigin(o string) bool {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return false
	}
	return u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery && u.Opaque == "" && !strings.HasSuffix(o, "#")
}

// validHostName reports whether h is a DNS name (letters, digits, - and
// . labels) or an IP address (an IPv6 one with or without brackets).
func validHostName(h string) bool {
	if ip := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"); net.ParseIP(ip) != nil {
		return true
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// validPublicURL reports whether u is an http:// or https:// URL with a
// host and nothing but a path after it.
func validPublicURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || !validHostName(u.Hostname()) {
		return false
	}
	return u.User == nil && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery && u.Opaque == "" && !strings.ContainsAny(s, "?#")
}

func (p *parser) checkAuth(a *Auth) {
	al := p.line("auth", 1)
	if p.present("auth.secret") && p.present("auth.secret_file") {
		p.fieldf("auth.secret_file", al, "set either secret or secret_file, not both")
	} else {
		if p.present("auth.secret") && p.need("auth.secret", a.Secret, al, "give the HMAC key for signed tokens, or leave secret out") && len(a.Secret) < MinSecretBytes {
			p.fieldf("auth.secret", al, "too short (%d bytes) to sign tokens safely; use at least %d random bytes, e.g. the output of: head -c 32 /dev/urandom | base64", len(a.Secret), MinSecretBytes)
		}
		if p.present("auth.secret_file") {
			p.need("auth.secret_file", a.SecretFile, al, "give the file holding the HMAC key for signed tokens, or leave secret_file out")
		}
	}
	names := map[string]owner{}
	keys := map[string]owner{}
	for i, k := range a.Keys {
		item := fmt.Sprintf("auth.keys[%d]", i)
		if !p.use(item) {
			continue
		}
		if p.need(item+".name", k.Name, k.Line, "every key needs a name, shown in logs (e.g. name: backend)") {
			if o, dup := names[k.Name]; dup {
				p.fieldf(item+".name", k.Line, "%q is also the name of %s (line %d); names must be unique", k.Name, o.item, o.line)
			} else {
				names[k.Name] = owner{item, k.Name, p.line(item+".name", k.Line)}
			}
		}
		if p.need(item+".key", k.Key, k.Line, "give the key clients present (a long random string)") {
			if problem := weakKey(k.Key); problem != "" {
				p.errorf(p.line(item+".key", k.Line), item+".key", "%s", problem)
			}
			if o, dup := keys[k.Key]; dup {
				p.fieldf(item+".key", k.Line, "the same key as %s; every key must be different", o)
			} else {
				keys[k.Key] = owner{item, k.Name, p.line(item+".key", k.Line)}
			}
		}
		if p.need(item+".role", k.Role, k.Line, "use viewer or operator") {
			p.oneOf(item+".role", k.Role, k.Line, protocol.RoleViewer, protocol.RoleOperator)
		}
	}
	if p.use("auth.max_token_ttl") && a.MaxTokenTTL < Duration(MinTokenTTL) {
		p.fieldf("auth.max_token_ttl", al, "must be at least %v (the dashboard's socket tokens live that long), got %v (default %v)", Duration(MinTokenTTL), a.MaxTokenTTL, Duration(DefaultMaxTokenTTL))
	}
	if p.present("auth.keys_file") {
		a.keysFileLine = p.line("auth.keys_file", al)
		p.need("auth.keys_file", a.KeysFile, al, "give the file holding API keys, one \"name role key\" a line, or leave keys_file out")
	}
	if a.Enabled && p.use("auth.secret") && p.use("auth.secret_file") && p.use("auth.keys") && p.use("auth.keys_file") &&
		a.Secret == "" && a.SecretFile == "" && len(a.Keys) == 0 && a.KeysFile == "" {
		p.fieldf("auth.enabled", al, "auth is enabled but clients have nothing to authenticate with; add secret_file: (or secret:) for signed tokens, or keys: with at least one API key")
	}
}

// weakKey says what is wrong with an API key that a guess would find, or
// "" for a good one.
func weakKey(key string) string {
	switch {
	case strings.Contains(strings.ToUpper(key), "CHANGE-ME"):
		return "still the example's placeholder; replace it with a long random string, e.g. the output of: openssl rand -hex 24 (scripts/install.sh does it for a new config)"
	case len(key) < MinSecretBytes:
		return fmt.Sprintf("too short (%d characters) to be safe against guessing; use at least %d, e.g. the output of: head -c 24 /dev/urandom | base64", len(key), MinSecretBytes)
	case strings.Count(key, key[:1]) == len(key):
		return "one character repeated is guessed at once; use a long random string, e.g. the output of: openssl rand -hex 24"
	}
	return ""
}

// checkDevices checks the devices and returns them by name.
func (p *parser) checkDevices(ds []Device) map[string]int {
	byName := map[string]int{}
	names := map[string]owner{}
	ports := map[string]owner{}
	for i, d := range ds {
		item := fmt.Sprintf("devices[%d]", i)
		if !p.use(item) {
			continue
		}
		p.checkName(item, "device", d.Name, d.Line, names, "")
		if d.Name != "" { // even a refused name: references to it get no second message
			if _, seen := byName[d.Name]; !seen {
				byName[d.Name] = i
			}
		}
		p.checkDriver(item, "device", d.Driver, d.Line, deviceDrivers, deviceCommon, deviceFields, knownKeys(reflect.TypeFor[Device]()))
		switch d.Driver {
		case DriverModbusTCP:
			if p.need(item+".address", d.Address, d.Line, "give the Modbus TCP server's host:port, e.g. address: 192.168.1.50:502") {
				if err := checkHostPort(d.Address); err != nil {
					p.fieldf(item+".address", d.Line, "%v", err)
				}
			}
			p.atLeast(item+".timeout", d.Timeout, minTick, d.Line)
			continue
		case DriverModbusRTU:
			p.oneOf(item+".parity", d.Parity, d.Line, "none", "even", "odd")
			if p.use(item+".stop_bits") && d.StopBits != 1 && d.StopBits != 2 {
				p.fieldf(item+".stop_bits", d.Line, "want 1 or 2, got %d", d.StopBits)
			}
			p.atLeast(item+".timeout", d.Timeout, minTick, d.Line)
		}
		if p.need(item+".port", d.Port, d.Line, "give the serial port of the board, e.g. port: /dev/ttyACM0") {
			if o, dup := ports[d.Port]; dup {
				p.fieldf(item+".port", d.Line, "%s is already the port of %s; a port can have only one device", d.Port, o)
			} else {
				ports[d.Port] = owner{item, d.Name, p.line(item+".port", d.Line)}
			}
		}
		p.positive(item+".baud", d.Baud, d.Line)
	}
	return byName
}

// resources tracks what relays and sensors use, to refuse using one twice.
type resources struct {
	pins     map[string]owner    // normalised GPIO pin name
	i2c      map[string]*i2cChip // bus + address
	ports    map[string]owner    // serial ports of devices
	channels map[string]owner    // "device/port" + channel
}

type i2cChip struct {
	owner
	chip     string // pcf8574, mcp23017, or bme280 for a sensor
	channels map[int]owner
}

// normPin makes GPIO17, gpio17 and 17 the same pin.
func normPin(pin string) string {
	p := strings.ToUpper(strings.TrimSpace(pin))
	if p != "" && strings.Trim(p, "0123456789") == "" {
		p = "GPIO" + p
	}
	return p
}

func (p *parser) usePin(item, name, pin string, line int, r *resources) {
	path := item + ".pin"
	key := normPin(pin)
	if o, dup := r.pins[key]; dup {
		p.fieldf(path, line, "%s is already used by %s", pin, o)
		return
	}
	r.pins[key] = owner{item, name, p.line(path, line)}
}

func (p *parser) needDevice(item, kind, driver, dev string, line int, c *Config, devs map[string]int) bool {
	return p.needDeviceOf(item, kind, driver, []string{driver}, "/dev/ttyACM0", dev, line, c, devs)
}

// needModbusDevice checks that dev names a modbus-rtu or modbus-tcp device.
func (p *parser) needModbusDevice(item, kind, dev string, line int, c *Config, devs map[string]int) bool {
	return p.needDeviceOf(item, kind, DriverModbus, modbusDevices, "/dev/ttyUSB0", dev, line, c, devs)
}

// needDeviceOf checks that dev names a device of one of the drivers want,
// for a relay or sensor (kind) of driver; port is the example's.
func (p *parser) needDeviceOf(item, kind, driver string, want []string, port, dev string, line int, c *Config, devs map[string]int) bool {
	path := item + ".device"
	wants := strings.Join(want, " or ")
	i, ok := devs[dev]
	if !ok {
		var known []string
		for _, d := range c.Devices {
			if slices.Contains(want, d.Driver) && d.Name != "" {
				known = append(known, d.Name)
			}
		}
		if len(known) == 0 {
			p.fieldf(path, line, "no %s device named %q; add it to devices, e.g. - {name: %s, driver: %s, port: %s}", wants, dev, dev, want[0], port)
		} else {
			p.fieldf(path, line, "no device named %q; use one of the %s devices: %s", dev, wants, strings.Join(known, ", "))
		}
		return false
	}
	if d := c.Devices[i]; !slices.Contains(want, d.Driver) {
		if !p.use(fmt.Sprintf("devices[%d].driver", i)) {
			return false
		}
		p.fieldf(path, line, "%q is %s %s device (devices[%d], line %d); %s %s %s needs %s %s device", dev, article(d.Driver), d.Driver, i, d.Line, article(driver), driver, kind, article(want[0]), wants)
		return false
	}
	return true
}

// listRules reports the driver's problems with the items of the list
// field of item ("registers[1].type"), sorted, each at its line.
func (p *parser) listRules(item, list string, line int, problems map[string]string) {
	var fields []string
	for f := range problems {
		if strings.HasPrefix(f, list+"[") {
			fields = append(fields, f)
		}
	}
	slices.Sort(fields)
	for _, f := range fields {
		path := item + "." + f
		elem := path[:strings.Index(path, "]")+1]
		if !p.use(path) || !p.use(elem) {
			continue
		}
		p.fieldf(path, p.line(elem, line), "%s", problems[f])
	}
}

// needGiven checks that the required field path is in the file (its value
// is the driver's to check); missing says what to write.
func (p *parser) needGiven(path string, line int, missing string) bool {
	if !p.use(path) {
		return false
	}
	if !p.present(path) {
		p.fieldf(path, line, "missing; %s", missing)
		return false
	}
	return true
}

// needChannel checks that a required relay channel is given.
func (p *parser) needChannel(item string, line int, example string) bool {
	return p.needGiven(item+".channel", line, "give the relay's channel on the board, numbered from 1 ("+example+")")
}

// needFor is need for a field that the driver requires: what to write is
// the driver's own word on the field left empty.
func (p *parser) needFor(item, field, value string, line int, problems map[string]string) bool {
	return p.need(item+"."+field, value, line, problems[field])
}

// rule reports the problem the driver's own check (its options' Validate,
// as drivers.FieldProblems lists them) found with field of item, if the
// field could be decoded. It reports whether the field can be used.
func (p *parser) rule(item, field string, line int, problems map[string]string) bool {
	path := item + "." + field
	if !p.use(path) {
		return false
	}
	if problem, bad := problems[field]; bad {
		p.fieldf(path, line, "%s", problem)
		return false
	}
	return true
}

func (p *parser) useChannel(item, name, what string, ch, line int, r *resources) {
	key := what + "\x00" + strconv.Itoa(ch)
	if o, dup := r.channels[key]; dup {
		p.fieldf(item+".channel", line, "channel %d of %s is already used by %s", ch, what, o)
		return
	}
	r.channels[key] = owner{item, name, p.line(item+".channel", line)}
}

// needAddress checks that a required I2C address is given.
func (p *parser) needAddress(item string, line int, example string) bool {
	return p.needGiven(item+".address", line, "give the chip's I2C address, e.g. "+example)
}

func (p *parser) checkRelays(c *Config, devs map[string]int, r *resources) {
	names := map[string]owner{}
	groups := map[string][]int{}
	var groupOrder []string
	all := knownKeys(reflect.TypeFor[Relay]())
	for i := range c.Relays {
		x := &c.Relays[i]
		item := fmt.Sprintf("relays[%d]", i)
		if !p.use(item) {
			continue
		}
		p.checkName(item, "relay", x.Name, x.Line, names, "")
		p.oneOf(item+".initial", x.Initial, x.Line, "off", "on", "restore")
		p.oneOf(item+".failsafe", x.Failsafe, x.Line, "off", "on", "hold")
		p.atLeast(item+".max_pulse", x.MaxPulse, minTick, x.Line)
		p.checkRelayGuards(item, x)
		if p.present(item+".interlock") && p.use(item+".interlock") {
			if !validName.MatchString(x.Interlock) {
				p.fieldf(item+".interlock", x.Line, "group name %q may only contain letters, digits, _ and -", x.Interlock)
			} else {
				if groups[x.Interlock] == nil {
					groupOrder = append(groupOrder, x.Interlock)
				}
				groups[x.Interlock] = append(groups[x.Interlock], i)
			}
		}
		if !p.checkDriver(item, "relay", x.Driver, x.Line, relayDrivers, relayCommon, relayFields, all) {
			continue
		}
		switch x.Driver {
		case DriverGPIO:
			rules := drivers.FieldProblems(x.GPIOOpts().Validate())
			if p.needFor(item, "pin", x.Pin, x.Line, rules) {
				p.usePin(item, x.Name, x.Pin, x.Line, r)
			}
		case DriverSerialBoard:
			rules := drivers.FieldProblems(x.BoardOpts().Validate())
			okDev := p.needFor(item, "device", x.Device, x.Line, rules) &&
				p.needDevice(item, "relay", DriverSerialBoard, x.Device, x.Line, c, devs)
			if p.needChannel(item, x.Line, "channel: 1") && p.rule(item, "channel", x.Line, rules) && okDev {
				p.useChannel(item, x.Name, fmt.Sprintf("device %q", x.Device), x.Channel, x.Line, r)
			}
		case DriverUSBRelay:
			rules := drivers.FieldProblems(x.USBOpts().Validate())
			port := ""
			switch {
			case p.present(item+".port") && p.present(item+".device"):
				p.fieldf(item+".device", x.Line, "give either port or device, not both")
			case p.present(item + ".device"):
				if p.need(item+".device", x.Device, x.Line, "name a usb-relay entry of devices") &&
					p.needDevice(item, "relay", DriverUSBRelay, x.Device, x.Line, c, devs) {
					port = c.Devices[devs[x.Device]].Port
				}
			default:
				if p.need(item+".port", x.Port, x.Line, "a usb-relay relay needs its serial port, e.g. port: /dev/ttyUSB0 (or device: naming a usb-relay entry of devices)") {
					if o, taken := r.ports[x.Port]; taken {
						p.fieldf(item+".port", x.Line, "%s is the port of %s; use device: %s instead of port:", x.Port, o, o.name)
					} else {
						port = x.Port
					}
				}
			}
			if p.needChannel(item, x.Line, "channel: 1") && p.rule(item, "channel", x.Line, rules) && port != "" {
				p.useChannel(item, x.Name, port, x.Channel, x.Line, r)
			}
		case DriverModbus:
			rules := drivers.FieldProblems(x.ModbusOpts().Validate())
			okDev := p.needFor(item, "device", x.Device, x.Line, rules) &&
				p.needModbusDevice(item, "relay", x.Device, x.Line, c, devs)
			okUnit := p.needGiven(item+".unit", x.Line, "give the unit (slave) id of the board, e.g. unit: 1") && p.rule(item, "unit", x.Line, rules)
			okCoil := p.needGiven(item+".coil", x.Line, "give the coil address of the relay, from 0, e.g. coil: 0") && p.rule(item, "coil", x.Line, rules)
			if okDev && okUnit && okCoil {
				key := fmt.Sprintf("modbus\x00%s\x00%d\x00%d", x.Device, x.Unit, x.Coil)
				if o, dup := r.channels[key]; dup {
					p.fieldf(item+".coil", x.Line, "coil %d of unit %d on %q is already used by %s", x.Coil, x.Unit, x.Device, o)
				} else {
					r.channels[key] = owner{item, x.Name, p.line(item+".coil", x.Line)}
				}
			}
		case DriverI2CRelay:
			rules := drivers.FieldProblems(x.I2COpts().Validate())
			okBus := p.need(item+".bus", x.Bus, x.Line, "an i2c-relay relay needs its I2C bus, e.g. bus: /dev/i2c-1")
			okAddr := p.needAddress(item, x.Line, "address: 0x20") && p.rule(item, "address", x.Line, rules)
			okChip := p.need(item+".chip", x.Chip, x.Line, "use one of: pcf8574, mcp23017") && p.rule(item, "chip", x.Line, rules)
			okCh := p.needChannel(item, x.Line, "channel: 1 for P0 or GPA0") && p.rule(item, "channel", x.Line, rules)
			if okBus && okAddr && okChip {
				key := i2cbus.Key(x.Bus) + "\x00" + strconv.Itoa(x.Address)
				ch := r.i2c[key]
				switch {
				case ch == nil:
					ch = &i2cChip{owner: owner{item, x.Name, p.line(item+".address", x.Line)}, chip: x.Chip, channels: map[int]owner{}}
					r.i2c[key] = ch
				case ch.chip != x.Chip:
					p.fieldf(item+".chip", x.Line, "the chip at %#x on bus %s is a %s according to %s", x.Address, x.Bus, ch.chip, ch.owner)
					continue
				}
				if !okCh {
					continue
				}
				if o, dup := ch.channels[x.Channel]; dup {
					p.fieldf(item+".channel", x.Line, "channel %d of the %s at %#x on bus %s is already used by %s", x.Channel, x.Chip, x.Address, x.Bus, o)
				} else {
					ch.channels[x.Channel] = owner{item, x.Name, p.line(item+".channel", x.Line)}
				}
			}
		}
	}
	for _, g := range groupOrder {
		members := groups[g]
		if len(members) == 1 {
			i := members[0]
			p.fieldf(fmt.Sprintf("relays[%d].interlock", i), c.Relays[i].Line, "interlock group %q has only relays[%d]; a group needs two or more relays", g, i)
			continue
		}
		for _, f := range []struct{ key, what string }{{"initial", "starts on"}, {"failsafe", "fails safe to on"}} {
			var first *owner
			for _, i := range members {
				x := &c.Relays[i]
				v := x.Initial
				if f.key == "failsafe" {
					v = x.Failsafe
				}
				path := fmt.Sprintf("relays[%d].%s", i, f.key)
				if v != "on" || !p.use(path) {
					continue
				}
				if first != nil {
					p.fieldf(path, x.Line, "%s, in the same interlock group %q, also %s; at most one relay of a group can be on", *first, g, f.what)
					continue
				}
				first = &owner{fmt.Sprintf("relays[%d]", i), x.Name, p.line(path, x.Line)}
			}
		}
	}
}

func (p *parser) checkSensors(c *Config, devs map[string]int, r *resources) {
	names := map[string]owner{}
	boards := map[string]owner{}
	probes := map[string]owner{}
	all := knownKeys(reflect.TypeFor[Sensor]())
	for i := range c.Sensors {
		s := &c.Sensors[i]
		item := fmt.Sprintf("sensors[%d]", i)
		if !p.use(item) {
			continue
		}
		p.checkName(item, "sensor", s.Name, s.Line, names, " (its readings are named <name>.<quantity>, e.g. room.temperature)")
		p.atLeast(item+".interval", s.Interval, minTick, s.Line)
		if !p.checkDriver(item, "sensor", s.Driver, s.Line, sensorDrivers, sensorCommon, sensorFields, all) {
			continue
		}
		switch s.Driver {
		case DriverBME280:
			p.checkSensorChip(item, s, DriverBME280, "0x76", drivers.FieldProblems(s.BME280Opts().Validate()), r)
		case DriverGPIOInput:
			rules := drivers.FieldProblems(s.GPIOInputOpts().Validate())
			if p.needFor(item, "pin", s.Pin, s.Line, rules) {
				p.usePin(item, s.Name, s.Pin, s.Line, r)
			}
			p.rule(item, "pull", s.Line, rules)
			p.rule(item, "debounce", s.Line, rules)
		case DriverSerialBoard:
			if p.needFor(item, "device", s.Device, s.Line, drivers.FieldProblems(s.BoardOpts().Validate())) &&
				p.needDevice(item, "sensor", DriverSerialBoard, s.Device, s.Line, c, devs) {
				if o, dup := boards[s.Device]; dup {
					p.fieldf(item+".device", s.Line, "board %q is already read by %s; one sensor entry reads all of a board's values", s.Device, o)
				} else {
					boards[s.Device] = owner{item, s.Name, p.line(item+".device", s.Line)}
				}
			}
		case DriverSimWave:
			p.rule(item, "period", s.Line, drivers.FieldProblems(s.SimWaveOpts().Validate()))
		case DriverModbus:
			rules := drivers.FieldProblems(s.ModbusOpts().Validate())
			if p.needFor(item, "device", s.Device, s.Line, rules) {
				p.needModbusDevice(item, "sensor", s.Device, s.Line, c, devs)
			}
			if p.needGiven(item+".unit", s.Line, "give the unit (slave) id of the device, e.g. unit: 2") {
				p.rule(item, "unit", s.Line, rules)
			}
			if p.needGiven(item+".registers", s.Line, "list what to read, e.g. registers: [{name: temperature, address: 0, type: int16, scale: 0.1}]") {
				p.rule(item, "registers", s.Line, rules)
				p.listRules(item, "registers", s.Line, rules)
			}
		case DriverDS18B20:
			rules := drivers.FieldProblems(s.DS18B20Opts().Validate())
			if p.needGiven(item+".id", s.Line, "give the probe's 1-wire id, e.g. id: 28-0316a2795eff (ls /sys/bus/w1/devices lists them)") && p.rule(item, "id", s.Line, rules) {
				if o, dup := probes[s.ID]; dup {
					p.fieldf(item+".id", s.Line, "probe %s is already read by %s", s.ID, o)
				} else {
					probes[s.ID] = owner{item, s.Name, p.line(item+".id", s.Line)}
				}
			}
		case DriverADS1115:
			rules := drivers.FieldProblems(s.ADS1115Opts().Validate())
			p.checkSensorChip(item, s, DriverADS1115, "0x48", rules, r)
			if p.needGiven(item+".channels", s.Line, "list the inputs to read, e.g. channels: [{name: moisture, input: 0, gain: 4.096, scale: 30.3}]") {
				p.rule(item, "channels", s.Line, rules)
				p.listRules(item, "channels", s.Line, rules)
			}
		}
	}
}

// checkSensorChip checks the bus and address of sensor s, a chip on I2C
// (its driver's name; address is the example's), and records the address,
// refusing one that is already used.
func (p *parser) checkSensorChip(item string, s *Sensor, chip, address string, rules map[string]string, r *resources) {
	okBus := p.need(item+".bus", s.Bus, s.Line, fmt.Sprintf("%s %s sensor needs its I2C bus, e.g. bus: /dev/i2c-1", article(chip), chip))
	okAddr := p.needAddress(item, s.Line, "address: "+address) && p.rule(item, "address", s.Line, rules)
	if !okBus || !okAddr {
		return
	}
	key := i2cbus.Key(s.Bus) + "\x00" + strconv.Itoa(s.Address)
	if ch := r.i2c[key]; ch != nil {
		p.fieldf(item+".address", s.Line, "%#x on bus %s is already used by %s", s.Address, s.Bus, ch.owner)
		return
	}
	r.i2c[key] = &i2cChip{owner: owner{item, s.Name, p.line(item+".address", s.Line)}, chip: chip}
}

// isLoopbackHost reports whether host names this machine: localhost or a
// loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (p *parser) checkUpstream(u *Upstream) {
	ul := p.line("upstream", 1)
	if p.need("upstream.url", u.URL, ul, "give the backend's WebSocket URL, e.g. url: wss://backend.example/ingest") {
		pu, err := url.Parse(u.URL)
		switch {
		case err != nil:
			p.fieldf("upstream.url", ul, "not a URL; want one such as wss://backend.example/ingest")
		case pu.Scheme != "ws" && pu.Scheme != "wss":
			p.fieldf("upstream.url", ul, "want a ws:// or wss:// URL such as wss://backend.example/ingest, got scheme %q", pu.Scheme)
		case pu.Host == "" || pu.Hostname() == "":
			p.fieldf("upstream.url", ul, "the URL has no host; want one such as wss://backend.example/ingest")
		case pu.Scheme == "ws" && !isLoopbackHost(pu.Hostname()) && !u.Insecure:
			p.fieldf("upstream.url", ul, "ws:// to %s would send the uplink's token and every relay command unencrypted, and anyone on the way could pose as the backend; use wss://, or set upstream.insecure: true on a network you trust", pu.Hostname())
		}
	}
	if p.present("upstream.token") && p.present("upstream.token_file") {
		p.fieldf("upstream.token_file", ul, "set either token or token_file, not both")
	}
	if p.use("upstream.buffer_max_bytes") && u.BufferMaxBytes < 1 {
		p.fieldf("upstream.buffer_max_bytes", ul, "must be more than 0, got %v", u.BufferMaxBytes)
	}
	p.oneOf("upstream.fsync", u.Fsync, ul, "always", "batch", "never")
}

// article is "an" before a driver name read with a vowel sound (an
// i2c-relay, but a usb-relay), else "a".
func article(word string) string {
	if word != "" && strings.ContainsRune("aeio", rune(word[0])) {
		return "an"
	}
	return "a"
}

// ---- mqtt: the MQTT bridge (MQTT.md) ----

// validDeviceClass is a Home Assistant device class: lower-case words
// joined by _.
var validDeviceClass = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func (p *parser) checkMQTT(m *MQTT) {
	ml := p.line("mqtt", 1)
	if p.need("mqtt.url", m.URL, ml, "give the broker's URL, e.g. url: mqtt://broker.lan:1883") {
		pu, err := url.Parse(m.URL)
		switch {
		case err != nil:
			p.fieldf("mqtt.url", ml, "not a URL; want one such as mqtt://broker.lan:1883")
		case pu.Scheme != "mqtt" && pu.Scheme != "mqtts":
			p.fieldf("mqtt.url", ml, "want an mqtt:// or mqtts:// URL such as mqtt://broker.lan:1883, got scheme %q", pu.Scheme)
		case pu.Hostname() == "":
			p.fieldf("mqtt.url", ml, "the URL has no host; want one such as mqtt://broker.lan:1883")
		case pu.Path != "" && pu.Path != "/" || pu.RawQuery != "":
			p.fieldf("mqtt.url", ml, "an MQTT URL is scheme://host:port only, got path or query in %q", m.URL)
		}
	}
	if p.present("mqtt.password") && p.present("mqtt.password_file") {
		p.fieldf("mqtt.password_file", ml, "set either password or password_file, not both")
	}
	if p.present("mqtt.cert_file") != p.present("mqtt.key_file") {
		p.fieldf("mqtt.cert_file", ml, "a client certificate needs both cert_file and key_file")
	}
	if p.use("mqtt.qos") && m.QoS != 0 && m.QoS != 1 {
		p.fieldf("mqtt.qos", ml, "must be 0 or 1, got %d", m.QoS)
	}
	for _, k := range []struct{ path, v string }{{"mqtt.base_topic", m.BaseTopic}, {"mqtt.discovery_prefix", m.DiscoveryPrefix}} {
		if !p.use(k.path) {
			continue
		}
		if problem := topicPrefixProblem(k.v); problem != "" {
			p.fieldf(k.path, ml, "%s, got %q", problem, k.v)
		}
	}
	if p.use("mqtt.client_id") && p.present("mqtt.client_id") && strings.TrimSpace(m.ClientID) == "" {
		p.fieldf("mqtt.client_id", ml, "must not be empty; leave it out for edgegate-<gateway.id>")
	}
	if p.use("mqtt.keepalive") && (m.Keepalive < Duration(time.Second) || m.Keepalive > Duration(18*time.Hour)) {
		p.fieldf("mqtt.keepalive", ml, "must be between 1s and 18h, got %v", time.Duration(m.Keepalive))
	}
	if p.use("mqtt.sensor_max_hz") && (m.SensorMaxHz < 0 || m.SensorMaxHz > 1000) {
		p.fieldf("mqtt.sensor_max_hz", ml, "must be between 0 (every sample) and 1000, got %v", m.SensorMaxHz)
	}
	if p.use("mqtt.buffer_max_bytes") && m.BufferMaxBytes < 1 {
		p.fieldf("mqtt.buffer_max_bytes", ml, "must be more than 0, got %v", m.BufferMaxBytes)
	}
}

// topicPrefixProblem is what is wrong with base_topic or discovery_prefix
// as MQTT topic levels, or "".
func topicPrefixProblem(v string) string {
	switch {
	case v == "":
		return "must not be empty"
	case strings.ContainsAny(v, "+#"):
		return "must not hold the MQTT wildcards + or #"
	case strings.Contains(v, "."):
		return "must not hold a . (some brokers map / to .)"
	case strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/"):
		return "must not start or end with /"
	case strings.Contains(v, "//"):
		return "must not hold an empty level (//)"
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "must not hold control characters"
	}
	return ""
}

// checkDeviceClasses checks the sensors' optional device_class.
func (p *parser) checkDeviceClasses(c *Config) {
	for i, s := range c.Sensors {
		path := fmt.Sprintf("sensors[%d].device_class", i)
		if p.use(path) && p.present(path) && !validDeviceClass.MatchString(s.DeviceClass) {
			p.fieldf(path, s.Line, "want a Home Assistant device class such as door, motion or moisture (lower case, _), got %q", s.DeviceClass)
		}
	}
}
