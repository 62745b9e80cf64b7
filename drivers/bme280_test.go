package drivers_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/drivers"
	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
)

const bmeBus = "/dev/i2c-1"

func bmeOpts(addr int) drivers.BME280Opts {
	return drivers.BME280Opts{Name: "room", Bus: bmeBus, Address: addr, Interval: time.Second}
}

// openBME280 opens the driver on simulated hardware; populate attaches the
// simulated chip the options call for.
func openBME280(t *testing.T, populate bool) (*firmwaresim.Hardware, drivers.Sensor) {
	t.Helper()
	hw := firmwaresim.NewHardware(nil)
	t.Cleanup(func() { hw.Close() })
	o := bmeOpts(0x76)
	if populate {
		if err := hw.Populate(firmwaresim.Devices{BME280s: []firmwaresim.I2CChip{{Bus: o.Bus, Address: o.Address}}}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := drivers.OpenBME280(o, drivers.Env{Buses: hw, Sim: true})
	if err != nil {
		t.Fatalf("OpenSensor: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return hw, s
}

func readBME(t *testing.T, s drivers.Sensor) ([]float64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v := make([]float64, len(s.Quantities()))
	return v, s.Read(ctx, v)
}

func TestBME280Driver(t *testing.T) {
	hw, s := openBME280(t, true)
	want := []drivers.Quantity{{Name: "temperature", Unit: "°C"}, {Name: "humidity", Unit: "%RH"}, {Name: "pressure", Unit: "hPa"}}
	if q := s.Quantities(); len(q) != 3 || q[0] != want[0] || q[1] != want[1] || q[2] != want[2] {
		t.Fatalf("quantities %v", q)
	}
	if s.Driver() != "bme280" || s.Name() != "room" || s.Interval() != time.Second {
		t.Fatalf("driver %q name %q interval %v", s.Driver(), s.Name(), s.Interval())
	}
	// Drifting values are plausible indoor values.
	v, err := readBME(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if v[0] < 19.9 || v[0] > 23.1 || v[1] < 39.5 || v[1] > 60.5 || v[2] < 1004.9 || v[2] > 1020.1 {
		t.Fatalf("implausible reading %v", v)
	}
	// Pinned values come back as set.
	chip := hw.BME280(bmeBus, 0x76)
	for _, c := range [][3]float64{{-40, 0, 300}, {4.5, 95, 987.6}, {85, 100, 1100}} {
		if err := chip.Set(c[0], c[1], c[2]); err != nil {
			t.Fatal(err)
		}
		v, err := readBME(t, s)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(v[0]-c[0]) > 0.1 || math.Abs(v[1]-c[1]) > 0.5 || math.Abs(v[2]-c[2]) > 0.1 {
			t.Fatalf("set %v, read %v", c, v)
		}
	}
}

// wantReadError reads once and checks that the error says what to check.
func wantReadError(t *testing.T, s drivers.Sensor, hints ...string) {
	t.Helper()
	_, err := readBME(t, s)
	if err == nil {
		t.Fatal("read succeeded on a faulty chip")
	}
	for _, h := range hints {
		if !strings.Contains(err.Error(), h) {
			t.Fatalf("error %q does not mention %q", err, h)
		}
	}
}

func TestBME280DriverNACKThenRecovers(t *testing.T) {
	hw, s := openBME280(t, true)
	if _, err := readBME(t, s); err != nil {
		t.Fatal(err)
	}
	bus := hw.I2C(bmeBus)
	bus.SetNACK(0x76, true)
	wantReadError(t, s, "0x76", bmeBus, "wiring")
	wantReadError(t, s, "0x76", "wiring", "0x77", "I2C is enabled")
	bus.SetNACK(0x76, false)
	if err := hw.BME280(bmeBus, 0x76).Set(12, 34, 956); err != nil {
		t.Fatal(err)
	}
	v, err := readBME(t, s)
	if err != nil {
		t.Fatalf("no recovery after the NACK cleared: %v", err)
	}
	if math.Abs(v[0]-12) > 0.1 || math.Abs(v[1]-34) > 0.5 || math.Abs(v[2]-956) > 0.1 {
		t.Fatalf("after recovery read %v", v)
	}
}

func TestBME280DriverAbsentAtOpen(t *testing.T) {
	hw, s := openBME280(t, false) // OpenSensor succeeds with no chip
	wantReadError(t, s, "does not answer", "0x76", "wiring")
	hw.I2C(bmeBus).Attach(0x76, firmwaresim.NewBME280()) // plugged in later
	if _, err := readBME(t, s); err != nil {
		t.Fatalf("chip plugged in, still: %v", err)
	}
}

func TestBME280DriverWrongChipID(t *testing.T) {
	cases := []struct {
		id   byte
		hint string
	}{
		{0x58, "BMP280"},
		{0x55, "BMP180"},
		{0x42, "reports id 0x42"},
	}
	for _, c := range cases {
		hw := firmwaresim.NewHardware(nil)
		chip := firmwaresim.NewBME280()
		chip.SetChipID(c.id)
		hw.I2C(bmeBus).Attach(0x77, chip)
		s, err := drivers.OpenBME280(bmeOpts(0x77), drivers.Env{Buses: hw, Sim: true})
		if err != nil {
			t.Fatalf("id %#x: OpenSensor failed: %v", c.id, err)
		}
		wantReadError(t, s, c.hint, "0x60")
		chip.SetChipID(firmwaresim.BME280ChipID)
		if _, err := readBME(t, s); err != nil {
			t.Fatalf("id fixed, still: %v", err)
		}
		s.Close()
		hw.Close()
	}
}

// A brown-out resets the chip's settings; the driver notices and sets it
// up again instead of reporting a humidity that was never measured.
func TestBME280DriverChipReset(t *testing.T) {
	hw, s := openBME280(t, true)
	chip := hw.BME280(bmeBus, 0x76)
	if err := chip.Set(22, 61.5, 1003); err != nil {
		t.Fatal(err)
	}
	if _, err := readBME(t, s); err != nil {
		t.Fatal(err)
	}
	chip.Reset()
	v, err := readBME(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(v[1]-61.5) > 0.5 {
		t.Fatalf("humidity %v after a chip reset, want 61.5", v[1])
	}
}

func TestBME280DriverContextAndClose(t *testing.T) {
	hw, s := openBME280(t, true)
	bus := hw.I2C(bmeBus)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := bus.Transactions()
	if err := s.Read(ctx, make([]float64, 3)); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("cancelled read: %v", err)
	}
	if bus.Transactions() != before {
		t.Fatal("a cancelled read used the bus")
	}
	if err := s.Read(context.Background(), make([]float64, 2)); err == nil {
		t.Fatal("read into a short slice succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := readBME(t, s); err == nil {
		t.Fatal("read after Close succeeded")
	}
}

func TestBME280DriverRefusesBadAddress(t *testing.T) {
	_, err := drivers.OpenBME280(bmeOpts(0x40), drivers.Env{Buses: firmwaresim.NewHardware(nil)})
	if err == nil || !strings.Contains(err.Error(), "0x76") {
		t.Fatalf("address 0x40: %v", err)
	}
}
