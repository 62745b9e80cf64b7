package hardware_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/edgegate/edgegate/drivers"
	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/hardware"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/devices/v3/mcp23xxx"
	"periph.io/x/devices/v3/pcf857x"
)

// expander is what the tests need of both simulated chips.
type expander interface {
	firmwaresim.I2CDevice
	Pins() uint16
	History() []firmwaresim.PinChange
	Stick(pin int, l gpio.Level)
	Unstick(pin int)
}

// A bank of each chip: active-low (the default) and active-high relays,
// starting on and off, with unused channels between them. want is every
// output once the bank is open: relays at their initial state, unused
// channels off (high, as the bank is not all active-high).
var banks = []struct {
	chip  string
	addr  uint16
	width int
	yaml  string
	want  uint16
}{
	{config.ChipPCF8574, 0x20, 8, `relays:
  - {name: a, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: pcf8574, channel: 1, initial: on}
  - {name: b, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: pcf8574, channel: 2}
  - {name: c, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: pcf8574, channel: 3, active_low: false, initial: on}
  - {name: d, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: pcf8574, channel: 4, active_low: false}
  - {name: e, driver: i2c-relay, bus: "1", address: 0x20, chip: pcf8574, channel: 8, initial: on}
  - {name: g, driver: gpio, pin: GPIO17}
`, 0b0111_0110},
	{config.ChipMCP23017, 0x21, 16, `relays:
  - {name: a, driver: i2c-relay, bus: /dev/i2c-1, address: 0x21, chip: mcp23017, channel: 1, initial: on}
  - {name: b, driver: i2c-relay, bus: /dev/i2c-1, address: 0x21, chip: mcp23017, channel: 8}
  - {name: c, driver: i2c-relay, bus: /dev/i2c-1, address: 0x21, chip: mcp23017, channel: 9, active_low: false, initial: on}
  - {name: d, driver: i2c-relay, bus: /dev/i2c-1, address: 0x21, chip: mcp23017, channel: 16, active_low: false}
  - {name: e, driver: i2c-relay, bus: "1", address: 0x21, chip: mcp23017, channel: 12, initial: on}
  - {name: g, driver: gpio, pin: GPIO17}
`, 0b0111_0111_1111_1110},
}

func initialOf(r config.Relay) bool { return r.Initial == "on" }

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// board simulates cfg and returns the chip at addr on /dev/i2c-1.
func board(t *testing.T, cfg *config.Config, addr uint16) (*firmwaresim.Hardware, expander) {
	t.Helper()
	hw := firmwaresim.NewHardware(nil)
	t.Cleanup(func() { hw.Close() })
	if err := hardware.Simulate(hw, cfg); err != nil {
		t.Fatal(err)
	}
	chip, ok := hw.I2C("/dev/i2c-1").Device(addr).(expander)
	if !ok {
		t.Fatalf("no simulated expander at %#x", addr)
	}
	return hw, chip
}

// i2cRelays lists cfg's i2c-relay relays.
func i2cRelays(cfg *config.Config) []config.Relay {
	var rs []config.Relay
	for _, r := range cfg.Relays {
		if r.Driver == config.DriverI2CRelay {
			rs = append(rs, r)
		}
	}
	return rs
}

// openAll opens cfg's i2c-relay relays in order, closing them at the end.
func openAll(t *testing.T, cfg *config.Config, buses drivers.Buses) map[string]drivers.Relay {
	t.Helper()
	env := hardware.Env{Buses: buses, Relays: cfg.Relays, Initial: initialOf}
	rs := map[string]drivers.Relay{}
	for _, rc := range i2cRelays(cfg) {
		r, err := hardware.OpenRelay(rc, env)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		rs[rc.Name] = r
	}
	return rs
}

// level is the output level of relay rc when on.
func level(rc config.Relay, on bool) bool { return on != rc.ActiveLow }

func bit(rc config.Relay) uint16 { return 1 << (rc.Channel - 1) }

// withLevel is pins with relay rc's output at its level for on.
func withLevel(pins uint16, rc config.Relay, on bool) uint16 {
	if level(rc, on) {
		return pins | bit(rc)
	}
	return pins &^ bit(rc)
}

