package drivers_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/drivers"
	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"periph.io/x/conn/v3/gpio"
)

// inputSample is one value a Watch emitted.
type inputSample struct {
	q  int
	v  float64
	at time.Time
}

// wrappedBuses is the simulated board with every GPIO pin passed through
// wrap (to give a pin a fault the simulator does not have).
type wrappedBuses struct {
	*firmwaresim.Hardware
	wrap func(gpio.PinIO) gpio.PinIO
}

func (b wrappedBuses) GPIOPin(name string) (gpio.PinIO, error) {
	p, err := b.Hardware.GPIOPin(name)
	if err != nil {
		return nil, err
	}
	return b.wrap(p), nil
}

// instantPin's WaitForEdge returns result at once, whatever the timeout:
// false is what periph's gpioioctl does for a timeout of -1 (or when it
// cannot wait), true is an edge detector stuck reporting edges.
type instantPin struct {
	gpio.PinIO
	result bool
	calls  atomic.Int64
}

func (p *instantPin) WaitForEdge(time.Duration) bool {
	p.calls.Add(1)
	return p.result
}

func (p *instantPin) count() int64 { return p.calls.Load() }

// deafPin never reports an edge: every change is a lost interrupt.
type deafPin struct {
	gpio.PinIO
	calls atomic.Int64
}

func (p *deafPin) WaitForEdge(timeout time.Duration) bool {
	p.calls.Add(1)
	time.Sleep(timeout)
	return false
}

func (p *deafPin) count() int64 { return p.calls.Load() }

// refusingPin cannot be made an input (wrong pin, no permission).
type refusingPin struct{ gpio.PinIO }

func (refusingPin) In(gpio.Pull, gpio.Edge) error {
	return errors.New("line_request ioctl: permission denied")
}

// lockedBuffer is a log destination safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func inputOpts(pull string, debounce time.Duration) drivers.GPIOInputOpts {
	return drivers.GPIOInputOpts{Name: "door", Pin: "GPIO27", Pull: pull, Debounce: debounce, Interval: time.Second}
}

