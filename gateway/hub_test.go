package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
)

// testHub builds a hub over n sensors of one fake device, without drivers.
func testHub(n, queue int) (*hub, *deviceEntry) {
	h := &hub{log: slog.New(slog.NewTextHandler(io.Discard, nil)), queue: queue, byName: map[string]*sensorEntry{}}
	d := &deviceEntry{name: "dev"}
	for i := 0; i < n; i++ {
		e := &sensorEntry{device: d, info: protocol.SensorInfo{Name: "dev.q" + string(rune('a'+i)), Unit: "u", Index: i}}
		d.sensors = append(d.sensors, e)
		h.sensors = append(h.sensors, e)
		h.byName[e.info.Name] = e
	}
	h.devices = []*deviceEntry{d}
	return h, d
}

// drain takes everything queued for a subscriber, like its writer would.
func drain(o *outbox) (ctrl int, samples []queued, dropped uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ctrl = len(o.ctrl)
	o.ctrl = o.ctrl[:0]
	for ; o.n > 0; o.n-- {
		samples = append(samples, o.ring[o.head])
		o.ring[o.head] = queued{}
		o.head = (o.head + 1) % len(o.ring)
	}
	dropped, o.dropped = o.dropped, 0
	return
}

func TestHubSnapshotDropsAndDecimation(t *testing.T) {
	h, d := testHub(2, 4)
	t0 := time.Unix(1_800_000_000, 0)
	h.publish(d, 0, 1.25, t0) // latest of q a before anyone subscribes

	sub := &subscriber{out: newOutbox()}
	h.subscribe(sub, h.sensors[:1], false, 0, ctrlMsg{data: []byte("reply")})
	ctrl, got, _ := drain(sub.out)
	if ctrl != 1 || len(got) != 1 || got[0].s.value != 1.25 {
		t.Fatalf("subscribe: ctrl %d, snapshot %v", ctrl, got)
	}
	var m map[string]any
	if err := json.Unmarshal(got[0].s.text, &m); err != nil || m["sensor"] != "dev.qa" || m["seq"] != float64(1) {
		t.Fatalf("sample JSON %s", got[0].s.text)
	}
	got[0].s.release()

	// Overflow: 10 samples into a queue of 4 → the 6 oldest dropped, counted.
	for i := 0; i < 10; i++ {
		h.publish(d, 0, float64(i), t0.Add(time.Duration(i+1)*time.Millisecond))
		h.publish(d, 1, 99, t0) // not subscribed: never queued
	}
	_, got, dropped := drain(sub.out)
	if dropped != 6 || len(got) != 4 || got[0].s.value != 6 || got[3].s.value != 9 {
		t.Fatalf("dropped %d, kept %d", dropped, len(got))
	}
	for _, q := range got {
		q.s.release()
	}

	// Decimation: max_hz 100 → one sample per 10 ms on average (each up to
	// 2.5 ms early); 36 ms of 1 kHz samples leave 4, at 0, 8, 18 and 28 ms
	// (the queue holds 4, so none is dropped).
	dec := &subscriber{out: newOutbox()}
	h.subscribe(dec, h.sensors[1:], true, int64(10*time.Millisecond), ctrlMsg{})
	drain(dec.out)
	for i := 0; i < 36; i++ {
		h.publish(d, 1, float64(i), t0.Add(time.Second+time.Duration(i)*time.Millisecond))
	}
	_, got, _ = drain(dec.out)
	if len(got) != 4 || !got[0].binary {
		t.Fatalf("decimated to %d samples (want 4), binary=%v", len(got), len(got) > 0 && got[0].binary)
	}
	rec, _ := protocol.DecodeRecords(got[0].s.record[:], nil)
	if rec[0].Index != 1 || rec[0].Value != 0 {
		t.Fatalf("record %+v", rec[0])
	}
	for _, q := range got {
		q.s.release()
	}

	// Unsubscribe purges what is queued.
	h.publish(d, 0, 7, t0.Add(time.Hour))
	h.unsubscribe(sub, h.sensors[:1], ctrlMsg{})
	if _, got, _ = drain(sub.out); len(got) != 0 {
		t.Fatalf("%d samples left after unsubscribe", len(got))
	}
}

