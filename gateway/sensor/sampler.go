package sensor

import (
	"context"
	"time"

	"github.com/edgegate/edgegate/drivers"
)

// sample runs the sampler of d until ctx ends: a Watcher's pushes, or
// reads at the device's interval.
func (h *Hub) sample(ctx context.Context, d *device) {
	if w, ok := d.drv.(drivers.Watcher); ok {
		emit := func(q int, v float64, at time.Time) { h.publish(d, q, v, at) }
		fail := func(err error) { h.publishError(d, err, time.Now()) }
		for ctx.Err() == nil {
			if err := w.Watch(ctx, emit, fail); err != nil && ctx.Err() == nil {
				h.publishError(d, err, time.Now())
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
		return
	}
	interval := d.drv.Interval()
	if interval <= 0 {
		interval = time.Second
	}
	timeout := max(interval, 2*time.Second)
	vals := make([]float64, len(d.sensors))
	timer := time.NewTimer(interval)
	defer timer.Stop()
	if h.metrics != nil {
		d.missed = h.metrics.MissedTicks(d.name)
	}
	next := time.Now() // when the read under way was due
	for {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		err := d.drv.Read(rctx, vals)
		cancel()
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.publishError(d, err, now)
		} else {
			h.publishRead(d, vals, now)
		}
		now = time.Now()
		var missed int
		next, missed = nextTick(next, now, interval)
		if missed > 0 && d.missed != nil {
			d.missed.Add(missed)
		}
		if wait := next.Sub(now); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
	}
}

// nextTick is when the read after the one due at last is due, at now, and
// how many ticks are given up. Reads keep to a fixed schedule of one per
// interval: a read that starts late (the gateway was busy) is made up for
// by reading again at once, so that a sensor keeps its rate; a sampler
// more than catchUp(interval) behind gives up the ticks it missed
// (samples never taken), so that a read slower than its interval does
// not run back to back for ever.
func nextTick(last, now time.Time, interval time.Duration) (time.Time, int) {
	next := last.Add(interval)
	behind := now.Sub(next)
	if behind <= catchUp(interval) {
		return next, 0
	}
	n := int(behind / interval)
	return next.Add(time.Duration(n) * interval), n
}

// catchUp is how far behind its schedule a sampler reads again at once:
// an interval, and at least 5 ms of a busy gateway's scheduling delays.
func catchUp(interval time.Duration) time.Duration { return max(interval, 5*time.Millisecond) }
