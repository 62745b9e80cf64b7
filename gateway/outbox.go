package gateway

import (
	"errors"
	"github.com/edgegate/edgegate/gateway/internal/stack"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
)

// maxControlQueue is how many replies and events may wait for a client that
// reads slowly. They are never dropped: a client past this is disconnected
// (close 1008) and gets a fresh hello when it reconnects.
const maxControlQueue = 1024

var errTooSlow = errors.New("client too slow: outgoing queue full")

// ctrlMsg is a reply or event waiting to be written. buf, when set, goes
// back to bufPool once written; ev, when set, is the chunk of a shared
// event, released once written.
type ctrlMsg struct {
	data []byte
	buf  *[]byte
	ev   *eventChunk
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// outbox is everything waiting to be written to one connection: control
// messages (never dropped) and, for sensor subscribers, samples in a bounded
// ring that drops its oldest entries when full and counts them.
//
// No goroutine waits on an idle connection's outbox: a push starts a
// flusher (writer.run) when none is running, and the flusher returns once
// it finds nothing left to write (a fast sample stream's flusher, after a
// batch window that brought nothing).
type outbox struct {
	mu      sync.Mutex
	ctrl    []ctrlMsg
	ring    []queued // nil until the first sample; grows up to limit
	head, n int
	limit   int // most samples queued (gateway.limits.subscriber_queue); 0: len(ring)
	dropped uint64
	kicked  bool
	drops   *metrics.Counter // counts dropped samples too, when set

	w        *writer        // nil until the session starts: pushes only queue
	flushing bool           // a flusher is running; it will see what is pushed
	stopped  bool           // no flusher starts any more
	corked   bool           // the read loop flushes when it is done (cork)
	flushers sync.WaitGroup // the running flusher, for stop

	// Sample batching (writer.batch > 0): a flush that holds nothing but
	// samples waits until holdUntil (unix ns), the timestamp of the newest
	// sample last written plus the batch window, so that a fast stream
	// leaves in one write per window instead of one per sample. holding
	// is set while the flusher waits; a control message or stop cuts the
	// wait short (endHoldLocked).
	holdUntil int64
	holding   bool
}

func newOutbox() *outbox { return &outbox{} }

// claimFlushLocked reports whether the caller, having queued something,
// must start a flusher (go o.w.run()) once it has unlocked o.mu.
func (o *outbox) claimFlushLocked() bool {
	if o.w == nil || o.flushing || o.stopped || o.corked {
		return false
	}
	o.flushing = true
	o.flushers.Add(1)
	return true
}

// wake makes sure that what is queued gets written.
func (o *outbox) wake() {
	o.mu.Lock()
	start := o.claimFlushLocked()
	o.mu.Unlock()
	if start {
		go o.w.run()
	}
}

// start attaches the writer of the session and writes what was queued
// before (the hello).
func (o *outbox) start(w *writer) {
	o.mu.Lock()
	o.w = w
	start := o.pendingLocked() && o.claimFlushLocked()
	o.mu.Unlock()
	if start {
		go w.run()
	}
}

// stop lets no flusher start any more and waits for the one running.
func (o *outbox) stop() {
	o.mu.Lock()
	o.stopped = true
	o.endHoldLocked()
	o.mu.Unlock()
	o.flushers.Wait()
}

// pushCtrl queues a control message; false when the client is too far behind.
func (o *outbox) pushCtrl(m ctrlMsg) bool {
	o.mu.Lock()
	if len(o.ctrl) >= maxControlQueue || o.kicked {
		o.kicked = true
		o.endHoldLocked()
		o.mu.Unlock()
		o.release(m)
		o.wake()
		return false
	}
	o.ctrl = append(o.ctrl, m)
	o.endHoldLocked()
	o.mu.Unlock()
	o.wake()
	return true
}

// endHoldLocked ends a flusher's wait for more samples (hold): what is
// queued now must not wait for the batch window.
func (o *outbox) endHoldLocked() {
	if o.holding {
		select {
		case o.w.unhold <- struct{}{}:
		default:
		}
	}
}

// pushReply encodes a message into a pooled buffer and queues it.
func (o *outbox) pushReply(encode func([]byte) []byte) {
	bp := bufPool.Get().(*[]byte)
	*bp = encode((*bp)[:0])
	o.pushCtrl(ctrlMsg{data: *bp, buf: bp})
}

func (o *outbox) release(m ctrlMsg) {
	if m.buf != nil {
		bufPool.Put(m.buf)
	}
	m.ev.release()
}

// queued is a sample waiting for one subscriber, in that subscriber's format.
type queued struct {
	s      *sample
	binary bool
}

// pushSampleLocked queues a sample (the caller holds o.mu and has already
// taken a reference for it). When the ring is full the oldest goes.
func (o *outbox) pushSampleLocked(s *sample, binary bool) {
	if o.n == len(o.ring) && len(o.ring) < o.limit {
		o.growLocked()
	}
	if o.n == len(o.ring) {
		old := o.ring[o.head]
		o.ring[o.head] = queued{}
		o.head = (o.head + 1) % len(o.ring)
		o.n--
		o.dropped++
		if o.drops != nil {
			o.drops.Inc()
		}
		old.s.release()
	}
	o.ring[(o.head+o.n)%len(o.ring)] = queued{s, binary && !s.isErr}
	o.n++
}

// growLocked doubles the ring, up to limit. A subscriber's queue starts
// small and grows only as far as its stream needs (a window's worth of
// samples, or a backlog while it reads slowly): at 1 kHz and a 100 ms
// window that is 128 entries (2 KiB), not subscriber_queue's 1,024 (16 KiB),
// for memory and for the garbage collector, which scans every entry.
func (o *outbox) growLocked() {
	ring := make([]queued, min(max(2*len(o.ring), minRing), o.limit))
	for i := 0; i < o.n; i++ {
		ring[i] = o.ring[(o.head+i)%len(o.ring)]
	}
	o.ring, o.head = ring, 0
}

// minRing is the size of a subscriber's sample queue when it starts.
const minRing = 16

// purgeLocked removes queued samples for which drop returns true.
func (o *outbox) purgeLocked(drop func(*sample) bool) {
	kept := 0
	for i := 0; i < o.n; i++ {
		q := o.ring[(o.head+i)%len(o.ring)]
		if drop(q.s) {
			q.s.release()
			continue
		}
		o.ring[(o.head+kept)%len(o.ring)] = q
		kept++
	}
	for i := kept; i < o.n; i++ {
		o.ring[(o.head+i)%len(o.ring)] = queued{}
	}
	o.n = kept
}

// closeAll releases everything still queued.
func (o *outbox) closeAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range o.ctrl {
		o.release(m)
	}
	o.ctrl = nil
	for i := 0; i < o.n; i++ {
		o.ring[(o.head+i)%len(o.ring)].s.release()
		o.ring[(o.head+i)%len(o.ring)] = queued{}
	}
	o.n = 0
}