// Fan-out takes one reference per subscriber that gets the sample and no
// more, however many subscribers skip it (not subscribed, decimated), and
// the sample goes back to the pool only when the last one is released.
func TestFanOutReferencesOnlyWhatItQueues(t *testing.T) {
	h, d := testHub(2, 16)
	t0 := time.Unix(1_800_000_000, 0)
	var got []*subscriber
	for i := 0; i < 3; i++ {
		sub := &subscriber{out: newOutbox()}
		h.subscribe(sub, h.sensors[:1], true, 0, ctrlMsg{})
		got = append(got, sub)
	}
	other := &subscriber{out: newOutbox()} // another sensor only
	h.subscribe(other, h.sensors[1:], true, 0, ctrlMsg{})
	slow := &subscriber{out: newOutbox()} // max_hz 1: takes the first only
	h.subscribe(slow, h.sensors[:1], true, int64(time.Second), ctrlMsg{})
	for _, sub := range append(got, other, slow) {
		drain(sub.out)
	}
	h.publish(d, 0, 1, t0)
	h.publish(d, 0, 2, t0.Add(time.Millisecond))
	s := h.sensors[0].latest
	// The hub's "latest" reference and the three subscribers of every sample.
	if n := s.refs.Load(); n != 4 {
		t.Fatalf("refs of the second sample: %d, want 4", n)
	}
	if _, q, _ := drain(other.out); len(q) != 0 {
		t.Fatalf("%d samples of another sensor queued", len(q))
	}
	if _, q, _ := drain(slow.out); len(q) != 1 || q[0].s.value != 1 {
		t.Fatalf("decimated subscriber got %d samples", len(q))
	} else {
		q[0].s.release()
	}
	for i, sub := range got {
		_, q, _ := drain(sub.out)
		if len(q) != 2 || q[1].s != s {
			t.Fatalf("subscriber %d got %d samples", i, len(q))
		}
		for _, e := range q {
			e.s.release()
		}
	}
	if n := s.refs.Load(); n != 1 {
		t.Fatalf("refs after every subscriber released: %d, want 1 (latest)", n)
	}
}

// drainRelease takes what is queued for a subscriber and releases it, as
// its flusher does once written, without allocating (buf is reused).
func drainRelease(o *outbox, buf []queued) []queued {
	o.mu.Lock()
	for ; o.n > 0; o.n-- {
		buf = append(buf, o.ring[o.head])
		o.ring[o.head] = queued{}
		o.head = (o.head + 1) % len(o.ring)
	}
	o.mu.Unlock()
	for i, q := range buf {
		q.s.release()
		buf[i] = queued{}
	}
	return buf[:0]
}

