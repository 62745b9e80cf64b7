// Package sensor is the sensor hub: one sampler per sensor device, the
// catalog of sensors, and the fan-out of every sample to the subscribers
// that want it.
//
// A sample is encoded once (JSON and binary) and handed, with a reference,
// to every Subscriber that wants it, without ever waiting for one: a
// WebSocket session's writer, the uplink's buffer, or any later consumer
// (an MQTT bridge, an automation engine) subscribes the same way, with a
// Subscription and Hub.Subscribe. Queueing is the subscriber's business,
// and so is writing: the hub calls Deliver, from the sampler's goroutine,
// for each subscriber whose Queue asked for it, and the subscriber decides
// whether to write at once or to leave the write to a goroutine of its
// own. The hub only shares out its time (Deliver's mayWrite) so that the
// sampler keeps its schedule.
//
// The package knows no connection and no gateway: metrics go through the
// small Metrics interface.
package sensor

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/edgegate/edgegate/drivers"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/hardware"
	"github.com/edgegate/edgegate/protocol"
)

// Subscriber receives the samples of a Subscription.
type Subscriber interface {
	// Queue takes a sample (binary: in the binary format), with a
	// reference that it gives back with s.Release once done with it. It
	// is called under the hub's lock, in seq order, and must not block.
	// It reports whether the hub is to call Deliver once the lock is
	// released.
	Queue(s *Sample, binary bool) bool
	// Deliver sees to what Queue queued: writes it, or starts a goroutine
	// that will. mayWrite false: the hub's goroutine has no time left to
	// write.
	Deliver(mayWrite bool)
	// Purge gives back the queued samples for which drop returns true
	// (an unsubscribe).
	Purge(drop func(*Sample) bool)
}

// Metrics counts what the hub does. Its methods are called from the
// samplers and must not block; Sampled, once per sample, must not
// allocate.
type Metrics interface {
	Sampled()                          // a sample was taken
	ReadFailed(device string)          // a read of device failed
	MissedTicks(device string) Counter // the counter of a sampler's missed ticks, asked once per sampler; nil: not counted
}

// Counter is a counter of Metrics.
type Counter interface{ Add(n int) }

// Sensor is one sensor of the catalog: a quantity of a device.
type Sensor struct {
	info   *protocol.SensorInfo // in Hub.catalog
	device *device
	latest *Sample // guarded by Hub.mu; the hub holds one reference
}

// Info is the sensor's entry in the catalog.
func (e *Sensor) Info() *protocol.SensorInfo { return e.info }

type device struct {
	name    string
	drv     drivers.Sensor
	sensors []*Sensor
	lastErr string // guarded by Hub.mu

	// pub serialises the device's publishing (a Watcher may emit from
	// goroutines of its own) and guards flush: the subscribers to deliver
	// to once Hub.mu is released.
	pub   sync.Mutex
	flush []Subscriber

	missed  Counter          // sampler ticks missed (nil: not counted); the sampler's own
	budget  time.Duration    // deliver's for each sample (deliverBudget)
	helpers []*deliverHelper // deliver's, one per further core
}

