package drivers

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"time"

	"go.bug.st/serial"
)

// Modbus RTU (RS485) and Modbus TCP, written from the Modbus application
// protocol and serial-line specifications: one PDU layer (function code and
// data) carried by an RTU frame (unit id, PDU, CRC-16) over a serial port of
// the device pool, or by an MBAP header over a TCP connection. Requests on
// one bus are serialised; on RTU they are spaced by the 3.5-character
// inter-frame gap. See docs/hardware.md for why this is our own code rather
// than github.com/simonvetter/modbus.

// Modbus driver names: the bus devices, and the relay and sensor driver.
const (
	ModbusRTUDriver = "modbus-rtu"
	ModbusTCPDriver = "modbus-tcp"
	ModbusDriver    = "modbus"
)

// ModbusBaud is the usual baud rate of Modbus RTU devices.
const ModbusBaud = 9600

// Modbus function codes used here.
const (
	mbReadCoils    = 0x01
	mbReadHolding  = 0x03
	mbReadInput    = 0x04
	mbWriteCoil    = 0x05
	mbExceptionBit = 0x80
)

// ModbusException is an exception response: the unit understood the
// request and refused it.
type ModbusException struct {
	Function byte // the request's function code
	Code     byte
}

// modbusExceptionNames are the exception codes of the specification.
var modbusExceptionNames = map[byte]string{
	1: "illegal function", 2: "illegal data address", 3: "illegal data value",
	4: "server device failure", 5: "acknowledge", 6: "server device busy",
	8: "memory parity error", 0x0a: "gateway path unavailable", 0x0b: "gateway target device failed to respond",
}

func (e *ModbusException) Error() string {
	name := modbusExceptionNames[e.Code]
	if name == "" {
		name = "unknown exception"
	}
	return fmt.Sprintf("exception %d (%s) to function %#04x", e.Code, name, e.Function)
}

// modbusCRC is the CRC-16 of Modbus RTU: polynomial 0xA001 (reflected
// 0x8005), initial value 0xFFFF; sent low byte first.
func modbusCRC(b []byte) uint16 {
	crc := uint16(0xffff)
	for _, x := range b {
		crc ^= uint16(x)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xa001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// rtuFrame is an RTU frame: unit, PDU, CRC (low byte first).
func rtuFrame(unit byte, pdu []byte) []byte {
	f := make([]byte, 0, len(pdu)+3)
	f = append(f, unit)
	f = append(f, pdu...)
	return binary.LittleEndian.AppendUint16(f, modbusCRC(f))
}

// rtuResponseLen is the length of the whole RTU response frame whose first
// bytes are b, or 0 when b is too short to tell.
func rtuResponseLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	fc := b[1]
	switch {
	case fc&mbExceptionBit != 0:
		return 5
	case fc == mbReadCoils || fc == 0x02 || fc == mbReadHolding || fc == mbReadInput:
		if len(b) < 3 {
			return 0
		}
		return 3 + int(b[2]) + 2
	default: // 05, 06, 15, 16 echo 4 bytes
		return 8
	}
}

// rtuGap is the silent interval that ends an RTU frame: 3.5 character
// times, and 1.75 ms above 19200 baud (the specification's fixed value).
func rtuGap(baud int, parity string, stopBits int) time.Duration {
	if baud > 19200 || baud <= 0 {
		return 1750 * time.Microsecond
	}
	bits := 1 + 8 + max(stopBits, 1)
	if parity != "" && parity != "none" {
		bits++
	}
	return time.Duration(float64(time.Second) * 3.5 * float64(bits) / float64(baud))
}

// modbusTransport carries one request PDU to a unit and returns the
// response PDU (exception responses included).
type modbusTransport interface {
	exchange(ctx context.Context, unit byte, pdu []byte) ([]byte, error)
}

// modbusBus is one Modbus device of the pool (an RS485 bus or a TCP
// server): its units share it, one request at a time.
type modbusBus struct {
	name, where string // device name; port or address
	timeout     time.Duration
	t           modbusTransport
	closeFn     func()
	statusFn    func(exchangeErr error) DeviceStatus

	mu       sync.Mutex // one request at a time
	lastErr  error
	requests int
}

func (b *modbusBus) status() DeviceStatus {
	b.mu.Lock()
	err := b.lastErr
	b.mu.Unlock()
	return b.statusFn(err)
}

func (b *modbusBus) close() { b.closeFn() }

// request sends pdu to unit and returns the response PDU without its
// function code. An exception response is a *ModbusException.
func (b *modbusBus) request(ctx context.Context, unit int, pdu []byte) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests++
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	resp, err := b.t.exchange(ctx, byte(unit), pdu)
	if err == nil {
		switch {
		case len(resp) == 0:
			err = errors.New("empty response")
		case resp[0] == pdu[0]|mbExceptionBit && len(resp) >= 2:
			// The unit answered: the bus works.
			b.lastErr = nil
			return nil, fmt.Errorf("modbus unit %d on %q: %w", unit, b.name, &ModbusException{Function: pdu[0], Code: resp[1]})
		case resp[0] != pdu[0]:
			err = fmt.Errorf("response to function %#04x has function %#04x", pdu[0], resp[0])
		}
	}
	if err != nil {
		err = fmt.Errorf("modbus unit %d on %q (%s): %w", unit, b.name, b.where, err)
		// One unit not answering is not the bus failing; but the last
		// failure is what /healthz shows until a request works again.
		b.lastErr = err
		return nil, err
	}
	b.lastErr = nil
	return resp[1:], nil
}

