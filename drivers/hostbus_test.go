package drivers

import (
	"strconv"
	"strings"
	"testing"

	"periph.io/x/conn/v3/gpio"
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

// A pin that is not found names the chips and lines seen (a Raspberry Pi 5
// has its header's lines on the RP1: gpiochip4 or gpiochip0); a line found
// by name on a chip, or a bare number as GPIO<n>, is used.
func TestGPIOPinNotFoundNamesChipsAndLines(t *testing.T) {
	var looked []string
	rp1 := make([]string, 54)
	for i := range 28 {
		rp1[i] = "GPIO" + strconv.Itoa(i)
	}
	h := &HostBuses{listChips: func() []gpioChip {
		return []gpioChip{
			{name: "gpiochip0", label: "gpio-brcmstb@107d508500", lines: []string{"", ""}, byName: func(string) gpio.PinIO { return nil }},
			{name: "gpiochip4", label: "pinctrl-rp1", lines: rp1, byName: func(n string) gpio.PinIO {
				looked = append(looked, n)
				if n == "GPIO17" {
					return namedPin{n: n}
				}
				return nil
			}},
		}
	}}
	p, err := h.GPIOPin("17")
	if err != nil || p.Name() != "GPIO17" {
		t.Fatalf("17: %v %v (looked up %v)", p, err, looked)
	}
	_, err = h.GPIOPin("GPIO99")
	want := `no GPIO pin named "GPIO99" on this board (names look like GPIO17); the gateway saw gpiochip0 [gpio-brcmstb@107d508500] 2 lines, none named; gpiochip4 [pinctrl-rp1] 54 lines: GPIO0, GPIO1,`
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "GPIO27") {
		t.Fatalf("got %v\nwant %s...GPIO27", err, want)
	}
	if got := describeChips(nil); !strings.Contains(got, "no GPIO chip at all") {
		t.Fatalf("no chips: %s", got)
	}
}

// namedPin is a pin that only has a name.
type namedPin struct {
	gpio.PinIO
	n string
}

func (p namedPin) Name() string { return p.n }
