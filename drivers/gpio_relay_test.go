package drivers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/edgegate/edgegate/drivers"
	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"periph.io/x/conn/v3/gpio"
)

func TestGPIORelay(t *testing.T) {
	ctx := context.Background()
	for _, activeLow := range []bool{false, true} {
		hw := firmwaresim.NewHardware(nil)
		sim := hw.GPIO
		r, err := drivers.OpenGPIORelay(drivers.GPIORelayOpts{Name: "pump", Pin: "GPIO17", ActiveLow: activeLow}, drivers.Env{Buses: hw})
		if err != nil {
			t.Fatal(err)
		}
		pin := sim.Pin("GPIO17")
		if pin.IsOutput() {
			t.Fatal("opening the relay touched the pin")
		}
		for _, on := range []bool{true, false, true} {
			if err := r.Set(ctx, on); err != nil {
				t.Fatal(err)
			}
			if want := gpio.Level(on != activeLow); pin.Read() != want {
				t.Fatalf("active_low=%v on=%v: pin %v", activeLow, on, pin.Read())
			}
		}
		if got := len(pin.DrivenLevels()); got != 3 {
			t.Fatalf("%d writes, want 3 (one per Set, nothing else)", got)
		}
	}
}

func TestGPIORelayDetectsStuckPin(t *testing.T) {
	hw := firmwaresim.NewHardware(nil)
	sim := hw.GPIO
	r, err := drivers.OpenGPIORelay(drivers.GPIORelayOpts{Name: "pump", Pin: "GPIO5"}, drivers.Env{Buses: hw})
	if err != nil {
		t.Fatal(err)
	}
	sim.Pin("GPIO5").SetStuck(gpio.Low)
	err = r.Set(context.Background(), true)
	if err == nil || !strings.Contains(err.Error(), "reads Low") {
		t.Fatalf("stuck pin: %v", err)
	}
	sim.Pin("GPIO5").Unstick()
	if err := r.Set(context.Background(), true); err != nil {
		t.Fatal(err)
	}
}
