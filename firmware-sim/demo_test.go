package firmwaresim

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/edgegate/edgegate/drivers"
	"periph.io/x/conn/v3/gpio"
)

// demoExternalLevels is the levels driven on p from the outside, oldest first.
func demoExternalLevels(p *Pin) []gpio.Level {
	var ls []gpio.Level
	for _, c := range p.History() {
		if !c.Driven {
			ls = append(ls, c.Level)
		}
	}
	return ls
}

func TestDemoTogglesInputs(t *testing.T) {
	inputs := []DemoInput{
		{Pin: "GPIO27", PullUp: true},
		{Pin: "gpio5"},
		{Pin: "GPIO6"},
	}
	idle := map[string]gpio.Level{"GPIO27": gpio.High, "GPIO5": gpio.Low, "GPIO6": gpio.Low}
	for _, tc := range []struct {
		name    string
		bounces int
		burst   int // drives per change, 0: random
	}{
		{"one bounce", 1, 3},
		{"random bounces", 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := runtime.NumGoroutine()
			h := NewHardware(nil)
			tm := demoTiming{minGap: 2 * time.Millisecond, maxGap: 10 * time.Millisecond, maxBounces: tc.bounces, bounceGap: 200 * time.Microsecond}
			h.runDemo(inputs, tm)
			if n := runtime.NumGoroutine(); n < base+3 {
				t.Errorf("%d goroutines after runDemo, want one per gpio-input (%d)", n, base+3)
			}
			// Let every input change a few times.
			deadline := time.Now().Add(5 * time.Second)
			for _, name := range []string{"GPIO27", "GPIO5", "GPIO6"} {
				for len(demoExternalLevels(h.GPIO.Pin(name))) < 12 {
					if time.Now().After(deadline) {
						t.Fatalf("%s: only %d changes driven within 5s", name, len(demoExternalLevels(h.GPIO.Pin(name))))
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			h.Close()
			demoWaitBaseline(t, base)

			for name, idle := range idle {
				ls := demoExternalLevels(h.GPIO.Pin(name))
				// The demo never drives the idle level first (the pull
				// holds it) and every drive is a real change.
				for i, l := range ls {
					if want := gpio.Level((i%2 == 0) != bool(idle)); l != want {
						t.Fatalf("%s: drive %d is %s, want %s (levels %v)", name, i, l, want, ls)
					}
				}
				if tc.burst > 0 && len(ls)%tc.burst != 0 {
					t.Errorf("%s: %d drives, not whole bursts of %d", name, len(ls), tc.burst)
				}
			}
			// Close stopped the goroutines: nothing more is driven.
			counts := map[string]int{}
			for name := range idle {
				counts[name] = len(demoExternalLevels(h.GPIO.Pin(name)))
			}
			time.Sleep(3 * tm.maxGap)
			for name, n := range counts {
				if got := len(demoExternalLevels(h.GPIO.Pin(name))); got != n {
					t.Errorf("%s: %d drives after Close (had %d)", name, got, n)
				}
			}
			if p := h.GPIO.Pins(); len(p) != 3 {
				t.Errorf("demo touched %d pins, want the 3 gpio-input pins", len(p))
			}
		})
	}
}

// The pull-up idle level is what a driver reads before the first change.
func TestDemoRespectsIdleLevel(t *testing.T) {
	h := NewHardware(nil)
	defer h.Close()
	h.runDemo([]DemoInput{{Pin: "GPIO27", PullUp: true}}, demoTiming{minGap: time.Hour, maxGap: time.Hour})
	p := h.GPIO.Pin("GPIO27")
	if err := p.In(gpio.PullUp, gpio.BothEdges); err != nil {
		t.Fatal(err)
	}
	if p.Read() != gpio.High || len(p.History()) != 0 {
		t.Errorf("pull-up input reads %s with history %v before the first change; want high, untouched", p.Read(), p.History())
	}
}

// End to end with the real gpio-input driver: every bouncing change the demo
// makes becomes exactly one debounced sample.
func TestDemoThroughDriver(t *testing.T) {
	h := NewHardware(nil)
	defer h.Close()
	o := drivers.GPIOInputOpts{Name: "door", Pin: "GPIO27", Pull: "up", Debounce: 50 * time.Millisecond, Interval: time.Second}
	s, err := drivers.OpenGPIOInput(o, drivers.Env{Buses: h, Sim: true})
	if err != nil {
		t.Fatal(err)
	}
	w, ok := s.(drivers.Watcher)
	if !ok {
		t.Fatalf("gpio-input sensor %T is not a Watcher", s)
	}
	samples := make(chan float64, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- w.Watch(ctx, func(_ int, v float64, _ time.Time) { samples <- v }, func(err error) { t.Errorf("fail: %v", err) })
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Error("Watch did not return after cancel")
		}
	}()
	next := func() float64 {
		t.Helper()
		select {
		case v := <-samples:
			return v
		case <-time.After(3 * time.Second):
			t.Fatal("no sample within 3s")
			return -1
		}
	}
	if v := next(); v != 1 {
		t.Fatalf("first sample %v, want 1 (pulled up)", v)
	}
	h.runDemo([]DemoInput{{Pin: o.Pin, PullUp: true}},
		demoTiming{minGap: 400 * time.Millisecond, maxGap: 500 * time.Millisecond, maxBounces: 1, bounceGap: 500 * time.Microsecond})
	pin := h.GPIO.Pin("GPIO27")
	const changes = 5
	for i := range changes {
		if v, want := next(), float64(i%2); v != want {
			t.Fatalf("sample %d: %v, want %v", i+1, v, want)
		}
	}
	h.Close()
	// Whole bursts of 3 drives each: one sample per burst, no more.
	bursts := len(demoExternalLevels(pin)) / 3
	for i := changes; i < bursts; i++ {
		if v, want := next(), float64(i%2); v != want {
			t.Fatalf("sample %d: %v, want %v", i+1, v, want)
		}
	}
	select {
	case v := <-samples:
		t.Errorf("an extra sample %v: %d bursts gave more than %d samples", v, bursts, bursts)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestDemoTimingDefaults(t *testing.T) {
	tm := defaultDemoTiming
	for range 1000 {
		if g := tm.gap(); g < 5*time.Second || g > 20*time.Second {
			t.Fatalf("gap %v outside 5s..20s", g)
		}
		if b := tm.bounce(); b <= 0 || b > tm.bounceGap {
			t.Fatalf("bounce %v outside (0, %v]", b, tm.bounceGap)
		}
	}
	// A whole burst stays within a few milliseconds.
	if worst := time.Duration(2*tm.maxBounces) * tm.bounceGap; worst > 5*time.Millisecond {
		t.Errorf("a bounce burst may last %v", worst)
	}
}

func demoWaitBaseline(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, want at most %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}
