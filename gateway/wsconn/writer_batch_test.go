package wsconn

import (
	"testing"
	"time"
)

// The batch window grows with the number of fast streams, so that writing
// each once per window stays within the write budget, between the
// configured window and MaxAdaptiveBatch.
func TestFastStreamsWindow(t *testing.T) {
	f := NewFastStreams(2) // 50,000 writes/s
	for _, c := range []struct {
		fast int64
		want time.Duration
	}{
		{0, 5 * time.Millisecond}, {200, 5 * time.Millisecond}, {400, 8 * time.Millisecond},
		{1600, 32 * time.Millisecond}, {3200, 64 * time.Millisecond}, {1_000_000, MaxAdaptiveBatch},
	} {
		f.n.Store(c.fast)
		if got := f.Window(5 * time.Millisecond); got != c.want {
			t.Errorf("%d fast streams: window %v, want %v", c.fast, got, c.want)
		}
	}
	f.n.Store(3200)
	if got := f.Window(200 * time.Millisecond); got != 200*time.Millisecond {
		t.Errorf("configured 200ms: window %v, want 200ms (never shorter than configured)", got)
	}
	if got := (*FastStreams)(nil).Window(5 * time.Millisecond); got != 5*time.Millisecond {
		t.Errorf("no counter: window %v, want 5ms", got)
	}
}

// Whether a stream is fast depends on how often its samples were read
// (their timestamps), not on how many a flush finds: a 100 Hz stream under
// a 5 ms window that waits out a window grown by other streams must not
// count as fast (it would grow the window further and then find several
// samples in every flush for good). A flush that runs late, the server
// behind with its writes, is another matter: TestLateStreamCountsAsFast.
func TestFastStreamByTimestamps(t *testing.T) {
	streams := NewFastStreams(1)
	cfg := &WriterConfig{Batch: 5 * time.Millisecond, Streams: streams}
	w := &Writer{cfg: cfg}
	t0 := time.Unix(1_800_000_000, 0)
	ts := t0
	flush := func(n int, gap time.Duration) bool {
		w.samples = w.samples[:0]
		for i := 0; i < n; i++ {
			ts = ts.Add(gap)
			s := newTestSample(uint64(i+1), false)
			s.ts = ts.UnixNano()
			w.samples = append(w.samples, queued{s: s, binary: true})
		}
		w.classify(w.samples[0].s.Time(), 0) // never late: the gaps alone decide (lateness: TestLateStreamCountsAsFast)
		return streams.n.Load() == 1
	}
	for i, c := range []struct {
		n    int
		gap  time.Duration
		fast bool
	}{
		{1, 10 * time.Millisecond, false}, // first flush, one sample: no verdict
		{4, 10 * time.Millisecond, false}, // 100 Hz, found four at once
		{8, 10 * time.Millisecond, false}, // 100 Hz under a grown window
		{3, time.Millisecond, true},       // 1 kHz
		{1, time.Millisecond, true},       // 1 kHz, found one at a time
		{2, 20 * time.Millisecond, false}, // slowed to 50 Hz
		{2, 4 * time.Millisecond, true},   // 250 Hz, faster than the window
		{2, -time.Second, true},           // the wall clock stepped back: no verdict
		{3, 0, true},                      // three quantities of one read: no verdict
		{1, time.Second, false},           // 1 Hz
		{3, 0, false},                     // three quantities of one read: no verdict
	} {
		if got := flush(c.n, c.gap); got != c.fast {
			t.Errorf("flush %d (%d samples %v apart): fast %v, want %v", i, c.n, c.gap, got, c.fast)
		}
	}
	// A subscriber's first flush decides from the gaps between its samples.
	w2 := &Writer{cfg: cfg}
	w2.samples = append(w2.samples[:0], w.samples[:2]...)
	w.setFast(false)
	w2.samples[0].s.(*testSample).ts, w2.samples[1].s.(*testSample).ts = t0.UnixNano(), t0.Add(time.Millisecond).UnixNano()
	w2.classify(t0.Add(time.Millisecond).UnixNano(), 0)
	if n := streams.n.Load(); n != 1 {
		t.Errorf("first flush of two samples 1 ms apart: %d fast streams, want 1", n)
	}
}

// A stream whose flushes run late (the server is behind with its writes)
// counts as fast, whatever its rate, so that the batch window grows; late
// is against when the flush was due: its oldest sample, or the end of the
// window that held it back.
func TestLateStreamCountsAsFast(t *testing.T) {
	streams := NewFastStreams(1)
	w := &Writer{cfg: &WriterConfig{Batch: 5 * time.Millisecond, Streams: streams}}
	ms := int64(time.Millisecond)
	ts := int64(1_800_000_000) * int64(time.Second)
	// flush classifies a flush of the next 100 Hz sample, written late
	// after it; held, when not 0, is when the window that held it ended.
	flush := func(late, held int64) bool {
		ts += 10 * ms
		s := newTestSample(1, false)
		s.ts = ts
		w.samples = append(w.samples[:0], queued{s: s})
		prevHold := int64(0)
		if held != 0 {
			prevHold = ts + held
		}
		w.classify(ts+late, prevHold)
		return streams.n.Load() == 1
	}
	if flush(time.Minute.Nanoseconds(), 0) {
		t.Fatal("a first flush counted as late: it may hold the latest sample of a slow sensor, queued on subscribe")
	}
	for i, c := range []struct {
		late, held int64
		fast       bool
	}{
		{1 * ms, 0, false},        // on time
		{30 * ms, 0, true},        // 30 ms late: behind
		{12 * ms, 0, false},       // caught up
		{60 * ms, 50 * ms, false}, // held for a grown window, written 10 ms after it
		{90 * ms, 50 * ms, true},  // 40 ms after the window
		{1 * ms, 0, false},        // on time again
	} {
		if got := flush(c.late, c.held); got != c.fast {
			t.Errorf("flush %d (%d ms after the sample, held until %d ms after it): fast %v, want %v",
				i, c.late/ms, c.held/ms, got, c.fast)
		}
	}
	// A sample older than the last one written (another sensor's latest,
	// queued on subscribe) says nothing of lateness.
	old := newTestSample(1, false)
	old.ts = ts - 10*time.Second.Nanoseconds()
	w.samples = append(w.samples[:0], queued{s: old})
	w.classify(ts+ms, 0)
	if streams.n.Load() != 0 {
		t.Error("a sample older than the last one written counted as late")
	}
}

