// Package config loads and checks edgegate's configuration file (YAML), as
// described in docs/configuration.md.
//
// Parse walks the yaml.v3 node tree itself instead of unmarshalling into
// structs, so that every problem it reports carries the line it is on and
// the path of the field, printed as
//
//	configs/pi.yaml:14: relays[2].pin: GPIO17 is already used by relays[0] "pump" (line 9)
//
// and all problems of a file are reported at once (as Errors), sorted by
// line. A Config that Parse returns without error has every default applied
// and has passed every check below, so the rest of the gateway can use it as
// is.
package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/edgegate/edgegate/drivers"
	"github.com/edgegate/edgegate/gateway/auth"
)

// Config is a whole configuration file.
type Config struct {
	// File is the path it was loaded from, or the name given to Parse
	// ("configs/sim.yaml (embedded)").
	File     string    `yaml:"-"`
	Gateway  Gateway   `yaml:"gateway"`
	Auth     Auth      `yaml:"auth"`
	Relays   []Relay   `yaml:"relays"`
	Sensors  []Sensor  `yaml:"sensors"`
	Devices  []Device  `yaml:"devices"`
	Upstream *Upstream `yaml:"upstream"` // nil when absent
	// Automations run on the gateway (automations.go, AUTOMATIONS.md).
	Automations []Automation `yaml:"automations"`
	MQTT        *MQTT        `yaml:"mqtt"` // nil when absent
}

// Gateway is the gateway section: the listener and its limits.
type Gateway struct {
	ID             string   `yaml:"id"`     // default: the host name
	Listen         string   `yaml:"listen"` // host:port, default 127.0.0.1:8080
	TLS            *TLS     `yaml:"tls"`    // nil: plain ws:// and http://
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AllowedHosts are the host names (or IP addresses) besides loopback
	// and the listener's own addresses that requests may name in their
	// Host header; see gateway/hosts.go. Kept lower case, as written.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// PublicURL is where browsers reach the gateway when that is not its
	// listener (a TLS-terminating reverse proxy): its origin is one of the
	// gateway's own, its host an allowed one, and https:// marks the
	// session cookie Secure. "" when not set.
	PublicURL   string    `yaml:"public_url"`
	Compression bool      `yaml:"compression"` // permessage-deflate, default true
	Heartbeat   Heartbeat `yaml:"heartbeat"`
	Limits      Limits    `yaml:"limits"`
	// Watchdog applies every relay's failsafe state when no operator
	// connection has been alive for this long; 0 = off.
	Watchdog Duration `yaml:"watchdog"`
	// SampleBatch is the sensor-stream batch window: a subscriber gets at
	// most one write per window, holding every sample of the window (a
	// slower stream is written sample by sample, as soon as each is
	// read); 0 = every sample written at once. Default 5ms.
	SampleBatch Duration `yaml:"sample_batch"`
}

// TLS names the certificate and key files (PEM). Both are required when the
// tls section is present. Paths are kept as written (relative ones are
// relative to the working directory, not to the configuration file).
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Heartbeat: the gateway pings every Interval and drops a connection that
// sent nothing for Timeout. Both ≥ 100ms, Timeout > Interval.
type Heartbeat struct {
	Interval Duration `yaml:"interval"` // default 15s
	Timeout  Duration `yaml:"timeout"`  // default 45s
}

// Limits bound what clients can make the gateway do. All are positive.
type Limits struct {
	MaxConnections      int      `yaml:"max_connections"`        // default 1000
	MaxConnectionsPerIP int      `yaml:"max_connections_per_ip"` // default 64
	MaxMessageBytes     int      `yaml:"max_message_bytes"`      // default 65536
	RequestsPerSecond   float64  `yaml:"requests_per_second"`    // per connection, default 50
	HandshakeTimeout    Duration `yaml:"handshake_timeout"`      // default 5s
	WriteTimeout        Duration `yaml:"write_timeout"`          // default 10s
	SubscriberQueue     int      `yaml:"subscriber_queue"`       // default 1024
}

// Auth is the auth section. When Enabled, at least one of Secret,
// SecretFile or Keys is set; Secret and SecretFile exclude each other.
type Auth struct {
	Enabled    bool     `yaml:"enabled"`
	Secret     string   `yaml:"secret"`      // HMAC key for signed tokens, inline
	SecretFile string   `yaml:"secret_file"` // or read from this file (not read by Parse)
	Keys       []APIKey `yaml:"keys"`
	// KeysFile holds more API keys, one "name role key" a line (# starts
	// a comment): read by Load, not by Parse, and added to Keys.
	KeysFile     string `yaml:"keys_file"`
	keysFileLine int    // where keys_file is, for an error reading it
	// MaxTokenTTL caps the lifetime of every signed token the gateway
	// and edgegate token mint, and refuses presented tokens that would
	// outlive it. Default 30 days; at least 1m.
	MaxTokenTTL Duration `yaml:"max_token_ttl"`
	// PublicHealth: /healthz tells unauthenticated clients its status
	// (and nothing else) when auth is on. Default true.
	PublicHealth bool `yaml:"public_health"`
	// PublicMetrics: /metrics is served without a token when auth is
	// on. Default false.
	PublicMetrics bool `yaml:"public_metrics"`
}