// readRegisters reads count registers from table fc (03 holding, 04 input).
func (b *modbusBus) readRegisters(ctx context.Context, unit int, fc byte, addr, count int) ([]uint16, error) {
	pdu := []byte{fc, byte(addr >> 8), byte(addr), byte(count >> 8), byte(count)}
	resp, err := b.request(ctx, unit, pdu)
	if err != nil {
		return nil, err
	}
	if len(resp) < 1 || int(resp[0]) != 2*count || len(resp) != 1+2*count {
		return nil, fmt.Errorf("modbus unit %d on %q: malformed response to read %d registers at %d", unit, b.name, count, addr)
	}
	out := make([]uint16, count)
	for i := range out {
		out[i] = binary.BigEndian.Uint16(resp[1+2*i:])
	}
	return out, nil
}

// readCoil reads one coil (01).
func (b *modbusBus) readCoil(ctx context.Context, unit, addr int) (bool, error) {
	resp, err := b.request(ctx, unit, []byte{mbReadCoils, byte(addr >> 8), byte(addr), 0, 1})
	if err != nil {
		return false, err
	}
	if len(resp) != 2 || resp[0] != 1 {
		return false, fmt.Errorf("modbus unit %d on %q: malformed response to read coil %d", unit, b.name, addr)
	}
	return resp[1]&1 != 0, nil
}

// writeCoil writes one coil (05); the unit echoes the request.
func (b *modbusBus) writeCoil(ctx context.Context, unit, addr int, on bool) error {
	v := byte(0x00)
	if on {
		v = 0xff
	}
	pdu := []byte{mbWriteCoil, byte(addr >> 8), byte(addr), v, 0}
	resp, err := b.request(ctx, unit, pdu)
	if err != nil {
		return err
	}
	if len(resp) != 4 || string(resp) != string(pdu[1:]) {
		return fmt.Errorf("modbus unit %d on %q: the response to write coil %d is not its echo", unit, b.name, addr)
	}
	return nil
}

// modbusBus returns the Modbus device name of the pool, opening it on
// first use.
func (p *DevicePool) modbusBus(name string) (*modbusBus, error) {
	dev, ok := p.known[name]
	if !ok {
		return nil, fmt.Errorf("no device named %q in devices; add it, e.g. - {name: %s, driver: %s, port: /dev/ttyUSB0}", name, name, ModbusRTUDriver)
	}
	if dev.Driver != ModbusRTUDriver && dev.Driver != ModbusTCPDriver {
		return nil, fmt.Errorf("device %q is a %s device, not a %s or %s one", name, dev.Driver, ModbusRTUDriver, ModbusTCPDriver)
	}
	d, err := p.get(name, func() pooledDevice {
		if dev.Driver == ModbusTCPDriver {
			return p.newModbusTCP(dev)
		}
		return p.newModbusRTU(dev)
	})
	if err != nil {
		return nil, err
	}
	return d.(*modbusBus), nil
}

func (p *DevicePool) deviceTimeout(dev SerialDevice, def time.Duration) time.Duration {
	switch {
	case dev.Timeout > 0:
		return dev.Timeout
	case p.RequestTimeout > 0:
		return p.RequestTimeout
	}
	return def
}

// OpenSerialPortMode opens a serial port as OpenSerialPort does, with the
// given parity ("none", "even", "odd") and stop bits (1 or 2).
func OpenSerialPortMode(path string, baud int, parity string, stopBits int) (Port, error) {
	mode := &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit}
	switch parity {
	case "even":
		mode.Parity = serial.EvenParity
	case "odd":
		mode.Parity = serial.OddParity
	}
	if stopBits == 2 {
		mode.StopBits = serial.TwoStopBits
	}
	p, err := serial.Open(path, mode)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := p.SetReadTimeout(serial.NoTimeout); err != nil {
		p.Close()
		return nil, fmt.Errorf("configure %s: %w", path, err)
	}
	p.ResetInputBuffer()
	return p, nil
}

