package firmwaresim

import (
	"errors"
	"fmt"
	"math"
	"sync"
)

// ADS1115 is a register-level model of TI's ADS1115 16-bit ADC, from its
// datasheet (SBAS444): a pointer register selects the conversion (0), config
// (1), lo_thresh (2) or hi_thresh (3) register; each is 16 bits, MSB first.
// Writing the config register with OS=1 in single-shot mode starts a
// conversion of the input MUX selects at the full-scale range PGA selects;
// the model converts at once (OS reads 1: not busy) and the conversion
// register holds the result, clipped to the range. The inputs are voltages
// set by the test or the control API (ch0..ch3).
type ADS1115 struct {
	mu     sync.Mutex
	ptr    byte
	config uint16
	conv   int16
	lo, hi uint16
	inputs [4]float64
	convs  int
}

// NewADS1115 returns a chip in its power-on state (config 0x8583), with
// every input at 0 V.
func NewADS1115() *ADS1115 { return &ADS1115{config: 0x8583, lo: 0x8000, hi: 0x7fff} }

// Kind names the chip in the control API.
func (a *ADS1115) Kind() string { return "ads1115" }

// SetInput sets the voltage at AINn (0–3), in volts.
func (a *ADS1115) SetInput(n int, volts float64) error {
	if n < 0 || n > 3 {
		return fmt.Errorf("the ADS1115 has inputs 0 to 3, not %d", n)
	}
	if math.IsNaN(volts) || volts < -0.3 || volts > 5.8 {
		return fmt.Errorf("%v V is outside what an ADS1115 input takes (-0.3 to VDD+0.3, 5.8 V at most)", volts)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inputs[n] = volts
	return nil
}

// Inputs returns the four input voltages.
func (a *ADS1115) Inputs() [4]float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inputs
}

// Conversions counts the conversions done.
func (a *ADS1115) Conversions() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.convs
}

// adsRanges are the full-scale ranges of PGA settings 0 to 7 (6, 7: 0.256).
var adsRanges = [8]float64{6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256}

// Tx implements I2CDevice.
func (a *ADS1115) Tx(w, r []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(w) > 0 {
		a.ptr = w[0] & 3
		if len(w) == 2 {
			return errors.New("ads1115: a register write needs two data bytes")
		}
		if len(w) >= 3 {
			v := uint16(w[1])<<8 | uint16(w[2])
			switch a.ptr {
			case 0: // read-only
			case 1:
				a.config = v &^ 0x8000
				if v&0x8000 != 0 || v&0x0100 == 0 { // OS=1, or continuous mode
					a.convertLocked()
				}
				a.config |= 0x8000 // conversion done
			case 2:
				a.lo = v
			case 3:
				a.hi = v
			}
		}
	}
	for i := 0; i < len(r); i += 2 {
		var v uint16
		switch a.ptr {
		case 0:
			v = uint16(a.conv)
		case 1:
			v = a.config
		case 2:
			v = a.lo
		case 3:
			v = a.hi
		}
		r[i] = byte(v >> 8)
		if i+1 < len(r) {
			r[i+1] = byte(v)
		}
	}
	return nil
}

// convertLocked converts the input MUX selects.
func (a *ADS1115) convertLocked() {
	mux := (a.config >> 12) & 7
	fs := adsRanges[(a.config>>9)&7]
	var v float64
	switch mux {
	case 0:
		v = a.inputs[0] - a.inputs[1]
	case 1:
		v = a.inputs[0] - a.inputs[3]
	case 2:
		v = a.inputs[1] - a.inputs[3]
	case 3:
		v = a.inputs[2] - a.inputs[3]
	default: // 4–7: AIN0–AIN3 against GND
		v = a.inputs[mux-4]
	}
	code := math.Round(v / fs * 32768)
	a.conv = int16(max(-32768, min(32767, code)))
	a.convs++
}

func attachADS1115(h *Hardware, c I2CChip) error {
	if c.Address < 0x48 || c.Address > 0x4b {
		return fmt.Errorf("an ADS1115 answers at 0x48 to 0x4b, not %#x", c.Address)
	}
	return attachChip(h, c, func() I2CDevice { return NewADS1115() })
}
