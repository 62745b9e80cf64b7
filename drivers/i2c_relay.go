package drivers

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"

	"github.com/edgegate/edgegate/drivers/i2cbus"
	"periph.io/x/conn/v3/i2c"
)

// I2CRelayDriver is the name of the driver of relays on an I2C I/O expander.
const I2CRelayDriver = "i2c-relay"

// I/O expander chips, and how many channels each has (numbered from 1).
const (
	ChipPCF8574  = "pcf8574"
	ChipMCP23017 = "mcp23017"
)

// ChipChannels is the number of relay channels of an expander chip (0 for an
// unknown chip). Channel 1 is P0 of a pcf8574, GPA0 of a mcp23017; channel 9
// of a mcp23017 is GPB0.
func ChipChannels(chip string) int {
	switch chip {
	case ChipPCF8574:
		return 8
	case ChipMCP23017:
		return 16
	}
	return 0
}

// I2CRelayOpts describe one relay channel of a PCF8574 or MCP23017 relay
// board.
type I2CRelayOpts struct {
	Name      string
	Bus       string // "/dev/i2c-1"
	Address   int    // 7-bit, e.g. 0x20
	Chip      string // ChipPCF8574 or ChipMCP23017
	Channel   int    // 1..ChipChannels(Chip)
	ActiveLow bool
	// On is the state the relay starts in, and Bank every other relay on
	// the same chip with the state it starts in: the chip is set up with all
	// its outputs at once when its first relay is opened, so that no channel
	// ever shows another level.
	On   bool
	Bank []I2CChannel
}

// I2CChannel is another relay of an expander chip, as I2CRelayOpts.Bank
// lists them.
type I2CChannel struct {
	Name      string
	Chip      string
	Channel   int
	ActiveLow bool
	On        bool
}

// Validate checks the options (not the bank: opening the chip does).
func (o I2CRelayOpts) Validate() error {
	var bus, chip, ch *FieldError
	if strings.TrimSpace(o.Bus) == "" {
		bus = fieldError("bus", "no I2C bus given: set bus, e.g. bus: /dev/i2c-1")
	}
	width := ChipChannels(o.Chip)
	if width == 0 {
		chip = fieldError("chip", "want one of %s, %s, got %q", ChipPCF8574, ChipMCP23017, o.Chip)
	}
	if ch = checkChannel(o.Channel); ch == nil && width > 0 && o.Channel > width {
		ch = fieldError("channel", "a %s has channels 1 to %d, got %d", o.Chip, width, o.Channel)
	}
	return joinFields(bus, checkI2CAddress(o.Address), chip, ch)
}

// MCP23017 registers used here (IOCON.BANK=0, the power-up map).
const (
	mcpIODIRA = 0x00
	mcpIODIRB = 0x01
	mcpIPOLA  = 0x02
	mcpIPOLB  = 0x03
	mcpGPIOA  = 0x12
	mcpOLATA  = 0x14
	mcpOLATB  = 0x15
)

// An expander bank is one PCF8574 or MCP23017 whose pins drive a relay board.
// All relays on one chip share it: it holds the shadow of the chip's output
// latch, so that each relay changes only its own bit, and it writes the whole
// port in one go.
//
// Banks are kept by bus provider, bus and address while any of their relays
// is open, so that two providers (two simulated boards in one test process)
// never share one.
type expanderKey struct {
	buses Buses
	bus   string // as i2cbus.Key spells it
	addr  int
}

var expanders = struct {
	mu    sync.Mutex
	banks map[expanderKey]*expanderBank
}{banks: map[expanderKey]*expanderBank{}}

type expanderBank struct {
	key     expanderKey
	chip    string // ChipPCF8574 or ChipMCP23017
	busName string // as the first relay's configuration spells it
	dev     i2c.Dev
	log     *slog.Logger
	refs    int // open relays; guarded by expanders.mu

	mu    sync.Mutex
	latch uint16 // output levels the chip last confirmed, bit i = channel i+1
	// resync: a write or readback failed, so the chip may have reset or hold
	// other levels; the next Set rewrites every register the bank set up.
	resync bool
}

// i2cRelay is one channel of an expander bank.
type i2cRelay struct {
	name      string
	bank      *expanderBank
	bit       uint16
	activeLow bool

	mu     sync.Mutex
	closed bool
}

