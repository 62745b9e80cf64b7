package firmwaresim

import (
	"fmt"
	"path/filepath"
)

// Devices describes what to simulate (see Populate): plain descriptions of
// chips and serial devices, which the gateway builds from its configuration.
type Devices struct {
	// BME280s: a BME280 at each bus and address.
	BME280s []I2CChip
	// Expanders: an I/O expander (Model ModelPCF8574 or ModelMCP23017) at
	// each bus and address.
	Expanders []I2CChip
	// Serial: a board firmware or an LCUS module on a pseudo-terminal for
	// each entry; one device per Port.
	Serial []SerialDevice
	// Modbus: a simulated RS485 bus on a pseudo-terminal or a Modbus TCP
	// server on loopback for each entry, with a slave per unit.
	Modbus []ModbusBus
	// W1: a DS18B20 probe with each 1-wire id in the simulated w1 tree.
	W1 []string
	// ADS1115s: an ADS1115 at each bus and address.
	ADS1115s []I2CChip
}

// I2CChip is a chip at an address of an I2C bus.
type I2CChip struct {
	Bus     string // "/dev/i2c-1"
	Address int    // 7-bit
	Model   string // for an expander: ModelPCF8574 or ModelMCP23017
}

// SerialDevice is a simulated device behind a serial port.
type SerialDevice struct {
	Kind string // KindSerialBoard or KindUSBRelay
	Name string // its name in the control API
	// Port is the port the device stands in for (/dev/ttyACM0): the
	// simulated port is named after its base name, and SerialPath(Port)
	// gives the path to open instead.
	Port string
}

// Kinds of simulated serial devices.
const (
	KindSerialBoard = "serial-board"
	KindUSBRelay    = "usb-relay"
)

// Populate attaches a simulated chip or board for every device of d (a
// BME280 for each of d.BME280s, an expander for each of d.Expanders, a board
// firmware or an LCUS module on a pseudo-terminal for each serial device),
// so that the real drivers find what they expect. A chip already present at
// an address is kept, and so is a serial device already attached for a
// port. Call Close to stop whatever the models run.
func (h *Hardware) Populate(d Devices) error {
	for _, s := range d.Serial {
		if err := attachSerial(h, s); err != nil {
			return fmt.Errorf("simulating %s %q: %w", s.Kind, s.Name, err)
		}
	}
	for _, b := range d.Modbus {
		if err := attachModbus(h, b); err != nil {
			return fmt.Errorf("simulating %s %q: %w", b.Kind, b.Name, err)
		}
	}
	for _, id := range d.W1 {
		w, err := h.W1()
		if err == nil {
			err = w.Add(id)
		}
		if err != nil {
			return fmt.Errorf("simulating the DS18B20 %s: %w", id, err)
		}
	}
	for _, c := range d.ADS1115s {
		if err := attachADS1115(h, c); err != nil {
			return fmt.Errorf("simulating the ADS1115 at %#x on %s: %w", c.Address, c.Bus, err)
		}
	}
	for _, c := range d.BME280s {
		if err := attachBME280(h, c); err != nil {
			return fmt.Errorf("simulating the BME280 at %#x on %s: %w", c.Address, c.Bus, err)
		}
	}
	for _, c := range d.Expanders {
		if err := attachExpander(h, c); err != nil {
			return fmt.Errorf("simulating the %s at %#x on %s: %w", c.Model, c.Address, c.Bus, err)
		}
	}
	return nil
}

// attachSerial starts the device s describes, unless one stands in for its
// port already.
func attachSerial(h *Hardware, s SerialDevice) error {
	reg := serialsOf(h)
	if _, ok := reg.path(s.Port); ok {
		return nil
	}
	var dev interface {
		serialSim
		Path() string
		Close()
	}
	var err error
	switch s.Kind {
	case KindSerialBoard:
		dev, err = NewBoard(BoardOptions{Name: s.Name, LinkName: filepath.Base(s.Port)})
	case KindUSBRelay:
		dev, err = NewLCUS(LCUSOptions{LinkName: filepath.Base(s.Port)})
	default:
		return fmt.Errorf("there is no simulated %q device (use %s or %s)", s.Kind, KindSerialBoard, KindUSBRelay)
	}
	if err != nil {
		return err
	}
	reg.add(s.Name, dev)
	reg.setPath(s.Port, dev.Path())
	h.OnClose(dev.Close)
	return nil
}

// SerialPath is the path to open in place of port: that of the simulated
// device Populate attached for it, if any.
func (h *Hardware) SerialPath(port string) (string, bool) {
	r, ok := serialRegistries.Load(h)
	if !ok {
		return "", false
	}
	return r.(*serialRegistry).path(port)
}

// OnClose registers f to run (once, in reverse order) when the simulated
// hardware is closed: how models stop the goroutines they run.
func (h *Hardware) OnClose(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closers = append(h.closers, f)
}

// Close stops everything the models run.
func (h *Hardware) Close() error {
	h.mu.Lock()
	fs := h.closers
	h.closers = nil
	h.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	return nil
}
