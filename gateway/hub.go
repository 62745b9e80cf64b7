package gateway

import (
	"context"
	"fmt"
	"github.com/edgegate/edgegate/gateway/internal/stack"
	"log/slog"
	"math"
	"path"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/edgegate/edgegate/drivers"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/protocol"
)

// sample is one encoded sample or sensor error, shared by every subscriber
// that gets it and returned to samplePool when the last one is done.
type sample struct {
	refs   atomic.Int32
	index  uint32
	seq    uint64
	tsNano int64
	value  float64
	isErr  bool
	text   []byte // the JSON message
	record [protocol.RecordSize]byte
}

var samplePool = sync.Pool{New: func() any { return &sample{text: make([]byte, 0, 160)} }}

func (s *sample) release() {
	if s.refs.Add(-1) == 0 {
		samplePool.Put(s)
	}
}

type sensorEntry struct {
	info   protocol.SensorInfo
	device *deviceEntry
	latest *sample // guarded by hub.mu; the hub holds one reference
}

type deviceEntry struct {
	name    string
	drv     drivers.Sensor
	sensors []*sensorEntry
	lastErr string // guarded by hub.mu

	// pub serialises the device's publishing (a Watcher may emit from
	// goroutines of its own) and guards flush: the outboxes whose flusher
	// to start once hub.mu is released.
	pub   sync.Mutex
	flush []*outbox

	missed  *metrics.Counter // sampler ticks missed (nil: not counted); the sampler's own
	budget  time.Duration    // deliver's for each sample (deliverBudget)
	helpers []*deliverHelper // deliver's, one per further core
}

// subWant is one subscriber's interest in one sensor.
type subWant struct {
	on     bool
	binary bool
	minGap int64 // ns between delivered samples (max_hz); 0 = every sample
	next   int64 // nominal ts of the next delivery
}

// decimate reports whether a sample at ts goes to this subscriber under
// max_hz. Deliveries keep a cadence of minGap, and a sample up to a quarter
// of minGap early still counts as on time: samplers tick with jitter, so a
// strict gap would skip every other sample of a sensor whose rate equals
// max_hz. The rate never exceeds max_hz on average, and two deliveries are
// never closer than three quarters of minGap.
func (w *subWant) decimate(ts int64) bool {
	if w.minGap <= 0 {
		return true
	}
	if w.next != 0 && ts < w.next-w.minGap/4 {
		return false
	}
	// Keep the cadence; after a pause in the samples, restart it here.
	w.next = max(w.next+w.minGap, ts+w.minGap)
	return true
}

// subscriber is one sensor-stream connection's subscription state.
type subscriber struct {
	out  *outbox
	want []subWant // by sensor index; nil until the first subscribe
}

// hub owns the sensor devices: one sampler goroutine per device, each
// sample encoded once (JSON and binary) and queued to every subscriber that
// wants it, without ever waiting for a subscriber.
type hub struct {
	log     *slog.Logger
	metrics *gatewayMetrics // nil: not counted
	queue   int             // per-subscriber sample queue
	sensors []*sensorEntry
	byName  map[string]*sensorEntry
	devices []*deviceEntry

	mu   sync.Mutex
	seq  uint64
	subs []*subscriber
	// tap, when set (before start), gets every encoded sample (seq > 0)
	// and sensor_error (seq 0), under mu and in seq order: the uplink's
	// way in. It must not block.
	tap func(seq uint64, msg []byte)

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newHub(cfg *config.Config, env drivers.Env) (*hub, error) {
	h := &hub{log: env.Logger, queue: cfg.Gateway.Limits.SubscriberQueue, byName: map[string]*sensorEntry{}}
	if h.queue <= 0 {
		h.queue = 1024
	}
	for _, sc := range cfg.Sensors {
		drv, err := drivers.OpenSensor(sc, env)
		if err != nil {
			h.closeDrivers()
			return nil, err
		}
		interval := drv.Interval()
		if _, isWatcher := drv.(drivers.Watcher); isWatcher {
			interval = 0 // pushed on change, not polled
		}
		d := &deviceEntry{name: sc.Name, drv: drv, budget: deliverBudget(interval)}
		for range runtime.GOMAXPROCS(0) - 1 {
			d.helpers = append(d.helpers, &deliverHelper{})
		}
		for _, q := range drv.Quantities() {
			e := &sensorEntry{device: d, info: protocol.SensorInfo{
				Name: sc.Name + "." + q.Name, Unit: q.Unit, Index: len(h.sensors),
				IntervalMS: interval.Milliseconds(),
			}}
			d.sensors = append(d.sensors, e)
			h.sensors = append(h.sensors, e)
			h.byName[e.info.Name] = e
		}
		h.devices = append(h.devices, d)
	}
	return h, nil
}

func (h *hub) closeDrivers() {
	for _, d := range h.devices {
		d.drv.Close()
	}
}

// startSeqAfter makes the next sample's seq last+1, so that numbering
// continues across restarts. Call before start.
func (h *hub) startSeqAfter(last uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq = max(h.seq, last)
}

// start runs one sampler per device until stop.
func (h *hub) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	for _, d := range h.devices {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.sample(ctx, d)
		}()
	}
}

