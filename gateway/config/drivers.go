package config

import "github.com/edgegate/edgegate/drivers"

// The options of each driver as an entry of the file gives them: the one
// mapping of the configuration onto the drivers. The checks validate these
// (each driver's Validate); gateway/hardware opens the drivers with them,
// adding only what the file does not say (the simulator's port paths, the
// initial states of an expander's channels).

// GPIOOpts are a gpio relay's options.
func (r Relay) GPIOOpts() drivers.GPIORelayOpts {
	return drivers.GPIORelayOpts{Name: r.Name, Pin: r.Pin, ActiveLow: r.ActiveLow}
}

// I2COpts are an i2c-relay relay's options, without its chip's other
// channels (Bank) and initial states.
func (r Relay) I2COpts() drivers.I2CRelayOpts {
	return drivers.I2CRelayOpts{Name: r.Name, Bus: r.Bus, Address: r.Address, Chip: r.Chip, Channel: r.Channel, ActiveLow: r.ActiveLow}
}

// BoardOpts are a serial-board relay's options.
func (r Relay) BoardOpts() drivers.BoardRelayOpts {
	return drivers.BoardRelayOpts{Name: r.Name, Device: r.Device, Channel: r.Channel}
}

// USBOpts are a usb-relay relay's options.
func (r Relay) USBOpts() drivers.USBRelayOpts {
	return drivers.USBRelayOpts{Name: r.Name, Port: r.Port, Device: r.Device, Channel: r.Channel}
}

// BME280Opts are a bme280 sensor's options.
func (s Sensor) BME280Opts() drivers.BME280Opts {
	return drivers.BME280Opts{Name: s.Name, Bus: s.Bus, Address: s.Address, Interval: s.Interval.Std()}
}

// GPIOInputOpts are a gpio-input sensor's options.
func (s Sensor) GPIOInputOpts() drivers.GPIOInputOpts {
	return drivers.GPIOInputOpts{Name: s.Name, Pin: s.Pin, Pull: s.Pull, Debounce: s.Debounce.Std(), Interval: s.Interval.Std()}
}

// BoardOpts are a serial-board sensor's options.
func (s Sensor) BoardOpts() drivers.BoardSensorOpts {
	return drivers.BoardSensorOpts{Name: s.Name, Device: s.Device, Interval: s.Interval.Std()}
}

// SimWaveOpts are a sim-wave sensor's options.
func (s Sensor) SimWaveOpts() drivers.SimWaveOpts {
	return drivers.SimWaveOpts{Name: s.Name, Interval: s.Interval.Std(), Period: s.Period.Std()}
}

// ModbusOpts are a modbus relay's options.
func (r Relay) ModbusOpts() drivers.ModbusRelayOpts {
	return drivers.ModbusRelayOpts{Name: r.Name, Device: r.Device, Unit: r.Unit, Coil: r.Coil}
}

// ModbusOpts are a modbus sensor's options.
func (s Sensor) ModbusOpts() drivers.ModbusSensorOpts {
	o := drivers.ModbusSensorOpts{Name: s.Name, Device: s.Device, Unit: s.Unit, Interval: s.Interval.Std()}
	for _, r := range s.Registers {
		o.Registers = append(o.Registers, drivers.ModbusRegister{Name: r.Name, Address: r.Address, Table: r.Table, Type: r.Type, WordOrder: r.WordOrder, Scale: r.Scale, Offset: r.Offset, Unit: r.Unit})
	}
	return o
}

// SerialDevice is a device entry as the drivers' device pool takes it
// (the port as the file gives it).
func (d Device) SerialDevice() drivers.SerialDevice {
	return drivers.SerialDevice{Name: d.Name, Driver: d.Driver, Port: d.Port, Baud: d.Baud, Parity: d.Parity, StopBits: d.StopBits, Address: d.Address, Timeout: d.Timeout.Std()}
}

// DS18B20Opts are a ds18b20 sensor's options (the kernel's w1 tree as root).
func (s Sensor) DS18B20Opts() drivers.DS18B20Opts {
	return drivers.DS18B20Opts{Name: s.Name, ID: s.ID, Interval: s.Interval.Std()}
}

// ADS1115Opts are an ads1115 sensor's options.
func (s Sensor) ADS1115Opts() drivers.ADS1115Opts {
	o := drivers.ADS1115Opts{Name: s.Name, Bus: s.Bus, Address: s.Address, Interval: s.Interval.Std()}
	for _, c := range s.Channels {
		o.Channels = append(o.Channels, drivers.ADCChannel{Name: c.Name, Input: c.Input, Gain: c.Gain, Scale: c.Scale, Offset: c.Offset, Unit: c.Unit})
	}
	return o
}
