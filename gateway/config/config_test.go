package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/configs"
)

// example is the configuration file of CONFIG.md, verbatim.
const example = `gateway:
  id: greenhouse-pi            # default: host name
  listen: 127.0.0.1:8080
  tls: {cert: cert.pem, key: key.pem}        # optional; then wss:// and https://
  allowed_origins: ["https://dash.example"]  # besides the gateway's own origin
  compression: true                          # permessage-deflate
  heartbeat: {interval: 15s, timeout: 45s}
  limits:
    max_connections: 1000
    max_connections_per_ip: 64
    max_message_bytes: 65536
    requests_per_second: 50                  # per connection, burst 2x; then rate_limited
    handshake_timeout: 5s
    write_timeout: 10s
    subscriber_queue: 1024
auth:
  enabled: true
  secret_file: secret.key      # HMAC key for signed tokens (or ` + "`secret:`" + ` inline)
  keys:                        # static API keys
    - {name: backend, key: "…", role: viewer}
    - {name: ops, key: "…", role: operator}
relays:
  - {name: pump,  driver: gpio, pin: GPIO17, active_low: true, initial: off, failsafe: off}
  - {name: valve_open,  driver: gpio, pin: GPIO22, interlock: valves}
  - {name: valve_close, driver: gpio, pin: GPIO23, interlock: valves}
  - {name: door, driver: gpio, pin: GPIO24, max_pulse: 5s}
  - {name: heater, driver: serial-board, device: board, channel: 1}
  - {name: lamp, driver: usb-relay, port: /dev/ttyUSB0, channel: 1}
sensors:
  - {name: room, driver: bme280, bus: /dev/i2c-1, address: 0x76, interval: 1s}
  - {name: door_contact, driver: gpio-input, pin: GPIO27, pull: up, debounce: 20ms}
  - {name: soil, driver: serial-board, device: board, interval: 2s}
  - {name: wave, driver: sim-wave, interval: 1ms, period: 1s}   # synthetic signal, sim only (tests, benchmarks)
devices:
  - {name: board, driver: serial-board, port: /dev/ttyACM0, baud: 115200}
upstream:
  url: wss://backend.example/ingest
  token_file: upstream.token
  buffer_max_bytes: 64MiB
  fsync: batch                 # always | batch | never
`

// exampleWithKeys is example with its two placeholder keys ("…" both)
// made different, as any real file has them.
var exampleWithKeys = strings.Replace(strings.Replace(example,
	`key: "…", role: viewer`, `key: "backend-key-0123456789", role: viewer`, 1),
	`key: "…", role: operator`, `key: "ops-key-0123456789", role: operator`, 1)

func ms(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }

func TestExample(t *testing.T) {
	c, err := Parse("ex.yaml", []byte(exampleWithKeys))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		File: "ex.yaml",
		Gateway: Gateway{
			ID:             "greenhouse-pi",
			Listen:         "127.0.0.1:8080",
			TLS:            &TLS{Cert: "cert.pem", Key: "key.pem"},
			AllowedOrigins: []string{"https://dash.example"},
			Compression:    true,
			Heartbeat:      Heartbeat{Interval: ms(15000), Timeout: ms(45000)},
			SampleBatch:    ms(5),
			Limits: Limits{
				MaxConnections:      1000,
				MaxConnectionsPerIP: 64,
				MaxMessageBytes:     65536,
				RequestsPerSecond:   50,
				HandshakeTimeout:    ms(5000),
				WriteTimeout:        ms(10000),
				SubscriberQueue:     1024,
			},
		},
		Auth: Auth{
			Enabled:    true,
			SecretFile: "secret.key",
			Keys: []APIKey{
				{Name: "backend", Key: "backend-key-0123456789", Role: "viewer", Line: 20},
				{Name: "ops", Key: "ops-key-0123456789", Role: "operator", Line: 21},
			},
			MaxTokenTTL:  Duration(DefaultMaxTokenTTL),
			PublicHealth: true,
		},
		Relays: []Relay{
			{Name: "pump", Driver: "gpio", Pin: "GPIO17", ActiveLow: true, Initial: "off", Failsafe: "off", MaxPulse: ms(60000), Line: 23},
			{Name: "valve_open", Driver: "gpio", Pin: "GPIO22", Initial: "off", Failsafe: "off", Interlock: "valves", MaxPulse: ms(60000), Line: 24},
			{Name: "valve_close", Driver: "gpio", Pin: "GPIO23", Initial: "off", Failsafe: "off", Interlock: "valves", MaxPulse: ms(60000), Line: 25},
			{Name: "door", Driver: "gpio", Pin: "GPIO24", Initial: "off", Failsafe: "off", MaxPulse: ms(5000), MaxPulseSet: true, Line: 26},
			{Name: "heater", Driver: "serial-board", Device: "board", Channel: 1, Initial: "off", Failsafe: "off", MaxPulse: ms(60000), Line: 27},
			{Name: "lamp", Driver: "usb-relay", Port: "/dev/ttyUSB0", Channel: 1, Initial: "off", Failsafe: "off", MaxPulse: ms(60000), Line: 28},
		},
		Sensors: []Sensor{
			{Name: "room", Driver: "bme280", Bus: "/dev/i2c-1", Address: 0x76, Interval: ms(1000), Line: 30},
			{Name: "door_contact", Driver: "gpio-input", Pin: "GPIO27", Pull: "up", Debounce: ms(20), Interval: ms(1000), Line: 31},
			{Name: "soil", Driver: "serial-board", Device: "board", Interval: ms(2000), Line: 32},
			{Name: "wave", Driver: "sim-wave", Interval: ms(1), Period: ms(1000), Line: 33},
		},
		Devices: []Device{
			{Name: "board", Driver: "serial-board", Port: "/dev/ttyACM0", Baud: 115200, Line: 35},
		},
		Upstream: &Upstream{
			URL:            "wss://backend.example/ingest",
			TokenFile:      "upstream.token",
			BufferMaxBytes: 64 << 20,
			Fsync:          "batch",
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
		compareFields(t, "", reflect.ValueOf(c).Elem(), reflect.ValueOf(want).Elem())
	}
}

