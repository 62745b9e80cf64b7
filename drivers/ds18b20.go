package drivers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The ds18b20 driver reads a DS18B20 1-wire temperature probe through the
// kernel's w1 driver (dtoverlay=w1-gpio on a Raspberry Pi): the file
// <root>/<id>/w1_slave holds two lines, the scratchpad with the kernel's
// CRC verdict, then the temperature in thousandths of a degree:
//
//	72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
//	72 01 4b 46 7f ff 0e 10 57 t=23125

// DS18B20Driver is the name of the ds18b20 sensor driver.
const DS18B20Driver = "ds18b20"

// W1Root is where the kernel lists the 1-wire devices.
const W1Root = "/sys/bus/w1/devices"

var ds18b20ID = regexp.MustCompile(`^28-[0-9a-f]{12}$`)

// DS18B20Opts describe one probe.
type DS18B20Opts struct {
	Name     string
	ID       string // 28-0316a2795eff, as the kernel names it
	Root     string // "": W1Root
	Interval time.Duration
}

// Validate checks the options.
func (o DS18B20Opts) Validate() error {
	if !ds18b20ID.MatchString(o.ID) {
		return fieldError("id", "want the probe's 1-wire id as the kernel lists it in %s, family 28 and 12 lower-case hex digits, e.g. 28-0316a2795eff; got %q", W1Root, o.ID)
	}
	return nil
}

type ds18b20 struct {
	o    DS18B20Opts
	path string
}

// OpenDS18B20 opens a probe. It is not read until the first Read: a probe
// that is missing at start gives sensor errors until it is there.
func OpenDS18B20(o DS18B20Opts, env Env) (Sensor, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Root == "" {
		o.Root = W1Root
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	return &ds18b20{o: o, path: filepath.Join(o.Root, o.ID, "w1_slave")}, nil
}

func (d *ds18b20) Name() string   { return d.o.Name }
func (d *ds18b20) Driver() string { return DS18B20Driver }
func (d *ds18b20) Quantities() []Quantity {
	return []Quantity{{Name: "temperature", Unit: "°C"}}
}
func (d *ds18b20) Interval() time.Duration { return d.o.Interval }
func (d *ds18b20) Close() error            { return nil }

// Read reads the probe (the kernel takes up to 750 ms to convert).
func (d *ds18b20) Read(ctx context.Context, dst []float64) error {
	b, err := os.ReadFile(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ds18b20 %s is not on the 1-wire bus (no %s): check its wiring, the 4.7 kΩ pull-up and dtoverlay=w1-gpio; ls %s lists the probes found", d.o.ID, d.path, d.o.Root)
	}
	if err != nil {
		return fmt.Errorf("ds18b20 %s: %w", d.o.ID, err)
	}
	t, err := parseW1Slave(string(b))
	if err != nil {
		return fmt.Errorf("ds18b20 %s: %w", d.o.ID, err)
	}
	dst[0] = t
	return nil
}

// parseW1Slave returns the temperature in °C of a w1_slave file.
func parseW1Slave(s string) (float64, error) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) < 2 {
		return 0, fmt.Errorf("unexpected w1_slave contents %q", s)
	}
	if !strings.HasSuffix(strings.TrimSpace(lines[0]), "YES") {
		return 0, errors.New("CRC error on the 1-wire bus (the kernel says NO): a long cable, a weak or missing pull-up, or interference")
	}
	_, t, ok := strings.Cut(lines[1], "t=")
	if !ok {
		return 0, fmt.Errorf("no temperature in w1_slave %q", lines[1])
	}
	milli, err := strconv.Atoi(strings.TrimSpace(t))
	if err != nil {
		return 0, fmt.Errorf("bad temperature %q in w1_slave", t)
	}
	if milli == 85000 {
		return 0, errors.New("the probe reports 85.000 °C, its power-on value: it has not converted (power lost, or parasite power too weak)")
	}
	if milli < -55000 || milli > 125000 {
		return 0, fmt.Errorf("%.3f °C is outside the probe's range (-55 to 125 °C)", float64(milli)/1000)
	}
	return float64(milli) / 1000, nil
}
