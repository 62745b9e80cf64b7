// Package hardware maps the configuration onto the drivers: it is the one
// place that reads config.Relay, config.Sensor and config.Device and turns
// them into each driver's options (drivers.GPIORelayOpts, ...), and the one
// place that attaches the simulator (firmware-sim) for --sim. The drivers and
// the simulator know nothing of the configuration file.
package hardware

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/edgegate/edgegate/drivers"
	"github.com/edgegate/edgegate/drivers/i2cbus"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/fileutil"
)

// Env is what opening a configured relay or sensor needs besides its entry.
type Env struct {
	Buses  drivers.Buses
	Logger *slog.Logger
	// Sim is true when Buses is the simulator (sim-only drivers refuse to
	// open otherwise).
	Sim bool
	// Relays is every configured relay, and Initial tells the state each
	// must start in (the relay service's policy): a driver whose channels
	// share one chip (an I2C expander) writes all of them at once when the
	// chip is first opened, so that no channel ever shows another level.
	// A nil Initial starts every relay off.
	Relays  []config.Relay
	Initial func(config.Relay) bool
	// Devices is the pool of the configured serial devices (NewDevicePool);
	// serial drivers refuse to open without it.
	Devices *drivers.DevicePool
	// DataDir keeps state that outlives a restart (empty: none).
	DataDir string
}

func (e Env) drivers() drivers.Env {
	log := e.Logger
	if log == nil {
		log = slog.Default()
	}
	env := drivers.Env{Buses: e.Buses, Logger: log, Sim: e.Sim, Devices: e.Devices}
	if e.DataDir != "" {
		env.State = dirState(e.DataDir)
	}
	return env
}

// dirState keeps the drivers' records as files in the data dir, each
// written atomically (temp file, fsync, rename).
type dirState string

func (d dirState) Load(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), name))
}

func (d dirState) Save(name string, data []byte) error {
	return fileutil.WriteAtomic(filepath.Join(string(d), name), data, true)
}

func (e Env) initial(r config.Relay) bool { return e.Initial != nil && e.Initial(r) }

// relayDrivers and sensorDrivers open a configured entry with its driver:
// adding a driver is its file in drivers and one line here.
var (
	relayDrivers = map[string]func(config.Relay, Env) (drivers.Relay, error){
		config.DriverGPIO:        openGPIORelay,
		config.DriverI2CRelay:    openI2CRelay,
		config.DriverSerialBoard: openBoardRelay,
		config.DriverUSBRelay:    openUSBRelay,
		config.DriverModbus:      openModbusRelay,
	}
	sensorDrivers = map[string]func(config.Sensor, Env) (drivers.Sensor, error){
		config.DriverBME280:      openBME280,
		config.DriverGPIOInput:   openGPIOInput,
		config.DriverSerialBoard: openBoardSensor,
		config.DriverSimWave:     openSimWave,
		config.DriverModbus:      openModbusSensor,
		config.DriverDS18B20:     openDS18B20,
		config.DriverADS1115:     openADS1115,
	}
)

// relayDriverNames lists the relay drivers of this build, sorted.
func relayDriverNames() []string { return slices.Sorted(maps.Keys(relayDrivers)) }

// sensorDriverNames lists the sensor drivers of this build, sorted.
func sensorDriverNames() []string { return slices.Sorted(maps.Keys(sensorDrivers)) }

// OpenRelay opens the configured relay rc with its driver. It does not change
// the relay's output: the first level is driven by the first Set.
func OpenRelay(rc config.Relay, env Env) (drivers.Relay, error) {
	return open("relay", rc.Name, rc.Driver, relayDrivers, rc, env)
}

// OpenSensor opens the configured sensor device sc with its driver.
func OpenSensor(sc config.Sensor, env Env) (drivers.Sensor, error) {
	return open("sensor", sc.Name, sc.Driver, sensorDrivers, sc, env)
}

