package sensor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/internal/wstest"
	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
)

// testHub builds a hub over n sensors of one fake device, without drivers.
func testHub(n int) (*Hub, *device) {
	h := &Hub{log: slog.New(slog.NewTextHandler(io.Discard, nil)), byName: map[string]*Sensor{}}
	d := &device{name: "dev"}
	for i := 0; i < n; i++ {
		h.catalog = append(h.catalog, protocol.SensorInfo{Name: "dev.q" + string(rune('a'+i)), Unit: "u", Index: i})
		d.sensors = append(d.sensors, &Sensor{device: d})
	}
	h.devices = []*device{d}
	h.index()
	return h, d
}

// queued is a sample handed to a testSub.
type queued struct {
	s      *Sample
	binary bool
}

// testSub is a Subscriber that keeps what it is handed until drained.
type testSub struct {
	mu sync.Mutex
	q  []queued
}

func newTestSub() *Subscription { return &Subscription{Subscriber: &testSub{}} }

func (t *testSub) Queue(s *Sample, binary bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.q = append(t.q, queued{s, binary})
	return false
}
func (t *testSub) Deliver(bool) {}
func (t *testSub) Purge(drop func(*Sample) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	kept := t.q[:0]
	for _, q := range t.q {
		if drop(q.s) {
			q.s.Release()
		} else {
			kept = append(kept, q)
		}
	}
	t.q = kept
}

// drain takes everything handed to a test subscriber.
func drain(sub *Subscription) []queued {
	t := sub.Subscriber.(*testSub)
	t.mu.Lock()
	defer t.mu.Unlock()
	q := t.q
	t.q = nil
	return q
}

// writerSub is a Subscriber that is a connection's writer, as a sensor
// session of the gateway is.
type writerSub struct{ w *wsconn.Writer }

func (s writerSub) Queue(smp *Sample, binary bool) bool { return s.w.QueueSample(smp, binary) }
func (s writerSub) Deliver(mayWrite bool)               { s.w.Deliver(mayWrite) }
func (s writerSub) Purge(drop func(*Sample) bool) {
	s.w.Purge(func(q wsconn.Sample) bool { return drop(q.(*Sample)) })
}

var testWriters = &wsconn.WriterConfig{Dropped: protocol.AppendDropped}

// newWriterSub is a subscription whose writer queues up to limit samples.
func newWriterSub(limit int) (*Subscription, *wsconn.Writer) {
	w := &wsconn.Writer{}
	w.SetQueueLimit(limit)
	return &Subscription{Subscriber: writerSub{w}}, w
}

// sampleFrames starts w on a recording connection and returns the frames
// of what it had queued.
func sampleFrames(t *testing.T, w *wsconn.Writer) []ws.Frame {
	t.Helper()
	nc := &wstest.RecordConn{}
	w.Start(wsconn.New(nc, nil, wsconn.Config{}), testWriters, nil)
	w.Stop() // waits for the flush
	return nc.Frames(t)
}

func TestHubSnapshotDropsAndDecimation(t *testing.T) {
	h, d := testHub(2)
	t0 := time.Unix(1_800_000_000, 0)
	h.publish(d, 0, 1.25, t0) // latest of q a before anyone subscribes

	sub := newTestSub()
	h.Subscribe(sub, h.sensors[:1], Options{})
	got := drain(sub)
	if len(got) != 1 || got[0].s.value != 1.25 {
		t.Fatalf("subscribe: snapshot %v", got)
	}
	var m map[string]any
	if err := json.Unmarshal(got[0].s.text, &m); err != nil || m["sensor"] != "dev.qa" || m["seq"] != float64(1) {
		t.Fatalf("sample JSON %s", got[0].s.text)
	}
	got[0].s.Release()

	// Overflow: 10 samples into a queue of 4 → the 6 oldest dropped, counted.
	full, w := newWriterSub(4)
	h.Subscribe(full, h.sensors[:1], Options{})
	w.Purge(func(wsconn.Sample) bool { return true }) // the snapshot
	for i := 0; i < 10; i++ {
		h.publish(d, 0, float64(i), t0.Add(time.Duration(i+1)*time.Millisecond))
		h.publish(d, 1, 99, t0) // not subscribed: never queued
	}
	fs := sampleFrames(t, w)
	if len(fs) != 5 || string(fs[0].Payload) != `{"event":"dropped","count":6}` {
		t.Fatalf("%d frames, the first %q; want the dropped notice and 4 samples", len(fs), fs[0].Payload)
	}
	for i, f := range fs[1:] {
		var m struct{ Value float64 }
		if err := json.Unmarshal(f.Payload, &m); err != nil || m.Value != float64(6+i) {
			t.Fatalf("sample %d kept: %s", i, f.Payload)
		}
	}
	h.Remove(full)

	// Decimation: max_hz 100 → one sample per 10 ms on average (each up to
	// 2.5 ms early); 36 ms of 1 kHz samples leave 4, at 0, 8, 18 and 28 ms.
	dec := newTestSub()
	h.Subscribe(dec, h.sensors[1:], Options{Binary: true, MinGap: 10 * time.Millisecond})
	drain(dec)
	for i := 0; i < 36; i++ {
		h.publish(d, 1, float64(i), t0.Add(time.Second+time.Duration(i)*time.Millisecond))
	}
	got = drain(dec)
	if len(got) != 4 || !got[0].binary {
		t.Fatalf("decimated to %d samples (want 4), binary=%v", len(got), len(got) > 0 && got[0].binary)
	}
	rec, _ := protocol.DecodeRecords(got[0].s.Record(), nil)
	if rec[0].Index != 1 || rec[0].Value != 0 {
		t.Fatalf("record %+v", rec[0])
	}
	for _, q := range got {
		q.s.Release()
	}

	// Unsubscribe purges what is queued.
	h.publish(d, 0, 7, t0.Add(time.Hour))
	h.Unsubscribe(sub, h.sensors[:1])
	if got = drain(sub); len(got) != 0 {
		t.Fatalf("%d samples left after unsubscribe", len(got))
	}
}

