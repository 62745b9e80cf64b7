package firmwaresim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// This file simulates Modbus slaves, from the Modbus application protocol
// specification (V1.1b3) and the serial-line guide (V1.02): an RS485 bus
// behind a pseudo-terminal, where every simulated unit listens and the one
// addressed answers, and a Modbus TCP server on a loopback port. Each unit
// has coils, discrete inputs, input registers and holding registers
// (modbusTableSize of each, zero at start), and faults on demand: silent
// (no answer), a bad CRC, or an exception response.

// modbusTableSize is how many coils and registers of each kind a simulated
// unit has; addresses beyond get exception 2 (illegal data address).
const modbusTableSize = 1024

// Kinds of simulated Modbus devices.
const (
	KindModbusRTU = "modbus-rtu"
	KindModbusTCP = "modbus-tcp"
)

// ModbusUnit is one simulated slave.
type ModbusUnit struct {
	mu      sync.Mutex
	coils   [modbusTableSize]bool
	input   [modbusTableSize]uint16
	holding [modbusTableSize]uint16
	fault   string // "", "silent", "crc", "exception"
	code    byte
}

// SetInput sets input register addr.
func (u *ModbusUnit) SetInput(addr int, v uint16) error { return u.setReg(&u.input, addr, v) }

// SetHolding sets holding register addr.
func (u *ModbusUnit) SetHolding(addr int, v uint16) error { return u.setReg(&u.holding, addr, v) }

func (u *ModbusUnit) setReg(t *[modbusTableSize]uint16, addr int, v uint16) error {
	if addr < 0 || addr >= modbusTableSize {
		return fmt.Errorf("register %d: a simulated unit has registers 0 to %d", addr, modbusTableSize-1)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	t[addr] = v
	return nil
}

// Coil returns coil addr.
func (u *ModbusUnit) Coil(addr int) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return addr >= 0 && addr < modbusTableSize && u.coils[addr]
}

