package sensor

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgegate/edgegate/gateway/internal/stack"
	"github.com/edgegate/edgegate/protocol"
)

// publish encodes one sample once, hands it to every subscriber of its
// sensor and delivers it.
func (h *Hub) publish(d *device, q int, v float64, at time.Time) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		h.publishError(d, fmt.Errorf("%s read a non-finite value", d.sensors[q].info.Name), at)
		return
	}
	d.pub.Lock()
	defer d.pub.Unlock()
	d.flush = d.flush[:0]
	h.fanOutSample(d, q, v, at)
	h.deliver(d)
}

// publishRead is publish for every quantity of one read of d: they are
// queued first and delivered together, so that a subscriber to several
// gets them in one write, at once. A non-finite value is reported, after
// the others, as publish reports it.
func (h *Hub) publishRead(d *device, vals []float64, at time.Time) {
	bad := -1
	d.pub.Lock()
	d.flush = d.flush[:0]
	for q, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad = q
			continue
		}
		h.fanOutSample(d, q, v, at)
	}
	h.deliver(d)
	d.pub.Unlock()
	if bad >= 0 {
		h.publishError(d, fmt.Errorf("%s read a non-finite value", d.sensors[bad].info.Name), at)
	}
}

// fanOutSample encodes a sample of quantity q of d and hands it to every
// subscriber that wants it, adding those to deliver to d.flush. The
// caller holds d.pub.
func (h *Hub) fanOutSample(d *device, q int, v float64, at time.Time) {
	e := d.sensors[q]
	s := samplePool.Get().(*Sample)
	s.refs.Store(1) // the hub's "latest" reference
	s.index, s.isErr, s.value, s.tsNano = uint32(e.info.Index), false, v, at.UnixNano()

	h.mu.Lock()
	if d.lastErr != "" {
		h.log.Info("sensor device recovered", "device", d.name)
		d.lastErr = ""
	}
	h.seq++
	s.seq = h.seq
	if h.metrics != nil {
		h.metrics.Sampled()
	}
	s.text = protocol.AppendSample(s.text[:0], e.info.Name, e.info.Unit, v, at.UnixMilli(), s.seq)
	protocol.PutRecord(s.record[:], s.seq, s.tsNano, v, s.index)
	old := e.latest
	e.latest = s
	d.flush = h.fanOutLocked(s, true, d.flush)
	h.mu.Unlock()
	if old != nil {
		old.Release()
	}
}

// publishError reports a failed read of a device as a sensor_error event
// for each of its sensors.
func (h *Hub) publishError(d *device, err error, at time.Time) {
	msg := err.Error()
	d.pub.Lock()
	defer d.pub.Unlock()
	h.mu.Lock()
	defer func() {
		h.mu.Unlock()
		h.deliver(d)
	}()
	d.flush = d.flush[:0]
	if h.metrics != nil {
		h.metrics.ReadFailed(d.name)
	}
	if d.lastErr != msg {
		h.log.Warn("sensor read failed", "device", d.name, "err", msg)
		d.lastErr = msg
	}
	for _, e := range d.sensors {
		s := samplePool.Get().(*Sample)
		s.refs.Store(1)
		s.index, s.isErr, s.seq, s.value, s.tsNano = uint32(e.info.Index), true, 0, 0, at.UnixNano()
		s.text = protocol.AppendSensorError(s.text[:0], e.info.Name, msg, at.UnixMilli())
		d.flush = h.fanOutLocked(s, false, d.flush)
		s.Release()
	}
}

// fanOutLocked hands s to every subscriber that wants it, and appends to
// flush those to deliver to after releasing h.mu.
func (h *Hub) fanOutLocked(s *Sample, decimate bool, flush []Subscriber) []Subscriber {
	// One reference for every subscriber up front, the unused ones given
	// back after: the shared count is touched twice per sample instead of
	// once per subscriber (writers on other cores release theirs at the
	// same time, and the surplus keeps the count above zero meanwhile).
	spare := int32(len(h.subs))
	s.refs.Add(spare)
	for _, sub := range h.subs {
		w := &sub.want[s.index]
		if !w.on {
			continue
		}
		if decimate && !w.decimate(s.tsNano) {
			continue
		}
		spare--
		if sub.Subscriber.Queue(s, w.binary) {
			flush = append(flush, sub.Subscriber)
		}
	}
	if spare != 0 {
		s.refs.Add(-spare)
	}
	return flush
}

// deliver has the subscribers that a fan-out of d queued to and that
// asked for it (d.flush) see to their samples, once the hub's lock is
// released (so that fan-out holds it as briefly as it can). A subscriber
// may write what is due now from this goroutine, one connection after
// the other, and leave to a goroutine of its own only what would make it
// wait: a goroutine per connection per sample would cost more than the
// write itself.
//
// With more than deliverShare subscribers and more than one core, helpers
// (one per further core) take a share each, from the end of the list; a
// helper still busy with an earlier sample leaves its share to this
// goroutine, which never waits for one (under load, a helper may wait
// long for a core). Writing goes on for d.budget at most, so that the
// sampler keeps its schedule: after that, subscribers are told not to
// write from here (mayWrite false), and their own flushers' batch window
// gathers the samples of a stream faster than it can be written sample
// by sample.
func (h *Hub) deliver(d *device) {
	subs := d.flush
	n := len(subs)
	until := time.Now().Add(d.budget)
	end := n // subs[:end] is this goroutine's
	if parts := min(len(d.helpers)+1, n/deliverShare); parts > 1 {
		size := (n + parts - 1) / parts
		for _, hp := range d.helpers[:parts-1] {
			lo := max(end-size, size)
			if lo >= end {
				break
			}
			if !hp.busy.CompareAndSwap(false, true) {
				continue
			}
			hp.subs, hp.until = append(hp.subs[:0], subs[lo:end]...), until
			h.wg.Add(1)
			go hp.run(&h.wg)
			end = lo
		}
	}
	deliverPart(subs[:end], until)
	clear(subs)
}

// deliverShare is the fewest subscribers worth a helper of deliver's.
const deliverShare = 64

// deliverHelper is a share of deliver's work handed to a goroutine of its
// own; busy while that goroutine runs.
type deliverHelper struct {
	busy  atomic.Bool
	subs  []Subscriber
	until time.Time
}

func (hp *deliverHelper) run(wg *sync.WaitGroup) {
	defer wg.Done()
	stack.Grow(0)
	deliverPart(hp.subs, hp.until)
	clear(hp.subs)
	hp.busy.Store(false)
}

// deliverPart is deliver for one share.
func deliverPart(subs []Subscriber, until time.Time) {
	mayWrite := true
	for i, sub := range subs {
		if mayWrite && i%16 == 15 && time.Now().After(until) {
			mayWrite = false // past the budget: flushers for the rest
		}
		sub.Deliver(mayWrite)
	}
}

// deliverBudget is how long deliver may write for a device sampled every
// interval: half of it, and 1 ms for a device that pushes its samples
// (interval 0).
func deliverBudget(interval time.Duration) time.Duration {
	if interval <= 0 {
		return time.Millisecond
	}
	return interval / 2
}