// writer owns a connection's write side: a flusher (run) drains the outbox
// while it has something, and a timer pings every heartbeat interval. An
// error ends the connection (fail) and is reported once to failed.
type writer struct {
	io       *ioCounters  // nil: not counted
	trace    *slog.Logger // nil unless debug logging is on
	c        *wsconn.Conn
	o        *outbox
	interval time.Duration
	batch    time.Duration // sample batch window (gateway.sample_batch); 0: none
	streams  *fastStreams  // nil: the window never grows
	fast     bool          // counted in streams
	newest   int64         // timestamp (unix ns) of the newest sample written; 0: none yet
	failed   func(error)   // called once, on the first write error
	pinger   *time.Timer

	// hold's, made on the first wait: a connection that never streams
	// faster than the batch window never has them.
	unhold chan struct{}
	hold   *time.Timer
	held   bool // the last wait held samples back: the stream is fast

	// What a tryFlush left to the flusher: carry, a write not taken at
	// all (w.msgs, from collect); backlog, the end of one taken in part
	// (kept by the connection until Flush). direct: fan-out found the
	// samples due now (not held for the batch window), so that the
	// fanning goroutine may try the write itself.
	carry, backlog, direct bool

	// The flusher's own: reused from one flush to the next.
	ctrl    []ctrlMsg
	samples []queued
	msgs    []wsconn.Message
	bin     []byte
	dropBuf []byte
}

