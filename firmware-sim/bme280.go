package firmwaresim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/edgegate/edgegate/drivers/i2cbus"
)

// attachBME280 puts a simulated BME280 at the chip's bus and address, unless
// a chip is already there (a test may have attached its own).
func attachBME280(h *Hardware, s I2CChip) error {
	if s.Address < 0 || s.Address > 0x7F {
		return fmt.Errorf("I2C address %#x is not a 7-bit address", s.Address)
	}
	return attachChip(h, s, func() I2CDevice { return NewBME280() })
}

// attachChip puts the chip newChip makes at c's bus and address, unless a
// chip is there already.
func attachChip(h *Hardware, c I2CChip, newChip func() I2CDevice) error {
	if c.Bus == "" {
		return errors.New("no I2C bus given")
	}
	b := h.I2C(c.Bus)
	if b.Device(uint16(c.Address)) == nil {
		b.Attach(uint16(c.Address), newChip())
	}
	return nil
}

// BME280 returns the simulated BME280 at addr on the named bus, or nil when
// there is no such bus or the chip there is not a BME280.
func (h *Hardware) BME280(bus string, addr uint16) *BME280 {
	h.mu.Lock()
	b := h.i2cs[i2cbus.Key(bus)]
	h.mu.Unlock()
	if b == nil {
		return nil
	}
	m, _ := b.Device(addr).(*BME280)
	return m
}

// BME280 registers (datasheet section 5.3).
const (
	bmeRegCalib0   = 0x88 // 0x88..0xA1: dig_T1..dig_P9, a spare byte, dig_H1
	bmeRegChipID   = 0xD0
	bmeRegReset    = 0xE0
	bmeRegCalib26  = 0xE1 // 0xE1..0xE7: dig_H2..dig_H6
	bmeRegCtrlHum  = 0xF2
	bmeRegStatus   = 0xF3
	bmeRegCtrlMeas = 0xF4
	bmeRegConfig   = 0xF5
	bmeRegData     = 0xF7 // 0xF7..0xFE: press msb/lsb/xlsb, temp msb/lsb/xlsb, hum msb/lsb

	bmeResetWord = 0xB6

	// BME280ChipID is what a genuine BME280 answers at register 0xD0.
	BME280ChipID = 0x60

	bmeStatusMeasuring = 1 << 3
	bmeStatusImUpdate  = 1 << 0

	// Skipped measurements (oversampling 0) read as these values, which
	// are also the data registers' reset values.
	bmeSkipped20 = 0x80000
	bmeSkipped16 = 0x8000

	bmeNVMCopy = 2 * time.Millisecond // im_update after power-on or soft reset
)

// The measurement range of the part (datasheet section 1): Set refuses
// values outside it.
const (
	BME280MinTemperature, BME280MaxTemperature = -40.0, 85.0   // °C
	BME280MinHumidity, BME280MaxHumidity       = 0.0, 100.0    // %RH
	BME280MinPressure, BME280MaxPressure       = 300.0, 1100.0 // hPa
)

// bmeCal is a chip's trimming parameters (datasheet table 16). Every chip
// has its own; these are a plausible set, of the size real parts carry.
type bmeCal struct {
	t1                             uint16
	t2, t3                         int16
	p1                             uint16
	p2, p3, p4, p5, p6, p7, p8, p9 int16
	h1, h3                         uint8
	h2, h4, h5                     int16
	h6                             int8
}

var bmeDefaultCal = bmeCal{
	t1: 28109, t2: 26470, t3: 50,
	p1: 37142, p2: -10560, p3: 3024, p4: 6983, p5: -17, p6: -7, p7: 9900, p8: -10230, p9: 4285,
	h1: 75, h2: 359, h3: 0, h4: 324, h5: 50, h6: 30,
}

// store writes the parameters into the chip's register file, little-endian,
// with dig_H4 and dig_H5 sharing register 0xE5 as the datasheet lays them out.
func (c *bmeCal) store(regs *[256]byte) {
	put16 := func(at int, v uint16) { regs[at], regs[at+1] = byte(v), byte(v>>8) }
	put16(0x88, c.t1)
	put16(0x8A, uint16(c.t2))
	put16(0x8C, uint16(c.t3))
	put16(0x8E, c.p1)
	for i, p := range []int16{c.p2, c.p3, c.p4, c.p5, c.p6, c.p7, c.p8, c.p9} {
		put16(0x90+2*i, uint16(p))
	}
	regs[0xA1] = c.h1
	put16(0xE1, uint16(c.h2))
	regs[0xE3] = c.h3
	regs[0xE4] = byte(c.h4 >> 4)
	regs[0xE5] = byte(c.h4&0x0F) | byte(c.h5&0x0F)<<4
	regs[0xE6] = byte(c.h5 >> 4)
	regs[0xE7] = byte(c.h6)
}

