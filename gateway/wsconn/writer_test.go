package wsconn

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/internal/wstest"
	"github.com/gobwas/ws"
)

// testSample is a Sample of the tests: seq in its record, released once.
type testSample struct {
	refs   atomic.Int32
	ts     int64
	text   []byte
	record []byte // nil: text only (a sensor error)
}

const recordSize = 32 // as protocol.RecordSize

func newTestSample(seq uint64, isErr bool) *testSample {
	s := &testSample{}
	s.refs.Store(1)
	if isErr {
		s.text = []byte(`{"event":"sensor_error"}`)
	} else {
		s.record = binary.LittleEndian.AppendUint64(make([]byte, 0, recordSize), seq)
		s.record = s.record[:recordSize]
		s.text = []byte(`{"event":"sample"}`)
	}
	return s
}

func (s *testSample) Text() []byte   { return s.text }
func (s *testSample) Record() []byte { return s.record }
func (s *testSample) Time() int64    { return s.ts }
func (s *testSample) Release()       { s.refs.Add(-1) }
func (s *testSample) seq() uint64    { return binary.LittleEndian.Uint64(s.record) }

// testWriter is a writer over conn with the config's batch window and
// streams, a queue of limit samples, started unless conn is nil.
func testWriter(conn net.Conn, cfg WriterConfig, limit int) *Writer {
	if cfg.Dropped == nil {
		cfg.Dropped = func(b []byte, n uint64) []byte { return fmt.Appendf(b, `{"event":"dropped","count":%d}`, n) } // as protocol.AppendDropped
	}
	w := &Writer{}
	w.SetQueueLimit(limit)
	if conn != nil {
		w.Start(New(conn, nil, Config{WriteTimeout: 10 * time.Second}), &cfg, nil)
	} else {
		w.cfg = &cfg // as Start leaves it
	}
	return w
}

// drain takes everything queued, as a flush would.
func (w *Writer) drain() (ctrl int, samples []queued, dropped uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ctrl = len(w.ctrl)
	w.ctrl = w.ctrl[:0]
	for ; w.n > 0; w.n-- {
		samples = append(samples, w.ring[w.head])
		w.ring[w.head] = queued{}
		w.head = (w.head + 1) % len(w.ring)
	}
	dropped, w.dropped = w.dropped, 0
	return
}

// A flush writes control messages, the dropped notice and the samples
// (runs of binary records batched) in that order, each message its own
// frame as before, all in one write.
func TestFlushCoalescesIntoOneWrite(t *testing.T) {
	nc := &wstest.RecordConn{}
	ev := &events{}
	w := testWriter(nil, WriterConfig{}, 8)
	w.ev = ev
	for _, m := range []string{`{"id":1}`, `{"event":"state","n":1}`, `{"event":"state","n":2}`} {
		w.PushControl([]byte(m), nil)
	}
	w.mu.Lock()
	w.dropped = 2
	w.pushSampleLocked(newTestSample(1, false), true)
	w.pushSampleLocked(newTestSample(2, false), true)
	w.pushSampleLocked(newTestSample(0, true), true) // errors go as JSON even to binary subscribers
	w.pushSampleLocked(newTestSample(3, false), true)
	w.pushSampleLocked(newTestSample(4, false), false)
	w.c = New(nc, nil, Config{})
	w.mu.Unlock()
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if nc.Count() != 1 || ev.sent != 8 {
		t.Fatalf("flush took %d writes, told of %d messages; want 1 and 8", nc.Count(), ev.sent)
	}
	want := []struct {
		op  ws.OpCode
		len int
		txt string
	}{
		{ws.OpText, 0, `{"id":1}`},
		{ws.OpText, 0, `{"event":"state","n":1}`},
		{ws.OpText, 0, `{"event":"state","n":2}`},
		{ws.OpText, 0, `{"event":"dropped","count":2}`},
		{ws.OpBinary, 2 * recordSize, ""},
		{ws.OpText, 0, `{"event":"sensor_error"}`},
		{ws.OpBinary, recordSize, ""},
		{ws.OpText, 0, `{"event":"sample"}`},
	}
	fs := nc.Frames(t)
	if len(fs) != len(want) {
		t.Fatalf("%d frames, want %d", len(fs), len(want))
	}
	for i, f := range fs {
		if !f.Header.Fin || f.Header.OpCode != want[i].op ||
			(want[i].txt != "" && string(f.Payload) != want[i].txt) || (want[i].len > 0 && len(f.Payload) != want[i].len) {
			t.Errorf("frame %d: %v fin=%v %q", i, f.Header.OpCode, f.Header.Fin, f.Payload)
		}
	}
}

