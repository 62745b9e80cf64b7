package firmwaresim

import (
	"fmt"
	"sync"

	"periph.io/x/conn/v3/gpio"
)

// MCP23017 registers in the IOCON.BANK=0 map (the power-up map): each A
// register is followed by its B register.
const (
	MCP23017IODIRA   = 0x00
	MCP23017IODIRB   = 0x01
	MCP23017IPOLA    = 0x02
	MCP23017IPOLB    = 0x03
	MCP23017GPINTENA = 0x04
	MCP23017GPINTENB = 0x05
	MCP23017DEFVALA  = 0x06
	MCP23017DEFVALB  = 0x07
	MCP23017INTCONA  = 0x08
	MCP23017INTCONB  = 0x09
	MCP23017IOCON    = 0x0a // also at 0x0b: one register at two addresses
	MCP23017GPPUA    = 0x0c
	MCP23017GPPUB    = 0x0d
	MCP23017INTFA    = 0x0e
	MCP23017INTFB    = 0x0f
	MCP23017INTCAPA  = 0x10
	MCP23017INTCAPB  = 0x11
	MCP23017GPIOA    = 0x12
	MCP23017GPIOB    = 0x13
	MCP23017OLATA    = 0x14
	MCP23017OLATB    = 0x15

	mcp23017Registers = 0x16

	// IOCON bits.
	mcpIOCONBank   = 0x80
	mcpIOCONSeqOff = 0x20 // SEQOP: 1 disables address auto-increment
)

// MCP23017 is a simulated MCP23017 16-bit I/O expander on I2C, at register
// level, in the BANK=0 register map. It powers up with every pin an input
// (IODIR 0xFF) and the output latches at 0 (OLAT 0x00).
//
// A transaction's first written byte sets the register address; further
// written bytes are written there and read bytes are read from there, the
// address advancing after each byte: to the next register (wrapping from
// OLATB to IODIRA) or, when IOCON.SEQOP is set, to the other register of the
// A/B pair. A transaction with nothing written reads from the current
// address. Writing GPIO writes OLAT; INTF and INTCAP are read-only. A pin
// drives its OLAT level while its IODIR bit is 0 and floats otherwise; a
// floating pin reads high through the relay board's pull-up (for an
// active-low board: relay off). GPIO reads the pins, inverted where IPOL is
// set. Interrupts are not simulated, nor is the BANK=1 map: setting
// IOCON.BANK fails the transaction.
type MCP23017 struct {
	mu   sync.Mutex
	reg  [mcp23017Registers]byte
	addr byte
	pins expanderPins
}

var _ I2CDevice = (*MCP23017)(nil)

// NewMCP23017 returns a chip in its power-up state.
func NewMCP23017() *MCP23017 {
	m := &MCP23017{pins: expanderPins{width: 16}}
	m.reg[MCP23017IODIRA] = 0xff
	m.reg[MCP23017IODIRB] = 0xff
	m.pins.out = m.driven()
	return m
}

// driven is the level each pin shows a relay board: OLAT on outputs, high
// (pulled up) on inputs. Bit i is GPA<i> for i < 8, GPB<i-8> otherwise.
func (m *MCP23017) driven() uint16 {
	a := m.reg[MCP23017OLATA] | m.reg[MCP23017IODIRA]
	b := m.reg[MCP23017OLATB] | m.reg[MCP23017IODIRB]
	return uint16(a) | uint16(b)<<8
}

// Tx implements I2CDevice.
func (m *MCP23017) Tx(w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pins.tx++
	if len(w) > 0 {
		if w[0] >= mcp23017Registers {
			return fmt.Errorf("mcp23017: no register 0x%02x in the BANK=0 map", w[0])
		}
		m.addr = w[0]
		for _, v := range w[1:] {
			if err := m.write(m.addr, v); err != nil {
				return err
			}
			m.advance()
		}
	}
	for i := range r {
		r[i] = m.read(m.addr)
		m.advance()
	}
	return nil
}

func (m *MCP23017) advance() {
	if m.reg[MCP23017IOCON]&mcpIOCONSeqOff != 0 {
		m.addr ^= 1 // byte mode in BANK=0: toggle within the A/B pair
		return
	}
	m.addr++
	if m.addr >= mcp23017Registers {
		m.addr = 0
	}
}

func (m *MCP23017) write(addr, v byte) error {
	switch addr {
	case MCP23017IOCON, MCP23017IOCON + 1:
		if v&mcpIOCONBank != 0 {
			return fmt.Errorf("mcp23017: IOCON.BANK=1 (the split register map) is not simulated")
		}
		v &^= 0x01 // unimplemented bit, reads 0
		m.reg[MCP23017IOCON], m.reg[MCP23017IOCON+1] = v, v
	case MCP23017INTFA, MCP23017INTFB, MCP23017INTCAPA, MCP23017INTCAPB:
		// read-only
	case MCP23017GPIOA, MCP23017GPIOB:
		m.reg[addr+2] = v // GPIO writes go to OLAT
	default:
		m.reg[addr] = v
	}
	m.pins.drive(m.driven())
	return nil
}

func (m *MCP23017) read(addr byte) byte {
	switch addr {
	case MCP23017GPIOA:
		return byte(m.pins.levels(m.pins.out)) ^ m.reg[MCP23017IPOLA]
	case MCP23017GPIOB:
		return byte(m.pins.levels(m.pins.out)>>8) ^ m.reg[MCP23017IPOLB]
	}
	return m.reg[addr]
}

// Register returns a register's content as stored (GPIO: the pins as a read
// would return them), without a transaction. An unknown address gives 0.
func (m *MCP23017) Register(addr byte) byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if addr >= mcp23017Registers {
		return 0
	}
	return m.read(addr)
}

// Pins returns the levels the chip shows a relay board (OLAT on outputs,
// high on inputs), bit i = GPA<i>, bit 8+i = GPB<i>.
func (m *MCP23017) Pins() uint16 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pins.out
}

// History returns every change of the levels Pins reports since power-up,
// oldest first.
func (m *MCP23017) History() []PinChange {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]PinChange(nil), m.pins.history...)
}

// Stick makes pin (0..15) read l through GPIO whatever the chip drives: a
// shorted line or a dead output stage. Out of range pins are ignored.
func (m *MCP23017) Stick(pin int, l gpio.Level) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pins.stick(pin, l)
}

// Unstick undoes Stick.
func (m *MCP23017) Unstick(pin int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pins.unstick(pin)
}
