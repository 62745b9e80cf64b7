package drivers

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/ads1x15"
)

// The ads1115 driver reads TI's ADS1115 16-bit ADC with periph.io's ads1x15
// driver: one single-shot conversion per channel and reading, each channel
// at its own full-scale range (gain), then value = volts * scale + offset.

// ADS1115Driver is the name of the ads1115 sensor driver.
const ADS1115Driver = "ads1115"

// ADS1115Gains are the full-scale ranges of the ADS1115's amplifier, volts.
var ADS1115Gains = []float64{6.144, 4.096, 2.048, 1.024, 0.512, 0.256}

// ADCChannel is one input of an ADS1115, read as one quantity.
type ADCChannel struct {
	Name   string  // the quantity: <sensor>.<name>
	Input  int     // 0–3, against GND
	Gain   float64 // full-scale range, one of ADS1115Gains
	Scale  float64 // value = volts * Scale + Offset; must not be 0
	Offset float64
	Unit   string
}

// ADS1115Opts describe one ADS1115 and the channels read from it.
type ADS1115Opts struct {
	Name     string
	Bus      string
	Address  int // 0x48 (ADDR to GND), 0x49 (VDD), 0x4a (SDA), 0x4b (SCL)
	Interval time.Duration
	Channels []ADCChannel
}

// Validate checks the options.
func (o ADS1115Opts) Validate() error {
	var fs []*FieldError
	if strings.TrimSpace(o.Bus) == "" {
		fs = append(fs, fieldError("bus", "an ads1115 sensor needs its I2C bus, e.g. bus: /dev/i2c-1"))
	}
	if o.Address < 0x48 || o.Address > 0x4b {
		fs = append(fs, fieldError("address", "an ADS1115 answers at 0x48 (ADDR to GND), 0x49 (VDD), 0x4a (SDA) or 0x4b (SCL), got %#x", o.Address))
	}
	if len(o.Channels) == 0 {
		fs = append(fs, fieldError("channels", "an ads1115 sensor needs at least one channel, e.g. channels: [{name: moisture, input: 0, gain: 4.096}]"))
	}
	names := map[string]int{}
	for i, c := range o.Channels {
		at := func(field, format string, args ...any) {
			fs = append(fs, fieldError(fmt.Sprintf("channels[%d].%s", i, field), format, args...))
		}
		if !validQuantity(c.Name) {
			at("name", "want a name of lower-case letters, digits and _ (the reading is <sensor>.<name>), got %q", c.Name)
		} else if j, dup := names[c.Name]; dup {
			at("name", "%q is also the name of channels[%d]", c.Name, j)
		} else {
			names[c.Name] = i
		}
		if c.Input < 0 || c.Input > 3 {
			at("input", "the ADS1115 has inputs 0 to 3 (AIN0 to AIN3), got %d", c.Input)
		}
		if !slices.Contains(ADS1115Gains, c.Gain) {
			at("gain", "want the full-scale range in volts, one of 6.144, 4.096, 2.048, 1.024, 0.512, 0.256 (larger than the highest voltage at the input), got %v", c.Gain)
		}
		if c.Scale == 0 || math.IsNaN(c.Scale) || math.IsInf(c.Scale, 0) {
			at("scale", "must be a finite number other than 0 (1 gives volts)")
		}
	}
	return joinFields(fs...)
}

type ads1115 struct {
	o    ADS1115Opts
	pins []ads1x15.PinADC
	qs   []Quantity
}

// OpenADS1115 opens an ADS1115 on its bus. The chip is not read until the
// first Read.
func OpenADS1115(o ADS1115Opts, env Env) (Sensor, error) {
	buses, err := env.buses(o, ADS1115Driver)
	if err != nil {
		return nil, err
	}
	bus, err := buses.I2CBus(o.Bus)
	if err != nil {
		return nil, err
	}
	dev, err := ads1x15.NewADS1115(bus, &ads1x15.Opts{I2cAddress: uint16(o.Address)})
	if err != nil {
		return nil, err
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	s := &ads1115{o: o}
	for _, c := range o.Channels {
		fs := physic.ElectricPotential(math.Round(c.Gain*1000)) * physic.MilliVolt
		// 100 Hz at the best quality: 128 samples/s, 8 ms per conversion.
		pin, err := dev.PinForChannel(ads1x15.Channel0+ads1x15.Channel(c.Input), fs, 100*physic.Hertz, ads1x15.BestQuality)
		if err != nil {
			return nil, fmt.Errorf("ads1115 channel %s: %w", c.Name, err)
		}
		s.pins = append(s.pins, pin)
		s.qs = append(s.qs, Quantity{Name: c.Name, Unit: c.Unit})
	}
	return s, nil
}

func (s *ads1115) Name() string            { return s.o.Name }
func (s *ads1115) Driver() string          { return ADS1115Driver }
func (s *ads1115) Quantities() []Quantity  { return s.qs }
func (s *ads1115) Interval() time.Duration { return s.o.Interval }
func (s *ads1115) Close() error            { return nil }

// Read converts every channel in turn.
func (s *ads1115) Read(ctx context.Context, dst []float64) error {
	for i, p := range s.pins {
		c := s.o.Channels[i]
		smp, err := p.Read()
		if err != nil {
			return fmt.Errorf("ads1115 at %#x on %s (%s): %w", s.o.Address, s.o.Bus, c.Name, err)
		}
		volts := float64(smp.V) / float64(physic.Volt)
		dst[i] = volts*c.Scale + c.Offset
	}
	return nil
}