// A control frame's Releaser is released exactly once, when the frame is
// written or when it is dropped (the writer stopped, or the client too
// slow), and a pooled reply buffer goes back to the pool likewise.
func TestControlFramesReleasedOnce(t *testing.T) {
	var released atomic.Int32
	rel := releaseFunc(func() { released.Add(1) })
	nc := &wstest.RecordConn{}
	w := testWriter(nc, WriterConfig{}, 0)
	w.PushControl([]byte(`{"event":"state"}`), rel)
	wstest.WaitFor(t, "the event written and released", func() bool { return nc.Count() == 1 && released.Load() == 1 })
	w.Stop()
	w.PushControl([]byte(`{"event":"state"}`), rel) // stopped: queued, dropped by nobody yet
	w.Stop()                                        // a second Stop drops it
	if n := released.Load(); n != 2 {
		t.Fatalf("%d releases, want 2", n)
	}
	// Past maxControlQueue the frame is dropped at once, and the writer
	// fails with ErrTooSlow.
	w = testWriter(nil, WriterConfig{}, 0)
	for range maxControlQueue {
		w.PushReply(func(b []byte) []byte { return append(b, "x"...) })
	}
	released.Store(0)
	if w.PushControl([]byte("y"), rel) || released.Load() != 1 {
		t.Fatalf("a frame past the queue's bound: released %d times", released.Load())
	}
	ev := &events{}
	w.Start(New(&wstest.RecordConn{}, nil, Config{}), w.cfg, ev)
	wstest.WaitFor(t, "the writer to fail", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.stopped })
	w.Stop()
	if ev.failed != ErrTooSlow || ev.sent != 0 {
		t.Fatalf("failed with %v after %d messages, want ErrTooSlow before any", ev.failed, ev.sent)
	}
}

// What waits for a client that reads nothing is bounded in bytes too:
// replies of 4 KiB fill the queue at maxControlBytes, long before
// maxControlQueue of them, and one frame larger than the bound still goes
// to a connection with nothing else waiting.
func TestControlQueueBoundedInBytes(t *testing.T) {
	reply := make([]byte, 4<<10)
	w := testWriter(nil, WriterConfig{}, 0)
	n := 0
	for w.PushReply(func(b []byte) []byte { return append(b, reply...) }) {
		n++
		if n > maxControlQueue {
			t.Fatal("replies of 4 KiB are queued past maxControlQueue")
		}
	}
	if want := maxControlBytes / len(reply); n != want {
		t.Fatalf("%d replies of 4 KiB queued, want %d (%d bytes)", n, want, maxControlBytes)
	}
	w.Stop()
	w = testWriter(nil, WriterConfig{}, 0)
	if !w.PushControl(make([]byte, 2*maxControlBytes), nil) {
		t.Fatal("a frame larger than the bound was refused with nothing else queued")
	}
	if w.PushControl([]byte("y"), nil) {
		t.Fatal("a frame queued behind one past the bound")
	}
	w.Stop()
}

// events records what a writer tells.
type events struct {
	sent   int
	failed error
}

func (e *events) Sent(ws.OpCode, []byte) { e.sent++ }
func (e *events) Failed(err error)       { e.failed = err }

type releaseFunc func()

func (f releaseFunc) Release() { f() }