// stop ends the samplers, waits for them and closes the devices.
func (h *hub) stop() {
	if h.cancel != nil {
		h.cancel()
	}
	h.wg.Wait()
	h.closeDrivers()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.sensors {
		if e.latest != nil {
			e.latest.release()
			e.latest = nil
		}
	}
}

func (h *hub) sample(ctx context.Context, d *deviceEntry) {
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
	d.missed = h.metrics.samplerMissedTicks(d.name)
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

// publish encodes one sample once, queues it to every subscriber of its
// sensor and delivers it.
func (h *hub) publish(d *deviceEntry, q int, v float64, at time.Time) {
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
func (h *hub) publishRead(d *deviceEntry, vals []float64, at time.Time) {
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

// fanOutSample encodes a sample of quantity q of d and queues it to every
// subscriber that wants it, adding the outboxes whose flush it claimed to
// d.flush for deliver. The caller holds d.pub.
func (h *hub) fanOutSample(d *deviceEntry, q int, v float64, at time.Time) {
	e := d.sensors[q]
	s := samplePool.Get().(*sample)
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
		h.metrics.samples.Inc()
	}
	s.text = protocol.AppendSample(s.text[:0], e.info.Name, e.info.Unit, v, at.UnixMilli(), s.seq)
	protocol.PutRecord(s.record[:], s.seq, s.tsNano, v, s.index)
	old := e.latest
	e.latest = s
	d.flush = h.fanOutLocked(s, true, d.flush)
	if h.tap != nil {
		h.tap(s.seq, s.text)
	}
	h.mu.Unlock()
	if old != nil {
		old.release()
	}
}

// deliver writes what a fan-out of d's queued to the outboxes whose flush
// it claimed (d.flush), once the hub's lock is released (so that fan-out
// holds it as briefly as it can). Samples that are due now are written by
// this goroutine, one connection after the other, to each that takes them
// without waiting, and a flusher (writer.run) is started only for the
// others (a full send buffer, a write under way, samples held for the
// batch window): a goroutine per connection per sample would cost more
// than the write itself.
//
// With more than deliverShare outboxes and more than one core, helpers
// (one per further core) take a share each, from the end of the list; a
// helper still busy with an earlier sample leaves its share to this
// goroutine, which never waits for one (under load, a helper may wait
// long for a core). Writing goes on for d.budget at most, so that the
// sampler keeps its schedule: what is left then goes to flushers, whose
// batch window gathers the samples of a stream faster than it can be
// written sample by sample.
func (h *hub) deliver(d *deviceEntry) {
	os := d.flush
	n := len(os)
	until := time.Now().Add(d.budget)
	end := n // os[:end] is this goroutine's
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
			hp.os, hp.until = append(hp.os[:0], os[lo:end]...), until
			h.wg.Add(1)
			go hp.run(&h.wg)
			end = lo
		}
	}
	deliverPart(os[:end], until)
	clear(os)
}

// deliverShare is the fewest outboxes worth a helper of deliver's.
const deliverShare = 64

// deliverHelper is a share of deliver's work handed to a goroutine of its
// own; busy while that goroutine runs.
type deliverHelper struct {
	busy  atomic.Bool
	os    []*outbox
	until time.Time
}

func (hp *deliverHelper) run(wg *sync.WaitGroup) {
	defer wg.Done()
	stack.Grow(0)
	deliverPart(hp.os, hp.until)
	clear(hp.os)
	hp.busy.Store(false)
}

