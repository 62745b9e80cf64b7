package firmwaresim

import (
	"slices"
	"testing"

	"periph.io/x/conn/v3/gpio"
)

// changes reduces a history to "pin:level" pairs per transaction.
type change struct {
	tx, pin int
	level   gpio.Level
}

func changes(h []PinChange) []change {
	var cs []change
	for _, c := range h {
		cs = append(cs, change{c.Tx, c.Pin, c.Level})
	}
	return cs
}

func TestPCF8574(t *testing.T) {
	c := NewPCF8574()
	if got := c.Pins(); got != 0xff {
		t.Fatalf("power-up pins %#x, want 0xff (all high)", got)
	}
	var r [1]byte
	if err := c.Tx(nil, r[:]); err != nil || r[0] != 0xff {
		t.Fatalf("power-up read %#x, %v", r[0], err)
	}
	if len(c.History()) != 0 {
		t.Fatalf("a read changed outputs: %v", c.History())
	}

	// Every data byte sets the whole port; the last one stays.
	if err := c.Tx([]byte{0xfe, 0x7f}, nil); err != nil {
		t.Fatal(err)
	}
	if got := c.Pins(); got != 0x7f {
		t.Fatalf("pins %#x after writing 0xfe then 0x7f, want 0x7f", got)
	}
	want := []change{{2, 0, gpio.Low}, {2, 0, gpio.High}, {2, 7, gpio.Low}}
	if got := changes(c.History()); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}

	// Combined write-then-read: the read sees the new levels.
	if err := c.Tx([]byte{0x0f}, r[:]); err != nil || r[0] != 0x0f {
		t.Fatalf("write 0x0f then read: %#x, %v", r[0], err)
	}

	// A pin pulled low from outside reads low though written high; the
	// driven level (and the history) stays what was written.
	c.Stick(1, gpio.Low)
	c.Stick(42, gpio.Low) // out of range: ignored
	if err := c.Tx(nil, r[:]); err != nil || r[0] != 0x0d {
		t.Fatalf("read with P1 held low: %#x, %v; want 0x0d", r[0], err)
	}
	if c.Pins() != 0x0f {
		t.Fatalf("Stick changed the driven level: %#x", c.Pins())
	}
	c.Unstick(1)
	if err := c.Tx(nil, r[:]); err != nil || r[0] != 0x0f {
		t.Fatalf("read after Unstick: %#x, %v", r[0], err)
	}
}

func mcpTx(t *testing.T, m *MCP23017, w []byte, n int) []byte {
	t.Helper()
	r := make([]byte, n)
	if err := m.Tx(w, r); err != nil {
		t.Fatalf("Tx(% x): %v", w, err)
	}
	return r
}

func TestMCP23017PowerUp(t *testing.T) {
	m := NewMCP23017()
	all := mcpTx(t, m, []byte{MCP23017IODIRA}, mcp23017Registers)
	want := make([]byte, mcp23017Registers)
	want[MCP23017IODIRA], want[MCP23017IODIRB] = 0xff, 0xff
	want[MCP23017GPIOA], want[MCP23017GPIOB] = 0xff, 0xff // inputs, pulled up
	if !slices.Equal(all, want) {
		t.Fatalf("power-up registers\n got % x\nwant % x", all, want)
	}
	if m.Pins() != 0xffff {
		t.Fatalf("power-up pins %#x, want 0xffff (inputs read high through the pull-ups)", m.Pins())
	}
	// The sequential read wrapped from OLATB to IODIRA.
	if got := mcpTx(t, m, nil, 1); got[0] != 0xff {
		t.Fatalf("read after the wrap: %#x, want IODIRA 0xff", got[0])
	}
}

func TestMCP23017IODIRGatesOLAT(t *testing.T) {
	m := NewMCP23017()
	// Latches first, with the pins still inputs: nothing changes.
	mcpTx(t, m, []byte{MCP23017OLATA, 0x0f, 0xf0}, 0)
	if m.Pins() != 0xffff || len(m.History()) != 0 {
		t.Fatalf("writing OLAT of inputs changed pins: %#x %v", m.Pins(), m.History())
	}
	if r := mcpTx(t, m, []byte{MCP23017OLATA}, 2); r[0] != 0x0f || r[1] != 0xf0 {
		t.Fatalf("OLAT reads % x", r)
	}
	// Half of port A becomes outputs: only GPA4..7 (latched 0) change.
	mcpTx(t, m, []byte{MCP23017IODIRA, 0x0f}, 0)
	if m.Pins() != 0xff0f {
		t.Fatalf("pins %#x, want 0xff0f", m.Pins())
	}
	want := []change{{3, 4, gpio.Low}, {3, 5, gpio.Low}, {3, 6, gpio.Low}, {3, 7, gpio.Low}} // transaction 3
	if got := changes(m.History()); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	if r := mcpTx(t, m, []byte{MCP23017GPIOA}, 2); r[0] != 0x0f || r[1] != 0xff {
		t.Fatalf("GPIOA/B read % x, want 0f ff", r)
	}
	// Back to inputs: they float high again.
	mcpTx(t, m, []byte{MCP23017IODIRA, 0xff}, 0)
	if m.Pins() != 0xffff {
		t.Fatalf("pins %#x after making them inputs again", m.Pins())
	}
}