func openInput(t *testing.T, o drivers.GPIOInputOpts, env drivers.Env) drivers.Watcher {
	t.Helper()
	s, err := drivers.OpenGPIOInput(o, env)
	if err != nil {
		t.Fatal(err)
	}
	w, ok := s.(drivers.Watcher)
	if !ok {
		t.Fatalf("gpio-input sensor %T is not a drivers.Watcher", s)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// watching is a Watch running in its own goroutine.
type watching struct {
	samples chan inputSample
	cancel  context.CancelFunc
	done    chan error
}

func startWatch(t *testing.T, w drivers.Watcher) *watching {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wa := &watching{samples: make(chan inputSample, 4096), cancel: cancel, done: make(chan error, 1)}
	emit := func(q int, v float64, at time.Time) {
		select {
		case wa.samples <- inputSample{q, v, at}:
		default:
			t.Error("more than 4096 samples emitted")
		}
	}
	fail := func(err error) { t.Errorf("fail called: %v", err) }
	go func() { wa.done <- w.Watch(ctx, emit, fail) }()
	t.Cleanup(func() { wa.stop(t) })
	return wa
}

// stop cancels the Watch and waits for it to return, at most 1 s (the
// driver's poll period is 200 ms).
func (wa *watching) stop(t *testing.T) error {
	t.Helper()
	wa.cancel()
	select {
	case err, ok := <-wa.done:
		if ok {
			close(wa.done)
		}
		return err
	case <-time.After(time.Second):
		t.Fatal("Watch did not return within 1s of its context being cancelled")
		return nil
	}
}

// next waits for the next sample, at most within.
func (wa *watching) next(t *testing.T, within time.Duration) inputSample {
	t.Helper()
	select {
	case s := <-wa.samples:
		if s.q != 0 {
			t.Fatalf("sample for quantity %d, want 0", s.q)
		}
		return s
	case <-time.After(within):
		t.Fatalf("no sample within %v", within)
		return inputSample{}
	}
}

func levelOf(v float64) gpio.Level { return v == 1 }

// waitGoroutines waits (at most 2 s) for the goroutine count to drop to base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGPIOInputOpen(t *testing.T) {
	hw := firmwaresim.NewHardware(nil)
	w := openInput(t, inputOpts("up", 20*time.Millisecond), drivers.Env{Buses: hw})
	if w.Name() != "door" || w.Driver() != "gpio-input" || w.Interval() != time.Second {
		t.Errorf("name %q driver %q interval %v", w.Name(), w.Driver(), w.Interval())
	}
	if q := w.Quantities(); len(q) != 1 || q[0] != (drivers.Quantity{Name: "state", Unit: ""}) {
		t.Errorf("quantities %+v, want one named state with no unit", q)
	}
	if p := hw.GPIO.Pin("GPIO27"); p.Pull() != gpio.PullNoChange || p.IsOutput() {
		t.Errorf("opening the sensor touched the pin (pull %s)", p.Pull())
	}
	if _, err := drivers.OpenGPIOInput(inputOpts("sideways", 0), drivers.Env{Buses: hw}); err == nil || !strings.Contains(err.Error(), "sideways") {
		t.Errorf("bad pull: err %v", err)
	}
}

// With nothing driving the pin, it reads the level of its pull, in Read and
// as the first sample of Watch.
func TestGPIOInputIdleLevel(t *testing.T) {
	for _, tc := range []struct {
		pull     string
		wantPull gpio.Pull
		want     float64
	}{
		{"up", gpio.PullUp, 1},
		{"down", gpio.PullDown, 0},
	} {
		t.Run(tc.pull, func(t *testing.T) {
			hw := firmwaresim.NewHardware(nil)
			w := openInput(t, inputOpts(tc.pull, 0), drivers.Env{Buses: hw})
			dst := []float64{-1}
			if err := w.Read(context.Background(), dst); err != nil || dst[0] != tc.want {
				t.Fatalf("Read = %v, %v; want %v", dst[0], err, tc.want)
			}
			if p := hw.GPIO.Pin("GPIO27"); p.Pull() != tc.wantPull {
				t.Errorf("pin pull %s, want %s", p.Pull(), tc.wantPull)
			}
			wa := startWatch(t, w)
			if s := wa.next(t, time.Second); s.v != tc.want {
				t.Errorf("first sample %v, want %v", s.v, tc.want)
			}
		})
	}
}

// Every change is pushed as soon as it has been stable for the debounce time
// (not at the next poll), and Read agrees.
func TestGPIOInputEdges(t *testing.T) {
	for _, debounce := range []time.Duration{0, 20 * time.Millisecond} {
		t.Run(debounce.String(), func(t *testing.T) {
			hw := firmwaresim.NewHardware(nil)
			pin := hw.GPIO.Pin("GPIO27")
			w := openInput(t, inputOpts("up", debounce), drivers.Env{Buses: hw})
			wa := startWatch(t, w)
			first := wa.next(t, time.Second)
			if first.v != 1 {
				t.Fatalf("first sample %v, want 1 (pulled up)", first.v)
			}
			prev := first.at
			for i, l := range []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low} {
				t0 := time.Now()
				pin.Drive(l)
				s := wa.next(t, 2*time.Second)
				took := time.Since(t0)
				if levelOf(s.v) != l {
					t.Fatalf("change %d: sample %v, want %s", i, s.v, l)
				}
				if took < debounce || took > debounce+100*time.Millisecond {
					t.Errorf("change %d: emitted %v after the edge, want between %v and %v", i, took, debounce, debounce+100*time.Millisecond)
				}
				if s.at.Before(prev) || s.at.Before(t0) {
					t.Errorf("change %d: time %v goes back (previous %v, driven at %v)", i, s.at, prev, t0)
				}
				prev = s.at
				dst := []float64{-1}
				if err := w.Read(context.Background(), dst); err != nil || levelOf(dst[0]) != l {
					t.Errorf("change %d: Read = %v, %v", i, dst[0], err)
				}
			}
		})
	}
}

// Contact bounce within the debounce time yields one sample per real change,
// and a glitch shorter than it yields none.
func TestGPIOInputDebounce(t *testing.T) {
	const debounce = 100 * time.Millisecond
	for _, tc := range []struct {
		name  string
		burst []gpio.Level // driven ~0.5 ms apart, starting from high
		want  []float64    // samples from the burst
	}{
		{"bouncing open-to-closed", []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low}, []float64{0}},
		{"clean change", []gpio.Level{gpio.Low}, []float64{0}},
		{"glitch", []gpio.Level{gpio.Low, gpio.High}, nil},
		{"bouncing glitch", []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hw := firmwaresim.NewHardware(nil)
			pin := hw.GPIO.Pin("GPIO27")
			w := openInput(t, inputOpts("up", debounce), drivers.Env{Buses: hw})
			wa := startWatch(t, w)
			if s := wa.next(t, time.Second); s.v != 1 {
				t.Fatalf("first sample %v, want 1", s.v)
			}
			for _, l := range tc.burst {
				pin.Drive(l)
				time.Sleep(500 * time.Microsecond)
			}
			for i, want := range tc.want {
				if s := wa.next(t, 2*time.Second); s.v != want {
					t.Fatalf("sample %d after the burst: %v, want %v", i, s.v, want)
				}
			}
			// A clean change after the burst: its sample must come next, so
			// any extra sample from the burst would show up before it.
			final := tc.burst[len(tc.burst)-1]
			pin.Drive(!final)
			if s := wa.next(t, 2*time.Second); levelOf(s.v) != !final {
				t.Fatalf("sample after the burst %v, want %s (only %d sample(s) expected from the burst)", s.v, !final, len(tc.want))
			}
		})
	}
}

