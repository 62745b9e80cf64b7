package firmwaresim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// i2cBusView is one bus in GET /sim/i2c.
type i2cBusView struct {
	Bus          string        `json:"bus"`
	Transactions int           `json:"transactions"`
	Chips        []i2cChipView `json:"chips"`
}

// i2cChipView is one chip on a bus. The BME280 fields are present for a
// BME280 only.
type i2cChipView struct {
	Address string `json:"address"` // "0x76"
	Kind    string `json:"kind"`    // "bme280", or the chip's Go type
	NACK    bool   `json:"nack"`

	ChipID      string   `json:"chip_id,omitempty"`
	Stuck       *bool    `json:"stuck,omitempty"`
	Pinned      *bool    `json:"pinned,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"` // °C
	Humidity    *float64 `json:"humidity,omitempty"`    // %RH
	Pressure    *float64 `json:"pressure,omitempty"`    // hPa

	Inputs []float64 `json:"inputs,omitempty"` // an ads1115: AIN0..AIN3, volts
}

// chipKind names a chip: chips that know their kind say it (Kind() string),
// others are named by their type.
func chipKind(d I2CDevice) string {
	if k, ok := d.(interface{ Kind() string }); ok {
		return k.Kind()
	}
	s := fmt.Sprintf("%T", d)
	return strings.ToLower(s[strings.LastIndex(s, ".")+1:])
}

func viewChip(addr uint16, d I2CDevice, nack bool) i2cChipView {
	v := i2cChipView{Address: fmt.Sprintf("0x%02x", addr), Kind: chipKind(d), NACK: nack}
	if m, ok := d.(*BME280); ok {
		temp, hum, press, pinned := m.Values()
		stuck := m.Stuck()
		v.ChipID = fmt.Sprintf("0x%02x", m.ChipID())
		v.Stuck, v.Pinned = &stuck, &pinned
		v.Temperature, v.Humidity, v.Pressure = &temp, &hum, &press
	}
	if a, ok := d.(*ADS1115); ok {
		in := a.Inputs()
		v.Inputs = in[:]
	}
	return v
}

// i2cBuses returns the buses created so far, sorted by name.
func i2cBuses(h *Hardware) []*I2CBus {
	h.mu.Lock()
	defer h.mu.Unlock()
	bs := make([]*I2CBus, 0, len(h.i2cs))
	for _, b := range h.i2cs {
		bs = append(bs, b)
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].name < bs[j].name })
	return bs
}

// viewBus describes a bus and its chips, sorted by address. The chips are
// described after the bus lock is released (they have locks of their own).
func viewBus(b *I2CBus) i2cBusView {
	type entry struct {
		addr uint16
		dev  I2CDevice
		nack bool
	}
	b.mu.Lock()
	v := i2cBusView{Bus: b.name, Transactions: b.txCount, Chips: []i2cChipView{}}
	es := make([]entry, 0, len(b.devices))
	for a, d := range b.devices {
		es = append(es, entry{a, d, b.nack[a]})
	}
	b.mu.Unlock()
	sort.Slice(es, func(i, j int) bool { return es[i].addr < es[j].addr })
	for _, e := range es {
		v.Chips = append(v.Chips, viewChip(e.addr, e.dev, e.nack))
	}
	return v
}

// findBus resolves the bus query parameter: the named bus, or the only bus
// when none is named.
func findBus(h *Hardware, name string) (*I2CBus, int, error) {
	bs := i2cBuses(h)
	names := make([]string, len(bs))
	for i, b := range bs {
		if b.name == name {
			return b, 0, nil
		}
		names[i] = b.name
	}
	switch {
	case len(bs) == 0:
		return nil, http.StatusNotFound, errors.New("there is no simulated I2C bus (no I2C device is configured)")
	case name == "" && len(bs) == 1:
		return bs[0], 0, nil
	case name == "":
		return nil, http.StatusBadRequest, fmt.Errorf("bus: missing; there are several buses, give one of: %s", strings.Join(names, ", "))
	}
	return nil, http.StatusNotFound, fmt.Errorf("bus: no simulated I2C bus %q; the buses are: %s", name, strings.Join(names, ", "))
}