// OpenI2CRelay opens a relay channel of an expander chip. The first relay
// of a chip to open sets the chip up: every output of the chip at the level
// o.On and o.Bank give it, then the pins made outputs.
func OpenI2CRelay(o I2CRelayOpts, env Env) (Relay, error) {
	if _, err := env.buses(o, I2CRelayDriver); err != nil {
		return nil, err
	}
	if t := reflect.TypeOf(env.Buses); !t.Comparable() {
		// It keys the shared banks; a map key of this type would panic.
		return nil, fmt.Errorf("bus provider %v cannot be told apart from others (use a pointer type)", t)
	}
	key := expanderKey{buses: env.Buses, bus: i2cbus.Key(o.Bus), addr: o.Address}

	expanders.mu.Lock()
	defer expanders.mu.Unlock()
	b := expanders.banks[key]
	if b == nil {
		var err error
		if b, err = openExpanderBank(key, o, env); err != nil {
			return nil, err
		}
		expanders.banks[key] = b
	} else if b.chip != o.Chip {
		return nil, fmt.Errorf("the chip at %#x on %s is already open as a %s, not a %s", o.Address, b.busName, b.chip, o.Chip)
	}
	b.refs++
	return &i2cRelay{name: o.Name, bank: b, bit: 1 << (o.Channel - 1), activeLow: o.ActiveLow}, nil
}

