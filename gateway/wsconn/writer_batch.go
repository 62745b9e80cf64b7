package wsconn

import (
	"sync/atomic"
	"time"
)

// The Writer's batching policy: which streams are fast, how long a batch
// window is, when a flush counts as late and how long it holds samples
// back. The decisions are pure functions of timestamps and counts, so that
// they are tested on their own (writer_batch_test.go); the Writer only
// applies them.

// FastStreams counts the connections whose sample stream is faster than
// the batch window (each written once per window), so that the window can
// grow when there are so many that writing each of them once per window
// would pass the server's write budget.
type FastStreams struct {
	n      atomic.Int64
	budget int64 // writes per second for fast streams, all together
}

// writesPerCore is the write budget of fast streams per core (GOMAXPROCS).
// A write of a batch took about 5 µs of a Xeon core in the write system
// call alone, on loopback under load (3,200 subscribers at 1 kHz; the
// receiving side's TCP work is done in that call), and 10 µs with the
// flush around it; a Raspberry Pi's core is several times slower, so
// 25,000 writes a second keep to about half of a small board's core and
// leave the rest to sampling, fan-out and the clients.
const writesPerCore = 25_000

// MaxAdaptiveBatch bounds how far the window grows under load.
const MaxAdaptiveBatch = 100 * time.Millisecond

// NewFastStreams makes the counter of a server with cores cores.
func NewFastStreams(cores int) *FastStreams {
	return &FastStreams{budget: int64(max(cores, 1)) * writesPerCore}
}

// Count is how many streams are fast now.
func (f *FastStreams) Count() int64 { return max(f.n.Load(), 0) }

// Window is the batch window of a fast stream now: at least least, and
// long enough that the fast streams together stay within the budget, up
// to MaxAdaptiveBatch.
func (f *FastStreams) Window(least time.Duration) time.Duration {
	if f == nil {
		return least
	}
	return adaptiveWindow(least, f.n.Load(), f.budget)
}

// adaptiveWindow is the window in which fast streams, each written once
// per window, take budget writes a second: at least least, at most
// MaxAdaptiveBatch.
func adaptiveWindow(least time.Duration, fast, budget int64) time.Duration {
	d := time.Duration(fast * int64(time.Second) / budget)
	return max(least, min(d, MaxAdaptiveBatch))
}

// verdict is what a flush says of its stream's speed.
type verdict int8

const (
	noVerdict verdict = iota
	slowStream
	fastStream
)

// classify is the verdict of a flush of samples (oldest first, at least
// one) at now, for a stream whose newest sample written before was newest
// (0: none yet) and whose last hold ended at prevHold.
//
// A stream is fast while its samples come more often than once per
// configured window, by their timestamps: the mean gap since the newest
// sample of the last flush (or, on the first, between the samples of this
// one). Timestamps say when a sensor was read, not when the flusher ran,
// so a window that has grown leaves a 100 Hz stream under a 5 ms window
// slow however many samples it finds at once.
//
// A stream is fast too while its flushes run late: more than lateAfter
// after they were due (now against the oldest sample, or the end of the
// window that held the samples back, prevHold), which the batch window
// does not cause. That is a server with more to write than it can: its
// producer falls behind too, the gaps between samples grow past the
// window, and without this every stream would be written sample by sample
// again, more writes than before, and the producer would fall further
// behind. Counted fast, the streams' window grows with their number, and
// the server catches up.
//
// Samples taken together (a device's quantities) share a timestamp and
// count as one: the gaps are between reads.
func classify(samples []queued, newest, now, prevHold int64, batch time.Duration) verdict {
	first := newest
	if first == 0 {
		first = samples[0].s.Time()
	}
	prev, gaps := first, int64(0)
	for _, q := range samples {
		if ts := q.s.Time(); ts != prev {
			gaps++
			prev = ts
		}
	}
	last, oldest := samples[len(samples)-1].s.Time(), samples[0].s.Time()
	// (Not for samples older than the last flush's newest, or in the
	// first flush: a sensor's latest sample, queued on subscribe, may be
	// old by design.)
	late := newest != 0 && oldest >= newest && now-max(oldest, prevHold) > int64(lateAfter(batch))
	switch span := last - first; {
	case late:
		return fastStream
	case gaps > 0 && span >= 0: // (a wall clock stepped back: no verdict)
		if span < gaps*int64(batch) {
			return fastStream
		}
		return slowStream
	}
	return noVerdict
}

// lateAfter is how long after it was due a flush counts as late: four
// batch windows, and at least 20 ms (a 1,000-subscriber round of writes
// on a small board).
func lateAfter(batch time.Duration) time.Duration { return max(4*batch, 20*time.Millisecond) }

// due reports whether a sample taken at ts may be written now, to a
// stream held until holdUntil (unix ns) with a batch window of batch.
func due(batch time.Duration, ts, holdUntil int64) bool { return batch <= 0 || ts >= holdUntil }

// holdFor is how long a flush at now holds samples back for a window that
// ends at holdUntil: not at all once it has ended, and never longer than
// window (a wall clock stepped back must not stall the stream).
func holdFor(now, holdUntil int64, window time.Duration) time.Duration {
	d := time.Duration(holdUntil - now)
	if d <= 0 {
		return 0
	}
	return min(d, window)
}

// classify applies the verdict of the flush of w.samples at now.
func (w *Writer) classify(now, prevHold int64) {
	v := classify(w.samples, w.newest, now, prevHold, w.cfg.Batch)
	w.newest = w.samples[len(w.samples)-1].s.Time()
	if v != noVerdict {
		w.setFast(v == fastStream)
	}
}

// setFast counts the writer's stream in (or out of) the fast streams.
func (w *Writer) setFast(fast bool) {
	if w.cfg.Streams == nil || w.fast == fast {
		return
	}
	w.fast = fast
	if fast {
		w.cfg.Streams.n.Add(1)
	} else {
		w.cfg.Streams.n.Add(-1)
	}
}

// window is the batch window now (see FastStreams).
func (w *Writer) window() time.Duration {
	if !w.fast {
		return w.cfg.Batch
	}
	return w.cfg.Streams.Window(w.cfg.Batch)
}