// parseI2CAddress reads a 7-bit address written as 0x76 or 118.
func parseI2CAddress(s string) (uint16, error) {
	v, err := strconv.ParseUint(s, 0, 16)
	if err != nil || v > 0x7F {
		return 0, fmt.Errorf("address %q is not a 7-bit I2C address; write it like 0x76", s)
	}
	return uint16(v), nil
}

func parseSwitch(name, s string) (bool, error) {
	switch s {
	case "1", "true", "on":
		return true, nil
	case "0", "false", "off":
		return false, nil
	}
	return false, fmt.Errorf("%s: %q is not 1 or 0", name, s)
}

// i2cChange is a validated POST /sim/i2c/{addr}: nil fields are left alone.
type i2cChange struct {
	nack, stuck, drift, reset *bool
	chipID                    *byte
	temp, hum, press          *float64
	adc                       [4]*float64 // an ads1115's inputs, volts
}

var i2cParams = []string{"bus", "nack", "chipid", "stuck", "temperature", "humidity", "pressure", "drift", "reset", "ch0", "ch1", "ch2", "ch3"}

// parseI2CChange validates every parameter before anything is applied, so
// that a bad request changes nothing.
func parseI2CChange(q url.Values, d I2CDevice) (*i2cChange, error) {
	for k := range q {
		if !slices.Contains(i2cParams, k) {
			return nil, fmt.Errorf("unknown parameter %q; use %s", k, strings.Join(i2cParams, ", "))
		}
	}
	var c i2cChange
	sw := func(name string, dst **bool) error {
		if !q.Has(name) {
			return nil
		}
		v, err := parseSwitch(name, q.Get(name))
		if err != nil {
			return err
		}
		*dst = &v
		return nil
	}
	num := func(name, unit string, dst **float64) error {
		if !q.Has(name) {
			return nil
		}
		v, err := strconv.ParseFloat(q.Get(name), 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number (in %s)", name, q.Get(name), unit)
		}
		*dst = &v
		return nil
	}
	if err := errors.Join(sw("nack", &c.nack), sw("stuck", &c.stuck), sw("drift", &c.drift), sw("reset", &c.reset),
		num("temperature", "°C", &c.temp), num("humidity", "%RH", &c.hum), num("pressure", "hPa", &c.press),
		num("ch0", "V", &c.adc[0]), num("ch1", "V", &c.adc[1]), num("ch2", "V", &c.adc[2]), num("ch3", "V", &c.adc[3])); err != nil {
		return nil, err
	}
	if q.Has("chipid") {
		v, err := strconv.ParseUint(q.Get("chipid"), 0, 8)
		if err != nil {
			return nil, fmt.Errorf("chipid: %q is not a byte; write it like 0x60 (BME280) or 0x58 (BMP280)", q.Get("chipid"))
		}
		id := byte(v)
		c.chipID = &id
	}
	setsADC := c.adc[0] != nil || c.adc[1] != nil || c.adc[2] != nil || c.adc[3] != nil
	if c.nack == nil && c.stuck == nil && c.drift == nil && c.reset == nil && c.chipID == nil && c.temp == nil && c.hum == nil && c.press == nil && !setsADC {
		return nil, fmt.Errorf("nothing to change; use one or more of %s", strings.Join(i2cParams[1:], ", "))
	}
	bmeOnly := c.stuck != nil || c.drift != nil || c.reset != nil || c.chipID != nil || c.temp != nil || c.hum != nil || c.press != nil
	m, isBME := d.(*BME280)
	if bmeOnly && !isBME {
		return nil, fmt.Errorf("the chip is a %s: only nack applies to it (chipid, stuck, temperature, humidity, pressure, drift and reset are for a bme280)", chipKind(d))
	}
	if _, isADC := d.(*ADS1115); setsADC {
		if !isADC {
			return nil, fmt.Errorf("the chip is a %s: ch0..ch3 are for an ads1115", chipKind(d))
		}
		for i, v := range c.adc {
			if v != nil {
				// check only: the same check SetInput makes
				if err := (&ADS1115{}).SetInput(i, *v); err != nil {
					return nil, fmt.Errorf("ch%d: %w", i, err)
				}
			}
		}
	}
	setsValues := c.temp != nil || c.hum != nil || c.press != nil
	if setsValues && c.drift != nil && *c.drift {
		return nil, errors.New("drift=1 releases pinned values, temperature/humidity/pressure pin them: give one or the other")
	}
	if setsValues {
		t, h, p, _ := m.Values()
		if c.temp != nil {
			t = *c.temp
		}
		if c.hum != nil {
			h = *c.hum
		}
		if c.press != nil {
			p = *c.press
		}
		if err := CheckBME280Values(t, h, p); err != nil {
			return nil, err
		}
		c.temp, c.hum, c.press = &t, &h, &p
	}
	return &c, nil
}