// open opens entry (a relay or sensor named name) with its driver from
// table, or says which drivers this build has.
func open[E, D any](kind, name, driver string, table map[string]func(E, Env) (D, error), entry E, env Env) (D, error) {
	f, ok := table[driver]
	if !ok {
		var none D
		return none, fmt.Errorf("%s %q: driver %q is not available in this build (available: %s)",
			kind, name, driver, strings.Join(slices.Sorted(maps.Keys(table)), ", "))
	}
	d, err := f(entry, env)
	if err != nil {
		var none D
		return none, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	return d, nil
}

// NewDevicePool returns the pool of the configured serial devices. When buses
// is the simulator, each device's port is the simulated device attached for
// it (Simulate), not the port of the file, and a modbus-tcp device's
// address that of the simulated server.
func NewDevicePool(devices []config.Device, buses drivers.Buses, log *slog.Logger) *drivers.DevicePool {
	ds := make([]drivers.SerialDevice, 0, len(devices))
	for _, d := range devices {
		sd := d.SerialDevice()
		sd.Port = serialPath(buses, d.Port)
		if a, ok := buses.(tcpAddresses); ok && d.Address != "" {
			if addr, ok := a.ModbusTCPAddress(d.Address); ok {
				sd.Address = addr
			}
		}
		ds = append(ds, sd)
	}
	return drivers.NewDevicePool(ds, log)
}

// tcpAddresses is a bus provider that stands in for Modbus TCP servers.
type tcpAddresses interface {
	ModbusTCPAddress(addr string) (string, bool)
}

// serialPaths is a bus provider that stands in for serial ports too: the
// simulator gives the path of the device it attached for a configured port.
type serialPaths interface {
	SerialPath(port string) (path string, ok bool)
}

// serialPath is the path to open for the configured port.
func serialPath(buses drivers.Buses, port string) string {
	if sp, ok := buses.(serialPaths); ok && port != "" {
		if path, ok := sp.SerialPath(port); ok {
			return path
		}
	}
	return port
}

func openGPIORelay(rc config.Relay, env Env) (drivers.Relay, error) {
	return drivers.OpenGPIORelay(rc.GPIOOpts(), env.drivers())
}

// i2cRelayOpts are rc's options, with every other relay of its chip in the
// bank, each at its initial state.
func i2cRelayOpts(rc config.Relay, relays []config.Relay, initial func(config.Relay) bool) drivers.I2CRelayOpts {
	o := rc.I2COpts()
	o.On = initial(rc)
	bus := i2cbus.Key(rc.Bus)
	for _, r := range relays {
		if r.Driver == config.DriverI2CRelay && r.Name != rc.Name && i2cbus.Key(r.Bus) == bus && r.Address == rc.Address {
			o.Bank = append(o.Bank, drivers.I2CChannel{Name: r.Name, Chip: r.Chip, Channel: r.Channel, ActiveLow: r.ActiveLow, On: initial(r)})
		}
	}
	return o
}

func openI2CRelay(rc config.Relay, env Env) (drivers.Relay, error) {
	return drivers.OpenI2CRelay(i2cRelayOpts(rc, env.Relays, env.initial), env.drivers())
}

func openBoardRelay(rc config.Relay, env Env) (drivers.Relay, error) {
	return drivers.OpenBoardRelay(rc.BoardOpts(), env.drivers())
}

func openUSBRelay(rc config.Relay, env Env) (drivers.Relay, error) {
	o := rc.USBOpts()
	o.Port = serialPath(env.Buses, o.Port)
	return drivers.OpenUSBRelay(o, env.drivers())
}

func openBME280(sc config.Sensor, env Env) (drivers.Sensor, error) {
	return drivers.OpenBME280(sc.BME280Opts(), env.drivers())
}

func openGPIOInput(sc config.Sensor, env Env) (drivers.Sensor, error) {
	return drivers.OpenGPIOInput(sc.GPIOInputOpts(), env.drivers())
}

func openBoardSensor(sc config.Sensor, env Env) (drivers.Sensor, error) {
	return drivers.OpenBoardSensor(sc.BoardOpts(), env.drivers())
}

func openSimWave(sc config.Sensor, env Env) (drivers.Sensor, error) {
	return drivers.OpenSimWave(sc.SimWaveOpts(), env.drivers())
}

func openModbusRelay(rc config.Relay, env Env) (drivers.Relay, error) {
	return drivers.OpenModbusRelay(rc.ModbusOpts(), env.drivers())
}

func openModbusSensor(sc config.Sensor, env Env) (drivers.Sensor, error) {
	return drivers.OpenModbusSensor(sc.ModbusOpts(), env.drivers())
}

func openDS18B20(sc config.Sensor, env Env) (drivers.Sensor, error) {
	o := sc.DS18B20Opts()
	// The simulator's w1 tree stands in for the kernel's.
	if w1, ok := env.Buses.(interface{ W1Root() string }); ok && w1.W1Root() != "" {
		o.Root = w1.W1Root()
	}
	return drivers.OpenDS18B20(o, env.drivers())
}

func openADS1115(sc config.Sensor, env Env) (drivers.Sensor, error) {
	return drivers.OpenADS1115(sc.ADS1115Opts(), env.drivers())
}
