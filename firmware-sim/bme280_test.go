package firmwaresim

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/bmxx80"
)

// The tolerances within which the real driver must decode what the model
// intends.
const (
	tolTemp  = 0.1 // °C
	tolHum   = 0.5 // %RH
	tolPress = 0.1 // hPa
)

var fastOpts = bmxx80.Opts{Temperature: bmxx80.O1x, Pressure: bmxx80.O1x, Humidity: bmxx80.O1x}

// newSimBME280 attaches a fresh model to a fresh bus at 0x76.
func newSimBME280(t *testing.T) (*I2CBus, *BME280) {
	t.Helper()
	b := NewI2CBus("/dev/i2c-1")
	m := NewBME280()
	b.Attach(0x76, m)
	return b, m
}

// openReal opens periph's bmxx80 driver on the simulated bus.
func openReal(t *testing.T, b *I2CBus, opts bmxx80.Opts) *bmxx80.Dev {
	t.Helper()
	d, err := bmxx80.NewI2C(b, 0x76, &opts)
	if err != nil {
		t.Fatalf("bmxx80.NewI2C: %v", err)
	}
	t.Cleanup(func() { d.Halt() })
	return d
}

type reading struct{ temp, hum, press float64 }

func sense(t *testing.T, d *bmxx80.Dev) reading {
	t.Helper()
	var e physic.Env
	if err := d.Sense(&e); err != nil {
		t.Fatalf("Sense: %v", err)
	}
	return toReading(e)
}

func toReading(e physic.Env) reading {
	return reading{
		temp:  e.Temperature.Celsius(),
		hum:   float64(e.Humidity) / float64(physic.PercentRH),
		press: float64(e.Pressure) / float64(100*physic.Pascal),
	}
}

func (r reading) near(want reading) bool {
	return math.Abs(r.temp-want.temp) <= tolTemp && math.Abs(r.hum-want.hum) <= tolHum && math.Abs(r.press-want.press) <= tolPress
}

func TestBME280RealDriverDecodesIntendedValues(t *testing.T) {
	b, m := newSimBME280(t)
	d := openReal(t, b, fastOpts)
	if !strings.HasPrefix(d.String(), "BME280") {
		t.Fatalf("driver identified %s, want a BME280", d)
	}
	for _, temp := range []float64{-40, -12.34, 0, 21.5, 37.8, 60, 85} {
		for _, hum := range []float64{0, 0.7, 33.3, 50, 87.6, 100} {
			for _, press := range []float64{300, 612.5, 1013.25, 1100} {
				want := reading{temp, hum, press}
				if err := m.Set(temp, hum, press); err != nil {
					t.Fatal(err)
				}
				if got := sense(t, d); !got.near(want) {
					t.Errorf("set %+v, driver read %+v", want, got)
				}
			}
		}
	}
}

// Other oversampling settings change the resolution and the measurement
// time; the values must still come through.
func TestBME280Oversampling(t *testing.T) {
	cases := []bmxx80.Opts{
		{Temperature: bmxx80.O1x, Pressure: bmxx80.Off, Humidity: bmxx80.Off},
		{Temperature: bmxx80.O2x, Pressure: bmxx80.O16x, Humidity: bmxx80.O1x},
		bmxx80.DefaultOpts,
		{Temperature: bmxx80.O16x, Pressure: bmxx80.O16x, Humidity: bmxx80.O16x},
	}
	want := reading{-7.25, 71.5, 941.7}
	for _, opts := range cases {
		b, m := newSimBME280(t)
		if err := m.Set(want.temp, want.hum, want.press); err != nil {
			t.Fatal(err)
		}
		got := sense(t, openReal(t, b, opts))
		if math.Abs(got.temp-want.temp) > tolTemp {
			t.Errorf("%+v: temperature %v, want %v", opts, got.temp, want.temp)
		}
		if opts.Pressure != bmxx80.Off && math.Abs(got.press-want.press) > tolPress {
			t.Errorf("%+v: pressure %v, want %v", opts, got.press, want.press)
		}
		if opts.Humidity != bmxx80.Off && math.Abs(got.hum-want.hum) > tolHum {
			t.Errorf("%+v: humidity %v, want %v", opts, got.hum, want.hum)
		}
	}
}