// Cancelling the context ends Watch promptly, whether it is waiting for an
// edge or in the middle of a debounce window, and leaves no goroutine.
func TestGPIOInputCancel(t *testing.T) {
	for _, midDebounce := range []bool{false, true} {
		name := map[bool]string{false: "idle", true: "debouncing"}[midDebounce]
		t.Run(name, func(t *testing.T) {
			base := runtime.NumGoroutine()
			hw := firmwaresim.NewHardware(nil)
			w := openInput(t, inputOpts("up", time.Hour), drivers.Env{Buses: hw})
			wa := startWatch(t, w)
			wa.next(t, time.Second)
			if midDebounce {
				hw.GPIO.Pin("GPIO27").Drive(gpio.Low)
				time.Sleep(10 * time.Millisecond) // let the driver see the edge
			}
			t0 := time.Now()
			if err := wa.stop(t); err != nil {
				t.Errorf("Watch returned %v after cancel, want nil", err)
			}
			if took := time.Since(t0); took > 500*time.Millisecond {
				t.Errorf("Watch took %v to notice the cancel", took)
			}
			select {
			case s := <-wa.samples:
				t.Errorf("unexpected sample %+v", s)
			default:
			}
			waitGoroutines(t, base)
		})
	}
}

// A pin whose edge wait does not work (returns at once, either way, or never
// sees an edge) neither spins nor hangs: changes are still reported through
// the periodic re-read, and cancelling still works.
func TestGPIOInputBrokenEdgeWait(t *testing.T) {
	type counted interface {
		gpio.PinIO
		count() int64
	}
	for _, tc := range []struct {
		name string
		wrap func(gpio.PinIO) counted
		warn bool
	}{
		{"returns false at once (gpioioctl with -1)", func(p gpio.PinIO) counted { return &instantPin{PinIO: p} }, true},
		{"returns true at once", func(p gpio.PinIO) counted { return &instantPin{PinIO: p, result: true} }, true},
		{"never sees an edge", func(p gpio.PinIO) counted { return &deafPin{PinIO: p} }, false},
	} {
		for _, debounce := range []time.Duration{0, 20 * time.Millisecond} {
			t.Run(tc.name+"/"+debounce.String(), func(t *testing.T) {
				hw := firmwaresim.NewHardware(nil)
				var wrapped counted
				buses := wrappedBuses{hw, func(p gpio.PinIO) gpio.PinIO { wrapped = tc.wrap(p); return wrapped }}
				var logs lockedBuffer
				w := openInput(t, inputOpts("up", debounce), drivers.Env{Buses: buses, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				t0 := time.Now()
				wa := startWatch(t, w)
				if s := wa.next(t, time.Second); s.v != 1 {
					t.Fatalf("first sample %v, want 1", s.v)
				}
				time.Sleep(50 * time.Millisecond) // let the driver settle into its (broken) wait loop
				hw.GPIO.Pin("GPIO27").Drive(gpio.Low)
				if s := wa.next(t, 2*time.Second); s.v != 0 {
					t.Fatalf("sample %v after the change, want 0", s.v)
				}
				if err := wa.stop(t); err != nil {
					t.Fatal(err)
				}
				elapsed := time.Since(t0)
				calls := wrapped.count()
				// Spinning would call WaitForEdge hundreds of thousands of
				// times; a waiting driver calls it a few hundred times at
				// most, even under qemu's emulated clock in scripts/test.sh.
				if limit := 200 + int64(elapsed/(2*time.Millisecond)); calls > limit {
					t.Errorf("WaitForEdge called %d times in %v (limit %d): the driver spins", calls, elapsed, limit)
				}
				t.Logf("%d WaitForEdge calls in %v", calls, elapsed)
				warned := strings.Count(logs.String(), "edge detection is not working")
				if tc.warn && warned != 1 || !tc.warn && warned != 0 {
					t.Errorf("logged the broken-edge warning %d times; logs:\n%s", warned, logs.String())
				}
			})
		}
	}
}

// A pin that cannot be made an input makes Watch (and Read) fail with an
// error that says what to check; nothing is emitted.
func TestGPIOInputPinError(t *testing.T) {
	hw := firmwaresim.NewHardware(nil)
	buses := wrappedBuses{hw, func(p gpio.PinIO) gpio.PinIO { return refusingPin{p} }}
	w := openInput(t, inputOpts("up", 0), drivers.Env{Buses: buses})
	emitted := false
	err := w.Watch(context.Background(), func(int, float64, time.Time) { emitted = true }, func(error) {})
	if err == nil || emitted {
		t.Fatalf("Watch = %v, emitted %v; want an error and no sample", err, emitted)
	}
	for _, want := range []string{"GPIO27", "permission denied", "gpio group"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := w.Read(context.Background(), make([]float64, 1)); err == nil {
		t.Error("Read on a pin that cannot be an input: no error")
	}
}