// The compensation formulas below are the integer ones of the datasheet
// (section 4.2.3), with the datasheet's integer widths: what any driver
// computes from the raw registers. The model inverts them to know which raw
// values to present.

// temperature returns t_fine and the temperature in 0.01 °C.
func (c *bmeCal) temperature(adc int32) (tFine, centi int32) {
	a := ((adc>>3 - int32(c.t1)<<1) * int32(c.t2)) >> 11
	d := adc>>4 - int32(c.t1)
	b := (((d * d) >> 12) * int32(c.t3)) >> 14
	tFine = a + b
	return tFine, (tFine*5 + 128) >> 8
}

// pressure returns the pressure in Pa as Q24.8.
func (c *bmeCal) pressure(adc, tFine int32) uint32 {
	v1 := int64(tFine) - 128000
	v2 := v1*v1*int64(c.p6) + (v1*int64(c.p5))<<17 + int64(c.p4)<<35
	v1 = (v1*v1*int64(c.p3))>>8 + (v1*int64(c.p2))<<12
	v1 = ((int64(1)<<47 + v1) * int64(c.p1)) >> 33
	if v1 == 0 {
		return 0 // the datasheet's guard against a division by zero
	}
	p := int64(1048576 - adc)
	p = ((p<<31 - v2) * 3125) / v1
	v1 = (int64(c.p9) * (p >> 13) * (p >> 13)) >> 25
	v2 = (int64(c.p8) * p) >> 19
	return uint32((p+v1+v2)>>8 + int64(c.p7)<<4)
}

// humidity returns the relative humidity in %RH as Q22.10.
func (c *bmeCal) humidity(adc, tFine int32) uint32 {
	x := tFine - 76800
	u := adc<<14 - int32(c.h4)<<20 - int32(c.h5)*x
	u = (u + 16384) >> 15
	s := ((((x*int32(c.h6))>>10)*(((x*int32(c.h3))>>11)+32768))>>10 + 2097152)
	x = u * ((s*int32(c.h2) + 8192) >> 14)
	x -= (((x >> 15) * (x >> 15)) >> 7) * int32(c.h1) >> 4
	x = min(max(x, 0), 419430400)
	return uint32(x >> 12)
}