// While the reader handles a request nothing is flushed; Uncork then
// writes the reply and the events it caused in one write, from the calling
// goroutine, and no flusher is left running.
func TestCorkWritesOnceAfterTheRequest(t *testing.T) {
	nc := &wstest.RecordConn{}
	w := testWriter(nc, WriterConfig{}, 0)
	w.Cork()
	w.PushControl([]byte(`{"event":"state"}`), nil)
	w.PushReply(func(b []byte) []byte { return append(b, `{"id":1,"ok":true}`...) })
	if w.isFlushing() || nc.Count() != 0 {
		t.Fatalf("flushing %v, %d writes while corked", w.isFlushing(), nc.Count())
	}
	w.Uncork()
	if nc.Count() != 1 {
		t.Fatalf("%d writes after uncork, want 1", nc.Count())
	}
	if w.isFlushing() {
		t.Fatal("a flusher still claims the writer with nothing queued")
	}
	if fs := nc.Frames(t); len(fs) != 2 || string(fs[0].Payload) != `{"event":"state"}` || string(fs[1].Payload) != `{"id":1,"ok":true}` {
		t.Fatalf("frames %v", fs)
	}
	w.Stop()
}

// pushTS queues a binary sample taken at ts and delivers it, as a
// producer's fan-out does, but never from the calling goroutine.
func pushTS(w *Writer, seq uint64, ts time.Time) {
	s := newTestSample(seq, false)
	s.ts = ts.UnixNano()
	if w.QueueSample(s, true) {
		w.Deliver(false)
	}
}

func (w *Writer) isFlushing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushing
}

func (w *Writer) isHolding() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.holding
}

// With a batch window, a sample that follows the last one written within
// the window waits for the window's end and leaves with the others, while
// a control message is written at once and takes the held samples along;
// Stop does not wait for the window either.
func TestSampleBatchHoldsFastStreams(t *testing.T) {
	nc := &wstest.RecordConn{}
	w := testWriter(nc, WriterConfig{Batch: time.Hour}, 16)
	now := time.Now()
	pushTS(w, 1, now)
	wstest.WaitFor(t, "the first sample, written at once", func() bool { return nc.Count() == 1 && !w.isFlushing() })
	for i := uint64(2); i <= 4; i++ {
		pushTS(w, i, now.Add(time.Duration(i)*time.Millisecond))
	}
	wstest.WaitFor(t, "the flusher to hold", w.isHolding)
	time.Sleep(50 * time.Millisecond)
	if n := nc.Count(); n != 1 {
		t.Fatalf("%d writes while the window is open, want 1", n)
	}
	w.PushControl([]byte(`{"id":7,"ok":true}`), nil)
	wstest.WaitFor(t, "the reply", func() bool { return nc.Count() == 2 })
	fs := nc.Frames(t)
	if len(fs) != 3 || string(fs[1].Payload) != `{"id":7,"ok":true}` || fs[2].Header.OpCode != ws.OpBinary || len(fs[2].Payload) != 3*recordSize {
		t.Fatalf("frames %v", fs)
	}
	pushTS(w, 5, now.Add(5*time.Millisecond))
	wstest.WaitFor(t, "the flusher to hold", w.isHolding)
	stopped := make(chan struct{})
	go func() { w.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop waited for the batch window")
	}
}

// A stream slower than the window is written sample by sample, each as
// soon as it is queued, and no flusher stays behind it.
func TestSampleBatchLeavesSlowStreamsAlone(t *testing.T) {
	nc := &wstest.RecordConn{}
	w := testWriter(nc, WriterConfig{Batch: time.Hour}, 16)
	t0 := time.Now().Add(-10 * time.Hour)
	for i := uint64(1); i <= 3; i++ {
		pushTS(w, i, t0.Add(time.Duration(i)*2*time.Hour)) // two windows apart
		wstest.WaitFor(t, "the sample, written at once", func() bool { return nc.Count() == int(i) && !w.isFlushing() })
	}
	w.Stop()
}