// The chip gets its initial levels in one write when its first relay is
// opened, and nothing else while the others are opened; then every Set
// changes its own pin and no other.
func TestI2CRelayOpenAndSetChangeOnlyWhatTheyShould(t *testing.T) {
	ctx := context.Background()
	for _, bk := range banks {
		t.Run(bk.chip, func(t *testing.T) {
			cfg := parse(t, bk.yaml)
			hw, chip := board(t, cfg, bk.addr)
			bus := hw.I2C("/dev/i2c-1")
			rcs := i2cRelays(cfg)
			env := hardware.Env{Buses: hw, Relays: cfg.Relays, Initial: initialOf}

			first, err := hardware.OpenRelay(rcs[0], env)
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			if got := chip.Pins(); got != bk.want {
				t.Fatalf("after opening the first relay the outputs are %#b, want %#b", got, bk.want)
			}
			txs := bus.Transactions()
			rest := openAll(t, &config.Config{Relays: cfg.Relays[1:]}, hw)
			rest[rcs[0].Name] = first
			if bus.Transactions() != txs {
				t.Fatalf("opening the other relays of the chip made %d transactions", bus.Transactions()-txs)
			}

			// Each pin changed at most once, straight to its initial level, and
			// the pins of one port all in one transaction.
			power := uint16(uint32(1)<<bk.width - 1) // PCF8574 power-up / MCP23017 inputs pulled up
			opened := chip.History()
			seen := map[int]bool{}
			portTx := map[int]int{}
			for _, c := range opened {
				if seen[c.Pin] {
					t.Fatalf("pin %d changed more than once at open: %s", c.Pin, story(opened))
				}
				seen[c.Pin] = true
				if want := bk.want&(1<<c.Pin) != 0; bool(c.Level) != want {
					t.Fatalf("pin %d went %v at open, want %v: %s", c.Pin, c.Level, want, story(opened))
				}
				port := c.Pin / 8
				if tx, ok := portTx[port]; ok && tx != c.Tx {
					t.Fatalf("port %d changed in transactions %d and %d at open: %s", port, tx, c.Tx, story(opened))
				}
				portTx[port] = c.Tx
			}
			if len(opened) != popcount(power^bk.want) {
				t.Errorf("open changed %d pins, want %d: %s", len(opened), popcount(power^bk.want), story(opened))
			}

			// The gateway's start-up Set of each initial state changes nothing.
			for _, rc := range rcs {
				if err := rest[rc.Name].Set(ctx, initialOf(rc)); err != nil {
					t.Fatalf("%s: %v", rc.Name, err)
				}
			}
			if n := len(chip.History()); n != len(opened) {
				t.Fatalf("setting the initial states again changed outputs: %s", story(chip.History()[len(opened):]))
			}

			// Every Set changes exactly the commanded pin.
			pins := bk.want
			for _, back := range []bool{false, true} {
				for _, rc := range rcs {
					st := back == initialOf(rc) // away from the initial state, then back
					before := len(chip.History())
					if err := rest[rc.Name].Set(ctx, st); err != nil {
						t.Fatalf("%s on=%v: %v", rc.Name, st, err)
					}
					pins = withLevel(pins, rc, st)
					h := chip.History()[before:]
					if len(h) != 1 || h[0].Pin != rc.Channel-1 || bool(h[0].Level) != level(rc, st) {
						t.Fatalf("%s (channel %d) on=%v changed %s; want only P%d to %v", rc.Name, rc.Channel, st, story(h), rc.Channel-1, gpio.Level(level(rc, st)))
					}
					if chip.Pins() != pins {
						t.Fatalf("outputs %#b, want %#b", chip.Pins(), pins)
					}
				}
			}
		})
	}
}

// story prints a history compactly: "tx1:P0=Low tx1:P3=Low".
func story(h []firmwaresim.PinChange) string {
	var b strings.Builder
	for i, c := range h {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "tx%d:P%d=%v", c.Tx, c.Pin, c.Level)
	}
	return "[" + b.String() + "]"
}

func popcount(v uint16) int {
	n := 0
	for ; v != 0; v &= v - 1 {
		n++
	}
	return n
}