// SetFault sets the unit's fault: "silent", "crc", "exception" (with code)
// or "none".
func (u *ModbusUnit) SetFault(kind string, code int) error {
	switch kind {
	case "none", "":
		kind = ""
	case "silent", "crc":
	case "exception":
		if code < 1 || code > 255 {
			return errors.New("an exception needs code=1..255 (2: illegal data address, 4: server device failure, ...)")
		}
	default:
		return fmt.Errorf("unknown fault %q: want silent, crc, exception or none", kind)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.fault, u.code = kind, byte(code)
	return nil
}

// exceptionPDU is an exception response to function fc.
func exceptionPDU(fc, code byte) []byte { return []byte{fc | 0x80, code} }

// handle answers one request PDU; nil means no answer. crc tells the
// transport to spoil the response's check (RTU) or framing (TCP).
func (u *ModbusUnit) handle(req []byte) (resp []byte, crc bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(req) == 0 {
		return nil, false
	}
	switch u.fault {
	case "silent":
		return nil, false
	case "exception":
		return exceptionPDU(req[0], u.code), false
	}
	return u.answerLocked(req), u.fault == "crc"
}

func (u *ModbusUnit) answerLocked(req []byte) []byte {
	fc := req[0]
	u16 := func(i int) int { return int(binary.BigEndian.Uint16(req[i:])) }
	switch fc {
	case 0x01, 0x02, 0x03, 0x04:
		if len(req) != 5 {
			return exceptionPDU(fc, 3)
		}
		start, n := u16(1), u16(3)
		limit := 2000
		if fc >= 0x03 {
			limit = 125
		}
		if n < 1 || n > limit {
			return exceptionPDU(fc, 3)
		}
		if start+n > modbusTableSize {
			return exceptionPDU(fc, 2)
		}
		if fc <= 0x02 { // bits, packed LSB first; discrete inputs follow the coils here
			out := make([]byte, 2+(n+7)/8)
			out[0], out[1] = fc, byte((n+7)/8)
			for i := 0; i < n; i++ {
				if u.coils[start+i] {
					out[2+i/8] |= 1 << (i % 8)
				}
			}
			return out
		}
		table := &u.input
		if fc == 0x03 {
			table = &u.holding
		}
		out := []byte{fc, byte(2 * n)}
		for i := 0; i < n; i++ {
			out = binary.BigEndian.AppendUint16(out, table[start+i])
		}
		return out
	case 0x05:
		if len(req) != 5 {
			return exceptionPDU(fc, 3)
		}
		addr, v := u16(1), u16(3)
		if v != 0xff00 && v != 0x0000 {
			return exceptionPDU(fc, 3)
		}
		if addr >= modbusTableSize {
			return exceptionPDU(fc, 2)
		}
		u.coils[addr] = v == 0xff00
		return append([]byte(nil), req...)
	case 0x06:
		if len(req) != 5 {
			return exceptionPDU(fc, 3)
		}
		addr := u16(1)
		if addr >= modbusTableSize {
			return exceptionPDU(fc, 2)
		}
		u.holding[addr] = uint16(u16(3))
		return append([]byte(nil), req...)
	case 0x10:
		if len(req) < 6 {
			return exceptionPDU(fc, 3)
		}
		addr, n, bc := u16(1), u16(3), int(req[5])
		if n < 1 || n > 123 || bc != 2*n || len(req) != 6+bc {
			return exceptionPDU(fc, 3)
		}
		if addr+n > modbusTableSize {
			return exceptionPDU(fc, 2)
		}
		for i := 0; i < n; i++ {
			u.holding[addr+i] = binary.BigEndian.Uint16(req[6+2*i:])
		}
		return append([]byte(nil), req[:5]...)
	}
	return exceptionPDU(fc, 1)
}

// ModbusUnitView is a unit in GET /sim/modbus: its non-zero coils and
// registers by address.
type ModbusUnitView struct {
	Unit    int               `json:"unit"`
	Coils   map[string]bool   `json:"coils"`
	Input   map[string]uint16 `json:"input"`
	Holding map[string]uint16 `json:"holding"`
	Fault   string            `json:"fault,omitempty"`
	Code    int               `json:"code,omitempty"`
}

func (u *ModbusUnit) view(id int) ModbusUnitView {
	u.mu.Lock()
	defer u.mu.Unlock()
	v := ModbusUnitView{Unit: id, Coils: map[string]bool{}, Input: map[string]uint16{}, Holding: map[string]uint16{}, Fault: u.fault}
	if u.fault == "exception" {
		v.Code = int(u.code)
	}
	for i := range modbusTableSize {
		k := fmt.Sprint(i)
		if u.coils[i] {
			v.Coils[k] = true
		}
		if u.input[i] != 0 {
			v.Input[k] = u.input[i]
		}
		if u.holding[i] != 0 {
			v.Holding[k] = u.holding[i]
		}
	}
	return v
}

// ModbusDevice is a simulated Modbus bus (RTU) or server (TCP) with its
// units.
type ModbusDevice struct {
	Name, Kind string

	mu       sync.Mutex
	units    map[int]*ModbusUnit
	requests int

	port *simPort     // RTU
	ln   net.Listener // TCP
	wg   sync.WaitGroup
}

// Unit returns the unit with id, or nil.
func (d *ModbusDevice) Unit(id int) *ModbusUnit {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.units[id]
}

// Requests counts the requests addressed to one of the units.
func (d *ModbusDevice) Requests() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.requests
}

// dispatch hands a request to its unit; nil: no answer.
func (d *ModbusDevice) dispatch(unit byte, pdu []byte) ([]byte, bool) {
	d.mu.Lock()
	u := d.units[int(unit)]
	if u != nil {
		d.requests++
	}
	d.mu.Unlock()
	if u == nil {
		return nil, false // nobody with that id on the bus
	}
	return u.handle(pdu)
}

func newModbusDevice(name, kind string, units []int) *ModbusDevice {
	d := &ModbusDevice{Name: name, Kind: kind, units: map[int]*ModbusUnit{}}
	for _, u := range units {
		d.units[u] = &ModbusUnit{}
	}
	return d
}

// NewModbusRTU starts a simulated RS485 bus with the given units behind a
// pseudo-terminal; Path is the stable path to open (named linkName).
func NewModbusRTU(name, linkName string, units []int) (*ModbusDevice, error) {
	d := newModbusDevice(name, KindModbusRTU, units)
	p, err := newSimPort(linkName)
	if err != nil {
		return nil, err
	}
	d.port = p
	m, err := p.plug()
	if err != nil {
		p.close()
		return nil, err
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.serveRTU(m)
	}()
	return d, nil
}