// solveADC returns the raw value in [0, top] whose compensated value f is
// nearest to want, by bisection: f must be monotonic, increasing when up.
func solveADC(top int32, up bool, want float64, f func(int32) float64) int32 {
	reached := func(r int32) bool {
		if up {
			return f(r) >= want
		}
		return f(r) <= want
	}
	lo, hi := int32(0), top
	for lo < hi {
		mid := lo + (hi-lo)/2
		if reached(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo > 0 && math.Abs(f(lo-1)-want) < math.Abs(f(lo)-want) {
		return lo - 1
	}
	return lo
}

// quantise keeps only the bits a measurement at that oversampling delivers
// (16 bits at 1x up to 20 bits at 16x, datasheet section 3.4), picking the
// representable value nearest in f.
func quantise(raw int32, bits uint, top int32, want float64, f func(int32) float64) int32 {
	step := int32(1) << (20 - bits)
	lo := raw &^ (step - 1)
	hi := min(lo+step, top&^(step-1))
	if math.Abs(f(hi)-want) < math.Abs(f(lo)-want) {
		return hi
	}
	return lo
}

// bmeRaw computes the raw ADC values (20-bit pressure and temperature,
// 16-bit humidity) for which the datasheet compensation gives temp (°C),
// hum (%RH) and press (hPa). Temperature comes first because its t_fine
// enters the other two. osT and osP are the ctrl_meas oversampling codes,
// used for the resolution (1x: 16 bits ... 16x: 20 bits).
func (c *bmeCal) raw(temp, hum, press float64, osT, osP byte) (adcT, adcH, adcP int32) {
	const top20, top16 = 1<<20 - 1, 1<<16 - 1
	fT := func(r int32) float64 { _, t := c.temperature(r); return float64(t) / 100 }
	adcT = solveADC(top20, true, temp, fT)
	adcT = quantise(adcT, resolution(osT), top20, temp, fT)
	tFine, _ := c.temperature(adcT)

	fP := func(r int32) float64 { return float64(c.pressure(r, tFine)) / 256 / 100 }
	adcP = solveADC(top20, false, press, fP)
	adcP = quantise(adcP, resolution(osP), top20, press, fP)

	fH := func(r int32) float64 { return float64(c.humidity(r, tFine)) / 1024 }
	adcH = solveADC(top16, true, hum, fH)
	return adcT, adcH, adcP
}

// resolution is the number of significant bits of a 20-bit result at an
// oversampling code.
func resolution(os byte) uint {
	if os == 0 {
		return 16
	}
	return 15 + uint(min(os, 5))
}

// osFactor is the number of samples an oversampling code takes (codes 5..7
// are all 16x).
func osFactor(os byte) int {
	switch os {
	case 0:
		return 0
	case 1, 2, 3, 4:
		return 1 << (os - 1)
	}
	return 16
}

// BME280 is a register-level model of a Bosch BME280 on I2C: chip id,
// soft reset, trimming parameters, ctrl_hum/ctrl_meas/config, status, and
// burst-readable data registers whose raw ADC values make the datasheet
// compensation (and so any real driver) decode the values the model intends.
//
// Sleep, forced and normal modes behave as on the part: a forced
// measurement takes the datasheet's typical measurement time (status bit 3
// "measuring" meanwhile) and returns the chip to sleep; normal mode cycles
// measurement and standby (config t_sb) forever. The data registers change
// only when a measurement completes. The IIR filter setting is stored but
// not applied: readings are the settled values.
//
// The intended values drift by default (a compressed day of 24 minutes:
// 20–23 °C, 40–60 %RH anti-correlated, 1005–1020 hPa over a slower
// "weather" cycle, plus a little noise per measurement); Set pins them.
// Faults: SetChipID (a wrong part), SetStuck (frozen data registers), and
// NACK through the bus's SetNACK.
type BME280 struct {
	mu  sync.Mutex
	cal bmeCal
	rng *rand.Rand

	regs     [256]byte // trimming parameters and data registers
	ptr      byte      // register address pointer
	chipID   byte
	ctrlHum  byte // as written
	osH      byte // the ctrl_hum oversampling in effect (latched by a ctrl_meas write)
	ctrlMeas byte
	config   byte

	nvmUntil   time.Time // im_update is set until then
	measEnd    time.Time // forced: end of the measurement in progress
	forcedBusy bool
	normalFrom time.Time // normal mode: start of the first cycle
	lastCycle  int64     // normal mode: index of the last cycle latched, -1 none

	pinned           bool
	temp, hum, press float64 // pinned values
	phase            float64 // this chip's offset in the drift cycles, in [0, 1)
	stuck            bool
	skew             time.Duration // added to the clock for the drift (tests)
}

var _ I2CDevice = (*BME280)(nil)

// NewBME280 returns a powered-up BME280 in sleep mode with drifting values.
func NewBME280() *BME280 {
	seed := uint64(time.Now().UnixNano())
	m := &BME280{cal: bmeDefaultCal, chipID: BME280ChipID, rng: rand.New(rand.NewPCG(seed, seed>>7^0x5eed))}
	m.phase = m.rng.Float64()
	m.resetLocked(time.Now())
	return m
}

// Kind names the chip for the control API.
func (*BME280) Kind() string { return "bme280" }

// resetLocked is power-on and soft reset: every control register back to
// its default, data registers to their reset values (unless stuck), the
// trimming parameters copied again from NVM.
func (m *BME280) resetLocked(now time.Time) {
	m.ctrlHum, m.osH, m.ctrlMeas, m.config = 0, 0, 0, 0
	m.forcedBusy = false
	m.lastCycle = -1
	m.cal.store(&m.regs)
	m.nvmUntil = now.Add(bmeNVMCopy)
	if !m.stuck {
		m.putData(bmeSkipped20, bmeSkipped20, bmeSkipped16)
	}
}

// Reset resets the chip as a brown-out would: control registers lose what
// the driver configured.
func (m *BME280) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resetLocked(time.Now())
}

// SetChipID makes the chip answer id at register 0xD0 (BME280ChipID is a
// BME280, 0x58 a BMP280, anything else an unknown part).
func (m *BME280) SetChipID(id byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.chipID = id
}

// ChipID is what the chip answers at register 0xD0.
func (m *BME280) ChipID() byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.chipID
}