func TestMCP23017GPIOWritesOLAT(t *testing.T) {
	m := NewMCP23017()
	mcpTx(t, m, []byte{MCP23017IODIRA, 0x00, 0x00}, 0) // all outputs, at OLAT 0
	mcpTx(t, m, []byte{MCP23017GPIOA, 0xa5, 0x3c}, 0)  // GPIOA, GPIOB
	if m.Register(MCP23017OLATA) != 0xa5 || m.Register(MCP23017OLATB) != 0x3c {
		t.Fatalf("OLAT % x % x after writing GPIO", m.Register(MCP23017OLATA), m.Register(MCP23017OLATB))
	}
	if m.Pins() != 0x3ca5 {
		t.Fatalf("pins %#x, want 0x3ca5", m.Pins())
	}
	// GPIO reads the pins, inverted where IPOL says.
	mcpTx(t, m, []byte{MCP23017IPOLB, 0xff}, 0)
	if r := mcpTx(t, m, []byte{MCP23017GPIOA}, 2); r[0] != 0xa5 || r[1] != 0xc3 {
		t.Fatalf("GPIO reads % x, want a5 c3", r)
	}
	mcpTx(t, m, []byte{MCP23017IPOLB, 0x00}, 0)
	// A stuck pin reads its level; OLAT and the driven level do not change.
	m.Stick(8, gpio.High)
	if r := mcpTx(t, m, []byte{MCP23017GPIOB}, 1); r[0] != 0x3d {
		t.Fatalf("GPIOB with GPB0 stuck high reads %#x, want 0x3d", r[0])
	}
	if m.Register(MCP23017OLATB) != 0x3c || m.Pins() != 0x3ca5 {
		t.Fatal("Stick changed OLAT or the driven level")
	}
	m.Unstick(8)
	// INTF and INTCAP are read-only.
	mcpTx(t, m, []byte{MCP23017INTFA, 1, 2, 3, 4}, 0)
	if r := mcpTx(t, m, []byte{MCP23017INTFA}, 4); !slices.Equal(r, []byte{0, 0, 0, 0}) {
		t.Fatalf("INTF/INTCAP took writes: % x", r)
	}
}

func TestMCP23017SequentialAddressing(t *testing.T) {
	m := NewMCP23017()
	// Auto-increment across registers, wrapping from OLATB to IODIRA.
	mcpTx(t, m, []byte{MCP23017OLATB, 0x11, 0x22, 0x33}, 0)
	if m.Register(MCP23017OLATB) != 0x11 || m.Register(MCP23017IODIRA) != 0x22 || m.Register(MCP23017IODIRB) != 0x33 {
		t.Fatalf("sequential write across the wrap: OLATB %#x IODIRA %#x IODIRB %#x",
			m.Register(MCP23017OLATB), m.Register(MCP23017IODIRA), m.Register(MCP23017IODIRB))
	}
	// IOCON is one register at two addresses.
	mcpTx(t, m, []byte{MCP23017IOCON + 1, 0x20}, 0) // SEQOP: byte mode
	if m.Register(MCP23017IOCON) != 0x20 {
		t.Fatalf("IOCON at 0x0a reads %#x after writing 0x0b", m.Register(MCP23017IOCON))
	}
	// Byte mode in BANK=0: the address toggles within the A/B pair.
	mcpTx(t, m, []byte{MCP23017DEFVALA, 1, 2, 3}, 0)
	if m.Register(MCP23017DEFVALA) != 3 || m.Register(MCP23017DEFVALB) != 2 || m.Register(MCP23017INTCONA) != 0 {
		t.Fatalf("byte mode: DEFVALA %d DEFVALB %d INTCONA %d, want 3 2 0",
			m.Register(MCP23017DEFVALA), m.Register(MCP23017DEFVALB), m.Register(MCP23017INTCONA))
	}
	if r := mcpTx(t, m, []byte{MCP23017DEFVALA}, 3); !slices.Equal(r, []byte{3, 2, 3}) {
		t.Fatalf("byte-mode read % x, want 03 02 03", r)
	}
	// Refused: the BANK=1 map and addresses beyond OLATB.
	if err := m.Tx([]byte{MCP23017IOCON, 0x80}, nil); err == nil {
		t.Fatal("setting IOCON.BANK was accepted")
	}
	if err := m.Tx([]byte{0x16}, make([]byte, 1)); err == nil {
		t.Fatal("register 0x16 was accepted")
	}
}

func TestPopulateExpanders(t *testing.T) {
	devs := Devices{Expanders: []I2CChip{
		{Bus: "/dev/i2c-1", Address: 0x20, Model: ModelPCF8574},
		{Bus: "1", Address: 0x20, Model: ModelPCF8574},
		{Bus: "/dev/i2c-1", Address: 0x21, Model: ModelMCP23017},
		{Bus: "/dev/i2c-1", Address: 0x22, Model: ModelMCP23017},
	}}
	hw := NewHardware(nil)
	defer hw.Close()
	kept := NewPCF8574()
	hw.I2C("/dev/i2c-1").Attach(0x22, kept) // already there: kept
	if err := hw.Populate(devs); err != nil {
		t.Fatal(err)
	}
	pcf, ok := hw.I2C("/dev/i2c-1").Device(0x20).(*PCF8574)
	if !ok {
		t.Fatalf("0x20: %T, want a PCF8574", hw.I2C("/dev/i2c-1").Device(0x20))
	}
	if hw.I2C("1").Device(0x20) != pcf {
		t.Fatal("bus 1 and /dev/i2c-1 got different chips at 0x20")
	}
	if _, ok := hw.I2C("/dev/i2c-1").Device(0x21).(*MCP23017); !ok {
		t.Fatalf("0x21: %T, want an MCP23017", hw.I2C("/dev/i2c-1").Device(0x21))
	}
	if hw.I2C("/dev/i2c-1").Device(0x22) != kept {
		t.Fatal("the chip already at 0x22 was replaced")
	}

	bad := Devices{Expanders: []I2CChip{{Bus: "1", Address: 0x20, Model: "pcf8575"}}}
	if err := NewHardware(nil).Populate(bad); err == nil {
		t.Fatal("an unknown chip was accepted")
	}
}
