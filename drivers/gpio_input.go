package drivers

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// GPIOInputDriver is the name of the gpio-input sensor driver.
const GPIOInputDriver = "gpio-input"

// GPIOInputOpts describe a digital input on one GPIO pin.
type GPIOInputOpts struct {
	Name     string
	Pin      string        // "GPIO27"
	Pull     string        // up, down or none
	Debounce time.Duration // how long a level must be stable to count
	Interval time.Duration
}

// Validate checks the options.
func (o GPIOInputOpts) Validate() error {
	var pin, pull, debounce *FieldError
	if strings.TrimSpace(o.Pin) == "" {
		pin = fieldError("pin", "a gpio-input sensor needs the pin it reads, e.g. pin: GPIO27")
	}
	if _, err := parseInputPull(o.Pull); err != nil {
		pull = fieldError("pull", "%v", err)
	}
	if o.Debounce < 0 {
		debounce = fieldError("debounce", "must not be negative, got %v", o.Debounce)
	}
	return joinFields(pin, pull, debounce)
}

// edgePoll bounds every wait for an edge. periph's drivers disagree on what
// a negative timeout means (gpioioctl returns at once, gpiotest waits
// forever), so the driver never passes one: it waits at most this long, then
// checks its context and re-reads the level, which also catches a change
// whose edge was lost.
const edgePoll = 200 * time.Millisecond

// A pin that reports an edge this quickly, many times in a row, is not
// waiting at all (a broken or misconfigured edge detector); the waiter then
// slows down instead of spinning. A real burst of contact bounce is far
// shorter than instantLimit edges.
const (
	instantEdge  = 100 * time.Microsecond
	instantLimit = 64
)

// gpioInput is a digital input on one GPIO pin: a door contact, a push
// button, a float switch. It has one quantity, "state": 1 when the pin reads
// high, 0 when low. It is edge-driven (a Watcher): changes are pushed as
// soon as they are stable for the configured debounce time.
type gpioInput struct {
	name     string
	pin      gpio.PinIO
	pull     gpio.Pull
	debounce time.Duration
	interval time.Duration
	log      *slog.Logger

	mu         sync.Mutex // serialises configuring the pin
	configured bool
}

// OpenGPIOInput opens a gpio-input sensor; the pin is set up on first use.
func OpenGPIOInput(o GPIOInputOpts, env Env) (Sensor, error) {
	buses, err := env.buses(o, GPIOInputDriver)
	if err != nil {
		return nil, err
	}
	pull, _ := parseInputPull(o.Pull)
	pin, err := buses.GPIOPin(o.Pin)
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	return &gpioInput{
		name:     o.Name,
		pin:      pin,
		pull:     pull,
		debounce: o.Debounce,
		interval: o.Interval,
		log:      log,
	}, nil
}

// parseInputPull maps the pull ("up", "down" or "none") to periph's. "none"
// disables the pin's bias resistors.
func parseInputPull(s string) (gpio.Pull, error) {
	switch s {
	case "up":
		return gpio.PullUp, nil
	case "down":
		return gpio.PullDown, nil
	case "none":
		return gpio.Float, nil
	}
	return gpio.PullNoChange, fmt.Errorf("want one of up, down, none, got %q", s)
}

func (s *gpioInput) Name() string            { return s.name }
func (s *gpioInput) Driver() string          { return GPIOInputDriver }
func (s *gpioInput) Quantities() []Quantity  { return []Quantity{{Name: "state", Unit: ""}} }
func (s *gpioInput) Interval() time.Duration { return s.interval }
func (s *gpioInput) Close() error            { return nil }

// configure makes the pin an input with the configured pull and both-edge
// detection. With force false it does so only once; Watch forces it so that
// each (re)start begins from a known pin setup.
func (s *gpioInput) configure(force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.configured && !force {
		return nil
	}
	if err := s.pin.In(s.pull, gpio.BothEdges); err != nil {
		s.configured = false
		return fmt.Errorf("%s: set up as an input (pull %s, both edges): %w; check the pin name (e.g. GPIO27) and that this user is in the gpio group",
			s.pin.Name(), s.pull, err)
	}
	s.configured = true
	return nil
}