func BenchmarkHubFanOut100(b *testing.B) {
	h, d := testHub(1, 1024)
	subs := make([]*subscriber, 100)
	for i := range subs {
		subs[i] = &subscriber{out: newOutbox()}
		h.subscribe(subs[i], h.sensors, i%2 == 0, 0, ctrlMsg{})
		drain(subs[i].out)
	}
	now := time.Now()
	buf := make([]queued, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		h.publish(d, 0, 21.37, now)
		for _, s := range subs {
			buf = drainRelease(s.out, buf)
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
// another goroutine drains their outboxes and releases what it took, as
// flushers on other cores do: the cost of fan-out when the shared sample
// and the outboxes are also in use elsewhere.
func BenchmarkHubFanOut1000Draining(b *testing.B) {
	h, d := testHub(1, 1024)
	subs := make([]*subscriber, 1000)
	for i := range subs {
		subs[i] = &subscriber{out: newOutbox()}
		h.subscribe(subs[i], h.sensors, true, 0, ctrlMsg{})
		drain(subs[i].out)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]queued, 0, 1024)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, s := range subs {
				buf = drainRelease(s.out, buf)
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
	for _, s := range subs {
		drain(s.out)
	}
}

// A subscriber's queue holds gateway.limits.subscriber_queue samples,
// though it starts smaller.
func TestSubscriberQueueLimit(t *testing.T) {
	h, d := testHub(1, 64)
	sub := &subscriber{out: newOutbox()}
	h.subscribe(sub, h.sensors, true, 0, ctrlMsg{})
	drain(sub.out)
	t0 := time.Unix(1_800_000_000, 0)
	for i := 0; i < 70; i++ {
		h.publish(d, 0, float64(i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	_, got, dropped := drain(sub.out)
	if len(got) != 64 || dropped != 6 || got[0].s.value != 6 {
		t.Fatalf("70 samples into a queue of 64: %d kept, %d dropped", len(got), dropped)
	}
	for _, q := range got {
		q.s.release()
	}
}

// deliver hands shares of a long list to idle helpers and keeps the shares
// of busy ones; past its budget it starts flushers instead of writing.
// Whichever way, every connection gets every message, in order, and no
// claim is left once the flushers and helpers are done.
func TestDeliverSharesAndBudget(t *testing.T) {
	const n, rounds = 300, 4
	ncs, peers := unixPairs(t, n)
	outs := make([]*outbox, n)
	for i, nc := range ncs {
		c := wsconn.New(nc, nil, wsconn.Config{WriteTimeout: 10 * time.Second})
		outs[i] = newOutbox()
		outs[i].start(&writer{c: c, o: outs[i]})
	}
	h, d := testHub(1, 16)
	d.helpers = []*deliverHelper{{}, {}, {}}
	msg := func(round, i int) string { return fmt.Sprintf("round %d to %d", round, i) }
	for round := range rounds {
		d.budget = time.Second
		if round%2 == 1 {
			d.budget = 0 // all but the first few of each share go to flushers
		}
		d.flush = d.flush[:0]
		for i, o := range outs { // as fan-out queues and claims
			o.mu.Lock()
			o.ctrl = append(o.ctrl, ctrlMsg{data: []byte(msg(round, i))})
			if o.claimFlushLocked() {
				o.w.direct = true
				d.flush = append(d.flush, o)
			}
			o.mu.Unlock()
		}
		h.deliver(d) // the next round may find helpers still busy
	}
	h.wg.Wait()
	for _, o := range outs {
		o.stop()
	}
	for i, p := range peers {
		p.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(p)
		for round := range rounds {
			f, err := ws.ReadFrame(r)
			if err != nil || string(f.Payload) != msg(round, i) {
				t.Fatalf("connection %d, message %d: %q, %v", i, round, f.Payload, err)
			}
		}
		o := outs[i]
		if o.flushing || len(o.ctrl) > 0 {
			t.Fatalf("connection %d: flushing %v, %d queued", i, o.flushing, len(o.ctrl))
		}
	}
	for _, hp := range d.helpers {
		if hp.busy.Load() || len(hp.os) != 0 && hp.os[0] != nil {
			t.Fatal("a helper kept its share")
		}
	}
}

// The quantities of one read go to a subscriber of them all in one write,
// at once (each published on its own, the second would wait out the batch
// window the first opened).
func TestOneReadOneWrite(t *testing.T) {
	h, d := testHub(3, 16)
	nc := &writesConn{}
	o := newOutbox()
	o.start(&writer{c: wsconn.New(nc, nil, wsconn.Config{}), o: o, batch: 5 * time.Millisecond})
	defer o.stop()
	h.subscribe(&subscriber{out: o}, h.sensors, false, 0, ctrlMsg{data: []byte(`{"id":1,"ok":true}`)})
	waitWrites := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); nc.count() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d writes, want %d", nc.count(), n)
			}
		}
	}
	waitWrites(1) // the reply
	h.publishRead(d, []float64{1, 2, 3}, time.Now())
	waitWrites(2)
	time.Sleep(20 * time.Millisecond) // nothing more comes
	if n := nc.count(); n != 2 {
		t.Fatalf("%d writes for the reply and one read, want 2", n)
	}
	fs := nc.frames(t)
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
