package drivers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// The usb-relay driver switches the cheap LCUS-type USB relay modules (a
// CH340 USB serial chip and a small microcontroller, 1 to 8 channels). They
// take 4-byte binary frames at 9600 baud:
//
//	A0 <channel> <state> <checksum>
//
// channel counts from 1, state is 00 (off) or 01 (on), and the checksum is
// the low byte of the sum of the first three (A0 01 01 A2 turns channel 1
// on, A0 01 00 A1 turns it off). The modules do not answer these frames, so
// the driver cannot read a relay back: Set confirms that the whole frame
// left the port (written and drained), which is all such a module allows.
//
// When the port vanishes and comes back, the module has most likely lost
// power, and its relays are off. The driver then writes "off" to every
// channel in use, so that this is certain rather than likely, and reports
// those that were on as changed on the device: the gateway never shows a
// relay on that may be off, and a load never comes back on by itself after
// the fault. (The very first connection changes nothing: the first level a
// relay sees is the gateway's first Set.)

// USBRelayDriver is the name of the LCUS USB relay module driver.
const USBRelayDriver = "usb-relay"

const (
	// USBRelayChannels is the most channels an LCUS module has.
	USBRelayChannels = 8
	// USBRelayBaud is the baud rate of LCUS modules.
	USBRelayBaud = 9600
)

const lcusStart = 0xA0 // first byte of an LCUS frame

// USBRelayOpts describe one channel of an LCUS module, given by its port or
// by the name of a usb-relay device of the pool.
type USBRelayOpts struct {
	Name    string
	Port    string // the module's port, at USBRelayBaud
	Device  string // or a usb-relay device of the pool
	Channel int    // 1..USBRelayChannels
}

// Validate checks the options.
func (o USBRelayOpts) Validate() error {
	var where *FieldError
	switch {
	case o.Port != "" && o.Device != "":
		where = fieldError("device", "give either port or device, not both")
	case o.Port == "" && o.Device == "":
		where = fieldError("port", "a usb-relay relay needs port: (e.g. /dev/ttyUSB0) or device: naming a usb-relay entry of devices")
	}
	ch := checkChannel(o.Channel)
	if ch == nil && o.Channel > USBRelayChannels {
		ch = fieldError("channel", "LCUS USB relay modules have channels 1 to %d, got %d", USBRelayChannels, o.Channel)
	}
	return joinFields(where, ch)
}

// LCUSFrame returns the frame that switches channel ch on or off.
func LCUSFrame(ch int, on bool) [4]byte {
	var state byte
	if on {
		state = 1
	}
	c := byte(ch)
	return [4]byte{lcusStart, c, state, lcusStart + c + state}
}

// lcusModule is one USB relay module shared by its channels.
type lcusModule struct {
	serialDevice
	log *slog.Logger

	wmu sync.Mutex // one frame at a time

	mu       sync.Mutex
	states   map[int]chanState // the last state written to each channel
	used     map[int]bool      // channels with a relay
	ups      int               // connections so far
	writeErr error             // the last failed write; nil after a success
}

func (p *DevicePool) lcus(o USBRelayOpts) (*lcusModule, error) {
	// A relay given by port: runs at the modules' 9600 baud; a device
	// entry has its own baud (9600 unless it says otherwise).
	name, port, baud := o.Port, o.Port, USBRelayBaud
	if o.Device != "" {
		d, err := p.device(o.Device, USBRelayDriver)
		if err != nil {
			return nil, err
		}
		name, port = d.Name, d.Port
		if d.Baud > 0 {
			baud = d.Baud
		}
	}
	if port == "" {
		return nil, errors.New("a usb-relay relay needs port: (e.g. /dev/ttyUSB0) or device: naming a usb-relay entry of devices")
	}
	dev, err := p.get("usb-relay:"+port, func() pooledDevice { return p.newLCUS(name, port, baud) })
	if err != nil {
		return nil, err
	}
	return dev.(*lcusModule), nil
}

func (p *DevicePool) newLCUS(name, port string, baud int) *lcusModule {
	m := &lcusModule{log: p.Logger, states: map[int]chanState{}, used: map[int]bool{}}
	m.start(p, name, fmt.Sprintf("USB relay module %s", name), port, baud, m.onUp, m.onData, func(error) {})
	return m
}

func (m *lcusModule) status() DeviceStatus {
	m.mu.Lock()
	werr := m.writeErr
	m.mu.Unlock()
	return m.statusWith(werr)
}

// onData discards what the module sends: the switching frames get no
// answer, and some variants print their state as text after a power-up.
func (m *lcusModule) onData(p []byte) {
	m.log.Debug("usb relay module sent bytes; ignored", "device", m.name, "bytes", len(p))
}

// onUp puts every channel in use back to off after a reconnection.
func (m *lcusModule) onUp(ctx context.Context) {
	m.mu.Lock()
	m.ups++
	again := m.ups > 1
	var chans []int
	for ch := range m.used {
		chans = append(chans, ch)
	}
	m.mu.Unlock()
	if again {
		m.log.Warn("USB relay module reconnected; it has most likely lost power, so its channels are switched off", "device", m.name)
		for _, ch := range chans {
			prev, err := m.write(ch, false)
			if err != nil {
				m.log.Warn("USB relay module: could not switch a channel off after reconnecting", "device", m.name, "channel", ch, "err", err)
				continue
			}
			if !prev.known || prev.on {
				m.notify.mark(ch)
			}
		}
	}
	<-ctx.Done()
}

// write sends one frame and waits until it left the port; on success it
// records the channel's new state and returns the previous one.
func (m *lcusModule) write(ch int, on bool) (chanState, error) {
	frame := LCUSFrame(ch, on)
	m.wmu.Lock()
	defer m.wmu.Unlock()
	err := m.link.write(frame[:])
	if err == nil {
		err = m.link.drain()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writeErr = err
	prev := m.states[ch]
	if err == nil {
		m.states[ch] = chanState{on: on, known: true}
	}
	return prev, err
}

// usbRelay is one channel of a module.
type usbRelay struct {
	serialChannel
	m *lcusModule
}

var _ Reporter = (*usbRelay)(nil)

// OpenUSBRelay opens a channel of an LCUS module, opening the module on
// first use.
func OpenUSBRelay(o USBRelayOpts, env Env) (Relay, error) {
	pool, err := env.pool(o, USBRelayDriver)
	if err != nil {
		return nil, err
	}
	m, err := pool.lcus(o)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.used[o.Channel] = true
	m.mu.Unlock()
	return &usbRelay{serialChannel: serialChannel{name: o.Name, ch: o.Channel, dev: &m.serialDevice}, m: m}, nil
}

func (r *usbRelay) Driver() string { return USBRelayDriver }

func (r *usbRelay) DeviceState() (on, known bool) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	s := r.m.states[r.ch]
	return s.on, s.known
}

// Set writes the channel's frame; nil means the whole frame left the port
// (the module sends no confirmation).
func (r *usbRelay) Set(ctx context.Context, on bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.m.link.waitFirst(ctx)
	_, err := r.m.write(r.ch, on)
	return err
}