// SetStuck freezes the data registers (true): measurements, Set, drift and
// resets no longer change what is read; false lets them move again from
// the next measurement.
func (m *BME280) SetStuck(stuck bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stuck = stuck
}

// Stuck tells whether the data registers are frozen.
func (m *BME280) Stuck() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stuck
}

// CheckBME280Values tells whether a BME280 can report these values: each
// must be finite and within the part's operating range.
func CheckBME280Values(temp, hum, press float64) error {
	check := func(name string, v, lo, hi float64, unit string) error {
		if math.IsNaN(v) || v < lo || v > hi {
			return fmt.Errorf("%s %v %s is outside the BME280's range %v..%v %s", name, v, unit, lo, hi, unit)
		}
		return nil
	}
	return errors.Join(
		check("temperature", temp, BME280MinTemperature, BME280MaxTemperature, "°C"),
		check("humidity", hum, BME280MinHumidity, BME280MaxHumidity, "%RH"),
		check("pressure", press, BME280MinPressure, BME280MaxPressure, "hPa"),
	)
}

// Set pins the values the chip measures from its next measurement on:
// temperature in °C, relative humidity in %RH, pressure in hPa, without
// drift or noise. Values outside the part's range are refused.
func (m *BME280) Set(temp, hum, press float64) error {
	if err := CheckBME280Values(temp, hum, press); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pinned, m.temp, m.hum, m.press = true, temp, hum, press
	return nil
}

// Drift releases pinned values: the chip measures the drifting ones again.
func (m *BME280) Drift() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pinned = false
}

// Values returns the values the chip would measure now (without noise) and
// whether they are pinned by Set.
func (m *BME280) Values() (temp, hum, press float64, pinned bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pinned {
		return m.temp, m.hum, m.press, true
	}
	temp, hum, press = m.driftAt(time.Now().Add(m.skew))
	return temp, hum, press, false
}

// The drift: a compressed day, and a slower weather cycle for pressure.
const (
	bmeDay     = 24 * time.Minute
	bmeWeather = 97 * time.Minute
)

// driftAt is the noiseless drifting environment at t.
func (m *BME280) driftAt(t time.Time) (temp, hum, press float64) {
	cycle := func(period time.Duration) float64 {
		f := float64(t.UnixNano()%int64(period))/float64(period) + m.phase
		return 2 * math.Pi * f
	}
	day := cycle(bmeDay)
	temp = 21.5 - 1.4*math.Cos(day) // coolest at "night"
	hum = 50 + 9*math.Cos(day)      // damper when cooler
	press = 1012.5 + 7*math.Sin(cycle(bmeWeather))
	return temp, hum, press
}

// measureLocked is what one measurement at t yields.
func (m *BME280) measureLocked(t time.Time) (temp, hum, press float64) {
	if m.pinned {
		return m.temp, m.hum, m.press
	}
	temp, hum, press = m.driftAt(t.Add(m.skew))
	noise := func(sigma float64) float64 { return sigma * max(-3, min(3, m.rng.NormFloat64())) }
	temp = min(max(temp+noise(0.01), 20), 23)
	hum = min(max(hum+noise(0.05), 40), 60)
	press = min(max(press+noise(0.015), 1005), 1020)
	return temp, hum, press
}

// latchLocked completes a measurement at t: the data registers get its raw
// values (nothing changes while stuck).
func (m *BME280) latchLocked(t time.Time) {
	if m.stuck {
		return
	}
	temp, hum, press := m.measureLocked(t)
	osT, osP := (m.ctrlMeas>>5)&7, (m.ctrlMeas>>2)&7
	adcT, adcH, adcP := m.cal.raw(temp, hum, press, osT, osP)
	if osT == 0 {
		adcT = bmeSkipped20
	}
	if osP == 0 {
		adcP = bmeSkipped20
	}
	if m.osH == 0 {
		adcH = bmeSkipped16
	}
	m.putData(adcP, adcT, adcH)
}

func (m *BME280) putData(adcP, adcT, adcH int32) {
	d := m.regs[bmeRegData : bmeRegData+8]
	d[0], d[1], d[2] = byte(adcP>>12), byte(adcP>>4), byte(adcP<<4)
	d[3], d[4], d[5] = byte(adcT>>12), byte(adcT>>4), byte(adcT<<4)
	d[6], d[7] = byte(adcH>>8), byte(adcH)
}

