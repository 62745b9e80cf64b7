package wsconn

import (
	"errors"
	"math"
	"sync"
	"time"

	"github.com/edgegate/edgegate/gateway/internal/stack"
	"github.com/gobwas/ws"
)

// A connection's one writer.
//
// Writer owns everything that waits to be written to one connection and
// the writing of it: control frames (replies and events, never dropped)
// and, for a stream of samples, a bounded queue that drops its oldest
// entries when full and counts them. It decides how they are batched and
// which goroutine writes them: the one that queued them, at once, when the
// socket takes the write without waiting (TryWriteMessages), or a flusher
// of its own that runs only while there is something to write. No
// goroutine waits on a quiet connection's writer; a timer pings it.
//
// The samples it queues are the Sample interface, not a type of a sensor
// package: a sample is produced once and shared by the writers of every
// connection that gets it, so the writer needs only its two encodings,
// when it was taken (for batching) and a way to give its reference back.
// wsconn knows no producer, and a producer (the sensor hub) knows no
// connection.

// maxControlQueue is how many replies and events may wait for a client that
// reads slowly, and maxControlBytes how many bytes of them. They are never
// dropped: a client past either is disconnected (close 1008) and gets a
// fresh hello when it reconnects. So a client that sends requests without
// reading their replies makes its connection hold at most maxControlBytes
// (plus one frame) of them, whatever it sends.
const (
	maxControlQueue = 1024
	maxControlBytes = 256 << 10
)

// ErrTooSlow is the error a Writer fails with when its peer reads so slowly
// that maxControlQueue control frames (or maxControlBytes) wait for it.
var ErrTooSlow = errors.New("client too slow: outgoing queue full")

// Releaser is what a queued control frame is made of, when it is shared or
// pooled: the writer calls Release exactly once, when the frame has been
// written or dropped.
type Releaser interface{ Release() }

// Sample is a message shared by the writers of many connections.
type Sample interface {
	Text() []byte   // the JSON text message
	Record() []byte // the binary record; nil: the sample goes as text only
	Time() int64    // when it was taken (unix ns): batching goes by it
	Release()       // gives back the reference the writer was handed
}

// WriterConfig is what the writers of a server share. Its fields are read,
// never written, once a writer uses it.
type WriterConfig struct {
	Heartbeat time.Duration // ping interval; 0: no pings
	Batch     time.Duration // sample batch window; 0: none
	Streams   *FastStreams  // nil: the window never grows
	// Dropped encodes the notice of n samples dropped, written before the
	// next sample (nil: no notice).
	Dropped func(dst []byte, n uint64) []byte
	Drops   interface{ Inc() } // counts every dropped sample; nil: not counted
}

// WriterEvents is told what a connection's writer does.
type WriterEvents interface {
	Sent(op ws.OpCode, data []byte) // a message was written
	Failed(err error)               // a write failed (once): the connection is ending
}

// Writer is a connection's one writer; see the top of this file. The zero
// value is ready for pushes, which only queue until Start.
type Writer struct {
	cfg *WriterConfig // nil until Start
	c   *Conn         // nil until Start
	ev  WriterEvents  // nil: none

	mu      sync.Mutex
	ctrl    []control
	ring    []queued // nil until the first sample; grows up to limit
	head, n int
	limit   int32 // most samples queued; 0: none may be
	ctrlLen int32 // bytes of the control frames in ctrl
	dropped uint64
	kicked  bool

	flushing bool           // a flusher holds the claim; it will see what is pushed
	stopped  bool           // no flusher starts any more
	corked   bool           // the pusher writes when it is done (Uncork)
	flushers sync.WaitGroup // the claim's holder, for Stop

	// Sample batching (cfg.Batch > 0): a flush that holds nothing but
	// samples waits until holdUntil (unix ns), the timestamp of the newest
	// sample last written plus the batch window, so that a fast stream
	// leaves in one write per window instead of one per sample. holding
	// is set while the flusher waits; a control frame or Stop cuts the
	// wait short (endHoldLocked).
	holdUntil int64
	holding   bool

	fast   bool  // counted in cfg.Streams
	newest int64 // timestamp (unix ns) of the newest sample written; 0: none yet
	pinger *time.Timer

	// hold's, made on the first wait: a connection that never streams
	// faster than the batch window never has them.
	unhold chan struct{}
	hold   *time.Timer
	held   bool // the last wait held samples back: the stream is fast

	// What a tryFlush left to the flusher: carry, a write not taken at
	// all (w.msgs, from collect); backlog, the end of one taken in part
	// (kept by the connection until Flush). direct: the samples queued
	// are due now (not held for the batch window), so that the goroutine
	// that queued them may try the write itself.
	carry, backlog, direct bool

	// The claim holder's own: reused from one flush to the next.
	taken   []control
	samples []queued
	msgs    []Message
	bin     []byte
	dropBuf []byte
}

