package relay

import (
	"sync"
	"time"
)

// watchdog fires once when no operator connection has been alive for d, and
// is armed again by the next operator that connects and leaves. It starts
// armed: a gateway that no operator ever reaches goes to failsafe too.
type watchdog struct {
	d    time.Duration
	fire func()

	mu      sync.Mutex
	alive   int
	timer   *time.Timer
	stopped bool
}

func newWatchdog(d time.Duration, fire func()) *watchdog {
	w := &watchdog{d: d, fire: fire}
	w.timer = time.AfterFunc(d, w.expire)
	return w
}

func (w *watchdog) expire() {
	w.mu.Lock()
	run := !w.stopped && w.alive == 0
	w.mu.Unlock()
	if run {
		w.fire()
	}
}

// operatorUp counts an operator connection in.
func (w *watchdog) operatorUp() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.alive++
	w.timer.Stop()
}

// operatorDown counts one out; the last one out arms the timer.
func (w *watchdog) operatorDown() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.alive--
	if w.alive == 0 && !w.stopped {
		w.timer.Reset(w.d)
	}
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}