// measTime is the datasheet's typical measurement time (section 9.1) for
// the oversampling in effect.
func (m *BME280) measTime() time.Duration {
	µs := 1000 + 2000*osFactor((m.ctrlMeas>>5)&7)
	if f := osFactor((m.ctrlMeas >> 2) & 7); f > 0 {
		µs += 2000*f + 500
	}
	if f := osFactor(m.osH); f > 0 {
		µs += 2000*f + 500
	}
	return time.Duration(µs) * time.Microsecond
}

// standby is the normal-mode inactive time t_sb (config bits 7:5).
func (m *BME280) standby() time.Duration {
	return [8]time.Duration{
		500 * time.Microsecond, 62500 * time.Microsecond, 125 * time.Millisecond, 250 * time.Millisecond,
		500 * time.Millisecond, time.Second, 10 * time.Millisecond, 20 * time.Millisecond,
	}[m.config>>5]
}

func (m *BME280) mode() byte { return m.ctrlMeas & 3 }

// advanceLocked brings the chip to now: completes a forced measurement that
// is due, or the normal-mode cycles that have ended.
func (m *BME280) advanceLocked(now time.Time) {
	if m.forcedBusy && !now.Before(m.measEnd) {
		m.forcedBusy = false
		m.latchLocked(m.measEnd)
		m.ctrlMeas &^= 3 // back to sleep
	}
	if m.mode() == 3 {
		meas := m.measTime()
		cycle := meas + m.standby()
		since := now.Sub(m.normalFrom)
		if since >= meas {
			k := int64((since - meas) / cycle)
			if k > m.lastCycle {
				m.lastCycle = k
				m.latchLocked(m.normalFrom.Add(time.Duration(k)*cycle + meas))
			}
		}
	}
}

func (m *BME280) statusLocked(now time.Time) byte {
	var s byte
	if now.Before(m.nvmUntil) {
		s |= bmeStatusImUpdate
	}
	switch {
	case m.forcedBusy:
		s |= bmeStatusMeasuring
	case m.mode() == 3:
		meas := m.measTime()
		if now.Sub(m.normalFrom)%(meas+m.standby()) < meas {
			s |= bmeStatusMeasuring
		}
	}
	return s
}

// writeLocked is one register write.
func (m *BME280) writeLocked(reg, v byte, now time.Time) {
	switch reg {
	case bmeRegReset:
		if v == bmeResetWord {
			m.resetLocked(now)
		}
	case bmeRegCtrlHum:
		m.ctrlHum = v & 7
	case bmeRegConfig:
		m.config = v &^ 2 // bit 1 is reserved
	case bmeRegCtrlMeas:
		m.ctrlMeas = v
		m.osH = m.ctrlHum // ctrl_hum takes effect on a ctrl_meas write
		m.forcedBusy = false
		switch v & 3 {
		case 1, 2:
			m.forcedBusy = true
			m.measEnd = now.Add(m.measTime())
		case 3:
			m.normalFrom = now
			m.lastCycle = -1
		}
	}
	// Everything else is read-only: writes are ignored, as on the part.
}

func (m *BME280) readLocked(reg byte, now time.Time) byte {
	switch reg {
	case bmeRegChipID:
		return m.chipID
	case bmeRegReset:
		return 0
	case bmeRegCtrlHum:
		return m.ctrlHum
	case bmeRegStatus:
		return m.statusLocked(now)
	case bmeRegCtrlMeas:
		return m.ctrlMeas
	case bmeRegConfig:
		return m.config
	}
	return m.regs[reg]
}

// Tx is one I2C transaction with the chip. As on the part (datasheet
// section 6.2), writes are pairs of register address and value (no
// auto-increment when writing); a lone or final address byte sets the
// register pointer, and reads auto-increment from it, all within one
// consistent snapshot of the data registers.
func (m *BME280) Tx(w, r []byte) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advanceLocked(now)
	for i := 0; i < len(w); i += 2 {
		m.ptr = w[i]
		if i+1 < len(w) {
			m.writeLocked(w[i], w[i+1], now)
		}
	}
	for i := range r {
		r[i] = m.readLocked(m.ptr, now)
		m.ptr++
	}
	return nil
}