// Fan-out takes one reference per subscriber that gets the sample and no
// more, however many subscribers skip it (not subscribed, decimated), and
// the sample goes back to the pool only when the last one is released.
func TestFanOutReferencesOnlyWhatItQueues(t *testing.T) {
	h, d := testHub(2)
	t0 := time.Unix(1_800_000_000, 0)
	var got []*Subscription
	for i := 0; i < 3; i++ {
		sub := newTestSub()
		h.Subscribe(sub, h.sensors[:1], Options{Binary: true})
		got = append(got, sub)
	}
	other := newTestSub() // another sensor only
	h.Subscribe(other, h.sensors[1:], Options{Binary: true})
	slow := newTestSub() // max_hz 1: takes the first only
	h.Subscribe(slow, h.sensors[:1], Options{Binary: true, MinGap: time.Second})
	for _, sub := range append(got, other, slow) {
		drain(sub)
	}
	h.publish(d, 0, 1, t0)
	h.publish(d, 0, 2, t0.Add(time.Millisecond))
	s := h.sensors[0].latest
	// The hub's "latest" reference and the three subscribers of every sample.
	if n := s.refs.Load(); n != 4 {
		t.Fatalf("refs of the second sample: %d, want 4", n)
	}
	if q := drain(other); len(q) != 0 {
		t.Fatalf("%d samples of another sensor queued", len(q))
	}
	if q := drain(slow); len(q) != 1 || q[0].s.value != 1 {
		t.Fatalf("decimated subscriber got %d samples", len(q))
	} else {
		q[0].s.Release()
	}
	for i, sub := range got {
		q := drain(sub)
		if len(q) != 2 || q[1].s != s {
			t.Fatalf("subscriber %d got %d samples", i, len(q))
		}
		for _, e := range q {
			e.s.Release()
		}
	}
	if n := s.refs.Load(); n != 1 {
		t.Fatalf("refs after every subscriber released: %d, want 1 (latest)", n)
	}
}

// drainRelease gives back everything queued to a writer, as its flusher
// does once written, without allocating.
func drainRelease(w *wsconn.Writer) { w.Purge(releaseAll) }

func releaseAll(wsconn.Sample) bool { return true }

// benchHub is a hub of one sensor with n subscribers, writers not
// started (they only queue); subscriber i takes binary(i).
func benchHub(n int, binary func(i int) bool) (*Hub, *device, []*wsconn.Writer) {
	h, d := testHub(1)
	writers := make([]*wsconn.Writer, n)
	for i := range writers {
		var sub *Subscription
		sub, writers[i] = newWriterSub(1024)
		h.Subscribe(sub, h.sensors, Options{Binary: binary(i)})
	}
	return h, d, writers
}

func BenchmarkHubFanOut100(b *testing.B) {
	h, d, writers := benchHub(100, func(i int) bool { return i%2 == 0 })
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		h.publish(d, 0, 21.37, now)
		for _, w := range writers {
			drainRelease(w)
		}
	}
}

// max_hz equal to a sensor's rate passes every sample despite jitter, and a
// faster sensor is held to max_hz on average.
func TestDecimateCadence(t *testing.T) {
	const ms = int64(time.Millisecond)
	w := subWant{minGap: 1000 * ms}
	// A 1 Hz sensor whose ticks come up to 30 ms early or late.
	passed := 0
	for i, jitter := range []int64{0, -30, 20, -10, -30, 25, 0, -29, 5, -30} {
		if w.decimate(int64(i)*1000*ms + jitter*ms) {
			passed++
		}
	}
	if passed != 10 {
		t.Fatalf("%d of 10 samples at max_hz passed", passed)
	}
	// A 1.3 Hz sensor under max_hz 1 for 100 s: at most 101 pass (the
	// cadence restarts after each late sample, so somewhat fewer do).
	w = subWant{minGap: 1000 * ms}
	passed = 0
	for ts := int64(0); ts < 100_000*ms; ts += 769 * ms {
		if w.decimate(ts) {
			passed++
		}
	}
	if passed > 101 || passed < 85 {
		t.Fatalf("%d samples passed in 100 s at max_hz 1", passed)
	}
}