// APIKey is one static API key. Names and keys are unique.
type APIKey struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
	Role string `yaml:"role"` // protocol.RoleViewer or protocol.RoleOperator
	Line int    `yaml:"-"`    // line of the list item
}

// MinSecretBytes is the shortest auth.secret and API key accepted: the
// token signer's floor.
const MinSecretBytes = auth.MinSecretBytes

// Relay drivers: the names the drivers declare.
const (
	DriverGPIO        = drivers.GPIORelayDriver
	DriverSerialBoard = drivers.SerialBoardDriver
	DriverUSBRelay    = drivers.USBRelayDriver
	DriverI2CRelay    = drivers.I2CRelayDriver
	// DriverModbus is the modbus relay and sensor driver, on a
	// DriverModbusRTU or DriverModbusTCP device.
	DriverModbus = drivers.ModbusDriver
)

// Device drivers besides DriverSerialBoard and DriverUSBRelay.
const (
	DriverModbusRTU = drivers.ModbusRTUDriver
	DriverModbusTCP = drivers.ModbusTCPDriver
)

// Sensor drivers (besides DriverSerialBoard).
const (
	DriverBME280    = drivers.BME280Driver
	DriverGPIOInput = drivers.GPIOInputDriver
	DriverSimWave   = drivers.SimWaveDriver
	DriverDS18B20   = drivers.DS18B20Driver
	DriverADS1115   = drivers.ADS1115Driver
)

// I2C relay chips (the i2c-relay driver's).
const (
	ChipPCF8574  = drivers.ChipPCF8574
	ChipMCP23017 = drivers.ChipMCP23017
)

// Relay is one entry of relays. Which fields apply depends on Driver:
//
//	gpio:         Pin, ActiveLow
//	serial-board: Device (a serial-board entry of devices), Channel ≥ 1
//	usb-relay:    Port or Device (a usb-relay entry of devices), Channel ≥ 1
//	i2c-relay:    Bus, Address, Chip, Channel (1..8 pcf8574, 1..16 mcp23017), ActiveLow
//	modbus:       Device (a modbus-rtu or modbus-tcp entry of devices), Unit, Coil
//
// ActiveLow defaults to false for gpio and to true for i2c-relay (expander
// relay boards switch a channel on with a low level); active_low: false
// given in the file is kept.
//
// A field that does not apply to the driver is refused by Parse.
type Relay struct {
	Name      string   `yaml:"name"`
	Driver    string   `yaml:"driver"`
	Pin       string   `yaml:"pin"`
	ActiveLow bool     `yaml:"active_low"`
	Initial   string   `yaml:"initial"`   // off (default) | on | restore
	Failsafe  string   `yaml:"failsafe"`  // off (default) | on | hold
	Interlock string   `yaml:"interlock"` // group name; a group has ≥ 2 relays
	MaxPulse  Duration `yaml:"max_pulse"` // default 60s
	// MaxPulseSet: max_pulse is in the file (a relay meant to be pulsed,
	// such as a door strike; the dashboard offers pulses only for those).
	MaxPulseSet bool   `yaml:"-"`
	Device      string `yaml:"device"`
	Channel     int    `yaml:"channel"`
	Port        string `yaml:"port"`
	Bus         string `yaml:"bus"`
	Address     int    `yaml:"address"`
	Chip        string `yaml:"chip"` // pcf8574 | mcp23017
	Unit        int    `yaml:"unit"` // modbus: the unit (slave) id, 1..247
	Coil        int    `yaml:"coil"` // modbus: the coil address, from 0
	// Relay guards (AUTOMATIONS.md): MaxOn switches a relay off once it has
	// been on this long; MinOn and MinOff refuse a change that would end an
	// on (off) period shorter than them. 0: no guard.
	MaxOn  Duration `yaml:"max_on"`
	MinOn  Duration `yaml:"min_on"`
	MinOff Duration `yaml:"min_off"`
	Line   int      `yaml:"-"` // line of the list item
}