// In normal mode the chip measures on its own; new values show up at the
// next completed cycle (bounded wait, no fixed sleep).
func TestBME280NormalMode(t *testing.T) {
	b, m := newSimBME280(t)
	want := reading{18, 45, 1001}
	if err := m.Set(want.temp, want.hum, want.press); err != nil {
		t.Fatal(err)
	}
	opts := fastOpts
	opts.Filter, opts.Standby = bmxx80.F2, 10*time.Millisecond
	d := openReal(t, b, opts)
	waitFor := func(want reading) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := sense(t, d)
			if got.near(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("normal mode: still reading %+v, want %+v", got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(want)
	want = reading{26, 55, 1019}
	if err := m.Set(want.temp, want.hum, want.press); err != nil {
		t.Fatal(err)
	}
	waitFor(want)
}

func TestBME280WrongChipID(t *testing.T) {
	b, m := newSimBME280(t)
	m.SetChipID(0x42)
	if _, err := bmxx80.NewI2C(b, 0x76, &fastOpts); err == nil || !strings.Contains(err.Error(), "chip id") {
		t.Fatalf("driver accepted chip id 0x42: %v", err)
	}
	// A BMP280's id makes the driver take it for one (no humidity).
	m.SetChipID(0x58)
	d := openReal(t, b, fastOpts)
	if !strings.HasPrefix(d.String(), "BMP280") {
		t.Fatalf("chip id 0x58 identified as %s", d)
	}
	m.SetChipID(BME280ChipID)
	if d := openReal(t, b, fastOpts); !strings.HasPrefix(d.String(), "BME280") {
		t.Fatalf("chip id restored, identified as %s", d)
	}
}

func TestBME280Stuck(t *testing.T) {
	b, m := newSimBME280(t)
	d := openReal(t, b, fastOpts)
	first := reading{20, 50, 1000}
	if err := m.Set(first.temp, first.hum, first.press); err != nil {
		t.Fatal(err)
	}
	if got := sense(t, d); !got.near(first) {
		t.Fatalf("read %+v, want %+v", got, first)
	}
	m.SetStuck(true)
	if err := m.Set(30, 70, 900); err != nil {
		t.Fatal(err)
	}
	if got := sense(t, d); !got.near(first) {
		t.Fatalf("stuck chip changed its reading to %+v", got)
	}
	// Not even a reset and a fresh driver move it.
	m.Reset()
	d = openReal(t, b, fastOpts)
	if got := sense(t, d); !got.near(first) {
		t.Fatalf("stuck chip changed its reading after a reset to %+v", got)
	}
	m.SetStuck(false)
	if got, want := sense(t, d), (reading{30, 70, 900}); !got.near(want) {
		t.Fatalf("unstuck chip reads %+v, want %+v", got, want)
	}
}

// The drifting values stay in their plausible bands, move slowly and do
// move over a (compressed) day. The model's clock is skewed instead of
// waiting.
func TestBME280DriftStaysPlausible(t *testing.T) {
	b, m := newSimBME280(t)
	d := openReal(t, b, fastOpts)
	const step = time.Minute
	lo := reading{math.Inf(1), math.Inf(1), math.Inf(1)}
	hi := reading{math.Inf(-1), math.Inf(-1), math.Inf(-1)}
	var prev reading
	for i := range int(2 * bmeWeather / step) {
		m.mu.Lock()
		m.skew = time.Duration(i) * step
		m.mu.Unlock()
		r := sense(t, d)
		if r.temp < 20-tolTemp || r.temp > 23+tolTemp || r.hum < 40-tolHum || r.hum > 60+tolHum || r.press < 1005-tolPress || r.press > 1020+tolPress {
			t.Fatalf("minute %d: implausible %+v", i, r)
		}
		if i > 0 && (math.Abs(r.temp-prev.temp) > 0.5 || math.Abs(r.hum-prev.hum) > 3 || math.Abs(r.press-prev.press) > 1) {
			t.Fatalf("minute %d: jumped from %+v to %+v", i, prev, r)
		}
		prev = r
		lo = reading{min(lo.temp, r.temp), min(lo.hum, r.hum), min(lo.press, r.press)}
		hi = reading{max(hi.temp, r.temp), max(hi.hum, r.hum), max(hi.press, r.press)}
	}
	if hi.temp-lo.temp < 2 || hi.hum-lo.hum < 12 || hi.press-lo.press < 10 {
		t.Fatalf("drift too small: from %+v to %+v", lo, hi)
	}
	// Set pins, Drift releases.
	if err := m.Set(-30, 5, 400); err != nil {
		t.Fatal(err)
	}
	if got := sense(t, d); !got.near(reading{-30, 5, 400}) {
		t.Fatalf("pinned: %+v", got)
	}
	m.Drift()
	if got := sense(t, d); got.temp < 19 || got.temp > 24 {
		t.Fatalf("released: %+v", got)
	}
}

func TestBME280SetRefusesOutOfRange(t *testing.T) {
	m := NewBME280()
	for _, v := range []reading{{-41, 50, 1000}, {86, 50, 1000}, {20, -1, 1000}, {20, 101, 1000}, {20, 50, 299}, {20, 50, 1101}, {math.NaN(), 50, 1000}, {20, 50, math.Inf(1)}} {
		if err := m.Set(v.temp, v.hum, v.press); err == nil {
			t.Errorf("Set%+v accepted", v)
		}
	}
}

// Register-level behaviour that the driver relies on, checked directly.
func TestBME280Registers(t *testing.T) {
	b, m := newSimBME280(t)
	read := func(reg byte, n int) []byte {
		t.Helper()
		buf := make([]byte, n)
		if err := b.Tx(0x76, []byte{reg}, buf); err != nil {
			t.Fatal(err)
		}
		return buf
	}
	write := func(pairs ...byte) {
		t.Helper()
		if err := b.Tx(0x76, pairs, nil); err != nil {
			t.Fatal(err)
		}
	}
	if id := read(0xD0, 1)[0]; id != 0x60 {
		t.Fatalf("chip id %#x", id)
	}
	if got := read(0xF7, 8); string(got) != "\x80\x00\x00\x80\x00\x00\x80\x00" {
		t.Fatalf("data registers after power-on: % x", got)
	}
	cal := read(0x88, 2)
	if v := uint16(cal[0]) | uint16(cal[1])<<8; v != bmeDefaultCal.t1 {
		t.Fatalf("dig_T1 reads %d", v)
	}
	// Writes are address/value pairs in one transaction.
	write(0xF2, 0x01, 0xF5, 0xA0, 0xF4, 0x24)
	if got := read(0xF2, 4); got[0] != 0x01 || got[2] != 0x24 || got[3] != 0xA0 {
		t.Fatalf("ctrl_hum, status, ctrl_meas, config: % x", got)
	}
	// Read-only registers ignore writes.
	write(0xD0, 0x11, 0x88, 0x00)
	if read(0xD0, 1)[0] != 0x60 || read(0x88, 1)[0] != cal[0] {
		t.Fatal("a write changed a read-only register")
	}
	// A forced measurement: measuring, then back to sleep with new data.
	if err := m.Set(25, 50, 1000); err != nil {
		t.Fatal(err)
	}
	write(0xF4, 0x25)
	if s := read(0xF3, 1)[0]; s&0x08 == 0 {
		t.Fatalf("status %#x right after a forced start, want measuring", s)
	}
	deadline := time.Now().Add(2 * time.Second)
	for read(0xF3, 1)[0]&0x08 != 0 {
		if time.Now().After(deadline) {
			t.Fatal("forced measurement never ended")
		}
		time.Sleep(time.Millisecond)
	}
	if mode := read(0xF4, 1)[0] & 3; mode != 0 {
		t.Fatalf("mode %d after a forced measurement, want sleep", mode)
	}
	if got := read(0xF7, 8); got[0] == 0x80 && got[3] == 0x80 {
		t.Fatalf("data registers not updated: % x", got)
	}
	// Soft reset: control registers back to 0, data back to reset values.
	write(0xE0, 0xB6)
	if got := read(0xF2, 4); got[0] != 0 || got[2] != 0 || got[3] != 0 {
		t.Fatalf("after soft reset: % x", got)
	}
	if got := read(0xFD, 2); got[0] != 0x80 || got[1] != 0 {
		t.Fatalf("humidity after soft reset: % x", got)
	}
	// NACK comes from the bus.
	b.SetNACK(0x76, true)
	if err := b.Tx(0x76, []byte{0xD0}, make([]byte, 1)); err == nil {
		t.Fatal("NACK did not fail the transaction")
	}
}

func TestBME280Populate(t *testing.T) {
	h := NewHardware(nil)
	defer h.Close()
	own := NewBME280()
	h.I2C("/dev/i2c-1").Attach(0x77, own)
	devs := Devices{BME280s: []I2CChip{
		{Bus: "/dev/i2c-1", Address: 0x76},
		{Bus: "/dev/i2c-1", Address: 0x77},
	}}
	if err := h.Populate(devs); err != nil {
		t.Fatal(err)
	}
	if h.BME280("/dev/i2c-1", 0x76) == nil {
		t.Fatal("no BME280 attached for the room sensor")
	}
	if h.BME280("/dev/i2c-1", 0x77) != own {
		t.Fatal("Populate replaced a chip that was already there")
	}
	if h.BME280("/dev/i2c-2", 0x76) != nil || h.BME280("/dev/i2c-1", 0x20) != nil {
		t.Fatal("BME280 found where there is none")
	}
}

func TestI2CControlAPI(t *testing.T) {
	h := NewHardware(nil)
	defer h.Close()
	srv := httptest.NewServer(Handler(h))
	defer srv.Close()
	do := func(method, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}

	// No bus yet: an empty list, and 404 for any chip.
	if code, body := do("GET", "/sim/i2c"); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Fatalf("empty hardware: %d %s", code, body)
	}
	if code, _ := do("POST", "/sim/i2c/0x76?nack=1"); code != 404 {
		t.Fatalf("no bus: %d", code)
	}

	if err := h.Populate(Devices{BME280s: []I2CChip{{Bus: "/dev/i2c-1", Address: 0x76}}}); err != nil {
		t.Fatal(err)
	}
	code, body := do("GET", "/sim/i2c")
	var buses []i2cBusView
	if err := json.Unmarshal([]byte(body), &buses); err != nil || code != 200 {
		t.Fatalf("GET /sim/i2c: %d %s (%v)", code, body, err)
	}
	if len(buses) != 1 || buses[0].Bus != "/dev/i2c-1" || len(buses[0].Chips) != 1 {
		t.Fatalf("buses %s", body)
	}
	if c := buses[0].Chips[0]; c.Address != "0x76" || c.Kind != "bme280" || c.NACK || c.ChipID != "0x60" || c.Temperature == nil {
		t.Fatalf("chip %s", body)
	}

	b := h.I2C("/dev/i2c-1")
	m := h.BME280("/dev/i2c-1", 0x76)
	d := openReal(t, b, fastOpts)

	// Pin values (bus may be left out: there is one); a subset keeps the rest.
	if code, body := do("POST", "/sim/i2c/0x76?temperature=-5.5&humidity=80&pressure=990.5"); code != 200 || !strings.Contains(body, `"pinned":true`) {
		t.Fatalf("pin values: %d %s", code, body)
	}
	if got := sense(t, d); !got.near(reading{-5.5, 80, 990.5}) {
		t.Fatalf("after POST read %+v", got)
	}
	if code, body := do("POST", "/sim/i2c/118?bus=/dev/i2c-1&humidity=30"); code != 200 {
		t.Fatalf("pin humidity: %d %s", code, body)
	}
	if got := sense(t, d); !got.near(reading{-5.5, 30, 990.5}) {
		t.Fatalf("after POST humidity read %+v", got)
	}

	// Stuck, then released.
	if code, body := do("POST", "/sim/i2c/0x76?stuck=1"); code != 200 || !m.Stuck() {
		t.Fatalf("stuck: %d %s", code, body)
	}
	do("POST", "/sim/i2c/0x76?temperature=30")
	if got := sense(t, d); math.Abs(got.temp+5.5) > tolTemp {
		t.Fatalf("stuck chip read %+v", got)
	}
	if code, _ := do("POST", "/sim/i2c/0x76?stuck=0"); code != 200 {
		t.Fatal(code)
	}
	if got := sense(t, d); math.Abs(got.temp-30) > tolTemp {
		t.Fatalf("released chip read %+v", got)
	}

	// NACK, and back.
	if code, body := do("POST", "/sim/i2c/0x76?nack=1"); code != 200 || !strings.Contains(body, `"nack":true`) {
		t.Fatalf("nack: %d %s", code, body)
	}
	if err := d.Sense(&physic.Env{}); err == nil {
		t.Fatal("driver read through a NACK")
	}
	do("POST", "/sim/i2c/0x76?nack=0")
	sense(t, d)

	// Chip id, then drift and reset.
	if code, body := do("POST", "/sim/i2c/0x76?chipid=0x58"); code != 200 || m.ChipID() != 0x58 || !strings.Contains(body, `"chip_id":"0x58"`) {
		t.Fatalf("chipid: %d %s", code, body)
	}
	if _, err := bmxx80.NewI2C(b, 0x76, &fastOpts); err != nil {
		t.Fatal(err) // taken for a BMP280, as a real one would be
	}
	do("POST", "/sim/i2c/0x76?chipid=96")
	if code, body := do("POST", "/sim/i2c/0x76?drift=1&reset=1"); code != 200 || !strings.Contains(body, `"pinned":false`) {
		t.Fatalf("drift: %d %s", code, body)
	}
	if code, body := do("GET", "/sim/i2c/0x76"); code != 200 || !strings.Contains(body, `"chip_id":"0x60"`) {
		t.Fatalf("GET chip: %d %s", code, body)
	}

	// Bad requests change nothing.
	m.SetChipID(BME280ChipID)
	if err := m.Set(10, 20, 1000); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		path string
		code int
		hint string
	}{
		{"/sim/i2c/0x76?temperature=hot", 400, "not a number"},
		{"/sim/i2c/0x76?temperature=99", 400, "range"},
		{"/sim/i2c/0x76?nack=1&pressure=2000", 400, "range"},
		{"/sim/i2c/0x76?nack=maybe", 400, "nack"},
		{"/sim/i2c/0x76?chipid=0x600", 400, "chipid"},
		{"/sim/i2c/0x76?stuck=1&colour=red", 400, "unknown parameter"},
		{"/sim/i2c/0x76?drift=1&temperature=20", 400, "one or the other"},
		{"/sim/i2c/0x76", 400, "nothing to change"},
		{"/sim/i2c/0x80?nack=1", 400, "7-bit"},
		{"/sim/i2c/banana?nack=1", 400, "7-bit"},
		{"/sim/i2c/0x77?nack=1", 404, "no simulated chip at 0x77"},
		{"/sim/i2c/0x76?bus=/dev/i2c-7&nack=1", 404, "/dev/i2c-1"},
	}
	for _, c := range bad {
		code, body := do("POST", c.path)
		if code != c.code || !strings.Contains(body, c.hint) {
			t.Errorf("POST %s: %d %q, want %d mentioning %q", c.path, code, body, c.code, c.hint)
		}
	}
	if temp, hum, press, pinned := m.Values(); !pinned || temp != 10 || hum != 20 || press != 1000 || m.Stuck() {
		t.Fatalf("a bad request changed the chip: %v %v %v %v", temp, hum, press, pinned)
	}
	b.mu.Lock()
	nack := b.nack[0x76]
	b.mu.Unlock()
	if nack {
		t.Fatal("a bad request set NACK")
	}

	// Other chips: listed by their type, only nack applies.
	b.Attach(0x21, &otherChip{})
	if code, body := do("GET", "/sim/i2c/0x21"); code != 200 || !strings.Contains(body, `"kind":"otherchip"`) {
		t.Fatalf("GET other chip: %d %s", code, body)
	}
	if code, body := do("POST", "/sim/i2c/0x21?stuck=1"); code != 400 || !strings.Contains(body, "only nack applies") {
		t.Fatalf("stuck on another chip: %d %s", code, body)
	}
	if code, body := do("POST", "/sim/i2c/0x21?nack=1"); code != 200 || !strings.Contains(body, `"nack":true`) {
		t.Fatalf("nack on another chip: %d %s", code, body)
	}

	// With two buses, the bus must be named.
	h.I2C("/dev/i2c-0")
	if code, body := do("POST", "/sim/i2c/0x76?nack=0"); code != 400 || !strings.Contains(body, "/dev/i2c-0, /dev/i2c-1") {
		t.Fatalf("two buses, no bus named: %d %s", code, body)
	}
}

type otherChip struct{}

func (*otherChip) Tx(w, r []byte) error { return nil }