// rtuTransport is an RS485 bus on a serial port of the pool.
type rtuTransport struct {
	dev serialDevice
	gap time.Duration

	mu      sync.Mutex
	rx      []byte
	arrived chan struct{} // buffered 1: bytes were received
	lastEnd time.Time     // when the last frame on the bus ended
}

func (p *DevicePool) newModbusRTU(dev SerialDevice) *modbusBus {
	baud := dev.Baud
	if baud <= 0 {
		baud = ModbusBaud
	}
	t := &rtuTransport{gap: rtuGap(baud, dev.Parity, dev.StopBits), arrived: make(chan struct{}, 1)}
	open := p.opener()
	if p.Open == nil && ((dev.Parity != "" && dev.Parity != "none") || dev.StopBits == 2) {
		open = func(path string, baud int) (Port, error) {
			return OpenSerialPortMode(path, baud, dev.Parity, dev.StopBits)
		}
	}
	t.dev.startWith(p, open, dev.Name, fmt.Sprintf("modbus bus %q", dev.Name), dev.Port, baud,
		func(ctx context.Context) { <-ctx.Done() }, t.onData, func(error) {})
	return &modbusBus{
		name: dev.Name, where: dev.Port, timeout: p.deviceTimeout(dev, 500*time.Millisecond), t: t,
		closeFn: t.dev.close, statusFn: t.dev.statusWith,
	}
}

func (t *rtuTransport) onData(b []byte) {
	t.mu.Lock()
	if len(t.rx) < 512 {
		t.rx = append(t.rx, b...)
	}
	t.mu.Unlock()
	select {
	case t.arrived <- struct{}{}:
	default:
	}
}

func (t *rtuTransport) exchange(ctx context.Context, unit byte, pdu []byte) ([]byte, error) {
	t.dev.link.waitFirst(ctx)
	// The bus must have been silent for the inter-frame gap since the
	// last frame (ours or a late answer) before a new one starts.
	for {
		t.mu.Lock()
		wait := t.gap - time.Since(t.lastEnd)
		t.mu.Unlock()
		if wait <= 0 {
			break
		}
		time.Sleep(wait)
		t.mu.Lock()
		if len(t.rx) > 0 { // a late answer to an earlier request: drop it
			t.rx = t.rx[:0]
			t.lastEnd = time.Now()
		}
		t.mu.Unlock()
	}
	t.mu.Lock()
	t.rx = t.rx[:0]
	t.mu.Unlock()
	select {
	case <-t.arrived:
	default:
	}
	frame := rtuFrame(unit, pdu)
	err := t.dev.link.write(frame)
	defer func() {
		t.mu.Lock()
		t.lastEnd = time.Now()
		t.mu.Unlock()
	}()
	if err != nil {
		return nil, err
	}
	for {
		t.mu.Lock()
		rx := t.rx
		n := rtuResponseLen(rx)
		if n > 0 && len(rx) >= n {
			f := append([]byte(nil), rx[:n]...)
			t.rx = t.rx[:0]
			t.mu.Unlock()
			if got := binary.LittleEndian.Uint16(f[n-2:]); got != modbusCRC(f[:n-2]) {
				return nil, errors.New("CRC error in the response (noise on the bus? check termination and the A/B wiring)")
			}
			if f[0] != unit {
				return nil, fmt.Errorf("the response came from unit %d (two units with one id?)", f[0])
			}
			return f[1 : n-2], nil
		}
		t.mu.Unlock()
		select {
		case <-t.arrived:
		case <-ctx.Done():
			if state, lerr := t.dev.link.connState(); state != StateConnected {
				return nil, t.dev.link.downError(state, lerr)
			}
			if len(rx) > 0 {
				return nil, fmt.Errorf("incomplete response (%d bytes) within the timeout", len(rx))
			}
			return nil, errors.New("no response within the timeout: check the unit id, the baud rate and parity, the A/B wiring and the unit's power")
		}
	}
}

// tcpTransport is a Modbus TCP server: one connection, opened on first use
// and again after a failure.
type tcpTransport struct {
	address string
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)

	mu     sync.Mutex
	conn   net.Conn
	tid    uint16
	closed bool
	failed bool // the last connection failed: reconnecting on the next request
}