// Sensor is one entry of sensors. Which fields apply depends on Driver:
//
//	bme280:       Bus, Address (0x76 or 0x77)
//	gpio-input:   Pin, Pull (default none), Debounce
//	serial-board: Device (a serial-board entry of devices)
//	sim-wave:     Period (default 1s)
//	modbus:       Device (a modbus-rtu or modbus-tcp entry of devices), Unit, Registers
//	ds18b20:      ID (28-0316a2795eff); Interval default 5s
//	ads1115:      Bus, Address (0x48..0x4b), Channels
//
// Interval (default 1s) applies to all.
type Sensor struct {
	Name     string   `yaml:"name"`
	Driver   string   `yaml:"driver"`
	Bus      string   `yaml:"bus"`
	Address  int      `yaml:"address"`
	Interval Duration `yaml:"interval"`
	Pin      string   `yaml:"pin"`
	Pull     string   `yaml:"pull"` // up | down | none
	Debounce Duration `yaml:"debounce"`
	Device   string   `yaml:"device"`
	Period   Duration `yaml:"period"`
	Unit     int      `yaml:"unit"` // modbus: the unit (slave) id, 1..247
	// Registers are what a modbus sensor reads, one quantity each.
	Registers []Register `yaml:"registers"`
	ID        string     `yaml:"id"` // ds18b20: the probe's 1-wire id
	// Channels are the inputs an ads1115 sensor reads, one quantity each.
	Channels []Channel `yaml:"channels"`
	// DeviceClass is the Home Assistant device class of the sensor's
	// entities (MQTT discovery); "" = from the unit, or none.
	DeviceClass string `yaml:"device_class"`
	Line        int    `yaml:"-"` // line of the list item
}

// Channel is one entry of an ads1115 sensor's channels.
type Channel struct {
	Name   string  `yaml:"name"`
	Input  int     `yaml:"input"`  // 0..3
	Gain   float64 `yaml:"gain"`   // full-scale range, volts
	Scale  float64 `yaml:"scale"`  // default 1
	Offset float64 `yaml:"offset"` // value = volts * scale + offset
	Unit   string  `yaml:"unit"`
	Line   int     `yaml:"-"`
}

// Register is one entry of a modbus sensor's registers.
type Register struct {
	Name      string  `yaml:"name"`
	Address   int     `yaml:"address"`
	Table     string  `yaml:"table"`      // input (default) | holding
	Type      string  `yaml:"type"`       // int16 (default) | uint16 | int32 | uint32 | float32
	WordOrder string  `yaml:"word_order"` // big (default) | little
	Scale     float64 `yaml:"scale"`      // default 1
	Offset    float64 `yaml:"offset"`
	Unit      string  `yaml:"unit"`
	Line      int     `yaml:"-"`
}

// Device is one entry of devices: a board on a serial port that relays and
// sensors refer to by name.
//
// A modbus-tcp device has an Address (host:port) instead of a Port; Parity
// and StopBits apply to modbus-rtu only, Timeout to both Modbus drivers.
type Device struct {
	Name     string   `yaml:"name"`
	Driver   string   `yaml:"driver"` // serial-board | usb-relay | modbus-rtu | modbus-tcp
	Port     string   `yaml:"port"`
	Baud     int      `yaml:"baud"`      // default 115200; 9600 for usb-relay and modbus-rtu
	Parity   string   `yaml:"parity"`    // modbus-rtu: none (default) | even | odd
	StopBits int      `yaml:"stop_bits"` // modbus-rtu: 1 (default) | 2
	Address  string   `yaml:"address"`   // modbus-tcp: host:port
	Timeout  Duration `yaml:"timeout"`   // modbus: default 500ms (rtu), 1s (tcp)
	Line     int      `yaml:"-"`         // line of the list item
}

// Upstream is the optional uplink to a backend.
type Upstream struct {
	URL            string   `yaml:"url"` // ws:// or wss://
	Token          string   `yaml:"token"`
	TokenFile      string   `yaml:"token_file"`       // not read by Parse
	BufferMaxBytes ByteSize `yaml:"buffer_max_bytes"` // default 64MiB
	Fsync          string   `yaml:"fsync"`            // always | batch (default) | never
	// Insecure allows a ws:// URL to a host other than this machine (the
	// token and relay commands then travel unencrypted); logged at start.
	Insecure bool `yaml:"insecure"`
}

// Defaults.
const (
	DefaultListen = "127.0.0.1:8080"
	// DefaultSampleBatch is gateway.sample_batch when not set: streams up
	// to 200 samples/s per subscriber are written sample by sample.
	DefaultSampleBatch = 5 * time.Millisecond
	DefaultBaud        = drivers.SerialBoardBaud
	// USBRelayChannels is the most channels an LCUS-type USB relay module has.
	USBRelayChannels = drivers.USBRelayChannels
	// DefaultUSBRelayBaud is the baud rate of LCUS-type USB relay modules.
	DefaultUSBRelayBaud = drivers.USBRelayBaud
	// DefaultMaxTokenTTL is auth.max_token_ttl when not set.
	DefaultMaxTokenTTL = auth.DefaultMaxTTL
	// MinTokenTTL is the shortest auth.max_token_ttl accepted: the
	// dashboard's socket tokens live one minute.
	MinTokenTTL     = time.Minute
	defaultMaxPulse = Duration(60 * time.Second)
	defaultInterval = Duration(time.Second)
)

