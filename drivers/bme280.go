package drivers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/bmxx80"
)

// BME280Driver is the name of the bme280 sensor driver.
const BME280Driver = "bme280"

// BME280Opts describe a BME280 on an I2C bus.
type BME280Opts struct {
	Name     string
	Bus      string // "/dev/i2c-1"
	Address  int    // 0x76 (SDO to GND) or 0x77 (SDO to 3.3V)
	Interval time.Duration
}

// Validate checks the options.
func (o BME280Opts) Validate() error {
	var bus, addr *FieldError
	if strings.TrimSpace(o.Bus) == "" {
		bus = fieldError("bus", "no I2C bus given: set bus, e.g. bus: /dev/i2c-1")
	}
	if addr = checkI2CAddress(o.Address); addr == nil && o.Address != 0x76 && o.Address != 0x77 {
		addr = fieldError("address", "a bme280 answers at 0x76 or 0x77, got %#x", o.Address)
	}
	return joinFields(bus, addr)
}

// bme280Opts are periph's recommended settings (4x oversampling of each
// quantity, forced mode, no filter): one measurement takes about 26 ms.
var bme280Opts = bmxx80.DefaultOpts

const bme280ChipID = 0x60

// bme280 is a Bosch BME280 on I2C (temperature, humidity, pressure), read
// in forced mode through periph's bmxx80 driver.
//
// Opening never touches the chip: a sensor that is missing, unpowered or
// miswired at start must not keep the gateway from starting. The bus is
// opened and the chip checked and configured on the first Read, and again
// after any failed Read, so the device recovers by itself once the fault
// is fixed (the hub reports the errors meanwhile).
type bme280 struct {
	name     string
	interval time.Duration
	busName  string
	addr     uint16
	buses    Buses

	mu     sync.Mutex // one Read at a time; guards the fields below
	bus    i2c.Bus
	dev    *bmxx80.Dev // nil until initialised, and after an error
	closed bool
}

// OpenBME280 opens a BME280 sensor without touching the chip.
func OpenBME280(o BME280Opts, env Env) (Sensor, error) {
	buses, err := env.buses(o, BME280Driver)
	if err != nil {
		return nil, err
	}
	return &bme280{
		name:     o.Name,
		interval: o.Interval,
		busName:  o.Bus,
		addr:     uint16(o.Address),
		buses:    buses,
	}, nil
}

func (s *bme280) Name() string            { return s.name }
func (s *bme280) Driver() string          { return BME280Driver }
func (s *bme280) Interval() time.Duration { return s.interval }

// Quantities are temperature, humidity and pressure, in that order.
func (s *bme280) Quantities() []Quantity {
	return []Quantity{{Name: "temperature", Unit: "°C"}, {Name: "humidity", Unit: "%RH"}, {Name: "pressure", Unit: "hPa"}}
}

// where names the chip in errors.
func (s *bme280) where() string { return fmt.Sprintf("BME280 at 0x%02x on %s", s.addr, s.busName) }

// initLocked opens the bus, checks the chip id and configures the chip.
func (s *bme280) initLocked() error {
	if s.bus == nil {
		b, err := s.buses.I2CBus(s.busName)
		if err != nil {
			return fmt.Errorf("%s: %w", s.where(), err)
		}
		s.bus = b
	}
	var id [1]byte
	if err := s.bus.Tx(s.addr, []byte{0xD0}, id[:]); err != nil {
		return fmt.Errorf("%s does not answer (%w): check the wiring (SDA, SCL, 3.3V, GND), the address (0x76 with SDO to GND, 0x77 with SDO to 3.3V; i2cdetect lists what answers) and that I2C is enabled (raspi-config)", s.where(), err)
	}
	switch id[0] {
	case bme280ChipID:
	case 0x58:
		return fmt.Errorf("%s: the chip is a BMP280 (chip id 0x58), which has no humidity sensor; fit a BME280 (chip id 0x60)", s.where())
	case 0x55:
		return fmt.Errorf("%s: the chip is a BMP180 (chip id 0x55); fit a BME280 (chip id 0x60)", s.where())
	default:
		return fmt.Errorf("%s: the chip there reports id 0x%02x, not a BME280's 0x60: check that the address is the sensor's (0x76 or 0x77) and not another device's", s.where(), id[0])
	}
	opts := bme280Opts
	dev, err := bmxx80.NewI2C(s.bus, s.addr, &opts)
	if err != nil {
		return fmt.Errorf("%s: configure: %w; check the wiring and power", s.where(), err)
	}
	s.dev = dev
	return nil
}

// configuredLocked tells whether the chip still holds the settings written
// at initialisation: a brown-out resets it to sleep with humidity off, and
// forced mode would then quietly return a humidity that was never measured.
func (s *bme280) configuredLocked() (bool, error) {
	var ctrlHum [1]byte
	if err := s.bus.Tx(s.addr, []byte{0xF2}, ctrlHum[:]); err != nil {
		return false, err
	}
	return ctrlHum[0]&7 == byte(bme280Opts.Humidity), nil
}

// Read takes one forced-mode measurement (about 26 ms). ctx is checked
// before each step; a measurement once started is short and runs to its
// end. After any error the chip is initialised again on the next Read.
func (s *bme280) Read(ctx context.Context, dst []float64) error {
	if len(dst) < 3 {
		return fmt.Errorf("%s: read needs room for 3 values, got %d", s.where(), len(dst))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: sensor is closed", s.where())
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", s.where(), err)
	}
	if s.dev == nil {
		if err := s.initLocked(); err != nil {
			return err
		}
	} else if ok, err := s.configuredLocked(); err != nil {
		s.dropLocked()
		return s.readError(err)
	} else if !ok {
		s.dropLocked()
		if err := s.initLocked(); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", s.where(), err)
	}
	var e physic.Env
	if err := s.dev.Sense(&e); err != nil {
		s.dropLocked()
		return s.readError(err)
	}
	dst[0] = e.Temperature.Celsius()
	dst[1] = float64(e.Humidity) / float64(physic.PercentRH)
	dst[2] = float64(e.Pressure) / float64(100*physic.Pascal)
	return nil
}

func (s *bme280) readError(err error) error {
	return fmt.Errorf("%s: read failed (%w): check the wiring (SDA, SCL, 3.3V, GND) and power; it is set up again on the next read", s.where(), err)
}

// dropLocked forgets the initialised device.
func (s *bme280) dropLocked() {
	if s.dev != nil {
		s.dev.Halt()
		s.dev = nil
	}
}

// Close releases the device (the bus belongs to the bus provider). In
// forced mode the chip is already asleep between reads.
func (s *bme280) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked()
	s.closed = true
	return nil
}
