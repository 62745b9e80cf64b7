package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in the file with a unit, as Go
// writes it: "15s", "1ms", "1h30m". A bare number is refused.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d as time.Duration does, without zero trailing units
// ("1m30s", "1m" rather than "1m0s", "2h" rather than "2h0m0s").
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ParseDuration parses a duration with a unit ("15s", "1h30m", "0s").
func ParseDuration(s string) (Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" || strings.IndexFunc(t, func(r rune) bool { return r >= 'a' && r <= 'z' || r == 'µ' || r == 'μ' }) < 0 {
		return 0, fmt.Errorf("want a duration like %q, got %q", "15s", s)
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("want a duration like %q (units: ms, s, m, h), got %q", "15s", s)
	}
	return Duration(d), nil
}

// ByteSize is a number of bytes, written as an integer ("1000") or with a
// unit: IEC "512KiB", "64MiB", "1GiB", "1TiB" (powers of 1024) or SI "10kB",
// "10MB", "1GB", "1TB" (powers of 1000); "B" is bytes. Units are not case
// sensitive, a space may separate them from the number and the number may
// have a fraction ("1.5GiB").
type ByteSize int64

// Byte size units.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseByteSize parses a size such as "64MiB", "10MB" or "1000".
func ParseByteSize(s string) (ByteSize, error) {
	bad := fmt.Errorf("want a size like %q or %q (units: B, KiB, MiB, GiB, TiB, kB, MB, GB, TB), got %q", "64MiB", "1000", s)
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.' || r == '_') })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mul, ok := byteUnits[unit]
	if !ok || num == "" {
		if strings.HasPrefix(t, "-") {
			return 0, fmt.Errorf("must not be negative, got %q", s)
		}
		return 0, bad
	}
	num = strings.ReplaceAll(num, "_", "")
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if m := int64(mul); err == nil && n <= math.MaxInt64/m {
			return ByteSize(n * m), nil
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, bad
	}
	v := math.Round(f * mul)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(v), nil
}

// String formats b with the largest IEC unit that divides it ("64MiB"),
// else in bytes ("1000").
func (b ByteSize) String() string {
	for _, u := range []struct {
		n    ByteSize
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if b != 0 && b%u.n == 0 {
			return strconv.FormatInt(int64(b/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