// compareFields names the fields that differ, to make a failure readable.
func compareFields(t *testing.T, path string, got, want reflect.Value) {
	t.Helper()
	switch got.Kind() {
	case reflect.Struct:
		for i := range got.NumField() {
			compareFields(t, path+"."+got.Type().Field(i).Name, got.Field(i), want.Field(i))
		}
	case reflect.Slice:
		if got.Len() != want.Len() {
			t.Errorf("%s: %d items, want %d", path, got.Len(), want.Len())
			return
		}
		for i := range got.Len() {
			compareFields(t, path+"["+string(rune('0'+i))+"]", got.Index(i), want.Index(i))
		}
	case reflect.Pointer:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				t.Errorf("%s: nil mismatch", path)
			}
			return
		}
		compareFields(t, path, got.Elem(), want.Elem())
	default:
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			t.Errorf("%s = %v, want %v", path, got.Interface(), want.Interface())
		}
	}
}

// TestExampleVerbatim: CONFIG.md's example uses the same placeholder for
// both API keys, which is refused, as two keys that are the same would be
// in a real file (which role would the key have?), and as a key that short
// would be.
func TestExampleVerbatim(t *testing.T) {
	_, err := Parse("ex.yaml", []byte(example))
	want := `ex.yaml:20: auth.keys[0].key: too short (3 characters) to be safe against guessing; use at least 16, e.g. the output of: head -c 24 /dev/urandom | base64
ex.yaml:21: auth.keys[1].key: too short (3 characters) to be safe against guessing; use at least 16, e.g. the output of: head -c 24 /dev/urandom | base64
ex.yaml:21: auth.keys[1].key: the same key as auth.keys[0] "backend" (line 20); every key must be different`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestEmbeddedSim(t *testing.T) {
	c, err := Parse(configs.SimName, configs.Sim)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != configs.SimName || len(c.Relays) == 0 {
		t.Fatalf("%+v", c)
	}
}

func TestDefaults(t *testing.T) {
	d := Default()
	host, _ := os.Hostname()
	if host == "" {
		host = "edgegate"
	}
	want := Gateway{
		ID: host, Listen: "127.0.0.1:8080", Compression: true, SampleBatch: ms(5),
		Heartbeat: Heartbeat{Interval: ms(15000), Timeout: ms(45000)},
		Limits: Limits{MaxConnections: 1000, MaxConnectionsPerIP: 64, MaxMessageBytes: 65536, RequestsPerSecond: 50,
			HandshakeTimeout: ms(5000), WriteTimeout: ms(10000), SubscriberQueue: 1024},
	}
	if !reflect.DeepEqual(d.Gateway, want) || d.Auth.Enabled || d.Relays != nil || d.Sensors != nil || d.Devices != nil || d.Upstream != nil {
		t.Fatalf("Default() = %+v", d)
	}

	c, err := Parse("d.yaml", []byte(`gateway:
  listen:            # no value: the default
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
  - {name: fan, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: mcp23017, channel: 16}
sensors:
  - {name: door, driver: gpio-input, pin: GPIO27}
  - {name: wave, driver: sim-wave}
devices:
  - {name: board, driver: serial-board, port: /dev/ttyACM0}
upstream:
  url: ws://127.0.0.1:9000/in
`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Gateway, want) {
		t.Errorf("gateway %+v", c.Gateway)
	}
	if r := c.Relays[0]; r.Initial != "off" || r.Failsafe != "off" || r.MaxPulse != ms(60000) || r.ActiveLow {
		t.Errorf("relay defaults %+v", r)
	}
	if s := c.Sensors[0]; s.Interval != ms(1000) || s.Pull != "none" || s.Debounce != 0 || s.Period != 0 {
		t.Errorf("gpio-input defaults %+v", s)
	}
	if s := c.Sensors[1]; s.Interval != ms(1000) || s.Period != ms(1000) || s.Pull != "" {
		t.Errorf("sim-wave defaults %+v", s)
	}
	if d := c.Devices[0]; d.Baud != 115200 {
		t.Errorf("device defaults %+v", d)
	}
	if u := c.Upstream; u.BufferMaxBytes != 64*MiB || u.Fsync != "batch" {
		t.Errorf("upstream defaults %+v", u)
	}
	if c.Gateway.SampleBatch != ms(5) {
		t.Errorf("gateway.sample_batch default %v, want 5ms", c.Gateway.SampleBatch)
	}
}

func TestOptionalSectionsAndForms(t *testing.T) {
	c, err := Parse("o.yaml", []byte(`# block style, comments, explicit tags, other number forms, an empty trailing document
gateway:
  id: !!str 1234
  listen: ":0"
  compression: false
  watchdog: 1h30m
  sample_batch: 0s
  allowed_origins:
    - http://localhost:3000
    - https://dash.example:8443
  limits:
    requests_per_second: 2.5
auth:
  enabled: false
  secret: inline-secret-of-24-by
relays:
  - name: a
    driver: i2c-relay
    bus: "1"
    address: 0o40
    chip: pcf8574
    channel: 8
    active_low: True
  - {name: b, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: pcf8574, channel: 1, initial: restore, failsafe: hold}
  - {name: c, driver: usb-relay, device: usb, channel: 1, interlock: v}
  - {name: d, driver: usb-relay, device: usb, channel: 2, interlock: v, initial: on, failsafe: on}
  - {name: e, driver: gpio, pin: "4"}
sensors: []
devices:
  - {name: usb, driver: usb-relay, port: /dev/ttyUSB1, baud: 9600}
upstream: {url: "wss://b.example:443/x?y=1", token: t, buffer_max_bytes: 1_000, fsync: always}
...
---
`))
	if err != nil {
		t.Fatal(err)
	}
	g := c.Gateway
	if g.ID != "1234" || g.Listen != ":0" || g.Compression || g.Watchdog != Duration(90*time.Minute) || g.SampleBatch != 0 ||
		len(g.AllowedOrigins) != 2 || g.Limits.RequestsPerSecond != 2.5 || g.TLS != nil {
		t.Errorf("gateway %+v", g)
	}
	if c.Auth.Secret != "inline-secret-of-24-by" || c.Auth.Enabled {
		t.Errorf("auth %+v", c.Auth)
	}
	if r := c.Relays[0]; r.Address != 0x20 || r.Bus != "1" || !r.ActiveLow || r.Channel != 8 || r.Line != 17 {
		t.Errorf("relay %+v", r)
	}
	if r := c.Relays[1]; r.Initial != "restore" || r.Failsafe != "hold" {
		t.Errorf("relay %+v", r)
	}
	if c.Sensors == nil || len(c.Sensors) != 0 {
		t.Errorf("sensors %#v", c.Sensors)
	}
	if u := c.Upstream; u.BufferMaxBytes != 1000 || u.Token != "t" || u.Fsync != "always" {
		t.Errorf("upstream %+v", u)
	}
}

// Each case is one refusal: the whole error text is compared.
var refusals = []struct{ name, in, want string }{
	{"syntax scanner",
		`gateway:
  id: a: b
`,
		"t.yaml:2: YAML syntax error: mapping values are not allowed in this context"},
	{"syntax parser flow mapping",
		`relays:
  - {name: a, driver: gpio
  - {name: b, driver: gpio, pin: GPIO2}
`,
		"t.yaml:2: YAML syntax error: did not find expected ',' or '}' in the { } mapping that starts here; is a } or a comma missing?"},
	{"syntax tab",
		"gateway:\n\tid: a\n",
		"t.yaml:2: YAML syntax error: found character that cannot start any token; indent with spaces, not tabs"},
	{"syntax block indentation",
		`gateway:
  id: a
 listen: b
`,
		"t.yaml:3: YAML syntax error: did not find expected key in the mapping that starts here; check the indentation of the lines that follow"},
	{"duplicate key",
		`gateway:
  id: a
  listen: 127.0.0.1:1
  id: b
`,
		"t.yaml:4: gateway.id: duplicate key (first at line 2); keep only one"},
	{"duplicate key in flow item",
		`relays:
  - {name: a, driver: gpio, pin: GPIO1, name: b}
`,
		"t.yaml:2: relays[0].name: duplicate key (first at line 2); keep only one"},
	{"not a mapping",
		`- gateway
`,
		"t.yaml:1: want a mapping (key: value lines) at the top level with any of: gateway, auth, relays, sensors, devices, upstream, automations, mqtt; got a list"},
	{"scalar document",
		`edgegate
`,
		"t.yaml:1: want a mapping (key: value lines) at the top level with any of: gateway, auth, relays, sensors, devices, upstream, automations, mqtt; got \"edgegate\""},
	{"empty file",
		`
`,
		"t.yaml:1: the file is empty; want a mapping with any of: gateway, auth, relays, sensors, devices, upstream, automations, mqtt"},
	{"only comments",
		`# nothing here
`,
		"t.yaml:1: the file is empty; want a mapping with any of: gateway, auth, relays, sensors, devices, upstream, automations, mqtt"},
	{"second document",
		`gateway: {id: a}
---
gateway: {id: b}
`,
		"t.yaml:2: a second YAML document (after ---); put everything in one document"},
	{"third document after an empty one",
		"gateway: {id: a}\n---\n---\ngateway: {id: b}\n",
		"t.yaml:3: a second YAML document (after ---); put everything in one document"},
	{"alias",
		`gateway:
  id: &h pi
  listen: *h
`,
		"t.yaml:3: gateway.listen: aliases (*h) are not supported; write the value out in full"},
	{"merge key",
		`relays:
  - &r {name: a, driver: gpio, pin: GPIO1}
  - {<<: *r, name: b, pin: GPIO2}
`,
		"t.yaml:3: relays[1].<<: merge keys (<<) are not supported; write the keys out in full"},
	{"unknown anchor",
		`gateway:
  id: a
  listen: *nowhere
`,
		"t.yaml:3: YAML syntax error: unknown anchor 'nowhere' referenced"},
	{"unknown top-level key",
		`gateway: {id: a}
relay:
  - {name: a, driver: gpio, pin: GPIO1}
`,
		"t.yaml:2: relay: unknown field; did you mean relays? (known: gateway, auth, relays, sensors, devices, upstream, automations, mqtt)"},
	{"unknown relay key",
		`relays:
  - {name: a, driver: gpio, pin: GPIO1}
  - {name: b, driver: gpio, pin: GPIO2, colour: red}
`,
		"t.yaml:3: relays[1].colour: unknown field (known: name, driver, pin, active_low, initial, failsafe, interlock, max_pulse, device, channel, port, bus, address, chip, unit, coil, max_on, min_on, min_off)"},
	{"unknown nested key",
		`gateway:
  limits:
    max_conections: 10
`,
		"t.yaml:3: gateway.limits.max_conections: unknown field; did you mean max_connections? (known: max_connections, max_connections_per_ip, max_message_bytes, requests_per_second, handshake_timeout, write_timeout, subscriber_queue)"},
	{"interlock on a sensor",
		`sensors:
  - {name: door, driver: gpio-input, pin: GPIO27, interlock: valves}
`,
		"t.yaml:2: sensors[0].interlock: only relays can be in an interlock group"},
	{"string where a number belongs",
		`gateway:
  limits:
    max_connections: many
`,
		"t.yaml:3: gateway.limits.max_connections: want an integer, got \"many\""},
	{"quoted number where an integer belongs",
		`sensors:
  - {name: room, driver: bme280, bus: /dev/i2c-1, address: "0x76"}
`,
		"t.yaml:2: sensors[0].address: want an integer, got \"0x76\""},
	{"float where an integer belongs",
		`relays:
  - {name: a, driver: usb-relay, port: /dev/ttyUSB0, channel: 1.5}
`,
		"t.yaml:2: relays[0].channel: want an integer, got 1.5"},
	{"integer out of range",
		`relays:
  - {name: a, driver: usb-relay, port: /dev/ttyUSB0, channel: 0x7fffffffffffffffff}
`,
		"t.yaml:2: relays[0].channel: want an integer, got \"0x7fffffffffffffffff\""},
	{"list where a mapping belongs",
		`gateway:
  heartbeat: [15s, 45s]
`,
		"t.yaml:2: gateway.heartbeat: want a mapping, got a list"},
	{"mapping where a list belongs",
		`relays: {name: a, driver: gpio, pin: GPIO1}
`,
		"t.yaml:1: relays: want a list (one \"- item\" per line, or [a, b]), got a mapping"},
	{"scalar where a list belongs",
		`gateway:
  allowed_origins: https://dash.example
`,
		"t.yaml:2: gateway.allowed_origins: want a list (one \"- item\" per line, or [a, b]), got \"https://dash.example\""},
	{"list where a string belongs",
		`relays:
  - {name: [a], driver: gpio, pin: GPIO1}
`,
		"t.yaml:2: relays[0].name: want a string, got a list"},
	{"yes is not a bool",
		`gateway:
  compression: yes
`,
		"t.yaml:2: gateway.compression: want true or false, got \"yes\""},
	{"quoted true is not a bool",
		`relays:
  - {name: a, driver: gpio, pin: GPIO1, active_low: "true"}
`,
		"t.yaml:2: relays[0].active_low: want true or false, got \"true\""},
	{"duration without unit",
		`gateway:
  heartbeat: {interval: 15, timeout: 45s}
`,
		"t.yaml:2: gateway.heartbeat.interval: want a duration like \"15s\", got 15"},
	{"duration word",
		`gateway:
  heartbeat: {interval: fast, timeout: 45s}
`,
		"t.yaml:2: gateway.heartbeat.interval: want a duration like \"15s\" (units: ms, s, m, h), got \"fast\""},
	{"duration bad unit",
		`relays:
  - {name: door, driver: gpio, pin: GPIO24, max_pulse: 1d}
`,
		"t.yaml:2: relays[0].max_pulse: want a duration like \"15s\" (units: ms, s, m, h), got \"1d\""},
	{"quoted zero duration",
		`gateway:
  watchdog: "0"
`,
		"t.yaml:2: gateway.watchdog: want a duration like \"15s\", got \"0\""},
	{"number not finite",
		`gateway:
  limits: {requests_per_second: .inf}
`,
		"t.yaml:2: gateway.limits.requests_per_second: want a finite number, got .inf"},
	{"number word",
		`gateway:
  limits: {requests_per_second: lots}
`,
		"t.yaml:2: gateway.limits.requests_per_second: want a number, got \"lots\""},
	{"byte size word",
		`upstream:
  url: wss://b.example/in
  buffer_max_bytes: lots
`,
		"t.yaml:3: upstream.buffer_max_bytes: want a size like \"64MiB\" or \"1000\" (units: B, KiB, MiB, GiB, TiB, kB, MB, GB, TB), got \"lots\""},
	{"byte size negative",
		`upstream:
  url: wss://b.example/in
  buffer_max_bytes: -1MiB
`,
		"t.yaml:3: upstream.buffer_max_bytes: must not be negative, got \"-1MiB\""},
	{"byte size zero",
		`upstream:
  url: wss://b.example/in
  buffer_max_bytes: 0
`,
		"t.yaml:3: upstream.buffer_max_bytes: must be more than 0, got 0"},
	{"custom tag",
		`gateway:
  id: !env HOSTNAME
`,
		"t.yaml:2: gateway.id: unsupported tag !env; remove it"},
	{"non-scalar key",
		`gateway:
  ? [id]
  : a
`,
		"t.yaml:2: gateway: a key must be a plain name, got a list"},
	{"empty list item",
		`relays:
  -
  - {name: a, driver: gpio, pin: GPIO1}
`,
		"t.yaml:2: relays[0]: empty list item; remove it or fill it in"},
	{"list item not a mapping",
		`relays:
  - pump
`,
		"t.yaml:2: relays[0]: want a mapping, got \"pump\""},
	{"relay name missing",
		`relays:
  - {driver: gpio, pin: GPIO1}
`,
		"t.yaml:2: relays[0].name: missing; every relay needs a name (letters, digits, _ and -)"},
	{"relay name empty",
		`relays:
  - {name: "", driver: gpio, pin: GPIO1}
`,
		"t.yaml:2: relays[0].name: must not be empty; every relay needs a name (letters, digits, _ and -)"},
	{"relay driver missing",
		`relays:
  - {name: a, pin: GPIO1}
`,
		"t.yaml:2: relays[0].driver: missing; use one of: gpio, serial-board, usb-relay, i2c-relay, modbus"},
	{"relay driver unknown",
		`relays:
  - {name: a, driver: gpoi, pin: GPIO1}
`,
		"t.yaml:2: relays[0].driver: unknown driver \"gpoi\" (did you mean gpio?); use one of: gpio, serial-board, usb-relay, i2c-relay, modbus"},
	{"sensor driver unknown",
		`sensors:
  - {name: a, driver: dht22, pin: GPIO4}
`,
		"t.yaml:2: sensors[0].driver: unknown driver \"dht22\"; use one of: bme280, gpio-input, serial-board, sim-wave, modbus, ds18b20, ads1115"},
	{"device driver unknown",
		`devices:
  - {name: a, driver: modbus, port: /dev/ttyUSB0}
`,
		"t.yaml:2: devices[0].driver: unknown driver \"modbus\"; use one of: serial-board, usb-relay, modbus-rtu, modbus-tcp"},
	{"gpio relay without pin",
		`relays:
  - name: pump
    driver: gpio
`,
		"t.yaml:2: relays[0].pin: missing; a gpio relay needs the pin it drives, e.g. pin: GPIO17"},
	{"gpio relay with a field of another driver",
		`relays:
  - {name: pump, driver: gpio, pin: GPIO17, port: /dev/ttyUSB0}
`,
		"t.yaml:2: relays[0].port: a gpio relay takes no port (its own fields: pin, active_low); remove it or change the driver"},
	{"bme280 with a field of another driver",
		`sensors:
  - {name: room, driver: bme280, bus: /dev/i2c-1, address: 0x76, pin: GPIO4}
`,
		"t.yaml:2: sensors[0].pin: a bme280 sensor takes no pin (its own fields: bus, address); remove it or change the driver"},
	{"gpio-input without pin",
		`sensors:
  - {name: door, driver: gpio-input}
`,
		"t.yaml:2: sensors[0].pin: missing; a gpio-input sensor needs the pin it reads, e.g. pin: GPIO27"},
	{"bme280 without bus",
		`sensors:
  - {name: room, driver: bme280, address: 0x76}
`,
		"t.yaml:2: sensors[0].bus: missing; a bme280 sensor needs its I2C bus, e.g. bus: /dev/i2c-1"},
	{"bme280 without address",
		`sensors:
  - {name: room, driver: bme280, bus: /dev/i2c-1}
`,
		"t.yaml:2: sensors[0].address: missing; give the chip's I2C address, e.g. address: 0x76"},
	{"bme280 address",
		`sensors:
  - {name: room, driver: bme280, bus: /dev/i2c-1, address: 0x40}
`,
		"t.yaml:2: sensors[0].address: a bme280 answers at 0x76 or 0x77, got 0x40"},
	{"serial-board relay without device",
		`relays:
  - {name: heater, driver: serial-board, channel: 1}
`,
		"t.yaml:2: relays[0].device: missing; a serial-board relay needs the name of its board in devices, e.g. device: board"},
	{"serial-board relay without channel",
		`devices:
  - {name: board, driver: serial-board, port: /dev/ttyACM0}
relays:
  - {name: heater, driver: serial-board, device: board}
`,
		"t.yaml:4: relays[0].channel: missing; give the relay's channel on the board, numbered from 1 (channel: 1)"},
	{"serial-board relay with unknown device, no devices",
		`relays:
  - {name: heater, driver: serial-board, device: board, channel: 1}
`,
		"t.yaml:2: relays[0].device: no serial-board device named \"board\"; add it to devices, e.g. - {name: board, driver: serial-board, port: /dev/ttyACM0}"},
	{"serial-board relay with unknown device",
		`devices:
  - {name: board, driver: serial-board, port: /dev/ttyACM0}
relays:
  - {name: heater, driver: serial-board, device: bord, channel: 1}
`,
		"t.yaml:4: relays[0].device: no device named \"bord\"; use one of the serial-board devices: board"},
	{"serial-board sensor on a usb-relay device",
		`devices:
  - {name: usb, driver: usb-relay, port: /dev/ttyUSB0}
sensors:
  - {name: soil, driver: serial-board, device: usb}
`,
		"t.yaml:4: sensors[0].device: \"usb\" is a usb-relay device (devices[0], line 2); a serial-board sensor needs a serial-board device"},
	{"serial-board sensor without device",
		`sensors:
  - {name: soil, driver: serial-board}
`,
		"t.yaml:2: sensors[0].device: missing; a serial-board sensor needs the name of its board in devices, e.g. device: board"},
	{"usb-relay without port",
		`relays:
  - {name: lamp, driver: usb-relay, channel: 1}
`,
		"t.yaml:2: relays[0].port: missing; a usb-relay relay needs its serial port, e.g. port: /dev/ttyUSB0 (or device: naming a usb-relay entry of devices)"},
	{"usb-relay without channel",
		`relays:
  - {name: lamp, driver: usb-relay, port: /dev/ttyUSB0}
`,
		"t.yaml:2: relays[0].channel: missing; give the relay's channel on the board, numbered from 1 (channel: 1)"},
	{"usb-relay channel 0",
		`relays:
  - {name: lamp, driver: usb-relay, port: /dev/ttyUSB0, channel: 0}
`,
		"t.yaml:2: relays[0].channel: channels are numbered from 1, got 0"},
	{"usb-relay port and device",
		`devices:
  - {name: usb, driver: usb-relay, port: /dev/ttyUSB0}
relays:
  - {name: lamp, driver: usb-relay, port: /dev/ttyUSB0, device: usb, channel: 1}
`,
		"t.yaml:4: relays[0].device: give either port or device, not both"},
	{"usb-relay on the port of a device",
		`devices:
  - {name: board, driver: serial-board, port: /dev/ttyACM0}
relays:
  - {name: lamp, driver: usb-relay, port: /dev/ttyACM0, channel: 1}
`,
		"t.yaml:4: relays[0].port: /dev/ttyACM0 is the port of devices[0] \"board\" (line 2); use device: board instead of port:"},
	{"i2c-relay without bus",
		`relays:
  - {name: fan, driver: i2c-relay, address: 0x20, chip: pcf8574, channel: 1}
`,
		"t.yaml:2: relays[0].bus: missing; an i2c-relay relay needs its I2C bus, e.g. bus: /dev/i2c-1"},
	{"i2c-relay without address",
		`relays:
  - {name: fan, driver: i2c-relay, bus: /dev/i2c-1, chip: pcf8574, channel: 1}
`,
		"t.yaml:2: relays[0].address: missing; give the chip's I2C address, e.g. address: 0x20"},
	{"i2c-relay without chip",
		`relays:
  - {name: fan, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, channel: 1}
`,
		"t.yaml:2: relays[0].chip: missing; use one of: pcf8574, mcp23017"},
	{"i2c-relay without channel",
		`relays:
  - {name: fan, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: pcf8574}
`,
		"t.yaml:2: relays[0].channel: missing; give the relay's channel on the board, numbered from 1 (channel: 1 for P0 or GPA0)"},
	{"i2c-relay unknown chip",
		`relays:
  - {name: fan, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: pcf8575, channel: 1}
`,
		"t.yaml:2: relays[0].chip: want one of pcf8574, mcp23017, got \"pcf8575\""},
	{"i2c-relay channel beyond the chip",
		`relays:
  - {name: fan, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: pcf8574, channel: 9}
`,
		"t.yaml:2: relays[0].channel: a pcf8574 has channels 1 to 8, got 9"},
	{"i2c-relay address out of range",
		`relays:
  - {name: fan, driver: i2c-relay, bus: /dev/i2c-1, address: 0x80, chip: pcf8574, channel: 1}
`,
		"t.yaml:2: relays[0].address: 0x80 is not a 7-bit I2C device address (0x03 to 0x77)"},
	{"i2c-relay two chips at one address",
		`relays:
  - {name: fan, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: pcf8574, channel: 1}
  - {name: pump, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: mcp23017, channel: 2}
`,
		"t.yaml:3: relays[1].chip: the chip at 0x20 on bus /dev/i2c-1 is a pcf8574 according to relays[0] \"fan\" (line 2)"},
	{"upstream without url",
		`upstream:
  fsync: always
`,
		"t.yaml:2: upstream.url: missing; give the backend's WebSocket URL, e.g. url: wss://backend.example/ingest"},
	{"upstream with an http url",
		`upstream:
  url: https://backend.example/ingest
`,
		"t.yaml:2: upstream.url: want a ws:// or wss:// URL such as wss://backend.example/ingest, got scheme \"https\""},
	{"upstream url without host",
		`upstream:
  url: "wss:///ingest"
`,
		"t.yaml:2: upstream.url: the URL has no host; want one such as wss://backend.example/ingest"},
	{"upstream token and token_file",
		`upstream:
  url: wss://backend.example/ingest
  token: abc
  token_file: upstream.token
`,
		"t.yaml:4: upstream.token_file: set either token or token_file, not both"},
	{"enum initial",
		`relays:
  - {name: a, driver: gpio, pin: GPIO1, initial: true}
`,
		"t.yaml:2: relays[0].initial: want one of off, on, restore, got \"true\""},
	{"enum failsafe",
		`relays:
  - {name: a, driver: gpio, pin: GPIO1, failsafe: last}
`,
		"t.yaml:2: relays[0].failsafe: want one of off, on, hold, got \"last\""},
	{"enum pull",
		`sensors:
  - {name: door, driver: gpio-input, pin: GPIO27, pull: high}
`,
		"t.yaml:2: sensors[0].pull: want one of up, down, none, got \"high\""},
	{"enum fsync",
		`upstream:
  url: wss://backend.example/ingest
  fsync: sometimes
`,
		"t.yaml:3: upstream.fsync: want one of always, batch, never, got \"sometimes\""},
	{"enum role",
		`auth:
  enabled: true
  keys:
    - {name: ops, key: key-one-0123456789, role: admin}
`,
		"t.yaml:4: auth.keys[0].role: want one of viewer, operator, got \"admin\""},
	{"role missing",
		`auth:
  enabled: true
  keys:
    - {name: ops, key: key-one-0123456789}
`,
		"t.yaml:4: auth.keys[0].role: missing; use viewer or operator"},
	{"key missing",
		`auth:
  enabled: true
  keys:
    - {name: ops, role: viewer}
`,
		"t.yaml:4: auth.keys[0].key: missing; give the key clients present (a long random string)"},
	{"heartbeat interval too short",
		`gateway:
  heartbeat: {interval: 50ms, timeout: 1s}
`,
		"t.yaml:2: gateway.heartbeat.interval: must be at least 100ms, got 50ms"},
	{"heartbeat timeout not longer than interval",
		`gateway:
  heartbeat:
    interval: 10s
    timeout: 10s
`,
		"t.yaml:4: gateway.heartbeat.timeout: must be longer than interval (10s), e.g. timeout: 30s"},
	{"heartbeat interval beyond the default timeout",
		`gateway:
  heartbeat:
    interval: 1m
`,
		"t.yaml:3: gateway.heartbeat.interval: must be shorter than timeout (45s by default); also set timeout, e.g. timeout: 3m"},
	{"heartbeat negative",
		`gateway:
  heartbeat: {interval: -1s, timeout: 45s}
`,
		"t.yaml:2: gateway.heartbeat.interval: must be at least 100ms, got -1s"},
	{"sensor interval zero",
		`sensors:
  - {name: wave, driver: sim-wave, interval: 0s}
`,
		"t.yaml:2: sensors[0].interval: must be at least 1ms, got 0s"},
	{"sim-wave period too short",
		`sensors:
  - {name: wave, driver: sim-wave, period: 500us}
`,
		"t.yaml:2: sensors[0].period: must be at least 1ms, got 500µs"},
	{"max_pulse zero",
		`relays:
  - {name: door, driver: gpio, pin: GPIO24, max_pulse: 0s}
`,
		"t.yaml:2: relays[0].max_pulse: must be at least 1ms, got 0s"},
	{"debounce negative",
		`sensors:
  - {name: door, driver: gpio-input, pin: GPIO27, debounce: -20ms}
`,
		"t.yaml:2: sensors[0].debounce: must not be negative, got -20ms"},
	{"watchdog negative",
		`gateway:
  watchdog: -10s
`,
		"t.yaml:2: gateway.watchdog: must not be negative, got -10s (leave it out for no watchdog)"},
	{"sample batch negative",
		`gateway:
  sample_batch: -1ms
`,
		"t.yaml:2: gateway.sample_batch: want 0 (every sample written at once) up to 1s, got -1ms (default 5ms)"},
	{"sample batch too long",
		`gateway:
  compression: true
  sample_batch: 2s
`,
		"t.yaml:3: gateway.sample_batch: want 0 (every sample written at once) up to 1s, got 2s (default 5ms)"},
	{"handshake timeout zero",
		`gateway:
  limits: {handshake_timeout: 0s}
`,
		"t.yaml:2: gateway.limits.handshake_timeout: must be at least 1ms, got 0s"},
	{"negative limit",
		`gateway:
  limits:
    max_connections_per_ip: -1
`,
		"t.yaml:3: gateway.limits.max_connections_per_ip: must be at least 1, got -1"},
	{"zero requests per second",
		`gateway:
  limits:
    requests_per_second: 0
`,
		"t.yaml:3: gateway.limits.requests_per_second: must be more than 0, got 0"},
	{"baud zero",
		`devices:
  - {name: board, driver: serial-board, port: /dev/ttyACM0, baud: 0}
`,
		"t.yaml:2: devices[0].baud: must be at least 1, got 0"},
	{"listen not host:port",
		`gateway:
  listen: localhost
`,
		"t.yaml:2: gateway.listen: want host:port such as \"127.0.0.1:8080\" or \":8080\", got \"localhost\""},
	{"listen port out of range",
		`gateway:
  listen: 0.0.0.0:80800
`,
		"t.yaml:2: gateway.listen: port \"80800\" is not a number from 0 to 65535"},
	{"gateway id empty",
		`gateway:
  id: ""
`,
		"t.yaml:2: gateway.id: must not be empty; leave it out to use the host name"},
	{"relay name with a space",
		`relays:
  - {name: water pump, driver: gpio, pin: GPIO1}
`,
		"t.yaml:2: relays[0].name: \"water pump\" may only contain letters, digits, _ and -"},
	{"sensor name with a dot",
		`sensors:
  - {name: room.air, driver: sim-wave}
`,
		"t.yaml:2: sensors[0].name: \"room.air\" may only contain letters, digits, _ and - (its readings are named <name>.<quantity>, e.g. room.temperature)"},
	{"duplicate relay names",
		`relays:
  - {name: pump, driver: gpio, pin: GPIO1}
  - {name: fan, driver: gpio, pin: GPIO2}
  - {name: pump, driver: gpio, pin: GPIO3}
`,
		"t.yaml:4: relays[2].name: \"pump\" is also the name of relays[0] (line 2); names must be unique"},
	{"duplicate sensor names",
		`sensors:
  - {name: wave, driver: sim-wave}
  - {name: wave, driver: sim-wave}
`,
		"t.yaml:3: sensors[1].name: \"wave\" is also the name of sensors[0] (line 2); names must be unique"},
	{"duplicate device names",
		`devices:
  - {name: board, driver: serial-board, port: /dev/ttyACM0}
  - {name: board, driver: serial-board, port: /dev/ttyACM1}
`,
		"t.yaml:3: devices[1].name: \"board\" is also the name of devices[0] (line 2); names must be unique"},
	{"device without port",
		`devices:
  - {name: board, driver: serial-board}
`,
		"t.yaml:2: devices[0].port: missing; give the serial port of the board, e.g. port: /dev/ttyACM0"},
	{"device port twice",
		`devices:
  - {name: a, driver: serial-board, port: /dev/ttyACM0}
  - {name: b, driver: usb-relay, port: /dev/ttyACM0}
`,
		"t.yaml:3: devices[1].port: /dev/ttyACM0 is already the port of devices[0] \"a\" (line 2); a port can have only one device"},
	{"pin used twice by relays",
		`relays:
  - {name: pump, driver: gpio, pin: GPIO17}
  - {name: fan, driver: gpio, pin: GPIO18}
  - {name: lamp, driver: gpio, pin: GPIO17}
`,
		"t.yaml:4: relays[2].pin: GPIO17 is already used by relays[0] \"pump\" (line 2)"},
	{"pin of a relay used by a sensor, other case",
		`relays:
  - name: pump
    driver: gpio
    pin: GPIO17
sensors:
  - {name: door, driver: gpio-input, pin: gpio17}
`,
		"t.yaml:6: sensors[0].pin: gpio17 is already used by relays[0] \"pump\" (line 4)"},
	{"pin by number and by name",
		`relays:
  - {name: pump, driver: gpio, pin: "17"}
  - {name: fan, driver: gpio, pin: GPIO17}
`,
		"t.yaml:3: relays[1].pin: GPIO17 is already used by relays[0] \"pump\" (line 2)"},
	{"serial-board channel twice",
		`devices:
  - {name: board, driver: serial-board, port: /dev/ttyACM0}
relays:
  - {name: heater, driver: serial-board, device: board, channel: 1}
  - {name: fan, driver: serial-board, device: board, channel: 1}
`,
		"t.yaml:5: relays[1].channel: channel 1 of device \"board\" is already used by relays[0] \"heater\" (line 4)"},
	{"usb-relay channel twice",
		`relays:
  - {name: lamp, driver: usb-relay, port: /dev/ttyUSB0, channel: 2}
  - {name: fan, driver: usb-relay, port: /dev/ttyUSB0, channel: 2}
`,
		"t.yaml:3: relays[1].channel: channel 2 of /dev/ttyUSB0 is already used by relays[0] \"lamp\" (line 2)"},
	{"usb-relay channel twice via a device",
		`devices:
  - {name: usb, driver: usb-relay, port: /dev/ttyUSB0}
relays:
  - {name: lamp, driver: usb-relay, device: usb, channel: 2}
  - {name: fan, driver: usb-relay, device: usb, channel: 2}
`,
		"t.yaml:5: relays[1].channel: channel 2 of /dev/ttyUSB0 is already used by relays[0] \"lamp\" (line 4)"},
	{"i2c channel twice",
		`relays:
  - {name: fan, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: pcf8574, channel: 3}
  - {name: pump, driver: i2c-relay, bus: "1", address: 32, chip: pcf8574, channel: 3}
`,
		"t.yaml:3: relays[1].channel: channel 3 of the pcf8574 at 0x20 on bus 1 is already used by relays[0] \"fan\" (line 2)"},
	{"bme280 at the address of a relay chip",
		`relays:
  - {name: fan, driver: i2c-relay, bus: /dev/i2c-1, address: 0x76, chip: pcf8574, channel: 1}
sensors:
  - {name: room, driver: bme280, bus: /dev/i2c-1, address: 0x76}
`,
		"t.yaml:4: sensors[0].address: 0x76 on bus /dev/i2c-1 is already used by relays[0] \"fan\" (line 2)"},
	{"two sensors on one board",
		`devices:
  - {name: board, driver: serial-board, port: /dev/ttyACM0}
sensors:
  - {name: soil, driver: serial-board, device: board}
  - {name: soil2, driver: serial-board, device: board}
`,
		"t.yaml:5: sensors[1].device: board \"board\" is already read by sensors[0] \"soil\" (line 4); one sensor entry reads all of a board's values"},
	{"interlock group of one",
		`relays:
  - {name: pump, driver: gpio, pin: GPIO17}
  - {name: valve_open, driver: gpio, pin: GPIO22, interlock: valves}
`,
		"t.yaml:3: relays[1].interlock: interlock group \"valves\" has only relays[1]; a group needs two or more relays"},
	{"interlock group name",
		`relays:
  - {name: a, driver: gpio, pin: GPIO1, interlock: "my valves"}
  - {name: b, driver: gpio, pin: GPIO2, interlock: "my valves"}
`,
		`t.yaml:2: relays[0].interlock: group name "my valves" may only contain letters, digits, _ and -
t.yaml:3: relays[1].interlock: group name "my valves" may only contain letters, digits, _ and -`},
	{"interlock both start on",
		`relays:
  - {name: a, driver: gpio, pin: GPIO1, interlock: v, initial: on}
  - {name: b, driver: gpio, pin: GPIO2, interlock: v, initial: on}
`,
		"t.yaml:3: relays[1].initial: relays[0] \"a\" (line 2), in the same interlock group \"v\", also starts on; at most one relay of a group can be on"},
	{"interlock both fail safe on",
		`relays:
  - {name: a, driver: gpio, pin: GPIO1, interlock: v, failsafe: on}
  - {name: b, driver: gpio, pin: GPIO2, interlock: v, failsafe: on}
`,
		"t.yaml:3: relays[1].failsafe: relays[0] \"a\" (line 2), in the same interlock group \"v\", also fails safe to on; at most one relay of a group can be on"},
	{"auth enabled without means",
		`auth:
  enabled: true
`,
		"t.yaml:2: auth.enabled: auth is enabled but clients have nothing to authenticate with; add secret_file: (or secret:) for signed tokens, or keys: with at least one API key"},
	{"auth secret and secret_file",
		`auth:
  enabled: true
  secret: s3cr3t-s3cr3t-s3cr3t
  secret_file: secret.key
`,
		"t.yaml:4: auth.secret_file: set either secret or secret_file, not both"},
	{"auth empty secret",
		`auth:
  enabled: true
  secret: ""
`,
		"t.yaml:3: auth.secret: must not be empty; give the HMAC key for signed tokens, or leave secret out"},
	{"duplicate key names",
		`auth:
  keys:
    - {name: ops, key: key-one-0123456789, role: operator}
    - {name: ops, key: key-two-0123456789, role: viewer}
`,
		"t.yaml:4: auth.keys[1].name: \"ops\" is also the name of auth.keys[0] (line 3); names must be unique"},
	{"duplicate key values",
		`auth:
  keys:
    - {name: ops, key: same-key-0123456789, role: operator}
    - {name: dash, key: same-key-0123456789, role: viewer}
`,
		"t.yaml:4: auth.keys[1].key: the same key as auth.keys[0] \"ops\" (line 3); every key must be different"},
	{"tls without key",
		`gateway:
  tls: {cert: cert.pem}
`,
		"t.yaml:2: gateway.tls.key: missing; tls needs the private key file (PEM), e.g. key: key.pem"},
	{"bad allowed origin",
		`gateway:
  allowed_origins: ["https://dash.example", "https://dash.example/app"]
`,
		"t.yaml:2: gateway.allowed_origins[1]: want an origin such as \"https://dash.example\" (scheme://host[:port], nothing after it), got \"https://dash.example/app\""},
	{"wildcard origin",
		`gateway:
  allowed_origins: ["*"]
`,
		"t.yaml:2: gateway.allowed_origins[0]: want an origin such as \"https://dash.example\" (scheme://host[:port], nothing after it), got \"*\""},
}

func TestRefusals(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range refusals {
		if seen[tc.name] {
			t.Fatalf("two cases named %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tc.in))
			if err == nil {
				t.Fatalf("accepted:\n%s\nwant %s", tc.in, tc.want)
			}
			if c != nil {
				t.Errorf("a Config came back with the error")
			}
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is %T, want Errors", err)
			}
			for _, e := range es {
				if e.File != "t.yaml" || e.Line < 1 {
					t.Errorf("error %q: file %q line %d", e, e.File, e.Line)
				}
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	in := `gateway:
  listen: nowhere
  heartbeat: {interval: fast}
  limits: {max_connections: -5, colour: red}
relays:
  - {name: pump, driver: gpio, pin: GPIO17, initial: maybe}
  - {name: pump, driver: gpio, pin: GPIO17}
  - {name: lamp, driver: usb-relay, port: /dev/ttyUSB0}
sensors:
  - {name: room.air, driver: bme280, bus: /dev/i2c-1, address: 0x76, interlock: x}
upstream:
  url: http://x
auth:
  enabled: yes
`
	_, err := Parse("many.yaml", []byte(in))
	want := []string{
		`many.yaml:2: gateway.listen: want host:port such as "127.0.0.1:8080" or ":8080", got "nowhere"`,
		`many.yaml:3: gateway.heartbeat.interval: want a duration like "15s" (units: ms, s, m, h), got "fast"`,
		`many.yaml:4: gateway.limits.colour: unknown field (known: max_connections, max_connections_per_ip, max_message_bytes, requests_per_second, handshake_timeout, write_timeout, subscriber_queue)`,
		`many.yaml:4: gateway.limits.max_connections: must be at least 1, got -5`,
		`many.yaml:6: relays[0].initial: want one of off, on, restore, got "maybe"`,
		`many.yaml:7: relays[1].name: "pump" is also the name of relays[0] (line 6); names must be unique`,
		`many.yaml:7: relays[1].pin: GPIO17 is already used by relays[0] "pump" (line 6)`,
		`many.yaml:8: relays[2].channel: missing; give the relay's channel on the board, numbered from 1 (channel: 1)`,
		`many.yaml:10: sensors[0].interlock: only relays can be in an interlock group`,
		`many.yaml:10: sensors[0].name: "room.air" may only contain letters, digits, _ and - (its readings are named <name>.<quantity>, e.g. room.temperature)`,
		`many.yaml:12: upstream.url: want a ws:// or wss:// URL such as wss://backend.example/ingest, got scheme "http"`,
		`many.yaml:14: auth.enabled: want true or false, got "yes"`,
	}
	if err == nil {
		t.Fatal("accepted")
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(err.(Errors)); n != len(want) {
		t.Fatalf("%d errors, want %d", n, len(want))
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(path, []byte("relays:\n  - {name: pump, driver: gpio, pin: GPIO17}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil || c.File != path || len(c.Relays) != 1 {
		t.Fatalf("Load: %+v, %v", c, err)
	}

	missing := filepath.Join(dir, "nope.yaml")
	_, err = Load(missing)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), missing+": ") {
		t.Fatalf("missing file: %v", err)
	}
	t.Log(err)

	if err := os.WriteFile(path, []byte("relays:\n  - {name: pump, driver: gpio}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].File != path || es[0].Line != 2 || es[0].Field != "relays[0].pin" {
		t.Fatalf("bad file: %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{"a.yaml", 3, "gateway.id", "x"}, "a.yaml:3: gateway.id: x"},
		{Error{"a.yaml", 3, "", "YAML syntax error: y"}, "a.yaml:3: YAML syntax error: y"},
		{Error{"a.yaml", 0, "f", "z"}, "a.yaml: f: z"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
	es := Errors{{"a", 1, "f", "p"}, {"a", 2, "g", "q"}}
	if es.Error() != "a:1: f: p\na:2: g: q" {
		t.Errorf("%q", es.Error())
	}
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"64MiB", 64 << 20, true},
		{"512KiB", 512 << 10, true},
		{"1GiB", 1 << 30, true},
		{"2TiB", 2 << 40, true},
		{"1000", 1000, true},
		{"10MB", 10_000_000, true},
		{"10kB", 10_000, true},
		{"1GB", 1_000_000_000, true},
		{"64 mib", 64 << 20, true},
		{"1.5GiB", 3 << 29, true},
		{"100B", 100, true},
		{"1_000", 1000, true},
		{"0", 0, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"1 2MiB", 0, false},
		{"64Mi", 0, false},
		{"-1", 0, false},
		{"1.2.3MB", 0, false},
		{"9999999999TiB", 0, false},
		{"99999999999999999999", 0, false},
	} {
		got, err := ParseByteSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v", tc.in, got, err)
		}
	}
	for b, want := range map[ByteSize]string{64 * MiB: "64MiB", 1000: "1000", 1536: "1536", 0: "0", 3 * GiB: "3GiB", 2048: "2KiB"} {
		if got := b.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(b), got, want)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"15s", 15 * time.Second, true},
		{"1ms", time.Millisecond, true},
		{"1h30m", 90 * time.Minute, true},
		{"0s", 0, true},
		{"500us", 500 * time.Microsecond, true},
		{"-2s", -2 * time.Second, true},
		{"15", 0, false},
		{"0", 0, false},
		{"", 0, false},
		{"fast", 0, false},
		{"1d", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || got.Std() != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v", tc.in, got, err)
		}
	}
	for d, want := range map[time.Duration]string{time.Minute: "1m", 2 * time.Hour: "2h", 90 * time.Minute: "1h30m", 1500 * time.Millisecond: "1.5s", 0: "0s", 3*time.Hour + 5*time.Second: "3h0m5s"} {
		if got := Duration(d).String(); got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
	}
}
