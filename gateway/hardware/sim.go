package hardware

import (
	"path/filepath"
	"slices"

	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"github.com/edgegate/edgegate/gateway/config"
)

// SimDevices describes what the devices of cfg need on simulated hardware: a
// BME280 for each bme280 sensor, an expander for each i2c-relay chip, a board
// firmware or an LCUS module on a pseudo-terminal for each serial device and
// each usb-relay given by port, a Modbus RTU bus or TCP server with a slave
// per unit its relays and sensors address for each Modbus device, a DS18B20
// in the w1 tree for each ds18b20 sensor, an ADS1115 for each ads1115
// sensor. GPIO pins and sim-wave need nothing.
func SimDevices(cfg *config.Config) firmwaresim.Devices {
	var d firmwaresim.Devices
	for _, dev := range cfg.Devices {
		switch dev.Driver {
		case config.DriverSerialBoard:
			d.Serial = append(d.Serial, firmwaresim.SerialDevice{Kind: firmwaresim.KindSerialBoard, Name: dev.Name, Port: dev.Port})
		case config.DriverUSBRelay:
			d.Serial = append(d.Serial, firmwaresim.SerialDevice{Kind: firmwaresim.KindUSBRelay, Name: dev.Name, Port: dev.Port})
		case config.DriverModbusRTU, config.DriverModbusTCP:
			d.Modbus = append(d.Modbus, firmwaresim.ModbusBus{Kind: dev.Driver, Name: dev.Name, Port: dev.Port, Address: dev.Address, Units: modbusUnits(cfg, dev.Name)})
		}
	}
	for _, s := range cfg.Sensors {
		switch s.Driver {
		case config.DriverBME280:
			d.BME280s = append(d.BME280s, firmwaresim.I2CChip{Bus: s.Bus, Address: s.Address})
		case config.DriverDS18B20:
			d.W1 = append(d.W1, s.ID)
		case config.DriverADS1115:
			d.ADS1115s = append(d.ADS1115s, firmwaresim.I2CChip{Bus: s.Bus, Address: s.Address})
		}
	}
	for _, r := range cfg.Relays {
		switch {
		case r.Driver == config.DriverI2CRelay:
			d.Expanders = append(d.Expanders, firmwaresim.I2CChip{Bus: r.Bus, Address: r.Address, Model: r.Chip})
		case r.Driver == config.DriverUSBRelay && r.Device == "" && r.Port != "":
			// Named after the port's base name ("ttyUSB0") in the control API.
			d.Serial = append(d.Serial, firmwaresim.SerialDevice{Kind: firmwaresim.KindUSBRelay, Name: filepath.Base(r.Port), Port: r.Port})
		}
	}
	return d
}

// modbusUnits lists the units the modbus relays and sensors of cfg address
// on device, in the order they first appear.
func modbusUnits(cfg *config.Config, device string) []int {
	var units []int
	add := func(u int) {
		if !slices.Contains(units, u) {
			units = append(units, u)
		}
	}
	for _, r := range cfg.Relays {
		if r.Driver == config.DriverModbus && r.Device == device {
			add(r.Unit)
		}
	}
	for _, s := range cfg.Sensors {
		if s.Driver == config.DriverModbus && s.Device == device {
			add(s.Unit)
		}
	}
	return units
}

// Simulate attaches to hw what the devices of cfg need (SimDevices). Pass hw
// as the bus provider (Env.Buses, NewDevicePool): the serial devices then
// open the simulated ports in place of those of cfg, which is left as it is.
func Simulate(hw *firmwaresim.Hardware, cfg *config.Config) error {
	return hw.Populate(SimDevices(cfg))
}

// RunDemo moves the input pin of every gpio-input sensor of cfg now and then,
// as a door contact that opens and closes (firmwaresim.Hardware.RunDemo).
func RunDemo(hw *firmwaresim.Hardware, cfg *config.Config) {
	var inputs []firmwaresim.DemoInput
	for _, s := range cfg.Sensors {
		if s.Driver == config.DriverGPIOInput && s.Pin != "" {
			inputs = append(inputs, firmwaresim.DemoInput{Pin: s.Pin, PullUp: s.Pull == "up"})
		}
	}
	hw.RunDemo(inputs)
}