// Read returns the current level of the pin (1 high, 0 low), setting the pin
// up as an input first if Watch has not done so (periph's gpioioctl would
// otherwise request it with its own pull and no edge detection).
func (s *gpioInput) Read(_ context.Context, dst []float64) error {
	if len(dst) < 1 {
		return fmt.Errorf("%s: read: no room for the state value", s.name)
	}
	if err := s.configure(false); err != nil {
		return err
	}
	dst[0] = inputValue(s.pin.Read())
	return nil
}

// Watch sets the pin up, emits its level at once, then emits every debounced
// change until ctx ends. Reading a pin cannot fail in periph's API, so fail
// is never called; a pin that cannot be set up is returned as an error (the
// caller retries).
func (s *gpioInput) Watch(ctx context.Context, emit func(q int, v float64, at time.Time), _ func(err error)) error {
	if err := s.configure(true); err != nil {
		return err
	}
	last := s.pin.Read()
	emit(0, inputValue(last), time.Now())
	w := edgeWaiter{pin: s.pin, log: s.log}
	for ctx.Err() == nil {
		edge := w.wait(ctx, edgePoll)
		if ctx.Err() != nil {
			break
		}
		lvl := s.pin.Read()
		if !edge && lvl == last {
			continue
		}
		// An edge, or a change whose edge was never reported.
		lvl, at, ok := s.settle(ctx, &w, lvl)
		if !ok {
			break
		}
		if lvl != last {
			last = lvl
			emit(0, inputValue(lvl), at)
		}
	}
	return nil
}

// settle waits until the pin has kept one level, with no edge, for the
// debounce time, starting from lvl just read. It returns that level and the
// time it was first seen, or ok false if ctx ended first.
func (s *gpioInput) settle(ctx context.Context, w *edgeWaiter, lvl gpio.Level) (_ gpio.Level, since time.Time, ok bool) {
	since = time.Now()
	for {
		left := s.debounce - time.Since(since)
		if left <= 0 {
			return lvl, since, true
		}
		edge := w.wait(ctx, min(left, edgePoll))
		if ctx.Err() != nil {
			return lvl, since, false
		}
		// Any edge means the level was not stable, even if it reads the
		// same again (a bounce away and back): start the window over.
		if cur := s.pin.Read(); edge || cur != lvl {
			lvl, since = cur, time.Now()
		}
	}
}

// edgeWaiter calls WaitForEdge with a finite timeout and makes sure that a
// pin which does not really wait cannot make its caller spin.
type edgeWaiter struct {
	pin     gpio.PinIO
	log     *slog.Logger
	instant int  // edges in a row reported in under instantEdge
	warned  bool // the broken-pin warning was logged
}

// wait waits up to timeout for an edge and reports whether one came. Without
// an edge it never returns before timeout has passed (unless ctx ends), even
// if the pin's WaitForEdge gives up at once; a pin that reports edges
// continuously is treated as one without edge detection.
func (w *edgeWaiter) wait(ctx context.Context, timeout time.Duration) bool {
	start := time.Now()
	edge := w.pin.WaitForEdge(timeout)
	took := time.Since(start)
	if !edge {
		w.instant = 0
		if took < timeout/2 {
			w.warn("its edge wait returns at once without an edge")
		}
		if took < timeout {
			inputSleep(ctx, timeout-took)
		}
		return false
	}
	if took >= instantEdge {
		w.instant = 0
		return true
	}
	w.instant++
	if w.instant <= instantLimit {
		return true
	}
	// The pin reports edges without waiting: back off (from 1 ms,
	// doubling up to timeout) and report no edge, so that the caller goes
	// by the level alone until the pin waits again.
	w.warn("it reports edges continuously")
	pause := timeout
	if n := w.instant - instantLimit - 1; n < 16 {
		pause = min(timeout, time.Millisecond<<n)
	}
	inputSleep(ctx, pause)
	return false
}

func (w *edgeWaiter) warn(what string) {
	if w.warned {
		return
	}
	w.warned = true
	w.log.Warn("GPIO edge detection is not working; reading the level every "+edgePoll.String()+" instead",
		"pin", w.pin.Name(), "problem", what)
}

// inputSleep sleeps for d or until ctx ends.
func inputSleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// inputValue is the state value of a level: 1 high, 0 low.
func inputValue(l gpio.Level) float64 {
	if l {
		return 1
	}
	return 0
}
