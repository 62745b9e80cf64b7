package drivers

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// ModbusRelayOpts describe one coil of a Modbus unit as a relay.
type ModbusRelayOpts struct {
	Name   string
	Device string // a modbus-rtu or modbus-tcp device of the pool
	Unit   int    // 1–247
	Coil   int    // coil address, from 0
}

// Validate checks the options.
func (o ModbusRelayOpts) Validate() error {
	var coil *FieldError
	if o.Coil < 0 || o.Coil > 0xffff {
		coil = fieldError("coil", "want a coil address from 0 to 65535 (the protocol address, not the 00001-style reference), got %d", o.Coil)
	}
	return joinFields(checkModbusDevice(o.Device, "relay"), checkUnit(o.Unit), coil)
}

// modbusBus checks the options o of a modbus relay or sensor and returns
// the bus named device of env's pool, opening it on first use.
func (e Env) modbusBus(o validator, device string) (*modbusBus, error) {
	pool, err := e.pool(o, ModbusDriver)
	if err != nil {
		return nil, err
	}
	return pool.modbusBus(device)
}

type modbusRelay struct {
	mu   sync.Mutex // a write and its read-back go together
	name string
	o    ModbusRelayOpts
	bus  *modbusBus
}

// OpenModbusRelay opens a coil of a Modbus unit as a relay, opening its bus
// on first use. Nothing is sent until the first Set.
func OpenModbusRelay(o ModbusRelayOpts, env Env) (Relay, error) {
	bus, err := env.modbusBus(o, o.Device)
	if err != nil {
		return nil, err
	}
	return &modbusRelay{name: o.Name, o: o, bus: bus}, nil
}

func (r *modbusRelay) Name() string   { return r.name }
func (r *modbusRelay) Driver() string { return ModbusDriver }
func (r *modbusRelay) Close() error   { return nil }

// Set writes the coil (05) and reads it back (01): it returns nil only when
// the unit reports the coil in the state asked for.
func (r *modbusRelay) Set(ctx context.Context, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.bus.writeCoil(ctx, r.o.Unit, r.o.Coil, on); err != nil {
		return err
	}
	got, err := r.bus.readCoil(ctx, r.o.Unit, r.o.Coil)
	if err != nil {
		return fmt.Errorf("coil %d written, but reading it back failed: %w", r.o.Coil, err)
	}
	if got != on {
		return fmt.Errorf("modbus unit %d on %q: coil %d reads %s after being switched %s (a local override or interlock on the board?)", r.o.Unit, r.o.Device, r.o.Coil, onOff(got), onOff(on))
	}
	return nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// ModbusRegister is one value a modbus sensor reads.
type ModbusRegister struct {
	Name      string  // the quantity: <sensor>.<name>
	Address   int     // first register, from 0
	Table     string  // "input" (04, the default) or "holding" (03)
	Type      string  // RegInt16 (default), RegUint16, RegInt32, RegUint32, RegFloat32
	WordOrder string  // 32-bit types: "big" (default: high word first) or "little"
	Scale     float64 // value = raw * Scale + Offset; must not be 0
	Offset    float64
	Unit      string // "°C"
}

// ModbusSensorOpts describe the registers of one Modbus unit read as a
// sensor.
type ModbusSensorOpts struct {
	Name      string
	Device    string // a modbus-rtu or modbus-tcp device of the pool
	Unit      int    // 1–247
	Interval  time.Duration
	Registers []ModbusRegister
}

// Validate checks the options.
func (o ModbusSensorOpts) Validate() error {
	fs := []*FieldError{checkModbusDevice(o.Device, "sensor"), checkUnit(o.Unit)}
	if len(o.Registers) == 0 {
		fs = append(fs, fieldError("registers", "a modbus sensor needs at least one register, e.g. registers: [{name: temperature, address: 0, type: int16, scale: 0.1}]"))
	}
	names := map[string]int{}
	for i, r := range o.Registers {
		at := func(field, format string, args ...any) {
			fs = append(fs, fieldError(fmt.Sprintf("registers[%d].%s", i, field), format, args...))
		}
		switch {
		case !validQuantity(r.Name):
			at("name", "want a name of lower-case letters, digits and _ (the reading is <sensor>.<name>), got %q", r.Name)
		default:
			if j, dup := names[r.Name]; dup {
				at("name", "%q is also the name of registers[%d]", r.Name, j)
			}
			names[r.Name] = i
		}
		switch r.Table {
		case "", "input", "holding":
		default:
			at("table", "want input (function 04, the default) or holding (function 03), got %q", r.Table)
		}
		switch r.Type {
		case "", RegInt16, RegUint16, RegInt32, RegUint32, RegFloat32:
		default:
			at("type", "want one of int16, uint16, int32, uint32, float32, got %q", r.Type)
		}
		switch r.WordOrder {
		case "", "big", "little":
		default:
			at("word_order", "want big (high word first, the default) or little, got %q", r.WordOrder)
		}
		if r.Address < 0 || r.Address+registerWords(r.Type)-1 > 0xffff {
			at("address", "want a register address from 0 to 65535 (the protocol address, not the 30001-style reference), got %d", r.Address)
		}
		if r.Scale == 0 || math.IsNaN(r.Scale) || math.IsInf(r.Scale, 0) {
			at("scale", "must be a finite number other than 0 (1 leaves the raw value)")
		}
	}
	return joinFields(fs...)
}

type modbusSensor struct {
	o   ModbusSensorOpts
	bus *modbusBus
	qs  []Quantity
}

// OpenModbusSensor opens the registers of a Modbus unit as a sensor,
// opening its bus on first use.
func OpenModbusSensor(o ModbusSensorOpts, env Env) (Sensor, error) {
	bus, err := env.modbusBus(o, o.Device)
	if err != nil {
		return nil, err
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	s := &modbusSensor{o: o, bus: bus}
	for _, r := range o.Registers {
		s.qs = append(s.qs, Quantity{Name: r.Name, Unit: r.Unit})
	}
	return s, nil
}

func (s *modbusSensor) Name() string            { return s.o.Name }
func (s *modbusSensor) Driver() string          { return ModbusDriver }
func (s *modbusSensor) Quantities() []Quantity  { return s.qs }
func (s *modbusSensor) Interval() time.Duration { return s.o.Interval }
func (s *modbusSensor) Close() error            { return nil }

// Read reads every register, one request per value.
func (s *modbusSensor) Read(ctx context.Context, dst []float64) error {
	for i, r := range s.o.Registers {
		fc, typ := byte(mbReadInput), r.Type
		if r.Table == "holding" {
			fc = mbReadHolding
		}
		if typ == "" {
			typ = RegInt16
		}
		w, err := s.bus.readRegisters(ctx, s.o.Unit, fc, r.Address, registerWords(typ))
		if err != nil {
			return fmt.Errorf("%s (register %s): %w", s.o.Name+"."+r.Name, describeTable(r.Table, r.Address), err)
		}
		v := decodeRegisters(typ, r.WordOrder, w)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s: modbus unit %d on %q: register %s holds no number (%s %04x)", s.o.Name+"."+r.Name, s.o.Unit, s.o.Device, describeTable(r.Table, r.Address), typ, w)
		}
		dst[i] = v*r.Scale + r.Offset
	}
	return nil
}

func describeTable(table string, addr int) string {
	if table == "" {
		table = "input"
	}
	return fmt.Sprintf("%s %d", table, addr)
}