// Default returns the configuration of an empty file: every default
// applied, no relays, sensors or devices, auth disabled, no upstream.
func Default() *Config {
	id, err := os.Hostname()
	if err != nil || id == "" {
		id = "edgegate"
	}
	return &Config{
		Gateway: Gateway{
			ID:          id,
			Listen:      DefaultListen,
			Compression: true,
			SampleBatch: Duration(DefaultSampleBatch),
			Heartbeat: Heartbeat{
				Interval: Duration(15 * time.Second),
				Timeout:  Duration(45 * time.Second),
			},
			Limits: Limits{
				MaxConnections:      1000,
				MaxConnectionsPerIP: 64,
				MaxMessageBytes:     65536,
				RequestsPerSecond:   50,
				HandshakeTimeout:    Duration(5 * time.Second),
				WriteTimeout:        Duration(10 * time.Second),
				SubscriberQueue:     1024,
			},
		},
		Auth: Auth{MaxTokenTTL: Duration(DefaultMaxTokenTTL), PublicHealth: true},
	}
}

func defaultRelay() Relay   { return Relay{Initial: "off", Failsafe: "off", MaxPulse: defaultMaxPulse} }
func defaultSensor() Sensor { return Sensor{Interval: defaultInterval} }
func defaultDevice() Device { return Device{Baud: DefaultBaud} }
func defaultUpstream() *Upstream {
	return &Upstream{BufferMaxBytes: 64 * MiB, Fsync: "batch"}
}

// Load reads the file at path and parses it (see Parse). A file that cannot
// be read gives an error that names the path and wraps the cause
// (errors.Is(err, fs.ErrNotExist) works).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: cannot read the configuration file: %w", path, err)
	}
	cfg, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	if cfg.Auth.KeysFile != "" {
		if err := cfg.loadKeysFile(); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// Parse decodes and checks a configuration; file names it in errors (and
// becomes Config.File). On any problem it returns nil and an Errors listing
// every problem found, sorted by line. It never panics.
func Parse(file string, data []byte) (cfg *Config, err error) {
	defer func() {
		if r := recover(); r != nil { // a bug here, or in yaml.v3: still no panic
			cfg = nil
			err = Errors{{File: file, Line: 1, Problem: fmt.Sprintf("internal error while reading the configuration (please report it): %v", r)}}
		}
	}()
	p := newParser(file)
	c := p.parse(data)
	if len(p.errs) > 0 {
		p.errs.sort()
		return nil, p.errs
	}
	c.File = file
	return c, nil
}

// Error is one problem in a configuration file.
type Error struct {
	File    string
	Line    int    // 1-based; 0 when unknown
	Field   string // path such as relays[2].pin or gateway.limits.max_connections; "" for a YAML syntax error
	Problem string
}

// Error formats e as "file:line: field: problem".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// Errors is every problem found in a file, sorted by line.
type Errors []*Error

// Error is one problem per line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
}

// ---- mqtt: the MQTT bridge (MQTT.md) ----

// MQTT is the optional bridge to an MQTT broker, with Home Assistant
// discovery.
type MQTT struct {
	URL             string   `yaml:"url"`       // mqtt:// or mqtts://
	ClientID        string   `yaml:"client_id"` // default edgegate-<sanitised gateway.id>
	Username        string   `yaml:"username"`
	Password        string   `yaml:"password"`
	PasswordFile    string   `yaml:"password_file"` // not read by Parse
	CAFile          string   `yaml:"ca_file"`
	CertFile        string   `yaml:"cert_file"`
	KeyFile         string   `yaml:"key_file"`
	BaseTopic       string   `yaml:"base_topic"`       // default "edgegate"
	Keepalive       Duration `yaml:"keepalive"`        // default 30s
	QoS             int      `yaml:"qos"`              // 0 or 1 (default 1)
	Discovery       bool     `yaml:"discovery"`        // default true
	DiscoveryPrefix string   `yaml:"discovery_prefix"` // default "homeassistant"
	Commands        bool     `yaml:"commands"`         // default true
	Samples         bool     `yaml:"samples"`          // default true
	SensorMaxHz     float64  `yaml:"sensor_max_hz"`    // default 1; 0 = every sample
	BufferMaxBytes  ByteSize `yaml:"buffer_max_bytes"` // default 64MiB
}

func defaultMQTT() *MQTT {
	return &MQTT{BaseTopic: "edgegate", Keepalive: Duration(30 * time.Second), QoS: 1, Discovery: true,
		DiscoveryPrefix: "homeassistant", Commands: true, Samples: true, SensorMaxHz: 1, BufferMaxBytes: 64 * MiB}
}
