package schedule

import (
	"testing"
	"time"
	_ "time/tzdata" // the DST cases need Europe/Berlin and America/New_York anywhere
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestAtDailyWithDST(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	at, err := ParseAt("06:30")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 28, 7, 0, 0, 0, berlin) // the day before clocks go forward
	next := at.Next(from)
	if want := time.Date(2026, 3, 29, 6, 30, 0, 0, berlin); !next.Equal(want) || next.Sub(from) != 22*time.Hour+30*time.Minute {
		t.Fatalf("next %v (after %v), want %v", next, next.Sub(from), want)
	}
	// 02:30 does not exist on 29 March in Berlin: it runs at 03:30, once.
	night, _ := ParseAt("02:30")
	n := night.Next(time.Date(2026, 3, 29, 0, 0, 0, 0, berlin))
	if n.Hour() != 3 || n.Minute() != 30 || n.Day() != 29 {
		t.Fatalf("spring forward: %v", n)
	}
	// 02:30 happens twice on 25 October: it runs once that day.
	n1 := night.Next(time.Date(2026, 10, 25, 0, 0, 0, 0, berlin))
	n2 := night.Next(n1)
	if n1.Day() != 25 || n2.Day() != 26 {
		t.Fatalf("fall back: %v then %v", n1, n2)
	}
	for _, bad := range []string{"6:3", "24:00", "06:60", "noon", ""} {
		if _, err := ParseAt(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCron(t *testing.T) {
	utc := time.UTC
	for _, tc := range []struct {
		expr string
		from time.Time
		want time.Time
	}{
		{"30 6 * * 1-5", time.Date(2026, 12, 4, 7, 0, 0, 0, utc), time.Date(2026, 12, 7, 6, 30, 0, 0, utc)}, // Friday → Monday
		{"*/15 * * * *", time.Date(2026, 12, 4, 7, 16, 10, 0, utc), time.Date(2026, 12, 4, 7, 30, 0, 0, utc)},
		{"0 0 1 * *", time.Date(2026, 12, 4, 7, 0, 0, 0, utc), time.Date(2027, 1, 1, 0, 0, 0, 0, utc)},
		{"0 12 * * 0", time.Date(2026, 12, 4, 7, 0, 0, 0, utc), time.Date(2026, 12, 6, 12, 0, 0, 0, utc)},
		{"0 12 * * 7", time.Date(2026, 12, 4, 7, 0, 0, 0, utc), time.Date(2026, 12, 6, 12, 0, 0, 0, utc)},
		{"0 9 13 * 5", time.Date(2026, 12, 4, 10, 0, 0, 0, utc), time.Date(2026, 12, 11, 9, 0, 0, 0, utc)}, // day 13 or a Friday
		{"5,10 8-9/1 * 2 *", time.Date(2026, 12, 4, 10, 0, 0, 0, utc), time.Date(2027, 2, 1, 8, 5, 0, 0, utc)},
		{"0 0 29 2 *", time.Date(2026, 3, 1, 0, 0, 0, 0, utc), time.Date(2028, 2, 29, 0, 0, 0, 0, utc)},
	} {
		c, err := ParseCron(tc.expr)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		if got := c.Next(tc.from); !got.Equal(tc.want) {
			t.Errorf("%s after %v: %v, want %v", tc.expr, tc.from, got, tc.want)
		}
	}
	// DST in New York: 02:30 does not exist on 8 March 2026, and a job at
	// 01:30 runs once on 1 November although 01:30 happens twice.
	ny := mustLoc(t, "America/New_York")
	c, _ := ParseCron("30 2 * * *")
	if got := c.Next(time.Date(2026, 3, 8, 0, 0, 0, 0, ny)); got.Day() != 9 || got.Hour() != 2 {
		t.Errorf("spring forward: %v", got)
	}
	c, _ = ParseCron("30 1 * * *")
	n1 := c.Next(time.Date(2026, 11, 1, 0, 0, 0, 0, ny))
	n2 := c.Next(n1)
	if n1.Day() != 1 || n2.Day() != 2 {
		t.Errorf("fall back: %v then %v", n1, n2)
	}
	for _, bad := range []string{"* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *", "a * * * *", "5-1 * * * *", "0 0 30 2 *"} {
		if _, err := ParseCron(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestEvery(t *testing.T) {
	start := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	e := Every{D: 2 * time.Second, Start: start}
	if got := e.Next(start); !got.Equal(start.Add(2 * time.Second)) {
		t.Fatal(got)
	}
	if got := e.Next(start.Add(5 * time.Second)); !got.Equal(start.Add(6 * time.Second)) {
		t.Fatal(got)
	}
	if got := e.Next(start.Add(6 * time.Second)); !got.Equal(start.Add(8 * time.Second)) {
		t.Fatal(got)
	}
}
