package drivers_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/drivers"
	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
)

// modbusRig is a simulated Modbus device with units 1 and 2, and a pool
// holding the matching device.
type modbusRig struct {
	sim  *firmwaresim.ModbusDevice
	pool *drivers.DevicePool
	env  drivers.Env
}

func newModbusRig(t *testing.T, kind string) *modbusRig {
	t.Helper()
	var sim *firmwaresim.ModbusDevice
	var err error
	dev := drivers.SerialDevice{Name: "bus", Driver: kind, Timeout: 300 * time.Millisecond}
	if kind == drivers.ModbusRTUDriver {
		sim, err = firmwaresim.NewModbusRTU("bus", "ttyUSB0", []int{1, 2})
		dev.Port, dev.Baud = sim.Path(), 9600
	} else {
		sim, err = firmwaresim.NewModbusTCP("bus", []int{1, 2})
		dev.Address = sim.Address()
	}
	if err != nil {
		t.Fatal(err)
	}
	pool := drivers.NewDevicePool([]drivers.SerialDevice{dev}, quietLog)
	t.Cleanup(func() {
		pool.Close()
		sim.Close()
	})
	return &modbusRig{sim: sim, pool: pool, env: drivers.Env{Devices: pool, Logger: quietLog}}
}

func TestModbusCRC(t *testing.T) {
	// The classic example: read one holding register of unit 1 at 0.
	if got := drivers.RTUFrame(1, []byte{0x03, 0, 0, 0, 1}); string(got) != "\x01\x03\x00\x00\x00\x01\x84\x0a" {
		t.Fatalf("frame % x", got)
	}
	if g := drivers.RTUGap(9600, "none", 1); g < 3500*time.Microsecond || g > 3700*time.Microsecond {
		t.Fatalf("gap at 9600 8N1: %v", g)
	}
	if g := drivers.RTUGap(115200, "none", 1); g != 1750*time.Microsecond {
		t.Fatalf("gap at 115200: %v", g)
	}
}

func TestModbusRelayAndSensor(t *testing.T) {
	for _, kind := range []string{drivers.ModbusRTUDriver, drivers.ModbusTCPDriver} {
		t.Run(kind, func(t *testing.T) {
			r := newModbusRig(t, kind)
			ctx := context.Background()
			relay, err := drivers.OpenModbusRelay(drivers.ModbusRelayOpts{Name: "pump", Device: "bus", Unit: 1, Coil: 3}, r.env)
			if err != nil {
				t.Fatal(err)
			}
			if err := relay.Set(ctx, true); err != nil {
				t.Fatal(err)
			}
			if !r.sim.Unit(1).Coil(3) || r.sim.Unit(2).Coil(3) {
				t.Fatal("coil 3 of unit 1 not on, or unit 2 touched")
			}
			regs := []drivers.ModbusRegister{
				{Name: "t", Address: 1, Type: "int16", Scale: 0.1},
				{Name: "big", Address: 10, Table: "holding", Type: "float32", Scale: 1},
				{Name: "little", Address: 20, Table: "holding", Type: "float32", WordOrder: "little", Scale: 1},
				{Name: "neg", Address: 2, Type: "int32", Scale: 1, Offset: 1},
			}
			s, err := drivers.OpenModbusSensor(drivers.ModbusSensorOpts{Name: "tank", Device: "bus", Unit: 2, Registers: regs}, r.env)
			if err != nil {
				t.Fatal(err)
			}
			u := r.sim.Unit(2)
			u.SetInput(1, 215)
			bits := math.Float32bits(12.5)
			u.SetHolding(10, uint16(bits>>16))
			u.SetHolding(11, uint16(bits))
			u.SetHolding(20, uint16(bits))
			u.SetHolding(21, uint16(bits>>16))
			u.SetInput(2, 0xffff)
			u.SetInput(3, 0xfffe) // -2
			dst := make([]float64, len(regs))
			if err := s.Read(ctx, dst); err != nil {
				t.Fatal(err)
			}
			if math.Abs(dst[0]-21.5) > 1e-9 || dst[1] != 12.5 || dst[2] != 12.5 || dst[3] != -1 {
				t.Fatalf("read %v", dst)
			}

			// a silent unit fails within the timeout; the other keeps working
			r.sim.Unit(1).SetFault("silent", 0)
			began := time.Now()
			if err := relay.Set(ctx, false); err == nil || !strings.Contains(err.Error(), "unit 1") {
				t.Fatalf("silent unit: %v", err)
			}
			if d := time.Since(began); d > 2*time.Second {
				t.Fatalf("took %v", d)
			}
			if err := s.Read(ctx, dst); err != nil {
				t.Fatalf("unit 2 after unit 1 went silent: %v", err)
			}
			// a bad CRC (a corrupt frame on TCP) is an error
			r.sim.Unit(1).SetFault("crc", 0)
			if err := relay.Set(ctx, false); err == nil {
				t.Fatal("bad response accepted")
			}
			// an exception names itself
			r.sim.Unit(1).SetFault("exception", 2)
			err = relay.Set(ctx, false)
			var ex *drivers.ModbusException
			if !errors.As(err, &ex) || ex.Code != 2 || !strings.Contains(err.Error(), "illegal data address") {
				t.Fatalf("exception: %v", err)
			}
			r.sim.Unit(1).SetFault("none", 0)
			if err := relay.Set(ctx, false); err != nil || r.sim.Unit(1).Coil(3) {
				t.Fatalf("after clearing the fault: %v", err)
			}
			// an address out of the unit's range is the unit's exception
			bad, _ := drivers.OpenModbusSensor(drivers.ModbusSensorOpts{Name: "x", Device: "bus", Unit: 2, Registers: []drivers.ModbusRegister{{Name: "v", Address: 5000, Scale: 1}}}, r.env)
			if err := bad.Read(ctx, dst[:1]); err == nil || !strings.Contains(err.Error(), "exception 2") {
				t.Fatalf("out of range: %v", err)
			}

			// requests from several goroutines are served one at a time
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for i := range 10 {
				wg.Add(2)
				go func() { defer wg.Done(); errs <- relay.Set(ctx, i%2 == 0) }()
				go func() { defer wg.Done(); errs <- s.Read(ctx, make([]float64, len(regs))) }()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if st := r.pool.Status(); len(st) != 1 || !st[0].OK {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

func TestModbusOptsValidate(t *testing.T) {
	p := drivers.FieldProblems(drivers.ModbusRelayOpts{Unit: 0, Coil: -1}.Validate())
	if p["device"] == "" || p["unit"] == "" || p["coil"] == "" {
		t.Fatalf("relay: %v", p)
	}
	p = drivers.FieldProblems(drivers.ModbusSensorOpts{Device: "b", Unit: 1, Registers: []drivers.ModbusRegister{
		{Name: "a", Type: "int64", Scale: 1}, {Name: "a", Table: "coils", WordOrder: "middle", Scale: 0},
	}}.Validate())
	for _, f := range []string{"registers[0].type", "registers[1].name", "registers[1].table", "registers[1].word_order", "registers[1].scale"} {
		if p[f] == "" {
			t.Errorf("no problem for %s: %v", f, p)
		}
	}
}