// A fast stream keeps its flusher across windows, writing once per window,
// and the flusher ends after a window that brought nothing.
func TestSampleBatchFlusherEndsWithTheStream(t *testing.T) {
	nc := &wstest.RecordConn{}
	w := testWriter(nc, WriterConfig{Batch: 20 * time.Millisecond}, 256)
	const n = 100
	for i := uint64(1); i <= n; i++ {
		pushTS(w, i, time.Now())
		time.Sleep(time.Millisecond)
	}
	wstest.WaitFor(t, "the flusher to end", func() bool { return !w.isFlushing() })
	records := 0
	for _, f := range nc.Frames(t) {
		records += len(f.Payload) / recordSize
	}
	if records != n {
		t.Fatalf("%d records written, want %d", records, n)
	}
	// 100 samples about 1 ms apart span 100 ms or more: five or six windows of
	// 20 ms, plus the first sample written at once. Writing every sample on
	// its own would take 100.
	if writes := nc.Count(); writes > n/4 {
		t.Fatalf("%d writes for %d samples, want one per 20 ms window", writes, n)
	}
	w.Stop()
}

// A stream whose flushes find several samples counts as fast, and holds
// its samples for the grown window; a flush of a single sample, or the end
// of the session, counts it out.
func TestFastStreamCounted(t *testing.T) {
	nc := &wstest.RecordConn{}
	streams := NewFastStreams(1)
	streams.n.Store(999) // with this stream, 1000 of a budget of 25,000 writes/s: a window of 40ms
	w := testWriter(nil, WriterConfig{Batch: 5 * time.Millisecond, Streams: streams}, 16)
	now := time.Now()
	for i := uint64(1); i <= 3; i++ { // three samples 1 ms apart (a 1 kHz stream), queued at once
		s := newTestSample(i, false)
		s.ts = now.Add(time.Duration(i) * time.Millisecond).UnixNano()
		w.QueueSample(s, true)
	}
	w.Start(New(nc, nil, Config{}), w.cfg, nil)
	wstest.WaitFor(t, "three samples in one write", func() bool { return nc.Count() == 1 })
	wstest.WaitFor(t, "the stream counted fast", func() bool { return streams.n.Load() == 1000 })
	w.mu.Lock()
	hold := time.Duration(w.holdUntil - now.Add(3*time.Millisecond).UnixNano())
	w.mu.Unlock()
	if hold != 40*time.Millisecond {
		t.Errorf("held for %v after the newest sample, want the grown window, 40ms", hold)
	}
	w.Stop()
	if n := streams.n.Load(); n != 999 {
		t.Errorf("%d fast streams after the session ended, want 999", n)
	}
}

// A subscriber's queue starts small and grows, in order, as far as the
// samples waiting need and no further than the limit; past it the oldest
// are dropped and counted as before.
func TestSampleQueueGrows(t *testing.T) {
	w := testWriter(nil, WriterConfig{}, 100) // no ring until the first sample
	seq := uint64(0)
	push := func(n int) {
		for i := 0; i < n; i++ {
			seq++
			w.QueueSample(newTestSample(seq, false), true)
		}
	}
	push(10)
	if _, got, _ := w.drain(); len(got) != 10 || len(w.ring) != minRing {
		t.Fatalf("10 samples: %d taken, ring of %d", len(got), len(w.ring))
	}
	push(12) // wraps around the ring's end (head is 10)
	push(30) // grows it, twice
	_, got, dropped := w.drain()
	if len(got) != 42 || dropped != 0 || len(w.ring) != 64 {
		t.Fatalf("42 samples: %d taken, %d dropped, ring of %d, want 42, 0, 64", len(got), dropped, len(w.ring))
	}
	for i, q := range got {
		if s := q.s.(*testSample).seq(); s != uint64(11+i) {
			t.Fatalf("sample %d has seq %d, want %d: order lost in growing", i, s, 11+i)
		}
	}
	push(150) // 53 .. 202: grows to the limit, then drops the oldest 50
	_, got, dropped = w.drain()
	seqOf := func(i int) uint64 { return got[i].s.(*testSample).seq() }
	if len(got) != 100 || dropped != 50 || len(w.ring) != 100 || seqOf(0) != 103 || seqOf(99) != 202 {
		t.Fatalf("150 samples into a limit of 100: %d taken (seq %d..%d), %d dropped, ring of %d",
			len(got), seqOf(0), seqOf(len(got)-1), dropped, len(w.ring))
	}
}