// periph's pcf857x driver starts from a cache of all outputs at 0, while the
// chip powers up at all 1: its first single-pin write sends the cache with
// that one bit changed, so every other pin goes low and every other relay of
// an active-low board switches on. Ours, on the same board, changes nothing.
func TestI2CRelayAvoidsPeriphPCF857xStartupTrap(t *testing.T) {
	var yaml strings.Builder
	yaml.WriteString("relays:\n")
	for ch := 1; ch <= 8; ch++ {
		fmt.Fprintf(&yaml, "  - {name: r%d, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: pcf8574, channel: %d}\n", ch, ch)
	}
	cfg := parse(t, yaml.String()) // eight active-low relays, all initially off

	t.Run("periph", func(t *testing.T) {
		hw, chip := board(t, cfg, 0x20)
		dev, err := pcf857x.New(hw.I2C("/dev/i2c-1"), 0x20, pcf857x.PCF8574)
		if err != nil {
			t.Fatal(err)
		}
		// "Relay 3 off" is P2 high: periph writes 0b0000_0100.
		if err := dev.Pins[2].Out(gpio.High); err != nil {
			t.Fatal(err)
		}
		if got := chip.Pins(); got != 0b0000_0100 {
			t.Fatalf("outputs %#08b", got)
		}
		var on []int
		for _, c := range chip.History() {
			if !c.Level {
				on = append(on, c.Pin+1)
			}
		}
		if fmt.Sprint(on) != "[1 2 4 5 6 7 8]" {
			t.Fatalf("relays switched on by periph: %v, want [1 2 4 5 6 7 8]", on)
		}

		// And the other way round on a fresh chip: "relay 3 on" (P2 low) is
		// not written at all, since periph believes P2 is low already.
		hw2, chip2 := board(t, cfg, 0x20)
		dev2, err := pcf857x.New(hw2.I2C("/dev/i2c-1"), 0x20, pcf857x.PCF8574)
		if err != nil {
			t.Fatal(err)
		}
		if err := dev2.Pins[2].Out(gpio.Low); err != nil {
			t.Fatal(err)
		}
		if chip2.Pins() != 0xff || hw2.I2C("/dev/i2c-1").Transactions() != 0 {
			t.Fatalf("periph wrote: outputs %#08b", chip2.Pins())
		}
	})

	t.Run("ours", func(t *testing.T) {
		hw, chip := board(t, cfg, 0x20)
		rs := openAll(t, cfg, hw)
		if err := rs["r3"].Set(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		if h := chip.History(); len(h) != 0 || chip.Pins() != 0xff {
			t.Fatalf("outputs %#08b, changes %s; want none", chip.Pins(), story(h))
		}
		if err := rs["r3"].Set(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		if h := chip.History(); len(h) != 1 || chip.Pins() != 0b1111_1011 {
			t.Fatalf("outputs %#08b, changes %s; want only P2 low", chip.Pins(), story(h))
		}
	})
}

// periph's mcp23xxx driver makes a pin an output before it writes the pin's
// latch, which is still 0 from power-up: turning a relay of an active-low
// board off first switches it on for one transaction. Ours writes the latches
// first.
func TestI2CRelayAvoidsPeriphMCP23xxxStartupGlitch(t *testing.T) {
	cfg := parse(t, `relays:
  - {name: r3, driver: i2c-relay, bus: /dev/i2c-1, address: 0x20, chip: mcp23017, channel: 3}
`)
	t.Run("periph", func(t *testing.T) {
		hw, chip := board(t, cfg, 0x20)
		dev, err := mcp23xxx.NewI2C(hw.I2C("/dev/i2c-1"), mcp23xxx.MCP23017, 0x20)
		if err != nil {
			t.Fatal(err)
		}
		if err := dev.Pins[0][2].Out(gpio.High); err != nil { // "relay 3 off"
			t.Fatal(err)
		}
		h := chip.History()
		if len(h) != 2 || h[0].Pin != 2 || h[0].Level != gpio.Low || h[1].Pin != 2 || h[1].Level != gpio.High {
			t.Fatalf("history %s: want GPA2 low (relay on), then high", story(h))
		}
		t.Logf("periph mcp23xxx, relay 3 off: %s", story(h))
	})
	t.Run("ours", func(t *testing.T) {
		hw, chip := board(t, cfg, 0x20)
		rs := openAll(t, cfg, hw)
		if err := rs["r3"].Set(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		if h := chip.History(); len(h) != 0 {
			t.Fatalf("changes %s; want none", story(h))
		}
	})
}

// nackAfterWrite is a bus provider over a simulated board whose chip stops
// answering right after the next write it gets once armed: the write lands,
// the readback is not acknowledged.
type nackAfterWrite struct {
	*firmwaresim.Hardware
	mu    sync.Mutex
	armed bool
}

func (n *nackAfterWrite) arm() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.armed = true
}

func (n *nackAfterWrite) I2CBus(name string) (i2c.Bus, error) {
	return &nackAfterWriteBus{I2CBus: n.Hardware.I2C(name), n: n}, nil
}

type nackAfterWriteBus struct {
	*firmwaresim.I2CBus
	n *nackAfterWrite
}

func (b *nackAfterWriteBus) Tx(addr uint16, w, r []byte) error {
	err := b.I2CBus.Tx(addr, w, r)
	b.n.mu.Lock()
	fire := b.n.armed && err == nil && len(w) > 0 && len(r) == 0
	if fire {
		b.n.armed = false
	}
	b.n.mu.Unlock()
	if fire {
		b.I2CBus.SetNACK(addr, true)
	}
	return err
}

// A Set that is not confirmed fails, says what to check, and leaves the bank
// with the state last confirmed: the next write of the chip (by another
// relay) puts the failed relay back where it was confirmed.
func TestI2CRelayUnconfirmedSet(t *testing.T) {
	ctx := context.Background()
	for _, bk := range banks {
		for _, fault := range []string{"readback NACK", "pin stuck"} {
			t.Run(bk.chip+"/"+fault, func(t *testing.T) {
				cfg := parse(t, bk.yaml)
				hw, chip := board(t, cfg, bk.addr)
				buses := &nackAfterWrite{Hardware: hw}
				rs := openAll(t, cfg, buses)
				rcs := i2cRelays(cfg)
				b, d := rcs[1], rcs[3] // b starts off (active-low), d starts off (active-high)

				var wantErr string
				switch fault {
				case "readback NACK":
					buses.arm()
					wantErr = "reading them back failed"
				case "pin stuck":
					chip.Stick(b.Channel-1, gpio.Level(level(b, false)))
					wantErr = "but the pin reads"
				}
				err := rs[b.Name].Set(ctx, true)
				if err == nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), "check") {
					t.Fatalf("Set: %v; want an error with %q that says what to check", err, wantErr)
				}
				hw.I2C("/dev/i2c-1").SetNACK(bk.addr, false)
				chip.Unstick(b.Channel - 1)

				// d's change rewrites b's bit as last confirmed: off.
				if err := rs[d.Name].Set(ctx, true); err != nil {
					t.Fatal(err)
				}
				want := withLevel(withLevel(bk.want, b, false), d, true)
				if chip.Pins() != want {
					t.Fatalf("outputs %#b, want %#b (b as last confirmed: off)", chip.Pins(), want)
				}
				if err := rs[b.Name].Set(ctx, true); err != nil {
					t.Fatal(err)
				}
				if want = withLevel(want, b, true); chip.Pins() != want {
					t.Fatalf("outputs %#b, want %#b", chip.Pins(), want)
				}
			})
		}
	}
}