// NewModbusTCP starts a simulated Modbus TCP server with the given units on
// a loopback port (Address).
func NewModbusTCP(name string, units []int) (*ModbusDevice, error) {
	d := newModbusDevice(name, KindModbusTCP, units)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d.ln = ln
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.serveTCP()
	}()
	return d, nil
}

// Path is the serial port of an RTU bus.
func (d *ModbusDevice) Path() string {
	if d.port == nil {
		return ""
	}
	return d.port.link
}

// Address is the host:port of a TCP server.
func (d *ModbusDevice) Address() string {
	if d.ln == nil {
		return ""
	}
	return d.ln.Addr().String()
}

// Close stops the device.
func (d *ModbusDevice) Close() {
	if d.port != nil {
		d.port.close()
	}
	if d.ln != nil {
		d.ln.Close()
	}
	d.wg.Wait()
}

// rtuCRC is the Modbus RTU CRC-16 (polynomial 0xA001 reflected, initial
// 0xFFFF), low byte first on the wire.
func rtuCRC(b []byte) uint16 {
	crc := uint16(0xffff)
	for _, x := range b {
		crc ^= uint16(x)
		for i := 0; i < 8; i++ {
			lsb := crc & 1
			crc >>= 1
			if lsb == 1 {
				crc ^= 0xa001
			}
		}
	}
	return crc
}

// rtuRequestLen is the length of the request frame starting with b, 0 when
// not known yet, -1 for a function this bus cannot frame.
func rtuRequestLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case 0x01, 0x02, 0x03, 0x04, 0x05, 0x06:
		return 8
	case 0x0f, 0x10:
		if len(b) < 7 {
			return 0
		}
		return 9 + int(b[6])
	}
	return -1
}

// rtuSilence is how long a pause in the middle of a frame makes the slaves
// drop what they have (the spec's 1.5-character rule, relaxed for a
// pseudo-terminal on a loaded machine).
const rtuSilence = 100 * time.Millisecond

func (d *ModbusDevice) serveRTU(m *os.File) {
	buf := make([]byte, 256)
	var frame []byte
	last := time.Now()
	for {
		n, err := m.Read(buf)
		if err != nil {
			return
		}
		if time.Since(last) > rtuSilence {
			frame = frame[:0]
		}
		last = time.Now()
		frame = append(frame, buf[:n]...)
		for len(frame) > 0 {
			want := rtuRequestLen(frame)
			if want < 0 || len(frame) > 300 {
				frame = frame[:0] // not a frame we know: wait for the next one
				break
			}
			if want == 0 || len(frame) < want {
				break
			}
			f := frame[:want]
			frame = append([]byte(nil), frame[want:]...)
			if binary.LittleEndian.Uint16(f[want-2:]) != rtuCRC(f[:want-2]) {
				continue // a slave ignores a frame with a bad CRC
			}
			if f[0] == 0 {
				continue // broadcast: nobody answers
			}
			resp, spoil := d.dispatch(f[0], f[1:want-2])
			if resp == nil {
				continue
			}
			out := append([]byte{f[0]}, resp...)
			crc := rtuCRC(out)
			if spoil {
				crc ^= 0x5a5a
			}
			out = binary.LittleEndian.AppendUint16(out, crc)
			d.port.write(out)
		}
	}
}

func (d *ModbusDevice) serveTCP() {
	var conns sync.WaitGroup
	defer conns.Wait()
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	defer func() {
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		open[c] = true
		mu.Unlock()
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer func() {
				mu.Lock()
				delete(open, c)
				mu.Unlock()
				c.Close()
			}()
			d.serveTCPConn(c)
		}()
	}
}

// serveTCPConn answers MBAP-framed requests: transaction id, protocol 0,
// length of what follows, unit id, then the PDU.
func (d *ModbusDevice) serveTCPConn(c net.Conn) {
	for {
		var h [7]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(h[4:]))
		if binary.BigEndian.Uint16(h[2:]) != 0 || n < 2 || n > 254 {
			return
		}
		pdu := make([]byte, n-1)
		if _, err := io.ReadFull(c, pdu); err != nil {
			return
		}
		resp, spoil := d.dispatch(h[6], pdu)
		if resp == nil {
			continue
		}
		out := append([]byte(nil), h[:4]...)
		if spoil {
			out[2] = 0xde // not protocol 0: a corrupt frame
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(resp)+1))
		out = append(out, h[6])
		out = append(out, resp...)
		c.Write(out)
	}
}

