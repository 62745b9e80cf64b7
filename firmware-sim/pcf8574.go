package firmwaresim

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Expander models.
const (
	ModelPCF8574  = "pcf8574"
	ModelMCP23017 = "mcp23017"
)

// attachExpander puts the chip r describes at its bus and address, unless a
// chip is already there (bus names that differ only in spelling, /dev/i2c-1,
// I2C1, 1, are one bus).
func attachExpander(h *Hardware, r I2CChip) error {
	if r.Address < 0 || r.Address > 0x7f {
		return fmt.Errorf("I2C address %#x is not a 7-bit address", r.Address)
	}
	var chip func() I2CDevice
	switch r.Model {
	case ModelPCF8574:
		chip = func() I2CDevice { return NewPCF8574() }
	case ModelMCP23017:
		chip = func() I2CDevice { return NewMCP23017() }
	default:
		return fmt.Errorf("there is no simulated %q chip (use %s or %s)", r.Model, ModelPCF8574, ModelMCP23017)
	}
	if strings.TrimSpace(r.Bus) == "" {
		return fmt.Errorf("empty I2C bus name")
	}
	addr := uint16(r.Address)
	bus := h.I2C(r.Bus)
	if bus.Device(addr) != nil {
		return nil
	}
	bus.Attach(addr, chip())
	return nil
}

// PinChange is one change of the level an I/O expander drives on a pin.
type PinChange struct {
	At time.Time
	// Tx is the chip's transaction that made the change, counted from 1.
	Tx int
	// Pin counts from 0: P0..P7 of a PCF8574; GPA0..GPA7 (0..7) and
	// GPB0..GPB7 (8..15) of an MCP23017. A relay's channel is Pin+1.
	Pin   int
	Level gpio.Level
}

// expanderPins is the output side shared by the expander models: the level
// each pin drives, its history, and stuck pins. The owning chip's mutex
// guards it.
type expanderPins struct {
	width   int
	out     uint16 // driven levels, bit i = pin i
	tx      int    // transactions so far
	history []PinChange
	stuck   uint16 // pins that read stuckAt whatever is driven
	stuckAt uint16
}

func (e *expanderPins) mask() uint16 { return uint16(uint32(1)<<e.width - 1) }

// drive makes next the driven levels, recording every pin that changes.
func (e *expanderPins) drive(next uint16) {
	next &= e.mask()
	diff := e.out ^ next
	if diff == 0 {
		return
	}
	now := time.Now()
	for pin := range e.width {
		if diff&(1<<pin) != 0 {
			e.history = append(e.history, PinChange{At: now, Tx: e.tx, Pin: pin, Level: gpio.Level(next&(1<<pin) != 0)})
		}
	}
	e.out = next
}

// levels are the levels on the pins: the driven ones, except stuck pins.
func (e *expanderPins) levels(driven uint16) uint16 {
	return (driven &^ e.stuck) | (e.stuckAt & e.stuck)
}

func (e *expanderPins) stick(pin int, l gpio.Level) {
	if pin < 0 || pin >= e.width {
		return
	}
	bit := uint16(1) << pin
	e.stuck |= bit
	if l {
		e.stuckAt |= bit
	} else {
		e.stuckAt &^= bit
	}
}

func (e *expanderPins) unstick(pin int) {
	if pin >= 0 && pin < e.width {
		e.stuck &^= 1 << pin
	}
}

// PCF8574 is a simulated PCF8574 8-bit quasi-bidirectional I/O expander. It
// powers up with every pin high (the weak pull-up: relays of an active-low
// board off). Each data byte of a write transaction sets the whole port (the
// last one stays); each byte read returns the levels on the pins, where a
// pin written 1 reads high unless something outside pulls it low.
type PCF8574 struct {
	mu   sync.Mutex
	pins expanderPins
}

var _ I2CDevice = (*PCF8574)(nil)

// NewPCF8574 returns a chip in its power-up state (port 0xFF).
func NewPCF8574() *PCF8574 {
	return &PCF8574{pins: expanderPins{width: 8, out: 0xff}}
}

// Tx implements I2CDevice.
func (c *PCF8574) Tx(w, r []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pins.tx++
	for _, b := range w {
		c.pins.drive(uint16(b))
	}
	for i := range r {
		r[i] = byte(c.pins.levels(c.pins.out))
	}
	return nil
}

// Pins returns the levels the chip drives, bit i = P<i>.
func (c *PCF8574) Pins() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pins.out
}

// History returns every change of a driven level since power-up, oldest
// first.
func (c *PCF8574) History() []PinChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]PinChange(nil), c.pins.history...)
}

// Stick makes pin (0..7) read l whatever the chip drives: a shorted line, or
// a relay input that loads the pin down. Out of range pins are ignored.
func (c *PCF8574) Stick(pin int, l gpio.Level) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pins.stick(pin, l)
}

// Unstick undoes Stick.
func (c *PCF8574) Unstick(pin int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pins.unstick(pin)
}
