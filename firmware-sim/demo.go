package firmwaresim

import (
	"math/rand/v2"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// demoTiming is how the demo moves the inputs: a change every minGap to
// maxGap (uniformly random), each made of 1 to maxBounces bounces of up to
// bounceGap before the contact settles.
type demoTiming struct {
	minGap, maxGap time.Duration
	maxBounces     int
	bounceGap      time.Duration
}

// defaultDemoTiming: a door opened or closed every 5 to 20 s, with a contact
// bounce burst of at most a few milliseconds (4 bounces, two edges each, at
// most 0.5 ms apart).
var defaultDemoTiming = demoTiming{
	minGap:     5 * time.Second,
	maxGap:     20 * time.Second,
	maxBounces: 4,
	bounceGap:  500 * time.Microsecond,
}

// DemoInput is an input pin the demo moves (RunDemo).
type DemoInput struct {
	Pin    string // "GPIO27"
	PullUp bool   // the input idles high
}

// RunDemo brings the demo to life: for every input it runs a goroutine that
// now and then flips the level on that input pin from the outside, as a door
// contact that opens and closes, bouncing briefly on each change. Each input
// starts at the idle level of its pull (high when PullUp, low otherwise) and
// is not driven until its first change. Close stops the goroutines; call
// RunDemo before Close.
func (h *Hardware) RunDemo(inputs []DemoInput) {
	h.runDemo(inputs, defaultDemoTiming)
}

func (h *Hardware) runDemo(inputs []DemoInput, tm demoTiming) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, in := range inputs {
		if in.Pin == "" {
			continue
		}
		pin := h.GPIO.Pin(in.Pin)
		idle := gpio.Level(in.PullUp)
		wg.Go(func() { demoToggle(pin, idle, tm, stop) })
	}
	h.OnClose(func() {
		close(stop)
		wg.Wait()
	})
}

// demoToggle flips pin between its two levels, starting from idle, until
// stop is closed. A bounce burst in progress is always finished, so the pin
// is never left at a bounced level.
func demoToggle(pin *Pin, idle gpio.Level, tm demoTiming, stop <-chan struct{}) {
	level := idle
	t := time.NewTimer(tm.gap())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		level = !level
		demoBounceTo(pin, level, tm)
		t.Reset(tm.gap())
	}
}

// demoBounceTo drives pin to l the way a mechanical contact gets there: l, then
// 1 to maxBounces short excursions back to !l, ending at l.
func demoBounceTo(pin *Pin, l gpio.Level, tm demoTiming) {
	pin.Drive(l)
	n := 1
	if tm.maxBounces > 1 {
		n += rand.IntN(tm.maxBounces)
	}
	for range n {
		time.Sleep(tm.bounce())
		pin.Drive(!l)
		time.Sleep(tm.bounce())
		pin.Drive(l)
	}
}

// gap is a random time until the next change, in [minGap, maxGap].
func (tm demoTiming) gap() time.Duration {
	if tm.maxGap <= tm.minGap {
		return max(tm.minGap, time.Millisecond)
	}
	return tm.minGap + rand.N(tm.maxGap-tm.minGap+1)
}

// bounce is a random time between two edges of a bounce, in (0, bounceGap].
func (tm demoTiming) bounce() time.Duration {
	if tm.bounceGap <= 0 {
		return 0
	}
	return 1 + rand.N(tm.bounceGap)
}