// apply carries out a validated change.
func (c *i2cChange) apply(b *I2CBus, addr uint16, d I2CDevice) error {
	if c.nack != nil {
		b.SetNACK(addr, *c.nack)
	}
	if a, ok := d.(*ADS1115); ok {
		for i, v := range c.adc {
			if v != nil {
				if err := a.SetInput(i, *v); err != nil {
					return err
				}
			}
		}
	}
	m, ok := d.(*BME280)
	if !ok {
		return nil
	}
	if c.reset != nil && *c.reset {
		m.Reset()
	}
	if c.chipID != nil {
		m.SetChipID(*c.chipID)
	}
	if c.stuck != nil {
		m.SetStuck(*c.stuck)
	}
	if c.drift != nil && *c.drift {
		m.Drift()
	}
	if c.temp != nil {
		return m.Set(*c.temp, *c.hum, *c.press)
	}
	return nil
}

// registerI2C adds the I2C part of the control API (documented on Handler).
func registerI2C(mux *http.ServeMux, h *Hardware) {
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	// chip finds the chip a request names, or answers the error itself.
	chip := func(w http.ResponseWriter, r *http.Request) (*I2CBus, uint16, I2CDevice, bool) {
		addr, err := parseI2CAddress(r.PathValue("addr"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return nil, 0, nil, false
		}
		b, code, err := findBus(h, r.URL.Query().Get("bus"))
		if err != nil {
			http.Error(w, err.Error(), code)
			return nil, 0, nil, false
		}
		d := b.Device(addr)
		if d == nil {
			http.Error(w, fmt.Sprintf("no simulated chip at 0x%02x on %s", addr, b.name), http.StatusNotFound)
			return nil, 0, nil, false
		}
		return b, addr, d, true
	}
	mux.HandleFunc("GET /sim/i2c", func(w http.ResponseWriter, r *http.Request) {
		out := []i2cBusView{}
		for _, b := range i2cBuses(h) {
			out = append(out, viewBus(b))
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("GET /sim/i2c/{addr}", func(w http.ResponseWriter, r *http.Request) {
		b, addr, d, ok := chip(w, r)
		if !ok {
			return
		}
		b.mu.Lock()
		nack := b.nack[addr]
		b.mu.Unlock()
		writeJSON(w, viewChip(addr, d, nack))
	})
	mux.HandleFunc("POST /sim/i2c/{addr}", func(w http.ResponseWriter, r *http.Request) {
		b, addr, d, ok := chip(w, r)
		if !ok {
			return
		}
		c, err := parseI2CChange(r.URL.Query(), d)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := c.apply(b, addr, d); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		nack := b.nack[addr]
		b.mu.Unlock()
		writeJSON(w, viewChip(addr, d, nack))
	})
}
