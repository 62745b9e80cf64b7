package drivers

import (
	"testing"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
)

// Every spelling of one bus gets the one handle opened for it: two handles
// on one bus would let two drivers interleave their transactions.
func TestHostBusesOpenEachBusOnce(t *testing.T) {
	var opened []string
	h := &HostBuses{openI2C: func(name string) (i2c.BusCloser, error) {
		opened = append(opened, name)
		return closer{&i2ctest.Record{}}, nil
	}}
	first, err := h.I2CBus("/dev/i2c-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"1", "I2C1", " /dev/i2c-1"} {
		b, err := h.I2CBus(name)
		if err != nil {
			t.Fatal(err)
		}
		if b != first {
			t.Errorf("I2CBus(%q) opened another handle than /dev/i2c-1", name)
		}
	}
	if _, err := h.I2CBus("/dev/i2c-2"); err != nil {
		t.Fatal(err)
	}
	if len(opened) != 2 || opened[0] != "1" || opened[1] != "2" {
		t.Fatalf("opened %q, want [1 2]", opened)
	}
	h.Close()
}

type closer struct{ *i2ctest.Record }

func (closer) Close() error { return nil }