// BenchmarkHubFanOut1000Draining publishes to 1,000 subscribers while
// another goroutine drains their writers and releases what it took, as
// flushers on other cores do: the cost of fan-out when the shared sample
// and the writers are also in use elsewhere.
func BenchmarkHubFanOut1000Draining(b *testing.B) {
	h, d, writers := benchHub(1000, func(int) bool { return true })
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, w := range writers {
				drainRelease(w)
			}
		}
	}()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		h.publish(d, 0, 21.37, now)
	}
	b.StopTimer()
	close(stop)
	<-done
	for _, w := range writers {
		drainRelease(w)
	}
}

// A subscriber's queue holds as many samples as its writer's limit
// (gateway.limits.subscriber_queue, set by the sensor session), though
// it starts smaller.
func TestSubscriberQueueLimit(t *testing.T) {
	h, d := testHub(1)
	sub, w := newWriterSub(64)
	h.Subscribe(sub, h.sensors, Options{})
	t0 := time.Unix(1_800_000_000, 0)
	for i := 0; i < 70; i++ {
		h.publish(d, 0, float64(i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	fs := sampleFrames(t, w)
	var first struct{ Value float64 }
	if len(fs) != 65 || string(fs[0].Payload) != `{"event":"dropped","count":6}` || json.Unmarshal(fs[1].Payload, &first) != nil || first.Value != 6 {
		t.Fatalf("70 samples into a queue of 64: %d frames, want the dropped notice (6) and 64 samples from 6 on", len(fs))
	}
}

// deliver hands shares of a long list to idle helpers and keeps the shares
// of busy ones; past its budget it has the writers start flushers instead
// of writing. Whichever way, every connection gets every message, in
// order, and no claim is left once the flushers and helpers are done.
func TestDeliverSharesAndBudget(t *testing.T) {
	const n, rounds = 300, 4
	ncs, peers := wstest.UnixPairs(t, n)
	writers := make([]*wsconn.Writer, n)
	for i, nc := range ncs {
		writers[i] = &wsconn.Writer{}
		writers[i].SetQueueLimit(16)
		writers[i].Start(wsconn.New(nc, nil, wsconn.Config{WriteTimeout: 10 * time.Second}), testWriters, nil)
	}
	h, d := testHub(1)
	d.helpers = []*deliverHelper{{}, {}, {}}
	msg := func(round int) string { return fmt.Sprintf("round %d", round) }
	for round := range rounds {
		d.budget = time.Second
		if round%2 == 1 {
			d.budget = 0 // all but the first few of each share go to flushers
		}
		s := samplePool.Get().(*Sample)
		s.refs.Store(1)
		s.isErr, s.tsNano, s.text = true, 0, append(s.text[:0], msg(round)...)
		d.flush = d.flush[:0]
		for _, w := range writers { // as fan-out queues and claims
			s.refs.Add(1)
			if w.QueueSample(s, false) {
				d.flush = append(d.flush, writerSub{w})
			}
		}
		s.Release()
		h.deliver(d) // the next round may find helpers still busy
	}
	h.wg.Wait()
	for _, w := range writers {
		w.Stop()
	}
	for i, p := range peers {
		p.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(p)
		for round := range rounds {
			f, err := wstest.ReadFrame(r)
			if err != nil || string(f.Payload) != msg(round) {
				t.Fatalf("connection %d, message %d: %q, %v", i, round, f.Payload, err)
			}
		}
	}
	for _, hp := range d.helpers {
		if hp.busy.Load() || len(hp.subs) != 0 && hp.subs[0] != nil {
			t.Fatal("a helper kept its share")
		}
	}
}

// The quantities of one read go to a subscriber of them all in one write,
// at once (each published on its own, the second would wait out the batch
// window the first opened).
func TestOneReadOneWrite(t *testing.T) {
	h, d := testHub(3)
	nc := &wstest.RecordConn{}
	sub, w := newWriterSub(16)
	w.Start(wsconn.New(nc, nil, wsconn.Config{}), &wsconn.WriterConfig{Batch: 5 * time.Millisecond}, nil)
	defer w.Stop()
	w.PushControl([]byte(`{"id":1,"ok":true}`), nil)
	h.Subscribe(sub, h.sensors, Options{})
	wstest.WaitFor(t, "the reply", func() bool { return nc.Count() >= 1 })
	h.publishRead(d, []float64{1, 2, 3}, time.Now())
	wstest.WaitFor(t, "the read", func() bool { return nc.Count() >= 2 })
	time.Sleep(20 * time.Millisecond) // nothing more comes
	if n := nc.Count(); n != 2 {
		t.Fatalf("%d writes for the reply and one read, want 2", n)
	}
	fs := nc.Frames(t)
	if len(fs) != 4 {
		t.Fatalf("%d frames, want the reply and 3 samples", len(fs))
	}
	for i, f := range fs[1:] {
		var m struct {
			Sensor string
			Value  float64
		}
		if err := json.Unmarshal(f.Payload, &m); err != nil || m.Sensor != h.sensors[i].info.Name || m.Value != float64(i+1) {
			t.Errorf("sample %d: %s (%v)", i, f.Payload, err)
		}
	}
}
