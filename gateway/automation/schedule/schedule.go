// Package schedule parses and runs the schedules of automations: a daily
// "HH:MM", a five-field cron expression, or every fixed interval, in local
// time with DST handled.
package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A Schedule tells when a schedule automation runs next, in the location
// of the times it is given (the gateway's local time zone).
type Schedule interface {
	// Next is the first run strictly after t.
	Next(t time.Time) time.Time
}

// ParseAt parses a daily "HH:MM" schedule.
func ParseAt(s string) (Schedule, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 || len(m) != 2 {
		return nil, fmt.Errorf("want a time of day like %q (24-hour HH:MM), got %q", "06:30", s)
	}
	return daily{hh, mm}, nil
}

type daily struct{ hour, min int }

// Next handles DST: on a day where HH:MM does not exist (clocks spring
// forward over it) it runs at the same moment shifted by the gap, as
// time.Date normalises it (02:30 becomes 03:30); on a day where it happens
// twice it runs once, at the first.
func (d daily) Next(t time.Time) time.Time {
	y, mo, day := t.Date()
	for i := 0; i < 3; i++ {
		c := time.Date(y, mo, day+i, d.hour, d.min, 0, 0, t.Location())
		if c.After(t) {
			return c
		}
	}
	return time.Date(y, mo, day+3, d.hour, d.min, 0, 0, t.Location())
}

// Every runs every d from a start.
type Every struct {
	D     time.Duration
	Start time.Time
}

// Next is the first start + n·d after t.
func (e Every) Next(t time.Time) time.Time {
	if e.D <= 0 {
		return time.Time{} // never
	}
	if t.Before(e.Start) {
		return e.Start.Add(e.D)
	}
	n := t.Sub(e.Start)/e.D + 1
	return e.Start.Add(n * e.D)
}

// cron is a five-field cron expression: minute hour day-of-month month
// day-of-week, each a bit set of the values that match.
type cron struct {
	min, hour, dom, month, dow uint64
	domAny, dowAny             bool // the field was *: the classic "either day field" rule
}

var cronFields = []struct {
	name   string
	lo, hi int
}{{"minute", 0, 59}, {"hour", 0, 23}, {"day of month", 1, 31}, {"month", 1, 12}, {"day of week", 0, 7}}

// ParseCron parses "minute hour day-of-month month day-of-week", each field
// being *, a number, a range a-b, a list a,b,c, and any of those with a
// step /n. Day of week 0 and 7 are Sunday.
func ParseCron(s string) (Schedule, error) {
	f := strings.Fields(s)
	if len(f) != 5 {
		return nil, fmt.Errorf("want five fields (minute hour day-of-month month day-of-week), like %q, got %q", "30 6 * * 1-5", s)
	}
	var c cron
	sets := []*uint64{&c.min, &c.hour, &c.dom, &c.month, &c.dow}
	for i, field := range f {
		set, err := parseCronField(field, cronFields[i].lo, cronFields[i].hi)
		if err != nil {
			return nil, fmt.Errorf("%s field %q: %v", cronFields[i].name, field, err)
		}
		*sets[i] = set
	}
	if c.dow&(1<<7) != 0 {
		c.dow |= 1
	}
	c.domAny, c.dowAny = f[2] == "*", f[4] == "*"
	if c.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("%q never matches a day (like 30 February)", s)
	}
	return &c, nil
}

func parseCronField(field string, lo, hi int) (uint64, error) {
	var set uint64
	for _, part := range strings.Split(field, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("bad step %q", stepStr)
			}
			step = n
		}
		a, b := lo, hi
		if rng != "*" {
			x, y, isRange := strings.Cut(rng, "-")
			var err error
			if a, err = strconv.Atoi(x); err != nil {
				return 0, fmt.Errorf("%q is not a number", x)
			}
			b = a
			if isRange {
				if b, err = strconv.Atoi(y); err != nil {
					return 0, fmt.Errorf("%q is not a number", y)
				}
			} else if hasStep {
				b = hi
			}
		}
		if a < lo || b > hi || a > b {
			return 0, fmt.Errorf("values must be between %d and %d", lo, hi)
		}
		for v := a; v <= b; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

func (c *cron) dayMatches(t time.Time) bool {
	dom := c.dom&(1<<t.Day()) != 0
	dow := c.dow&(1<<int(t.Weekday())) != 0
	switch {
	case c.domAny && c.dowAny:
		return true
	case c.domAny:
		return dow
	case c.dowAny:
		return dom
	}
	return dom || dow // both restricted: either matches, as in cron
}

// Next walks forward in wall-clock time, skipping a whole month, day or
// hour that cannot match. A wall time that does not exist (DST gap) is
// skipped by the normalisation of time.Date; one that happens twice
// matches once.
func (c *cron) Next(t time.Time) time.Time {
	loc := t.Location()
	t = t.Truncate(time.Minute).Add(time.Minute)
	if t.Second() != 0 { // a zone with a seconds offset: back to a whole minute
		t = t.Add(-time.Duration(t.Second()) * time.Second)
	}
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		y, mo, d := t.Date()
		h, mi := t.Hour(), t.Minute()
		switch {
		case c.month&(1<<int(mo)) == 0:
			t = time.Date(y, mo+1, 1, 0, 0, 0, 0, loc)
		case !c.dayMatches(t):
			t = time.Date(y, mo, d+1, 0, 0, 0, 0, loc)
		case c.hour&(1<<h) == 0:
			n := time.Date(y, mo, d, h+1, 0, 0, 0, loc)
			if !n.After(t) { // the hour repeated at the end of DST
				n = t.Add(time.Hour).Truncate(time.Hour)
			}
			t = n
		case c.min&(1<<mi) == 0:
			t = t.Add(time.Minute)
		case !time.Date(y, mo, d, h, mi, 0, 0, loc).Equal(t):
			t = t.Add(time.Minute) // the second time of a wall time that happens twice
		default:
			return t
		}
	}
	return time.Time{} // never (like 30 February)
}