// A chip that lost power (back at its power-up state) is set up again: a
// PCF8574 gets the whole port with every Set; an MCP23017's inputs make the
// readback fail once, then the next Set writes the latches and makes the
// pins outputs again.
func TestI2CRelayChipPowerCycle(t *testing.T) {
	ctx := context.Background()
	for _, bk := range banks {
		t.Run(bk.chip, func(t *testing.T) {
			cfg := parse(t, bk.yaml)
			hw, _ := board(t, cfg, bk.addr)
			rs := openAll(t, cfg, hw)
			a := i2cRelays(cfg)[0] // active-low, on: its pin is low

			var fresh expander = firmwaresim.NewPCF8574()
			if bk.chip == config.ChipMCP23017 {
				fresh = firmwaresim.NewMCP23017()
			}
			hw.I2C("/dev/i2c-1").Attach(bk.addr, fresh)
			err := rs[a.Name].Set(ctx, true)
			if bk.chip == config.ChipMCP23017 {
				if err == nil || !strings.Contains(err.Error(), "reads high") {
					t.Fatalf("first Set after the reset: %v; want a readback mismatch", err)
				}
				err = rs[a.Name].Set(ctx, true)
			}
			if err != nil {
				t.Fatal(err)
			}
			if fresh.Pins() != bk.want {
				t.Fatalf("outputs %#b after the reset, want %#b", fresh.Pins(), bk.want)
			}
			for _, c := range fresh.History() {
				if bool(c.Level) != (bk.want&(1<<c.Pin) != 0) {
					t.Fatalf("pin %d showed %v on the way: %s", c.Pin, c.Level, story(fresh.History()))
				}
			}
		})
	}
}