// deliverPart is deliver for one share.
func deliverPart(os []*outbox, until time.Time) {
	direct := true
	for i, o := range os {
		if direct && i%16 == 15 && time.Now().After(until) {
			direct = false // past the budget: flushers for the rest
		}
		if !direct || !o.w.direct || !o.w.tryFlush() {
			go o.w.run()
		}
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

// publishError reports a failed read of a device as a sensor_error event
// for each of its sensors.
func (h *hub) publishError(d *deviceEntry, err error, at time.Time) {
	msg := err.Error()
	d.pub.Lock()
	defer d.pub.Unlock()
	h.mu.Lock()
	defer func() {
		h.mu.Unlock()
		h.deliver(d)
	}()
	d.flush = d.flush[:0]
	h.metrics.sensorReadFailed(d.name)
	if d.lastErr != msg {
		h.log.Warn("sensor read failed", "device", d.name, "err", msg)
		d.lastErr = msg
	}
	for _, e := range d.sensors {
		s := samplePool.Get().(*sample)
		s.refs.Store(1)
		s.index, s.isErr, s.tsNano = uint32(e.info.Index), true, at.UnixNano()
		s.text = protocol.AppendSensorError(s.text[:0], e.info.Name, msg, at.UnixMilli())
		d.flush = h.fanOutLocked(s, false, d.flush)
		if h.tap != nil {
			h.tap(0, s.text)
		}
		s.release()
	}
}

// fanOutLocked queues s to every subscriber that wants it, and appends to
// flush the outboxes whose flush it claimed, for the caller to deliver
// after releasing h.mu.
func (h *hub) fanOutLocked(s *sample, decimate bool, flush []*outbox) []*outbox {
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
		o := sub.out
		o.mu.Lock()
		o.pushSampleLocked(s, w.binary)
		if o.claimFlushLocked() {
			o.w.direct = o.w.batch <= 0 || s.tsNano >= o.holdUntil
			flush = append(flush, o)
		}
		o.mu.Unlock()
	}
	if spare != 0 {
		s.refs.Add(-spare)
	}
	return flush
}

// match resolves names and glob patterns to sensors. A plain name that
// matches nothing is an error; a pattern that matches nothing is not.
func (h *hub) match(patterns []string) ([]*sensorEntry, error) {
	seen := make(map[int]bool)
	var out []*sensorEntry
	for _, p := range patterns {
		if !strings.ContainsAny(p, "*?[\\") {
			e, ok := h.byName[p]
			if !ok {
				return nil, &unknownSensorError{name: p}
			}
			if !seen[e.info.Index] {
				seen[e.info.Index] = true
				out = append(out, e)
			}
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("bad pattern %q: use names like room.temperature, or globs like room.* and *", p)
		}
		for _, e := range h.sensors {
			if ok, _ := path.Match(p, e.info.Name); ok && !seen[e.info.Index] {
				seen[e.info.Index] = true
				out = append(out, e)
			}
		}
	}
	return out, nil
}

type unknownSensorError struct{ name string }

func (e *unknownSensorError) Error() string {
	return fmt.Sprintf("no sensor named %q (sensor names are <device>.<quantity>, e.g. room.temperature; list shows them all)", e.name)
}

// subscribe adds sensors to a subscription and queues, in one step, the
// reply (encoded by reply) and then the latest sample of each.
func (h *hub) subscribe(sub *subscriber, entries []*sensorEntry, binary bool, minGap int64, reply ctrlMsg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if sub.want == nil {
		sub.want = make([]subWant, len(h.sensors))
		sub.out.mu.Lock()
		sub.out.limit = h.queue // the ring is made by the first sample queued
		sub.out.mu.Unlock()
		h.subs = append(h.subs, sub)
	}
	sub.out.mu.Lock()
	sub.out.ctrl = append(sub.out.ctrl, reply)
	for _, e := range entries {
		sub.want[e.info.Index] = subWant{on: true, binary: binary, minGap: minGap}
		if s := e.latest; s != nil {
			s.refs.Add(1)
			sub.want[e.info.Index].decimate(s.tsNano)
			sub.out.pushSampleLocked(s, binary)
		}
	}
	sub.out.mu.Unlock()
	sub.out.wake()
}

// subscribed returns the entries that sub is subscribed to.
func (h *hub) subscribed(sub *subscriber, entries []*sensorEntry) []*sensorEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*sensorEntry
	for _, e := range entries {
		if sub.want != nil && sub.want[e.info.Index].on {
			out = append(out, e)
		}
	}
	return out
}

// unsubscribe removes sensors, drops their queued samples, and queues the reply.
func (h *hub) unsubscribe(sub *subscriber, entries []*sensorEntry, reply ctrlMsg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub.out.mu.Lock()
	if sub.want != nil {
		for _, e := range entries {
			sub.want[e.info.Index] = subWant{}
		}
		sub.out.purgeLocked(func(s *sample) bool { return !sub.want[s.index].on })
	}
	sub.out.ctrl = append(sub.out.ctrl, reply)
	sub.out.mu.Unlock()
	sub.out.wake()
}

// remove forgets a subscriber (its connection ended).
func (h *hub) remove(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, s := range h.subs {
		if s == sub {
			last := len(h.subs) - 1
			h.subs[i] = h.subs[last]
			h.subs[last] = nil
			h.subs = h.subs[:last]
			return
		}
	}
}

func (h *hub) infos() []protocol.SensorInfo {
	out := make([]protocol.SensorInfo, len(h.sensors))
	for i, e := range h.sensors {
		out[i] = e.info
	}
	return out
}

func (h *hub) health(dst []deviceHealth) []deviceHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.devices {
		dst = append(dst, deviceHealth{Name: d.name, OK: d.lastErr == "", Error: d.lastErr})
	}
	return dst
}
