package drivers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.bug.st/serial"
)

// Port is an open serial port as the serial drivers use it: bytes in and
// out. Read blocks until data arrives or the port fails or is closed.
type Port interface {
	io.ReadWriteCloser
}

// PortOpener opens the serial port at path (a device node such as
// /dev/ttyACM0, or a symlink to one) at a baud rate, 8N1.
type PortOpener func(path string, baud int) (Port, error)

// OpenSerialPort opens a serial port with go.bug.st/serial: 8 data bits, no
// parity, one stop bit, no flow control, and no modem control lines (DTR and
// RTS are left as the kernel sets them; pseudo-terminals have none). Bytes
// that were waiting in the input buffer before the open are discarded, so a
// driver never parses what a device said to a previous process.
func OpenSerialPort(path string, baud int) (Port, error) {
	p, err := serial.Open(path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		var pe *serial.PortError
		if errors.As(err, &pe) && pe.Code() == serial.PermissionDenied {
			return nil, fmt.Errorf("open %s: %w (add this user to the dialout group)", path, err)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := p.SetReadTimeout(serial.NoTimeout); err != nil {
		p.Close()
		return nil, fmt.Errorf("configure %s: %w", path, err)
	}
	p.ResetInputBuffer() // best effort: stale bytes are dropped by the parsers anyway
	return p, nil
}

// Serial device states, as /healthz shows them.
const (
	StateConnecting   = "connecting"   // the first open has not finished yet
	StateConnected    = "connected"    // the port is open
	StateReconnecting = "reconnecting" // the port failed or vanished; reopening with backoff
	StateClosed       = "closed"       // the gateway closed it
)

// DeviceStatus is the health of one serial device.
type DeviceStatus struct {
	Name  string // the device's name (or the port, for a usb-relay given by port)
	Port  string
	State string // StateConnected, ...
	OK    bool   // connected, and the last exchange with the device worked
	Error string // the last error, "" when OK
}

// DevicePool holds the serial devices that relays and sensors share: a
// serial board with several relay channels and a sensor block, a USB relay
// module with several channels. Each device is opened once, on first use,
// keeps itself connected (reopening its port with capped backoff when it
// vanishes), and is closed by Close, which the gateway calls after closing
// the relays and sensors that use it.
type DevicePool struct {
	// Open opens ports; nil means OpenSerialPort. Set it before first use.
	Open PortOpener
	// RequestTimeout bounds each request to a device (default 1s); a
	// request to an absent or mute device fails within it.
	RequestTimeout time.Duration
	// MaxBackoff caps the wait between reopen attempts (default 2s).
	MaxBackoff time.Duration
	Logger     *slog.Logger

	known map[string]SerialDevice // by name

	mu      sync.Mutex
	devices map[string]pooledDevice
	order   []string
	closed  bool
}

// pooledDevice is a device the pool owns.
type pooledDevice interface {
	status() DeviceStatus
	close()
}

// SerialDevice describes a device on a serial port that relays and sensors
// refer to by name.
type SerialDevice struct {
	Name   string
	Driver string // SerialBoardDriver, USBRelayDriver, ModbusRTUDriver or ModbusTCPDriver
	Port   string // the path to open: /dev/ttyACM0
	Baud   int    // 0: the driver's usual rate
	// Modbus devices only: the RTU line's parity ("none", "even", "odd")
	// and stop bits (1 or 2), the TCP server's host:port (Address), and
	// how long a unit has to answer (0: 500ms on RTU, 1s on TCP).
	Parity   string
	StopBits int
	Address  string
	Timeout  time.Duration
}

// NewDevicePool returns a pool for the given devices. Nothing is opened
// until a driver asks for a device.
func NewDevicePool(devices []SerialDevice, log *slog.Logger) *DevicePool {
	if log == nil {
		log = slog.Default()
	}
	p := &DevicePool{Logger: log, known: map[string]SerialDevice{}, devices: map[string]pooledDevice{}}
	for _, d := range devices {
		p.known[d.Name] = d
	}
	return p
}

func (p *DevicePool) opener() PortOpener {
	if p.Open != nil {
		return p.Open
	}
	return OpenSerialPort
}

func (p *DevicePool) timeout() time.Duration {
	if p.RequestTimeout > 0 {
		return p.RequestTimeout
	}
	return time.Second
}

func (p *DevicePool) maxBackoff() time.Duration {
	if p.MaxBackoff > 0 {
		return p.MaxBackoff
	}
	return 2 * time.Second
}

// device looks up the device name of the given driver.
func (p *DevicePool) device(name, driver string) (SerialDevice, error) {
	d, ok := p.known[name]
	if !ok {
		return d, fmt.Errorf("no device named %q in devices; add it, e.g. - {name: %s, driver: %s, port: /dev/ttyACM0}", name, name, driver)
	}
	if d.Driver != driver {
		return d, fmt.Errorf("device %q is a %s device, not a %s one", name, d.Driver, driver)
	}
	return d, nil
}

// get returns the device under key, opening it with open on first use.
func (p *DevicePool) get(key string, open func() pooledDevice) (pooledDevice, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("the device pool is closed")
	}
	if d, ok := p.devices[key]; ok {
		return d, nil
	}
	d := open()
	p.devices[key] = d
	p.order = append(p.order, key)
	return d, nil
}

// Status reports every opened device, in the order they were first used.
func (p *DevicePool) Status() []DeviceStatus {
	p.mu.Lock()
	devs := make([]pooledDevice, 0, len(p.order))
	for _, k := range p.order {
		devs = append(devs, p.devices[k])
	}
	p.mu.Unlock()
	out := make([]DeviceStatus, 0, len(devs))
	for _, d := range devs {
		out = append(out, d.status())
	}
	return out
}

// Close closes every device and stops their goroutines. Safe to call more
// than once; a nil pool is a no-op.
func (p *DevicePool) Close() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	devs := make([]pooledDevice, 0, len(p.order))
	for _, k := range p.order {
		devs = append(devs, p.devices[k])
	}
	p.mu.Unlock()
	for _, d := range devs {
		d.close()
	}
	return nil
}