func TestI2CRelayChipNotAnswering(t *testing.T) {
	for _, bk := range banks {
		t.Run(bk.chip, func(t *testing.T) {
			cfg := parse(t, bk.yaml)
			hw, chip := board(t, cfg, bk.addr)
			hw.I2C("/dev/i2c-1").SetNACK(bk.addr, true)
			env := hardware.Env{Buses: hw, Relays: cfg.Relays, Initial: initialOf}
			_, err := hardware.OpenRelay(cfg.Relays[0], env)
			want := fmt.Sprintf("no ACK from address %#x", bk.addr)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "check the wiring") {
				t.Fatalf("open: %v; want %q and what to check", err, want)
			}
			// Nothing was kept from the failed open: once the chip answers,
			// opening sets it up.
			hw.I2C("/dev/i2c-1").SetNACK(bk.addr, false)
			r, err := hardware.OpenRelay(cfg.Relays[0], env)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if chip.Pins() != bk.want {
				t.Fatalf("outputs %#b, want %#b", chip.Pins(), bk.want)
			}
		})
	}
}

// Two simulated boards never share a bank, and a bank is released with its
// last relay: opening again sets the chip up again.
func TestI2CRelayBanksPerBoardAndReleased(t *testing.T) {
	ctx := context.Background()
	bk := banks[0]
	cfg := parse(t, bk.yaml)
	a := i2cRelays(cfg)[0]
	hw1, chip1 := board(t, cfg, bk.addr)
	hw2, chip2 := board(t, cfg, bk.addr)
	rs1 := openAll(t, cfg, hw1)
	openAll(t, cfg, hw2)
	if chip1.Pins() != bk.want || chip2.Pins() != bk.want {
		t.Fatalf("outputs %#b and %#b, want %#b on both", chip1.Pins(), chip2.Pins(), bk.want)
	}
	if err := rs1[a.Name].Set(ctx, false); err != nil {
		t.Fatal(err)
	}
	if chip2.Pins() != bk.want || chip1.Pins() != withLevel(bk.want, a, false) {
		t.Fatalf("board 1 %#b, board 2 %#b after a Set on board 1", chip1.Pins(), chip2.Pins())
	}

	// While one relay of the chip is open, opening another reuses the bank.
	bus := hw1.I2C("/dev/i2c-1")
	env := hardware.Env{Buses: hw1, Relays: cfg.Relays, Initial: func(config.Relay) bool { return true }}
	for _, r := range rs1 {
		if r.Name() != a.Name {
			r.Close()
		}
	}
	txs := bus.Transactions()
	b, err := hardware.OpenRelay(i2cRelays(cfg)[1], env)
	if err != nil {
		t.Fatal(err)
	}
	if bus.Transactions() != txs {
		t.Fatal("opening a relay of an open chip wrote to it")
	}
	// Once all are closed, opening sets the chip up anew (here: all on).
	b.Close()
	rs1[a.Name].Close()
	if err := rs1[a.Name].Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := rs1[a.Name].Set(ctx, true); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Set after Close: %v", err)
	}
	b, err = hardware.OpenRelay(i2cRelays(cfg)[1], env)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	allOn := uint16(0)
	for _, rc := range i2cRelays(cfg) {
		allOn = withLevel(allOn, rc, true)
	}
	allOn |= 0b0111_0000 // unused P4..P6 off (high)
	if chip1.Pins() != allOn {
		t.Fatalf("outputs %#b after reopening, want %#b", chip1.Pins(), allOn)
	}
}

func TestI2CRelayCancelledSet(t *testing.T) {
	bk := banks[0]
	cfg := parse(t, bk.yaml)
	hw, _ := board(t, cfg, bk.addr)
	rs := openAll(t, cfg, hw)
	txs := hw.I2C("/dev/i2c-1").Transactions()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rs["a"].Set(ctx, false); err == nil {
		t.Fatal("Set with a cancelled context succeeded")
	}
	if hw.I2C("/dev/i2c-1").Transactions() != txs {
		t.Fatal("a cancelled Set reached the bus")
	}
}

func TestI2CRelayRefusesBadConfig(t *testing.T) {
	hw := firmwaresim.NewHardware(nil)
	ok := config.Relay{Name: "x", Driver: config.DriverI2CRelay, Bus: "/dev/i2c-1", Address: 0x20, Chip: config.ChipPCF8574, Channel: 1}
	for _, tc := range []struct {
		name string
		edit func(*config.Relay)
		want string
	}{
		{"chip", func(r *config.Relay) { r.Chip = "pcf8575" }, `want one of pcf8574, mcp23017, got "pcf8575"`},
		{"channel", func(r *config.Relay) { r.Channel = 9 }, "channels 1 to 8"},
		{"address", func(r *config.Relay) { r.Address = 0x80 }, "not a 7-bit"},
		{"bus", func(r *config.Relay) { r.Bus = " " }, "no I2C bus"},
	} {
		rc := ok
		tc.edit(&rc)
		if _, err := hardware.OpenRelay(rc, hardware.Env{Buses: hw}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		}
	}
}