// openExpanderBank sets a chip up the first time one of its relays is opened:
// it writes every output to the level it starts at before making anything an
// output, so that no pin ever shows another level. Called with expanders.mu
// held, so no other relay of the chip can use it before that is done.
func openExpanderBank(key expanderKey, o I2CRelayOpts, env Env) (*expanderBank, error) {
	latch, err := initialLatch(o)
	if err != nil {
		return nil, err
	}
	bus, err := env.Buses.I2CBus(o.Bus)
	if err != nil {
		return nil, err
	}
	b := &expanderBank{
		key:     key,
		chip:    o.Chip,
		busName: o.Bus,
		dev:     i2c.Dev{Bus: bus, Addr: uint16(o.Address)},
		log:     env.Logger,
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	if err := b.setUp(latch); err != nil {
		return nil, fmt.Errorf("%s: %w", b, err)
	}
	b.latch = latch
	b.log.Debug("I/O expander set up", "chip", b.chip, "bus", b.busName, "address", fmt.Sprintf("%#x", o.Address), "outputs", fmt.Sprintf("%#0*b", ChipChannels(b.chip)+2, latch))
	return b, nil
}

// initialLatch is the level of every output of the chip at start: the relay
// of o and each one of its bank at its initial state (on or off, through its
// active_low), and every unused channel off. An unused channel is off when
// high, unless every relay of the chip is active-high: high is also the
// PCF8574's power-up level and what the MCP23017's floating pins show
// through an active-low board's pull-ups, so it changes nothing there.
func initialLatch(o I2CRelayOpts) (uint16, error) {
	relays := append([]I2CChannel{{Name: o.Name, Chip: o.Chip, Channel: o.Channel, ActiveLow: o.ActiveLow, On: o.On}}, o.Bank...)
	width := ChipChannels(o.Chip)
	var set, levels uint16
	allActiveHigh := true
	for _, r := range relays {
		if r.Chip != o.Chip {
			return 0, fmt.Errorf("relay %q says the chip at %#x on %s is a %s, relay %q says %s", o.Name, o.Address, o.Bus, o.Chip, r.Name, r.Chip)
		}
		if r.Channel < 1 || r.Channel > width {
			return 0, fmt.Errorf("relay %q: a %s has channels 1 to %d, got %d", r.Name, r.Chip, width, r.Channel)
		}
		bit := uint16(1) << (r.Channel - 1)
		if set&bit != 0 {
			return 0, fmt.Errorf("channel %d of the %s at %#x on %s is configured twice (relay %q)", r.Channel, r.Chip, o.Address, o.Bus, r.Name)
		}
		set |= bit
		if r.On != r.ActiveLow {
			levels |= bit
		}
		allActiveHigh = allActiveHigh && !r.ActiveLow
	}
	mask := uint16(uint32(1)<<width - 1)
	if !allActiveHigh {
		levels |= mask &^ set
	}
	return levels, nil
}

func (b *expanderBank) String() string {
	return fmt.Sprintf("%s at %#x on %s", b.chip, b.key.addr, b.busName)
}

// setUp writes latch to every output and makes the pins outputs. A PCF8574
// takes the whole port in one byte. An MCP23017 gets its output latches
// first, while its pins are still inputs (nothing changes on them), then
// becomes an output; one register per transaction, so that it works whatever
// IOCON.SEQOP says. IPOL is cleared so that GPIO reads the pins as they are.
func (b *expanderBank) setUp(latch uint16) error {
	if b.chip == ChipPCF8574 {
		return b.tx("write the outputs", []byte{byte(latch)}, nil)
	}
	for _, w := range [][]byte{
		{mcpOLATA, byte(latch)},
		{mcpOLATB, byte(latch >> 8)},
		{mcpIODIRA, 0x00},
		{mcpIODIRB, 0x00},
		{mcpIPOLA, 0x00},
		{mcpIPOLB, 0x00},
	} {
		if err := b.tx(fmt.Sprintf("write register 0x%02x", w[0]), w, nil); err != nil {
			return err
		}
	}
	return nil
}

// tx carries one transaction; a bus error says what to check.
func (b *expanderBank) tx(what string, w, r []byte) error {
	if err := b.dev.Tx(w, r); err != nil {
		return fmt.Errorf("%s: %w (check the wiring and power of the relay board, that the address matches its jumpers (i2cdetect -y <bus> lists the chips that answer), and that I2C is enabled)", what, err)
	}
	return nil
}

// set drives the outputs in bit to level (bit set: high) and confirms it.
func (b *expanderBank) set(bit uint16, high bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := b.latch &^ bit
	if high {
		want |= bit
	}
	if err := b.write(want, bit); err != nil {
		b.resync = true
		return fmt.Errorf("%s: %w", b, err)
	}
	b.latch = want
	b.resync = false
	return nil
}

// write sends want to the chip and reads the pins back. Only the pins in bit
// must read as written: another pin that reads otherwise (a PCF8574 input
// pulled low from outside) is no reason to refuse this relay's change.
func (b *expanderBank) write(want, bit uint16) error {
	if b.chip == ChipPCF8574 {
		if err := b.tx("write the outputs", []byte{byte(want)}, nil); err != nil {
			return err
		}
		var r [1]byte
		if err := b.tx("wrote the outputs but reading them back failed; the relay may or may not have switched", nil, r[:]); err != nil {
			return err
		}
		return b.check(want, uint16(r[0]), bit)
	}
	if b.resync {
		// The chip may have been reset (power dip: all pins inputs again,
		// latches 0): set it up again, latches first.
		if err := b.setUp(want); err != nil {
			return err
		}
	}
	port := byte(0)
	if bit > 0xff {
		port = 1
	}
	shift := 8 * port
	if err := b.tx("write the outputs", []byte{mcpOLATA + port, byte(want >> shift)}, nil); err != nil {
		return err
	}
	var r [1]byte
	if err := b.tx("wrote the outputs but reading them back failed; the relay may or may not have switched", []byte{mcpGPIOA + port}, r[:]); err != nil {
		return err
	}
	return b.check(want, uint16(r[0])<<shift, bit)
}

func (b *expanderBank) check(want, got, bit uint16) error {
	if (want^got)&bit == 0 {
		return nil
	}
	return fmt.Errorf("wrote %s but the pin reads %s: check the relay board's power and that nothing else drives the pin (a short, another program using the chip)",
		levelName(want&bit != 0), levelName(got&bit != 0))
}

func levelName(high bool) string {
	if high {
		return "high"
	}
	return "low"
}

func (r *i2cRelay) Name() string   { return r.name }
func (r *i2cRelay) Driver() string { return I2CRelayDriver }

// Set changes only this relay's output: its bit of the chip's latch, written
// with the rest as last confirmed, then read back. On error the bank keeps
// the level last confirmed, and the next Set of any relay of the chip writes
// the latch as confirmed again (and, on an MCP23017, sets the chip up again
// in case it was reset).
func (r *i2cRelay) Set(ctx context.Context, on bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock() // Close waits for a Set under way
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("%s: relay %q is closed", r.bank, r.name)
	}
	return r.bank.set(r.bit, on != r.activeLow)
}

// Close releases the relay without touching the chip. The last relay of a
// chip to close releases the bank: opening one again sets the chip up anew.
func (r *i2cRelay) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	expanders.mu.Lock()
	defer expanders.mu.Unlock()
	b := r.bank
	b.refs--
	if b.refs == 0 && expanders.banks[b.key] == b {
		delete(expanders.banks, b.key)
	}
	return nil
}