// Options are a subscription's wishes for the sensors it subscribes to.
type Options struct {
	Binary bool          // binary records, not JSON
	MinGap time.Duration // between delivered samples of a sensor (max_hz); 0: every sample
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

// Subscription is one subscriber's interest in the hub's sensors. Its zero
// value with Subscriber set is ready for Hub.Subscribe; Hub.Remove ends it.
type Subscription struct {
	Subscriber Subscriber
	want       []subWant // by sensor index; nil until the first subscribe
}

// Hub owns the sensor devices: one sampler goroutine per device, each
// sample encoded once (JSON and binary) and handed to every subscriber
// that wants it, without ever waiting for a subscriber.
type Hub struct {
	log     *slog.Logger
	metrics Metrics // nil: not counted
	catalog []protocol.SensorInfo
	sensors []*Sensor
	byName  map[string]*Sensor
	devices []*device

	mu   sync.Mutex
	seq  uint64
	subs []*Subscription

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New opens the sensor devices of cfg. m may be nil.
func New(cfg *config.Config, env hardware.Env, m Metrics) (*Hub, error) {
	h := &Hub{log: env.Logger, metrics: m, byName: map[string]*Sensor{}}
	for _, sc := range cfg.Sensors {
		drv, err := hardware.OpenSensor(sc, env)
		if err != nil {
			h.closeDrivers()
			return nil, err
		}
		interval := drv.Interval()
		if _, isWatcher := drv.(drivers.Watcher); isWatcher {
			interval = 0 // pushed on change, not polled
		}
		d := &device{name: sc.Name, drv: drv, budget: deliverBudget(interval)}
		for range runtime.GOMAXPROCS(0) - 1 {
			d.helpers = append(d.helpers, &deliverHelper{})
		}
		for _, q := range drv.Quantities() {
			h.catalog = append(h.catalog, protocol.SensorInfo{
				Name: sc.Name + "." + q.Name, Unit: q.Unit, Index: len(h.catalog),
				IntervalMS: interval.Milliseconds(),
			})
			d.sensors = append(d.sensors, &Sensor{device: d})
		}
		h.devices = append(h.devices, d)
	}
	h.index()
	return h, nil
}

// index links the sensors of the devices to the catalog, in order.
func (h *Hub) index() {
	for _, d := range h.devices {
		for _, e := range d.sensors {
			e.info = &h.catalog[len(h.sensors)]
			h.sensors = append(h.sensors, e)
			h.byName[e.info.Name] = e
		}
	}
}

func (h *Hub) closeDrivers() {
	for _, d := range h.devices {
		d.drv.Close()
	}
}

// Catalog is every sensor, by index: the one copy, fixed for the hub's
// life. The caller must not change it.
func (h *Hub) Catalog() []protocol.SensorInfo { return h.catalog }

// StartSeqAfter makes the next sample's seq last+1, so that numbering
// continues across restarts. Call before Start.
func (h *Hub) StartSeqAfter(last uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq = max(h.seq, last)
}

// Start runs one sampler per device until Stop.
func (h *Hub) Start() {
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

// Stop ends the samplers (and deliver's helpers), waits for them and
// closes the devices.
func (h *Hub) Stop() {
	if h.cancel != nil {
		h.cancel()
	}
	h.wg.Wait()
	h.closeDrivers()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.sensors {
		if e.latest != nil {
			e.latest.Release()
			e.latest = nil
		}
	}
}

// Match resolves names and glob patterns to sensors. A plain name that
// matches nothing is an error (*UnknownSensorError); a pattern that
// matches nothing is not.
func (h *Hub) Match(patterns []string) ([]*Sensor, error) {
	seen := make(map[int]bool)
	var out []*Sensor
	for _, p := range patterns {
		if !strings.ContainsAny(p, "*?[\\") {
			e, ok := h.byName[p]
			if !ok {
				return nil, &UnknownSensorError{Name: p}
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

// UnknownSensorError is Match's error for a name that no sensor has.
type UnknownSensorError struct{ Name string }

func (e *UnknownSensorError) Error() string {
	return fmt.Sprintf("no sensor named %q (sensor names are <device>.<quantity>, e.g. room.temperature; list shows them all)", e.Name)
}

// Subscribe adds sensors to a subscription and queues to its subscriber
// the latest sample of each, before any newer one.
func (h *Hub) Subscribe(sub *Subscription, sensors []*Sensor, o Options) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if sub.want == nil {
		sub.want = make([]subWant, len(h.sensors))
		h.subs = append(h.subs, sub)
	}
	deliver := false
	for _, e := range sensors {
		w := &sub.want[e.info.Index]
		*w = subWant{on: true, binary: o.Binary, minGap: int64(o.MinGap)}
		if s := e.latest; s != nil {
			s.refs.Add(1)
			w.decimate(s.tsNano)
			deliver = sub.Subscriber.Queue(s, o.Binary) || deliver
		}
	}
	if deliver {
		sub.Subscriber.Deliver(false)
	}
}

// Subscribed returns the sensors that sub is subscribed to.
func (h *Hub) Subscribed(sub *Subscription, sensors []*Sensor) []*Sensor {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*Sensor
	for _, e := range sensors {
		if sub.want != nil && sub.want[e.info.Index].on {
			out = append(out, e)
		}
	}
	return out
}

// Unsubscribe removes sensors from a subscription and has its subscriber
// purge their queued samples.
func (h *Hub) Unsubscribe(sub *Subscription, sensors []*Sensor) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if sub.want == nil {
		return
	}
	for _, e := range sensors {
		sub.want[e.info.Index] = subWant{}
	}
	sub.Subscriber.Purge(func(s *Sample) bool { return !sub.want[s.index].on })
}

// Remove ends a subscription (its subscriber is gone).
func (h *Hub) Remove(sub *Subscription) {
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

// Devices calls f for every sensor device with its last read error ("" while
// it reads fine).
func (h *Hub) Devices(f func(name, lastErr string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.devices {
		f(d.name, d.lastErr)
	}
}