// fastStreams counts the connections whose sample stream is faster than
// the batch window (each written once per window), so that the window can
// grow when there are so many that writing each of them once per window
// would pass the gateway's write budget.
type fastStreams struct {
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

// maxAdaptiveBatch bounds how far the window grows under load.
const maxAdaptiveBatch = 100 * time.Millisecond

func newFastStreams(cores int) *fastStreams {
	return &fastStreams{budget: int64(max(cores, 1)) * writesPerCore}
}

// window is the batch window of a fast stream now: at least least, and
// long enough that the fast streams together stay within the budget, up
// to maxAdaptiveBatch.
func (f *fastStreams) window(least time.Duration) time.Duration {
	if f == nil {
		return least
	}
	d := time.Duration(f.n.Load() * int64(time.Second) / f.budget)
	return max(least, min(d, maxAdaptiveBatch))
}

// setFast counts the writer's stream in (or out of) the fast streams. The
// flusher calls it, and the session once its flushers have stopped.
func (w *writer) setFast(fast bool) {
	if w.streams == nil || w.fast == fast {
		return
	}
	w.fast = fast
	if fast {
		w.streams.n.Add(1)
	} else {
		w.streams.n.Add(-1)
	}
}

// classify counts the stream as fast while its samples come more often
// than once per configured window, by their timestamps: the mean gap since
// the newest sample of the last flush (or, on the first, between the
// samples of this one). Timestamps say when a sensor was read, not when
// the flusher ran, so a window that has grown leaves a 100 Hz stream
// under a 5 ms window slow however many samples it finds at once.
//
// A stream is counted fast too while its flushes run late: more than
// lateAfter after they were due (now against the oldest sample, or the end
// of the window that held the samples back, prevHold), which the batch
// window does not cause. That is a gateway with more to write than it can:
// its sampler falls behind too, the gaps between samples grow past the
// window, and without this every stream would be written sample by sample
// again, more writes than before, and the sampler would fall further
// behind. Counted fast, the streams' window grows with their number, and
// the gateway catches up.
//
// Samples of one read (a device's quantities) share a timestamp and count
// as one: the gaps are between reads.
func (w *writer) classify(now, prevHold int64) {
	first := w.newest
	if first == 0 {
		first = w.samples[0].s.tsNano
	}
	prev, gaps := first, int64(0)
	for _, q := range w.samples {
		if q.s.tsNano != prev {
			gaps++
			prev = q.s.tsNano
		}
	}
	last, oldest := w.samples[len(w.samples)-1].s.tsNano, w.samples[0].s.tsNano
	// (Not for samples older than the last flush's newest, or in the
	// first flush: a sensor's latest sample, queued on subscribe, may be
	// old by design.)
	late := w.newest != 0 && oldest >= w.newest && now-max(oldest, prevHold) > int64(lateAfter(w.batch))
	w.newest = last
	switch span := last - first; {
	case late:
		w.setFast(true)
	case gaps > 0 && span >= 0: // (a wall clock stepped back: no verdict)
		w.setFast(span < gaps*int64(w.batch))
	}
}

// lateAfter is how long after it was due a flush counts as late: four
// batch windows, and at least 20 ms (a 1,000-subscriber round of writes
// on a small board).
func lateAfter(batch time.Duration) time.Duration { return max(4*batch, 20*time.Millisecond) }

// window is the batch window now (see fastStreams).
func (w *writer) window() time.Duration {
	if !w.fast {
		return w.batch
	}
	return w.streams.window(w.batch)
}

// startPings arms the heartbeat.
func (w *writer) startPings() {
	if w.interval > 0 {
		w.pinger = time.AfterFunc(w.interval, w.ping)
	}
}

// stopPings disarms the heartbeat; call after o.stop, so that a ping under
// way does not re-arm it.
func (w *writer) stopPings() {
	if w.pinger != nil {
		w.pinger.Stop()
	}
}

func (w *writer) ping() {
	if err := w.c.Ping(nil); err != nil {
		w.fail(err)
		return
	}
	w.o.mu.Lock()
	if !w.o.stopped {
		w.pinger.Reset(w.interval)
	}
	w.o.mu.Unlock()
}

// run flushes until the outbox is empty (or a write fails), then returns.
// The caller has claimed the flush (claimFlushLocked). With a batch
// window, a stream faster than the window keeps its flusher: it writes
// once per window and returns after a window that brought nothing.
func (w *writer) run() {
	stack.Grow(0)
	for {
		w.wait()
		if !w.step() {
			return
		}
	}
}

// step is one flush by the holder of the claim: it writes what is queued
// and reports whether to go on (more is queued, or the stream is in a
// batch window); if not (or the write failed), it has given up the claim.
func (w *writer) step() bool {
	if err := w.flush(); err != nil {
		w.giveUp(err)
		return false
	}
	return !w.endClaimIfDone()
}

// endClaimIfDone gives up the claim of a flush that went out, unless more
// is queued or the stream is in a batch window (held); true: given up.
func (w *writer) endClaimIfDone() bool {
	o := w.o
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stopped || !o.pendingLocked() && !w.held {
		o.flushing = false
		o.flushers.Done()
		return true
	}
	return false
}

// giveUp ends the claim of a flush that failed: the connection is ending.
func (w *writer) giveUp(err error) {
	o := w.o
	o.mu.Lock()
	o.flushing = false
	o.stopped = true
	o.mu.Unlock()
	w.fail(err)
	o.flushers.Done()
}

// wait holds the flush back while the outbox has nothing but samples and
// the batch window of the last samples written is still open, so that the
// samples of the window leave together. After a window that held samples
// back it waits for the next one even when nothing is queued yet: the
// stream is fast, the next samples are due within it. It returns early
// when a control message is queued or the outbox stops.
func (w *writer) wait() {
	held := w.held
	w.held = false
	if w.batch <= 0 || w.carry || w.backlog {
		return // (what a tryFlush left goes at once)
	}
	o := w.o
	o.mu.Lock()
	if len(o.ctrl) > 0 || o.kicked || o.stopped || o.n == 0 && !held {
		o.mu.Unlock() // nothing to hold back (a reply or event goes at once)
		return
	}
	d := time.Duration(o.holdUntil - time.Now().UnixNano())
	if d <= 0 {
		o.mu.Unlock()
		return
	}
	d = min(d, w.window()) // a wall clock stepped back must not stall the stream
	if w.unhold == nil {
		w.unhold = make(chan struct{}, 1)
		w.hold = time.NewTimer(d)
	} else {
		select { // an end sent after the last wait had ended
		case <-w.unhold:
		default:
		}
		w.hold.Reset(d)
	}
	o.holding = true
	o.mu.Unlock()
	select {
	case <-w.hold.C:
	case <-w.unhold:
		w.hold.Stop()
	}
	o.mu.Lock()
	o.holding = false
	w.held = o.n > 0
	o.mu.Unlock()
}

// cork holds back flushes while the read loop handles a request, so that
// its reply and the events it causes leave in one write.
func (o *outbox) cork() {
	o.mu.Lock()
	o.corked = true
	o.mu.Unlock()
}

// uncork ends cork. What is queued is written at once by the reading
// goroutine (one write, no goroutine to wake), and only what keeps coming
// after that goes to a flusher of its own, so that reading goes on.
func (o *outbox) uncork() {
	o.mu.Lock()
	o.corked = false
	start := o.pendingLocked() && o.claimFlushLocked()
	o.mu.Unlock()
	if start && o.w.step() {
		go o.w.run()
	}
}

func (o *outbox) pendingLocked() bool { return len(o.ctrl) > 0 || o.n > 0 || o.kicked }

// fail ends the connection after a write error. Once the closing handshake
// has begun (ErrClosed), the reader finishes it: dropping the connection
// here would cut the peer off before it reads our close frame.
func (w *writer) fail(err error) {
	switch {
	case errors.Is(err, wsconn.ErrClosed):
	case errors.Is(err, errTooSlow):
		w.c.Close(ws.StatusPolicyViolation, "too slow: outgoing queue full")
	default:
		w.c.CloseNow()
	}
	if w.failed != nil {
		w.failed(err)
	}
}

// flush writes everything queued now: what a tryFlush left (the rest of a
// write the socket took in part, or a write it did not take at all), then
// what collect gathers.
func (w *writer) flush() error {
	if w.backlog {
		w.backlog = false
		if err := w.c.Flush(); err != nil {
			return err
		}
	}
	if w.carry {
		w.carry = false
	} else if err := w.collect(); err != nil {
		return err
	}
	err := w.c.WriteMessages(w.msgs)
	w.finish(err)
	return err
}

// tryFlush is a flush by the goroutine that fanned a sample out and holds
// the claim (hub.deliver): it writes what is queued only if the
// connection takes it without waiting, and reports whether it is done
// with the claim (given up, or the failure reported). If not, the caller
// starts a flusher (go w.run()), which writes what was left first.
func (w *writer) tryFlush() bool {
	if err := w.collect(); err != nil {
		w.giveUp(err)
		return true
	}
	if len(w.msgs) == 0 { // nothing to write after all
		w.finish(nil)
		return w.endClaimIfDone()
	}
	written, backlog, err := w.c.TryWriteMessages(w.msgs)
	if !written && err == nil {
		w.carry = true
		return false
	}
	w.finish(err)
	if err != nil {
		w.giveUp(err)
		return true
	}
	if backlog {
		w.backlog = true
		return false
	}
	return w.endClaimIfDone()
}

// collect takes everything queued now into the flusher's own slices, as
// the messages of one write (w.msgs): control messages first, then the
// dropped notice if any, then samples (binary records batched into one
// message per run of consecutive binary samples).
func (w *writer) collect() error {
	o := w.o
	o.mu.Lock()
	if o.kicked {
		o.mu.Unlock()
		return errTooSlow
	}
	w.ctrl = append(w.ctrl[:0], o.ctrl...)
	for i := range o.ctrl {
		o.ctrl[i] = ctrlMsg{}
	}
	o.ctrl = o.ctrl[:0]
	w.samples = w.samples[:0]
	for ; o.n > 0; o.n-- {
		w.samples = append(w.samples, o.ring[o.head])
		o.ring[o.head] = queued{}
		o.head = (o.head + 1) % len(o.ring)
	}
	if n := len(w.samples); n > 0 && w.batch > 0 {
		w.classify(time.Now().UnixNano(), o.holdUntil)
		o.holdUntil = w.samples[n-1].s.tsNano + int64(w.window())
	}
	dropped := o.dropped
	o.dropped = 0
	o.mu.Unlock()

	msgs := w.msgs[:0]
	for _, m := range w.ctrl {
		msgs = append(msgs, wsconn.Message{Op: ws.OpText, Data: m.data})
	}
	if dropped > 0 && len(w.samples) > 0 {
		w.dropBuf = protocol.AppendDropped(w.dropBuf[:0], dropped)
		msgs = append(msgs, wsconn.Message{Op: ws.OpText, Data: w.dropBuf})
	} else if dropped > 0 {
		// Nothing to precede: keep the count for before the next sample.
		o.mu.Lock()
		o.dropped += dropped
		o.mu.Unlock()
	}
	if need := len(w.samples) * protocol.RecordSize; cap(w.bin) < need {
		w.bin = make([]byte, 0, need) // runs below must not move it
	}
	bin, run := w.bin[:0], 0 // run: where the current run of records starts
	for _, q := range w.samples {
		if q.binary {
			bin = append(bin, q.s.record[:]...)
			continue
		}
		if len(bin) > run {
			msgs = append(msgs, wsconn.Message{Op: ws.OpBinary, Data: bin[run:]})
			run = len(bin)
		}
		msgs = append(msgs, wsconn.Message{Op: ws.OpText, Data: q.s.text})
	}
	if len(bin) > run {
		msgs = append(msgs, wsconn.Message{Op: ws.OpBinary, Data: bin[run:]})
	}
	w.msgs = msgs
	return nil
}

// finish counts the messages of the write (err nil: it went out) and
// gives back what they were made of.
func (w *writer) finish(err error) {
	o, msgs := w.o, w.msgs
	if err == nil {
		for _, m := range msgs {
			w.io.out(len(m.Data))
			if w.trace != nil {
				w.trace.Debug("message out", "op", m.Op, "bytes", len(m.Data), "data", excerpt(m.Data))
			}
		}
	}
	for i := range msgs {
		msgs[i] = wsconn.Message{}
	}
	w.msgs = msgs[:0]
	for i, m := range w.ctrl {
		o.release(m)
		w.ctrl[i] = ctrlMsg{}
	}
	for i, q := range w.samples {
		q.s.release()
		w.samples[i] = queued{}
	}
}