// ModbusDeviceView is a device in GET /sim/modbus.
type ModbusDeviceView struct {
	Name     string           `json:"name"`
	Kind     string           `json:"kind"`
	Path     string           `json:"path,omitempty"`
	Address  string           `json:"address,omitempty"`
	Units    []ModbusUnitView `json:"units"`
	Requests int              `json:"requests"`
}

func (d *ModbusDevice) view() ModbusDeviceView {
	d.mu.Lock()
	ids := make([]int, 0, len(d.units))
	for id := range d.units {
		ids = append(ids, id)
	}
	reqs := d.requests
	d.mu.Unlock()
	sort.Ints(ids)
	v := ModbusDeviceView{Name: d.Name, Kind: d.Kind, Path: d.Path(), Address: d.Address(), Requests: reqs, Units: []ModbusUnitView{}}
	for _, id := range ids {
		v.Units = append(v.Units, d.Unit(id).view(id))
	}
	return v
}

// modbusRegistry is the Modbus devices simulated for one Hardware.
type modbusRegistry struct {
	mu    sync.Mutex
	devs  map[string]*ModbusDevice
	order []string
	addrs map[string]string // configured TCP address → the simulated server's
}

var modbusRegistries sync.Map // *Hardware → *modbusRegistry

func modbusOf(h *Hardware) *modbusRegistry {
	r, loaded := modbusRegistries.LoadOrStore(h, &modbusRegistry{devs: map[string]*ModbusDevice{}, addrs: map[string]string{}})
	if !loaded {
		h.OnClose(func() { modbusRegistries.Delete(h) })
	}
	return r.(*modbusRegistry)
}

// ModbusBus describes a simulated Modbus device for Populate.
type ModbusBus struct {
	Kind    string // KindModbusRTU or KindModbusTCP
	Name    string // its name in the control API
	Port    string // RTU: the port it stands in for (SerialPath)
	Address string // TCP: the address it stands in for (ModbusTCPAddress)
	Units   []int
}

func attachModbus(h *Hardware, b ModbusBus) error {
	reg := modbusOf(h)
	reg.mu.Lock()
	_, dup := reg.devs[b.Name]
	reg.mu.Unlock()
	if dup {
		return nil
	}
	var d *ModbusDevice
	var err error
	switch b.Kind {
	case KindModbusRTU:
		if _, ok := serialsOf(h).path(b.Port); ok {
			return nil
		}
		d, err = NewModbusRTU(b.Name, filepath.Base(b.Port), b.Units)
		if err == nil {
			serialsOf(h).setPath(b.Port, d.Path())
		}
	case KindModbusTCP:
		d, err = NewModbusTCP(b.Name, b.Units)
	default:
		return fmt.Errorf("there is no simulated %q Modbus device (use %s or %s)", b.Kind, KindModbusRTU, KindModbusTCP)
	}
	if err != nil {
		return err
	}
	reg.mu.Lock()
	reg.devs[b.Name] = d
	reg.order = append(reg.order, b.Name)
	if b.Kind == KindModbusTCP {
		reg.addrs[b.Address] = d.Address()
	}
	reg.mu.Unlock()
	h.OnClose(d.Close)
	return nil
}

// ModbusTCPAddress is the address to connect to in place of addr: that of
// the simulated server Populate attached for it, if any.
func (h *Hardware) ModbusTCPAddress(addr string) (string, bool) {
	r, ok := modbusRegistries.Load(h)
	if !ok {
		return "", false
	}
	reg := r.(*modbusRegistry)
	reg.mu.Lock()
	defer reg.mu.Unlock()
	a, ok := reg.addrs[addr]
	return a, ok
}

// Modbus returns the simulated Modbus device named name, or nil.
func (h *Hardware) Modbus(name string) *ModbusDevice {
	reg := modbusOf(h)
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return reg.devs[name]
}

func (r *modbusRegistry) all() []ModbusDeviceView {
	r.mu.Lock()
	devs := make([]*ModbusDevice, 0, len(r.order))
	for _, n := range r.order {
		devs = append(devs, r.devs[n])
	}
	r.mu.Unlock()
	out := make([]ModbusDeviceView, 0, len(devs))
	for _, d := range devs {
		out = append(out, d.view())
	}
	return out
}
