package firmwaresim

import (
	"fmt"
	"sync"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// I2CDevice is a chip on a simulated I2C bus, answering at register level.
// Tx gets what the controller writes and fills r with what the chip answers,
// exactly as one combined write-then-read I2C transaction.
type I2CDevice interface {
	Tx(w, r []byte) error
}

// I2CBus is a simulated I2C bus: chips attached at 7-bit addresses. It
// implements periph's i2c.Bus, so real drivers (periph's bmxx80, ours) run
// against it unchanged.
type I2CBus struct {
	name string

	mu      sync.Mutex
	devices map[uint16]I2CDevice
	nack    map[uint16]bool
	txCount int
}

var _ i2c.Bus = (*I2CBus)(nil)

// NewI2CBus returns an empty bus.
func NewI2CBus(name string) *I2CBus {
	return &I2CBus{name: name, devices: map[uint16]I2CDevice{}, nack: map[uint16]bool{}}
}

func (b *I2CBus) String() string { return "sim-i2c(" + b.name + ")" }

// SetSpeed is accepted and ignored.
func (b *I2CBus) SetSpeed(physic.Frequency) error { return nil }

// Attach puts a chip at addr (replacing any chip there).
func (b *I2CBus) Attach(addr uint16, d I2CDevice) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.devices[addr] = d
}

// Device returns the chip at addr, or nil.
func (b *I2CBus) Device(addr uint16) I2CDevice {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.devices[addr]
}

// SetNACK makes the chip at addr stop acknowledging (unplugged, browned out)
// or answer again.
func (b *I2CBus) SetNACK(addr uint16, nack bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nack[addr] = nack
}

// Transactions counts the transactions the bus has carried.
func (b *I2CBus) Transactions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.txCount
}

// Tx carries one transaction. Transactions are serialised, as on a real bus.
func (b *I2CBus) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.txCount++
	d, ok := b.devices[addr]
	if !ok || b.nack[addr] {
		return fmt.Errorf("%s: no ACK from address 0x%02x", b, addr)
	}
	return d.Tx(w, r)
}