func (p *DevicePool) newModbusTCP(dev SerialDevice) *modbusBus {
	t := &tcpTransport{address: dev.Address, dial: (&net.Dialer{}).DialContext}
	b := &modbusBus{name: dev.Name, where: dev.Address, timeout: p.deviceTimeout(dev, time.Second), t: t, closeFn: t.close}
	b.statusFn = func(exchangeErr error) DeviceStatus {
		s := DeviceStatus{Name: dev.Name, Port: dev.Address, State: StateConnected}
		t.mu.Lock()
		switch {
		case t.closed:
			s.State = StateClosed
		case t.conn == nil && t.failed:
			s.State = StateReconnecting
		case t.conn == nil:
			s.State = StateConnecting
		}
		t.mu.Unlock()
		if exchangeErr != nil {
			s.Error = exchangeErr.Error()
		}
		s.OK = s.Error == "" && s.State != StateClosed
		return s
	}
	return b
}

func (t *tcpTransport) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.conn != nil {
		t.conn.Close()
		t.conn = nil
	}
}

func (t *tcpTransport) exchange(ctx context.Context, unit byte, pdu []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errors.New("closed")
	}
	if t.conn == nil {
		c, err := t.dial(ctx, "tcp", t.address)
		if err != nil {
			t.failed = true
			return nil, fmt.Errorf("connect: %w", err)
		}
		t.conn, t.failed = c, false
	}
	fail := func(err error) ([]byte, error) {
		// The stream may hold half a response now: start afresh.
		t.conn.Close()
		t.conn, t.failed = nil, true
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	t.conn.SetDeadline(deadline)
	t.tid++
	adu := make([]byte, 7, 7+len(pdu))
	binary.BigEndian.PutUint16(adu[0:], t.tid)
	binary.BigEndian.PutUint16(adu[4:], uint16(len(pdu)+1))
	adu[6] = unit
	adu = append(adu, pdu...)
	if _, err := t.conn.Write(adu); err != nil {
		return fail(fmt.Errorf("write: %w", err))
	}
	for {
		var h [7]byte
		if _, err := io.ReadFull(t.conn, h[:]); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fail(errors.New("no response within the timeout: check the unit id and the address"))
			}
			return fail(fmt.Errorf("read: %w", err))
		}
		n := int(binary.BigEndian.Uint16(h[4:]))
		if binary.BigEndian.Uint16(h[2:]) != 0 || n < 2 || n > 254 {
			return fail(errors.New("malformed response header (not a Modbus TCP server?)"))
		}
		body := make([]byte, n-1)
		if _, err := io.ReadFull(t.conn, body); err != nil {
			return fail(fmt.Errorf("read: %w", err))
		}
		if binary.BigEndian.Uint16(h[0:]) != t.tid {
			continue // a late answer to an earlier request
		}
		if h[6] != unit {
			return fail(fmt.Errorf("the response came from unit %d", h[6]))
		}
		return body, nil
	}
}

// Register types of the modbus sensor.
const (
	RegInt16   = "int16"
	RegUint16  = "uint16"
	RegInt32   = "int32"
	RegUint32  = "uint32"
	RegFloat32 = "float32"
)

// registerWords is how many registers a type spans.
func registerWords(typ string) int {
	switch typ {
	case RegInt32, RegUint32, RegFloat32:
		return 2
	}
	return 1
}

// decodeRegisters turns the registers of one value into a number; little
// word order puts the low word first.
func decodeRegisters(typ, wordOrder string, w []uint16) float64 {
	var u32 uint32
	if len(w) == 2 {
		if wordOrder == "little" {
			u32 = uint32(w[1])<<16 | uint32(w[0])
		} else {
			u32 = uint32(w[0])<<16 | uint32(w[1])
		}
	}
	switch typ {
	case RegInt16:
		return float64(int16(w[0]))
	case RegUint16:
		return float64(w[0])
	case RegInt32:
		return float64(int32(u32))
	case RegUint32:
		return float64(u32)
	case RegFloat32:
		return float64(math.Float32frombits(u32))
	}
	return math.NaN()
}

// checkUnit checks a Modbus unit id (1–247; 0 is broadcast, which gets no
// answer).
func checkUnit(unit int) *FieldError {
	if unit < 1 || unit > 247 {
		return fieldError("unit", "want the unit (slave) id of the device, 1 to 247, got %d", unit)
	}
	return nil
}

func checkModbusDevice(device, what string) *FieldError {
	if strings.TrimSpace(device) == "" {
		return fieldError("device", "a modbus %s needs the name of its bus in devices (a modbus-rtu or modbus-tcp entry), e.g. device: rs485", what)
	}
	return nil
}
