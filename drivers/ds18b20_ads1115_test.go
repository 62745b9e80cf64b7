package drivers_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/edgegate/edgegate/drivers"
	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
)

func TestDS18B20(t *testing.T) {
	w, err := firmwaresim.NewW1Tree()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const id = "28-0316a2795eff"
	if err := w.Add(id); err != nil {
		t.Fatal(err)
	}
	s, err := drivers.OpenDS18B20(drivers.DS18B20Opts{Name: "tank", ID: id, Root: w.Root()}, drivers.Env{})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float64, 1)
	for _, temp := range []float64{21.5, -10.125, 0, 84.9375} {
		w.Set(id, temp)
		if err := s.Read(context.Background(), dst); err != nil || math.Abs(dst[0]-temp) > 0.001 {
			t.Fatalf("pinned %v: read %v, %v", temp, dst[0], err)
		}
	}
	for fault, want := range map[string]string{"crc": "CRC error", "missing": "not on the 1-wire bus", "85": "85.000 °C"} {
		w.SetFault(id, fault)
		dst[0] = math.NaN()
		if err := s.Read(context.Background(), dst); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("fault %s: %v", fault, err)
		}
		w.SetFault(id, "none")
		if err := s.Read(context.Background(), dst); err != nil {
			t.Errorf("after %s cleared: %v", fault, err)
		}
	}
	if p := drivers.FieldProblems(drivers.DS18B20Opts{ID: "10-0316a2795eff"}.Validate()); p["id"] == "" {
		t.Errorf("a non-DS18B20 family accepted")
	}
}

func TestADS1115(t *testing.T) {
	hw := firmwaresim.NewHardware(nil)
	defer hw.Close()
	if err := hw.Populate(firmwaresim.Devices{ADS1115s: []firmwaresim.I2CChip{{Bus: "/dev/i2c-1", Address: 0x48}}}); err != nil {
		t.Fatal(err)
	}
	chip := hw.I2C("/dev/i2c-1").Device(0x48).(*firmwaresim.ADS1115)
	chip.SetInput(0, 1.65)
	chip.SetInput(1, 3.3)
	chip.SetInput(2, 5)
	o := drivers.ADS1115Opts{Name: "soil", Bus: "/dev/i2c-1", Address: 0x48, Channels: []drivers.ADCChannel{
		{Name: "moisture", Input: 0, Gain: 4.096, Scale: 30.3},
		{Name: "supply", Input: 1, Gain: 6.144, Scale: 1},
		{Name: "clipped", Input: 2, Gain: 2.048, Scale: 1, Offset: 1},
	}}
	s, err := drivers.OpenADS1115(o, drivers.Env{Buses: hw})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float64, 3)
	if err := s.Read(context.Background(), dst); err != nil {
		t.Fatal(err)
	}
	if math.Abs(dst[0]-50.0) > 0.1 || math.Abs(dst[1]-3.3) > 0.001 || math.Abs(dst[2]-3.048) > 0.001 {
		t.Fatalf("read %v", dst)
	}
	hw.I2C("/dev/i2c-1").SetNACK(0x48, true)
	if err := s.Read(context.Background(), dst); err == nil {
		t.Fatal("read an unplugged chip")
	}
	p := drivers.FieldProblems(drivers.ADS1115Opts{Bus: "1", Address: 0x50, Channels: []drivers.ADCChannel{{Name: "a", Input: 4, Gain: 5, Scale: 1}}}.Validate())
	for _, f := range []string{"address", "channels[0].input", "channels[0].gain"} {
		if p[f] == "" {
			t.Errorf("no problem for %s: %v", f, p)
		}
	}
}