// Purge removes the samples it is told to, keeping the others in order,
// and releases what it removes.
func TestPurge(t *testing.T) {
	w := testWriter(nil, WriterConfig{}, 16)
	var all []*testSample
	for i := uint64(1); i <= 6; i++ {
		s := newTestSample(i, false)
		all = append(all, s)
		w.QueueSample(s, true)
	}
	w.Purge(func(s Sample) bool { return s.(*testSample).seq()%2 == 0 })
	_, got, _ := w.drain()
	if len(got) != 3 || got[0].s != all[0] || got[1].s != all[2] || got[2].s != all[4] {
		t.Fatalf("after the purge: %v", got)
	}
	for i, s := range all {
		if want := int32((i + 1) % 2); s.refs.Load() != want { // the purged (even) ones released
			t.Errorf("sample %d: %d references, want %d", i+1, s.refs.Load(), want)
		}
	}
}

// Deliver writes what was queued from the calling goroutine when the
// socket takes it at once, and leaves the rest to a flusher: the end of a
// frame the socket took in part, or a write it did not take. The peer
// gets every message, whole and in order, and no flusher claims the
// writer once all is written. (A Unix socket with a small send buffer
// takes a part of a large frame deterministically; a connection without a
// socket to try, none of it.)
func TestDeliverLeavesWhatWouldWaitToAFlusher(t *testing.T) {
	ncs, peers := wstest.UnixPairs(t, 1)
	nc, peer := ncs[0], peers[0]
	nc.(*net.UnixConn).SetWriteBuffer(4096)
	msg := func(i, size int) []byte {
		return append([]byte(fmt.Sprintf("%05d:", i)), bytes.Repeat([]byte("x"), size)...)
	}
	// queue queues a message as a sample and delivers it, writing from
	// this goroutine if it can; it reports whether a flusher holds the
	// claim after.
	queue := func(w *Writer, p []byte) bool {
		s := newTestSample(0, true)
		s.text = p
		if !w.QueueSample(s, false) {
			t.Fatal("the writer is claimed already")
		}
		w.Deliver(true)
		return w.isFlushing()
	}

	w := testWriter(nc, WriterConfig{}, 16)
	defer w.c.CloseNow()
	if queue(w, msg(0, 100)) {
		t.Fatal("a flusher was started for a message the socket took at once")
	}
	if !queue(w, msg(1, 20000)) {
		t.Fatal("no flusher for the end of a message the socket took in part")
	}
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(peer)
	for i, size := range []int{100, 20000} {
		f, err := wstest.ReadFrame(r)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if f.Header.OpCode != ws.OpText || !bytes.Equal(f.Payload, msg(i, size)) {
			t.Fatalf("message %d: %v, %d bytes beginning %q", i, f.Header.OpCode, len(f.Payload), f.Payload[:min(6, len(f.Payload))])
		}
	}
	w.Stop() // waits for the flusher
	if w.flushing {
		t.Fatal("the flusher still claims the writer")
	}

	// A connection that cannot be tried: the flusher writes it all.
	fake := &wstest.RecordConn{}
	w = testWriter(fake, WriterConfig{}, 16)
	queue(w, msg(2, 10)) // (the flusher may be done already)
	w.Stop()
	if fs := fake.Frames(t); len(fs) != 1 || !bytes.Equal(fs[0].Payload, msg(2, 10)) {
		t.Fatalf("frames %v", fs)
	}
}

// BenchmarkDeliverSample is the hot path of a stream of samples to one
// connection: each queued, then written by the goroutine that queued it,
// or, while a write of an earlier one is under way, by the flusher that
// took it over (which then writes what has gathered in one write).
func BenchmarkDeliverSample(b *testing.B) {
	ncs, peers := wstest.UnixPairs(b, 1)
	go io.Copy(io.Discard, peers[0])
	w := testWriter(ncs[0], WriterConfig{}, 16)
	s := newTestSample(1, false)
	b.ReportAllocs()
	for b.Loop() {
		s.refs.Add(1)
		if w.QueueSample(s, true) {
			w.Deliver(true)
		}
	}
	b.StopTimer()
	w.Stop()
}