// classify's verdicts, flush by flush, on its own.
func TestClassify(t *testing.T) {
	const ms = int64(time.Millisecond)
	batch := 5 * time.Millisecond
	at := func(tss ...int64) []queued {
		var qs []queued
		for _, ts := range tss {
			s := newTestSample(1, false)
			s.ts = ts
			qs = append(qs, queued{s: s})
		}
		return qs
	}
	for _, c := range []struct {
		name                  string
		samples               []queued
		newest, now, prevHold int64
		want                  verdict
	}{
		{"first flush, one sample", at(1000 * ms), 0, 1000 * ms, 0, noVerdict},
		{"first flush, 1 kHz", at(1000*ms, 1001*ms), 0, 1001 * ms, 0, fastStream},
		{"first flush, 100 Hz", at(1000*ms, 1010*ms), 0, 1010 * ms, 0, slowStream},
		{"one read's quantities", at(1000*ms, 1000*ms, 1000*ms), 990 * ms, 1000 * ms, 0, slowStream},
		{"one read's quantities, no gap", at(1000*ms, 1000*ms), 1000 * ms, 1000 * ms, 0, noVerdict},
		{"a gap under the window", at(1004 * ms), 1000 * ms, 1004 * ms, 0, fastStream},
		{"a gap of the window", at(1005 * ms), 1000 * ms, 1005 * ms, 0, slowStream},
		{"clock stepped back", at(900 * ms), 1000 * ms, 1000 * ms, 0, noVerdict},
		{"late by 21 ms", at(1100 * ms), 1000 * ms, 1121 * ms, 0, fastStream},
		{"20 ms after its hold ended", at(1100 * ms), 1000 * ms, 1150 * ms, 1130 * ms, slowStream},
		{"late, but older than the newest written", at(900 * ms), 1000 * ms, 2000 * ms, 0, noVerdict},
		{"late in the first flush", at(900 * ms), 0, 2000 * ms, 0, noVerdict},
	} {
		if got := classify(c.samples, c.newest, c.now, c.prevHold, batch); got != c.want {
			t.Errorf("%s: verdict %d, want %d", c.name, got, c.want)
		}
	}
}

func TestBatchTimes(t *testing.T) {
	const ms = int64(time.Millisecond)
	for _, c := range []struct {
		batch time.Duration
		want  time.Duration
	}{
		{0, 20 * time.Millisecond}, {time.Millisecond, 20 * time.Millisecond},
		{5 * time.Millisecond, 20 * time.Millisecond}, {10 * time.Millisecond, 40 * time.Millisecond},
	} {
		if got := lateAfter(c.batch); got != c.want {
			t.Errorf("lateAfter(%v) = %v, want %v", c.batch, got, c.want)
		}
	}
	for _, c := range []struct {
		batch         time.Duration
		ts, holdUntil int64
		want          bool
	}{
		{0, 1, 2, true}, // no batching: always due
		{5 * time.Millisecond, 1 * ms, 2 * ms, false}, // inside the window
		{5 * time.Millisecond, 2 * ms, 2 * ms, true},  // at its end
		{5 * time.Millisecond, 3 * ms, 2 * ms, true},  // after it
	} {
		if got := due(c.batch, c.ts, c.holdUntil); got != c.want {
			t.Errorf("due(%v, %d, %d) = %v, want %v", c.batch, c.ts, c.holdUntil, got, c.want)
		}
	}
	for _, c := range []struct {
		now, holdUntil int64
		window, want   time.Duration
	}{
		{10 * ms, 10 * ms, 5 * time.Millisecond, 0},                      // the window has ended
		{10 * ms, 8 * ms, 5 * time.Millisecond, 0},                       // long ago
		{10 * ms, 13 * ms, 5 * time.Millisecond, 3 * time.Millisecond},   // the rest of it
		{10 * ms, 1000 * ms, 5 * time.Millisecond, 5 * time.Millisecond}, // a clock stepped back: one window at most
	} {
		if got := holdFor(c.now, c.holdUntil, c.window); got != c.want {
			t.Errorf("holdFor(%d, %d, %v) = %v, want %v", c.now, c.holdUntil, c.window, got, c.want)
		}
	}
	for _, c := range []struct {
		fast, budget int64
		want         time.Duration
	}{
		{0, 25_000, 5 * time.Millisecond}, {250, 25_000, 10 * time.Millisecond}, {10_000, 25_000, MaxAdaptiveBatch},
	} {
		if got := adaptiveWindow(5*time.Millisecond, c.fast, c.budget); got != c.want {
			t.Errorf("adaptiveWindow(5ms, %d, %d) = %v, want %v", c.fast, c.budget, got, c.want)
		}
	}
}
