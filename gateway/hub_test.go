package gateway

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/edgegate/edgegate/protocol"
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
			o := s.out
			o.mu.Lock()
			for ; o.n > 0; o.n-- {
				buf = append(buf, o.ring[o.head])
				o.ring[o.head] = queued{}
				o.head = (o.head + 1) % len(o.ring)
			}
			o.mu.Unlock()
			for _, q := range buf {
				q.s.release()
			}
			buf = buf[:0]
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