// control is a control frame waiting to be written.
type control struct {
	data []byte
	rel  Releaser // nil: nothing to release
}

// queued is a sample waiting for one connection, in that connection's format.
type queued struct {
	s      Sample
	binary bool
}

// Start attaches the connection and the configuration the server's
// writers share, writes what was queued before (a hello) and arms the
// heartbeat. ev, when not nil, is told what the writer does.
func (w *Writer) Start(c *Conn, cfg *WriterConfig, ev WriterEvents) {
	w.mu.Lock()
	w.c, w.cfg, w.ev = c, cfg, ev
	start := w.pendingLocked() && w.claimLocked()
	if w.cfg.Heartbeat > 0 {
		w.pinger = time.AfterFunc(w.cfg.Heartbeat, w.ping)
	}
	w.mu.Unlock()
	if start {
		go w.run()
	}
}

// Stop lets no flusher start any more, waits for the one running, disarms
// the heartbeat, counts the stream out of the fast ones and releases
// everything still queued.
func (w *Writer) Stop() {
	w.mu.Lock()
	w.stopped = true
	w.endHoldLocked()
	w.mu.Unlock()
	w.flushers.Wait()
	if w.cfg != nil {
		w.setFast(false)
	}
	if w.pinger != nil {
		w.pinger.Stop()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, m := range w.ctrl {
		release(m)
		w.ctrl[i] = control{}
	}
	w.ctrl, w.ctrlLen = nil, 0
	for i := 0; i < w.n; i++ {
		w.ring[(w.head+i)%len(w.ring)].s.Release()
		w.ring[(w.head+i)%len(w.ring)] = queued{}
	}
	w.n = 0
}

// SetQueueLimit bounds the sample queue at n samples (the queue is made
// by the first sample, and grows as far as its stream needs).
func (w *Writer) SetQueueLimit(n int) {
	w.mu.Lock()
	w.limit = int32(min(n, math.MaxInt32))
	w.mu.Unlock()
}

// PushControl queues a control frame, to be written whole and never
// dropped while the connection lasts; rel, when not nil, is released once
// it is written or dropped. It reports false when the client is too far
// behind: then the frame is dropped and the connection ends (ErrTooSlow).
func (w *Writer) PushControl(data []byte, rel Releaser) bool {
	w.mu.Lock()
	if len(w.ctrl) >= maxControlQueue || len(w.ctrl) > 0 && int(w.ctrlLen)+len(data) > maxControlBytes || w.kicked {
		w.kicked = true
		w.endHoldLocked()
		w.mu.Unlock()
		release(control{data, rel})
		w.wake()
		return false
	}
	w.ctrl = append(w.ctrl, control{data, rel})
	w.ctrlLen += int32(min(len(data), maxControlBytes))
	w.endHoldLocked()
	w.mu.Unlock()
	w.wake()
	return true
}

// ReplyBuf is a pooled buffer that a reply is encoded into: as the
// Releaser of a control frame it goes back to the pool once the frame is
// written or dropped.
type ReplyBuf struct{ B []byte }

var replyBufs = sync.Pool{New: func() any { return &ReplyBuf{B: make([]byte, 0, 512)} }}

// NewReplyBuf takes an empty buffer from the pool.
func NewReplyBuf() *ReplyBuf {
	b := replyBufs.Get().(*ReplyBuf)
	b.B = b.B[:0]
	return b
}

// Release gives the buffer back to the pool.
func (b *ReplyBuf) Release() { replyBufs.Put(b) }

// PushReply encodes a message into a pooled buffer and queues it
// (PushControl).
func (w *Writer) PushReply(encode func([]byte) []byte) bool {
	b := NewReplyBuf()
	b.B = encode(b.B)
	return w.PushControl(b.B, b)
}

func release(m control) {
	if m.rel != nil {
		m.rel.Release()
	}
}

// QueueSample queues a sample, taking over the reference the caller holds
// for it. When the queue is full its oldest sample goes, counted. It
// reports whether the caller must call Deliver (once it may block again:
// QueueSample itself never does), which writes what is queued or leaves
// it to a flusher.
func (w *Writer) QueueSample(s Sample, binary bool) bool {
	w.mu.Lock()
	w.pushSampleLocked(s, binary)
	claimed := w.claimLocked()
	if claimed {
		w.direct = due(w.cfg.Batch, s.Time(), w.holdUntil)
	}
	w.mu.Unlock()
	return claimed
}

// Deliver writes what QueueSample queued, from the calling goroutine,
// when the samples are due now and the socket takes them without
// waiting; otherwise, or when mayWrite is false (the caller has no time
// left to write), it starts a flusher, which writes what is left first.
// Call it once for each QueueSample that returned true.
func (w *Writer) Deliver(mayWrite bool) {
	if !mayWrite || !w.direct || !w.tryFlush() {
		go w.run()
	}
}

// Purge removes the queued samples for which drop returns true.
func (w *Writer) Purge(drop func(Sample) bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// from reads the ring in order, to writes back what is kept, never
	// ahead of from: each entry is cleared as it is read.
	from, to, kept := w.head, w.head, 0
	for range w.n {
		q := w.ring[from]
		w.ring[from] = queued{}
		if from++; from == len(w.ring) {
			from = 0
		}
		if drop(q.s) {
			q.s.Release()
			continue
		}
		w.ring[to] = q
		if to++; to == len(w.ring) {
			to = 0
		}
		kept++
	}
	w.n = kept
}

// Cork holds back flushes while the reader handles a request, so that
// its reply and the events it causes leave in one write.
func (w *Writer) Cork() {
	w.mu.Lock()
	w.corked = true
	w.mu.Unlock()
}

// Uncork ends Cork. What is queued is written at once by the calling
// goroutine (one write, no goroutine to wake), and only what keeps coming
// after that goes to a flusher of its own, so that reading goes on.
func (w *Writer) Uncork() {
	w.mu.Lock()
	w.corked = false
	start := w.pendingLocked() && w.claimLocked()
	w.mu.Unlock()
	if start && w.step() {
		go w.run()
	}
}

// claimLocked reports whether the caller, having queued something, holds
// the flush now and must see to it (write, or start a flusher) once it
// has unlocked w.mu.
func (w *Writer) claimLocked() bool {
	if w.c == nil || w.flushing || w.stopped || w.corked {
		return false
	}
	w.flushing = true
	w.flushers.Add(1)
	return true
}

// wake makes sure that what is queued gets written.
func (w *Writer) wake() {
	w.mu.Lock()
	start := w.claimLocked()
	w.mu.Unlock()
	if start {
		go w.run()
	}
}

// endHoldLocked ends a flusher's wait for more samples (hold): what is
// queued now must not wait for the batch window.
func (w *Writer) endHoldLocked() {
	if w.holding {
		select {
		case w.unhold <- struct{}{}:
		default:
		}
	}
}

func (w *Writer) pendingLocked() bool { return len(w.ctrl) > 0 || w.n > 0 || w.kicked }

// pushSampleLocked queues a sample (the caller holds w.mu and has handed
// over a reference). When the ring is full the oldest goes.
func (w *Writer) pushSampleLocked(s Sample, binary bool) {
	if w.n == len(w.ring) && len(w.ring) < int(w.limit) {
		w.growLocked()
	}
	if w.n == len(w.ring) {
		old := w.ring[w.head]
		w.ring[w.head] = queued{}
		w.head = (w.head + 1) % len(w.ring)
		w.n--
		w.dropped++
		if w.cfg != nil && w.cfg.Drops != nil { // (nil: not started yet)
			w.cfg.Drops.Inc()
		}
		old.s.Release()
	}
	w.ring[(w.head+w.n)%len(w.ring)] = queued{s, binary}
	w.n++
}

// growLocked doubles the ring, up to limit. A subscriber's queue starts
// small and grows only as far as its stream needs (a window's worth of
// samples, or a backlog while it reads slowly): at 1 kHz and a 100 ms
// window that is 128 entries (3 KiB), not subscriber_queue's 1,024 (24 KiB),
// for memory and for the garbage collector, which scans every entry.
func (w *Writer) growLocked() {
	ring := make([]queued, min(max(2*len(w.ring), minRing), int(w.limit)))
	for i := 0; i < w.n; i++ {
		ring[i] = w.ring[(w.head+i)%len(w.ring)]
	}
	w.ring, w.head = ring, 0
}

// minRing is the size of a subscriber's sample queue when it starts.
const minRing = 16

func (w *Writer) ping() {
	if err := w.c.Ping(nil); err != nil {
		w.fail(err)
		return
	}
	w.mu.Lock()
	if !w.stopped {
		w.pinger.Reset(w.cfg.Heartbeat)
	}
	w.mu.Unlock()
}

// run flushes until nothing is queued (or a write fails), then returns.
// The caller holds the claim (claimLocked). With a batch window, a
// stream faster than the window keeps its flusher: it writes once per
// window and returns after a window that brought nothing.
func (w *Writer) run() {
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
func (w *Writer) step() bool {
	if err := w.flush(); err != nil {
		w.giveUp(err)
		return false
	}
	return !w.endClaimIfDone()
}

// endClaimIfDone gives up the claim of a flush that went out, unless more
// is queued or the stream is in a batch window (held); true: given up.
func (w *Writer) endClaimIfDone() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || !w.pendingLocked() && !w.held {
		w.flushing = false
		w.flushers.Done()
		return true
	}
	return false
}

// giveUp ends the claim of a flush that failed: the connection is ending.
func (w *Writer) giveUp(err error) {
	w.mu.Lock()
	w.flushing = false
	w.stopped = true
	w.mu.Unlock()
	w.fail(err)
	w.flushers.Done()
}

// wait holds the flush back while nothing but samples is queued and the
// batch window of the last samples written is still open, so that the
// samples of the window leave together. After a window that held samples
// back it waits for the next one even when nothing is queued yet: the
// stream is fast, the next samples are due within it. It returns early
// when a control frame is queued or the writer stops.
func (w *Writer) wait() {
	held := w.held
	w.held = false
	if w.cfg.Batch <= 0 || w.carry || w.backlog {
		return // (what a tryFlush left goes at once)
	}
	w.mu.Lock()
	if len(w.ctrl) > 0 || w.kicked || w.stopped || w.n == 0 && !held {
		w.mu.Unlock() // nothing to hold back (a reply or event goes at once)
		return
	}
	d := holdFor(time.Now().UnixNano(), w.holdUntil, w.window())
	if d <= 0 {
		w.mu.Unlock()
		return
	}
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
	w.holding = true
	w.mu.Unlock()
	select {
	case <-w.hold.C:
	case <-w.unhold:
		w.hold.Stop()
	}
	w.mu.Lock()
	w.holding = false
	w.held = w.n > 0
	w.mu.Unlock()
}

// fail ends the connection after a write error. Once the closing handshake
// has begun (ErrClosed), the reader finishes it: dropping the connection
// here would cut the peer off before it reads our close frame.
func (w *Writer) fail(err error) {
	switch {
	case errors.Is(err, ErrClosed):
	case errors.Is(err, ErrTooSlow):
		w.c.Close(ws.StatusPolicyViolation, "too slow: outgoing queue full")
	default:
		w.c.CloseNow()
	}
	if w.ev != nil {
		w.ev.Failed(err)
	}
}

// flush writes everything queued now: what a tryFlush left (the rest of a
// write the socket took in part, or a write it did not take at all), then
// what collect gathers.
func (w *Writer) flush() error {
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

// tryFlush is a flush by the goroutine that queued a sample and holds the
// claim (Deliver): it writes what is queued only if the connection takes
// it without waiting, and reports whether it is done with the claim
// (given up, or the failure reported). If not, the caller starts a
// flusher (go w.run()), which writes what was left first.
func (w *Writer) tryFlush() bool {
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

// collect takes everything queued now into the claim holder's own
// slices, as the messages of one write (w.msgs): control frames first,
// then the dropped notice if any, then samples (binary records batched
// into one message per run of consecutive binary samples).
func (w *Writer) collect() error {
	w.mu.Lock()
	if w.kicked {
		w.mu.Unlock()
		return ErrTooSlow
	}
	w.taken = append(w.taken[:0], w.ctrl...)
	clear(w.ctrl)
	w.ctrl, w.ctrlLen = w.ctrl[:0], 0
	w.samples = w.samples[:0]
	for ; w.n > 0; w.n-- {
		w.samples = append(w.samples, w.ring[w.head])
		w.ring[w.head] = queued{}
		w.head = (w.head + 1) % len(w.ring)
	}
	if n := len(w.samples); n > 0 && w.cfg.Batch > 0 {
		w.classify(time.Now().UnixNano(), w.holdUntil)
		w.holdUntil = w.samples[n-1].s.Time() + int64(w.window())
	}
	dropped := w.dropped
	w.dropped = 0
	w.mu.Unlock()

	msgs := w.msgs[:0]
	for _, m := range w.taken {
		msgs = append(msgs, Message{Op: ws.OpText, Data: m.data})
	}
	if dropped > 0 && len(w.samples) > 0 {
		if w.cfg.Dropped != nil {
			w.dropBuf = w.cfg.Dropped(w.dropBuf[:0], dropped)
			msgs = append(msgs, Message{Op: ws.OpText, Data: w.dropBuf})
		}
	} else if dropped > 0 {
		// Nothing to precede: keep the count for before the next sample.
		w.mu.Lock()
		w.dropped += dropped
		w.mu.Unlock()
	}
	need := 0
	for _, q := range w.samples {
		if q.binary {
			need += len(q.s.Record())
		}
	}
	if cap(w.bin) < need {
		w.bin = make([]byte, 0, need) // runs below must not move it
	}
	bin, run := w.bin[:0], 0 // run: where the current run of records starts
	for _, q := range w.samples {
		if rec := q.s.Record(); q.binary && rec != nil {
			bin = append(bin, rec...)
			continue
		}
		if len(bin) > run {
			msgs = append(msgs, Message{Op: ws.OpBinary, Data: bin[run:]})
			run = len(bin)
		}
		msgs = append(msgs, Message{Op: ws.OpText, Data: q.s.Text()})
	}
	if len(bin) > run {
		msgs = append(msgs, Message{Op: ws.OpBinary, Data: bin[run:]})
	}
	w.msgs = msgs
	return nil
}

// finish reports the messages of the write (err nil: it went out) and
// gives back what they were made of.
func (w *Writer) finish(err error) {
	msgs := w.msgs
	if err == nil && w.ev != nil {
		for _, m := range msgs {
			w.ev.Sent(m.Op, m.Data)
		}
	}
	clear(msgs)
	w.msgs = msgs[:0]
	for i, m := range w.taken {
		release(m)
		w.taken[i] = control{}
	}
	for i, q := range w.samples {
		q.s.Release()
		w.samples[i] = queued{}
	}
}