// serialDevice is what every device of the pool has: a link that keeps its
// port open and a notifier that reports changes made on the device to its
// relays. The drivers' device types embed it.
type serialDevice struct {
	name   string
	link   *serialLink
	notify *notifier

	stopNotify context.CancelFunc
	notifyDone chan struct{}
}

// start opens the device's port (what names the device in logs and errors)
// and runs its link and notifier until close.
func (d *serialDevice) start(p *DevicePool, name, what, port string, baud int, onUp func(context.Context), onData func([]byte), onDown func(error)) {
	d.startWith(p, p.opener(), name, what, port, baud, onUp, onData, onDown)
}

// startWith is start with the port opener open.
func (d *serialDevice) startWith(p *DevicePool, open PortOpener, name, what, port string, baud int, onUp func(context.Context), onData func([]byte), onDown func(error)) {
	d.name = name
	d.notify = newNotifier()
	d.link = &serialLink{
		name: what, path: port, baud: baud, open: open,
		maxBackoff: p.maxBackoff(), log: p.Logger,
		onUp: onUp, onData: onData, onDown: onDown,
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.stopNotify, d.notifyDone = cancel, make(chan struct{})
	go func() {
		defer close(d.notifyDone)
		d.notify.run(ctx)
	}()
	d.link.start()
}

func (d *serialDevice) close() {
	d.link.close()
	d.stopNotify()
	<-d.notifyDone
}

// statusWith is the device's health, given the last failed exchange with it
// (nil after a success).
func (d *serialDevice) statusWith(exchangeErr error) DeviceStatus {
	state, linkErr := d.link.connState()
	s := DeviceStatus{Name: d.name, Port: d.link.path, State: state}
	switch {
	case state != StateConnected && linkErr != nil:
		s.Error = linkErr.Error()
	case state != StateConnected:
		s.Error = state
	case exchangeErr != nil:
		s.Error = exchangeErr.Error()
	}
	s.OK = state == StateConnected && s.Error == ""
	return s
}

// serialChannel is what every relay channel of a pooled serial device has:
// its name, its channel number, and its change callback on the device's
// notifier.
type serialChannel struct {
	name string
	ch   int
	dev  *serialDevice
}

func (c *serialChannel) Name() string { return c.name }

// Close unregisters the relay; the device stays open for the others (the
// pool closes it).
func (c *serialChannel) Close() error {
	c.dev.notify.set(c.ch, nil)
	return nil
}

func (c *serialChannel) OnDeviceChange(f func()) { c.dev.notify.set(c.ch, f) }

// serialLink keeps one serial port open: it opens it, runs a reader that
// hands every received chunk to onData, calls onUp for the connection's
// lifetime, and when the port fails (unplugged: the read fails) closes it
// and reopens it with capped exponential backoff until Close.
type serialLink struct {
	name, path string
	baud       int
	open       PortOpener
	maxBackoff time.Duration
	log        *slog.Logger

	// onUp runs in the link's goroutine once the port is open and its reader
	// runs; it returns when ctx ends (the connection was lost or the link
	// is closing).
	onUp func(ctx context.Context)
	// onData gets every chunk read, from the reader goroutine.
	onData func(p []byte)
	// onDown runs after a connection ended, before the next attempt.
	onDown func(err error)

	mu      sync.Mutex
	port    Port // nil while not connected
	state   string
	lastErr error
	firstUp chan struct{} // closed when the first attempt has finished
	once    sync.Once

	cancel context.CancelFunc
	done   chan struct{}
}

func (l *serialLink) start() {
	l.state = StateConnecting
	l.firstUp = make(chan struct{})
	l.done = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go func() {
		defer close(l.done)
		l.run(ctx)
	}()
}

// close stops the link and waits for its goroutines.
func (l *serialLink) close() {
	l.cancel()
	<-l.done
}

func (l *serialLink) run(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for {
		port, err := l.open(l.path, l.baud)
		if err == nil {
			began := time.Now()
			err = l.serve(ctx, port)
			if time.Since(began) >= l.maxBackoff {
				backoff = 50 * time.Millisecond // it was up for a while: retry quickly
			}
		}
		if ctx.Err() != nil {
			l.setState(StateClosed, nil)
			l.firstDone()
			return
		}
		l.setState(StateReconnecting, err)
		l.firstDone()
		l.log.Warn("serial device unavailable; retrying", "device", l.name, "port", l.path, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			l.setState(StateClosed, nil)
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, l.maxBackoff)
	}
}

// serve runs one connection until the port fails or ctx ends.
func (l *serialLink) serve(ctx context.Context, port Port) error {
	cctx, cancel := context.WithCancelCause(ctx)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 256)
		for {
			n, err := port.Read(buf)
			if n > 0 {
				l.onData(buf[:n])
			}
			if err != nil {
				cancel(fmt.Errorf("read %s: %w (unplugged?)", l.path, err))
				return
			}
		}
	}()
	l.mu.Lock()
	l.port = port
	l.state, l.lastErr = StateConnected, nil
	l.mu.Unlock()
	l.log.Info("serial device connected", "device", l.name, "port", l.path)
	l.firstDone()
	l.onUp(cctx)
	<-cctx.Done()
	l.mu.Lock()
	l.port = nil
	l.mu.Unlock()
	err := context.Cause(cctx)
	port.Close()
	<-readerDone
	cancel(nil)
	if ctx.Err() != nil {
		err = errors.New("closed")
	}
	l.onDown(err)
	return err
}

