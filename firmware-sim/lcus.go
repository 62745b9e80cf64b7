package firmwaresim

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// This file simulates an LCUS-type USB relay module (a CH340 serial chip
// and a small microcontroller): it takes 4-byte frames A0 <channel> <state>
// <checksum> (checksum = low byte of the sum of the first three), switches
// the channel on a valid frame, ignores anything else, and answers nothing.
// It is powered by USB: unplugging it turns every relay off.

// LCUSOptions configure a simulated module.
type LCUSOptions struct {
	LinkName string // base name of the stable path (default "ttyUSB0")
	Channels int    // 1, 2, 4 or 8 (default 8)
}

// LCUS is a simulated LCUS USB relay module on a pseudo-terminal.
type LCUS struct {
	port *simPort
	wg   sync.WaitGroup

	mu       sync.Mutex
	relays   []bool
	frames   [][4]byte // every valid frame received, in order
	rejected int       // bytes skipped: not a valid frame
	closed   bool
}

// NewLCUS plugs a module in.
func NewLCUS(opts LCUSOptions) (*LCUS, error) {
	if opts.LinkName == "" {
		opts.LinkName = "ttyUSB0"
	}
	if opts.Channels <= 0 {
		opts.Channels = 8
	}
	if opts.Channels > 255 {
		return nil, errors.New("an LCUS module has at most 255 channels")
	}
	port, err := newSimPort(opts.LinkName)
	if err != nil {
		return nil, err
	}
	m := &LCUS{port: port, relays: make([]bool, opts.Channels)}
	if err := m.plug(); err != nil {
		port.close()
		return nil, err
	}
	return m, nil
}

func (m *LCUS) plug() error {
	master, err := m.port.plug()
	if err != nil {
		return err
	}
	m.wg.Add(1)
	go m.serve(master)
	return nil
}

// Path is the stable path to open, like /dev/ttyUSB0.
func (m *LCUS) Path() string { return m.port.link }

// Close unplugs the module for good.
func (m *LCUS) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.port.close()
	m.wg.Wait()
}

// Unplug pulls the module: the pty vanishes and, without USB power, every
// relay drops off.
func (m *LCUS) Unplug() {
	m.port.unplug()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.relays {
		m.relays[i] = false
	}
}

// Replug plugs it back in (relays off, as at every power-up).
func (m *LCUS) Replug() error {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return errors.New("the module is closed")
	}
	if m.port.plugged() {
		return nil
	}
	return m.plug()
}

// Relays returns what the module drives now, channel 1 first.
func (m *LCUS) Relays() []bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]bool(nil), m.relays...)
}

// Frames returns every valid frame received, in order.
func (m *LCUS) Frames() [][4]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][4]byte(nil), m.frames...)
}

// Rejected counts the bytes skipped while looking for a valid frame.
func (m *LCUS) Rejected() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rejected
}

// serve parses frames until the pty is closed. On a bad checksum it skips
// one byte and looks for the next start byte, as the module's firmware
// does.
func (m *LCUS) serve(master *os.File) {
	defer m.wg.Done()
	var pend []byte
	buf := make([]byte, 64)
	for {
		n, err := master.Read(buf)
		pend = append(pend, buf[:n]...)
		for len(pend) >= 4 || (len(pend) > 0 && pend[0] != 0xA0) {
			if pend[0] != 0xA0 {
				m.skip(1)
				pend = pend[1:]
				continue
			}
			f := [4]byte{pend[0], pend[1], pend[2], pend[3]}
			if f[3] != f[0]+f[1]+f[2] || f[2] > 1 {
				m.skip(1)
				pend = pend[1:]
				continue
			}
			m.apply(f)
			pend = pend[4:]
		}
		if err != nil {
			return
		}
	}
}

func (m *LCUS) skip(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rejected += n
}

func (m *LCUS) apply(f [4]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.frames = append(m.frames, f)
	if ch := int(f[1]); ch >= 1 && ch <= len(m.relays) {
		m.relays[ch-1] = f[2] == 1
	}
}

func (m *LCUS) view() serialView {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := serialView{Kind: KindUSBRelay, Path: m.port.link, PTY: m.port.pts(), Plugged: m.port.plugged(),
		Relays: append([]bool(nil), m.relays...)}
	for _, f := range m.frames {
		v.Frames = append(v.Frames, fmt.Sprintf("%02X %02X %02X %02X", f[0], f[1], f[2], f[3]))
	}
	return v
}

func (m *LCUS) press(int) error {
	return errors.New("an LCUS module has no buttons")
}

func (m *LCUS) fault(kind string, _ time.Duration) error {
	switch kind {
	case "unplug":
		m.Unplug()
	case "replug":
		return m.Replug()
	case "reboot": // a power cycle
		m.Unplug()
		return m.Replug()
	case "none":
	default:
		return fmt.Errorf("fault %q does not apply to a USB relay module: want unplug, replug, reboot or none", kind)
	}
	return nil
}

// SerialLCUS returns the simulated USB relay module of the device (or
// port base name) name, or nil.
func (h *Hardware) SerialLCUS(name string) *LCUS {
	m, _ := serialsOf(h).get(name).(*LCUS)
	return m
}