func (l *serialLink) firstDone() { l.once.Do(func() { close(l.firstUp) }) }

func (l *serialLink) setState(state string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state, l.lastErr = state, err
}

// waitFirst waits until the first open attempt has finished, or ctx ends.
func (l *serialLink) waitFirst(ctx context.Context) {
	select {
	case <-l.firstUp:
	case <-ctx.Done():
	}
}

// write sends p on the current connection.
func (l *serialLink) write(p []byte) error {
	l.mu.Lock()
	port, state, lastErr := l.port, l.state, l.lastErr
	l.mu.Unlock()
	if port == nil {
		return l.downError(state, lastErr)
	}
	if _, err := port.Write(p); err != nil {
		return fmt.Errorf("write %s: %w", l.path, err)
	}
	return nil
}

// drain waits until what was written has left the port, when the port can
// tell.
func (l *serialLink) drain() error {
	l.mu.Lock()
	port := l.port
	l.mu.Unlock()
	if d, ok := port.(interface{ Drain() error }); ok {
		if err := d.Drain(); err != nil {
			return fmt.Errorf("drain %s: %w", l.path, err)
		}
	}
	return nil
}

func (l *serialLink) downError(state string, lastErr error) error {
	switch state {
	case StateClosed:
		return fmt.Errorf("%s on %s is closed", l.name, l.path)
	case StateConnecting:
		return fmt.Errorf("%s on %s is not connected yet", l.name, l.path)
	}
	if lastErr != nil {
		return fmt.Errorf("%s on %s is disconnected, reconnecting (%v): check its cable and power", l.name, l.path, lastErr)
	}
	return fmt.Errorf("%s on %s is disconnected, reconnecting: check its cable and power", l.name, l.path)
}

// connState returns the state and last link error.
func (l *serialLink) connState() (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state, l.lastErr
}

// notifier calls the registered change callbacks of a device's channels
// from one goroutine of its own, one at a time, for the channels marked
// dirty: how a driver reports changes made on the device itself without
// ever calling into the gateway from its reader (see Reporter).
type notifier struct {
	mu    sync.Mutex
	hooks map[int]func()
	dirty map[int]bool
	wake  chan struct{}
}

func newNotifier() *notifier {
	return &notifier{hooks: map[int]func(){}, dirty: map[int]bool{}, wake: make(chan struct{}, 1)}
}

func (n *notifier) set(ch int, f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f == nil {
		delete(n.hooks, ch)
	} else {
		n.hooks[ch] = f
	}
}

func (n *notifier) mark(ch int) {
	n.mu.Lock()
	n.dirty[ch] = true
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// run calls hooks until ctx ends.
func (n *notifier) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		n.mu.Lock()
		var calls []func()
		for ch := range n.dirty {
			if f := n.hooks[ch]; f != nil {
				calls = append(calls, f)
			}
			delete(n.dirty, ch)
		}
		n.mu.Unlock()
		for _, f := range calls {
			if ctx.Err() != nil {
				return
			}
			f()
		}
	}
}
