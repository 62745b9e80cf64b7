package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// writesConn is a net.Conn that records what is written and in how many
// Write calls.
type writesConn struct {
	net.Conn // nil: only the methods below are used
	mu       sync.Mutex
	buf      bytes.Buffer
	writes   int
}

func (c *writesConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}
func (c *writesConn) SetWriteDeadline(time.Time) error { return nil }
func (c *writesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *writesConn) Close() error                     { return nil }

func (c *writesConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// frames parses what was written into (opcode, payload) pairs.
func (c *writesConn) frames(t *testing.T) []ws.Frame {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	r := bufio.NewReader(bytes.NewReader(c.buf.Bytes()))
	var fs []ws.Frame
	for {
		f, err := ws.ReadFrame(r)
		if err == io.EOF {
			return fs
		}
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
}

func testSample(seq uint64, isErr bool) *sample {
	s := &sample{seq: seq, isErr: isErr}
	s.refs.Store(1)
	if isErr {
		s.text = []byte(`{"event":"sensor_error"}`)
	} else {
		protocol.PutRecord(s.record[:], seq, 1, 2, 0)
		s.text = []byte(`{"event":"sample"}`)
	}
	return s
}

// A flush writes control messages, the dropped notice and the samples
// (runs of binary records batched) in that order, each message its own
// frame as before, all in one write.
func TestFlushCoalescesIntoOneWrite(t *testing.T) {
	nc := &writesConn{}
	o := newOutbox()
	w := &writer{c: wsconn.New(nc, nil, wsconn.Config{}), o: o}
	o.ring = make([]queued, 8)
	for _, m := range []string{`{"id":1}`, `{"event":"state","n":1}`, `{"event":"state","n":2}`} {
		o.pushCtrl(ctrlMsg{data: []byte(m)})
	}
	o.mu.Lock()
	o.dropped = 2
	o.pushSampleLocked(testSample(1, false), true)
	o.pushSampleLocked(testSample(2, false), true)
	o.pushSampleLocked(testSample(0, true), true) // errors go as JSON even to binary subscribers
	o.pushSampleLocked(testSample(3, false), true)
	o.pushSampleLocked(testSample(4, false), false)
	o.mu.Unlock()
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if nc.count() != 1 {
		t.Fatalf("flush took %d writes, want 1", nc.count())
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
		{ws.OpBinary, 2 * protocol.RecordSize, ""},
		{ws.OpText, 0, `{"event":"sensor_error"}`},
		{ws.OpBinary, protocol.RecordSize, ""},
		{ws.OpText, 0, `{"event":"sample"}`},
	}
	fs := nc.frames(t)
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

// While the read loop handles a request nothing is flushed; uncork then
// writes the reply and the events it caused in one write, from the calling
// goroutine, and no flusher is left running.
func TestCorkWritesOnceAfterTheRequest(t *testing.T) {
	nc := &writesConn{}
	o := newOutbox()
	w := &writer{c: wsconn.New(nc, nil, wsconn.Config{}), o: o}
	o.start(w)
	o.cork()
	o.pushCtrl(ctrlMsg{data: []byte(`{"event":"state"}`)})
	o.pushReply(func(b []byte) []byte { return append(b, `{"id":1,"ok":true}`...) })
	o.mu.Lock()
	flushing := o.flushing
	o.mu.Unlock()
	if flushing || nc.count() != 0 {
		t.Fatalf("flushing %v, %d writes while corked", flushing, nc.count())
	}
	o.uncork()
	if nc.count() != 1 {
		t.Fatalf("%d writes after uncork, want 1", nc.count())
	}
	o.mu.Lock()
	flushing = o.flushing
	o.mu.Unlock()
	if flushing {
		t.Fatal("a flusher still claims the outbox with nothing queued")
	}
	if fs := nc.frames(t); len(fs) != 2 || string(fs[0].Payload) != `{"event":"state"}` || string(fs[1].Payload) != `{"id":1,"ok":true}` {
		t.Fatalf("frames %v", fs)
	}
	o.stop()
}

// An idle connection costs one goroutine (its read loop): no writer waits
// on it, and the handler goroutine of the HTTP server is gone.
func TestIdleConnectionsHoldOneGoroutineEach(t *testing.T) {
	_, addr, _ := startTestGateway(t, `
gateway:
  limits: {max_connections: 1000, max_connections_per_ip: 1000}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	const n = 200
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()
	for i := 0; i < n; i++ {
		conn, rw := dialTest(t, "ws://"+addr+"/ws", "relay-control.v1")
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := wsutil.ReadServerText(rw); err != nil { // hello
			t.Fatal(err)
		}
	}
	// Flushers of the hellos end on their own; wait for them, bounded.
	deadline := time.Now().Add(5 * time.Second)
	for {
		per := float64(runtime.NumGoroutine()-base) / n
		if per <= 1.01 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%.2f goroutines per idle connection, want 1", per)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pushTS queues a binary sample taken at ts and wakes the flusher, as the
// hub's fan-out does.
func pushTS(o *outbox, seq uint64, ts time.Time) {
	s := testSample(seq, false)
	s.tsNano = ts.UnixNano()
	o.mu.Lock()
	o.pushSampleLocked(s, true)
	start := o.claimFlushLocked()
	o.mu.Unlock()
	if start {
		go o.w.run()
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (o *outbox) isFlushing() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.flushing
}

// With a batch window, a sample that follows the last one written within
// the window waits for the window's end and leaves with the others, while
// a control message is written at once and takes the held samples along;
// stop does not wait for the window either.
func TestSampleBatchHoldsFastStreams(t *testing.T) {
	nc := &writesConn{}
	o := newOutbox()
	o.ring = make([]queued, 16)
	w := &writer{c: wsconn.New(nc, nil, wsconn.Config{}), o: o, batch: time.Hour}
	o.start(w)
	now := time.Now()
	pushTS(o, 1, now)
	waitFor(t, "the first sample, written at once", func() bool { return nc.count() == 1 && !o.isFlushing() })
	for i := uint64(2); i <= 4; i++ {
		pushTS(o, i, now.Add(time.Duration(i)*time.Millisecond))
	}
	waitFor(t, "the flusher to hold", func() bool { o.mu.Lock(); defer o.mu.Unlock(); return o.holding })
	time.Sleep(50 * time.Millisecond)
	if n := nc.count(); n != 1 {
		t.Fatalf("%d writes while the window is open, want 1", n)
	}
	o.pushCtrl(ctrlMsg{data: []byte(`{"id":7,"ok":true}`)})
	waitFor(t, "the reply", func() bool { return nc.count() == 2 })
	fs := nc.frames(t)
	if len(fs) != 3 || string(fs[1].Payload) != `{"id":7,"ok":true}` || fs[2].Header.OpCode != ws.OpBinary || len(fs[2].Payload) != 3*protocol.RecordSize {
		t.Fatalf("frames %v", fs)
	}
	pushTS(o, 5, now.Add(5*time.Millisecond))
	waitFor(t, "the flusher to hold", func() bool { o.mu.Lock(); defer o.mu.Unlock(); return o.holding })
	stopped := make(chan struct{})
	go func() { o.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("stop waited for the batch window")
	}
	o.closeAll()
}

// A stream slower than the window is written sample by sample, each as
// soon as it is queued, and no flusher stays behind it.
func TestSampleBatchLeavesSlowStreamsAlone(t *testing.T) {
	nc := &writesConn{}
	o := newOutbox()
	o.ring = make([]queued, 16)
	w := &writer{c: wsconn.New(nc, nil, wsconn.Config{}), o: o, batch: time.Hour}
	o.start(w)
	t0 := time.Now().Add(-10 * time.Hour)
	for i := uint64(1); i <= 3; i++ {
		pushTS(o, i, t0.Add(time.Duration(i)*2*time.Hour)) // two windows apart
		waitFor(t, "the sample, written at once", func() bool { return nc.count() == int(i) && !o.isFlushing() })
	}
	o.stop()
	o.closeAll()
}

// A fast stream keeps its flusher across windows, writing once per window,
// and the flusher ends after a window that brought nothing.
func TestSampleBatchFlusherEndsWithTheStream(t *testing.T) {
	nc := &writesConn{}
	o := newOutbox()
	o.ring = make([]queued, 256)
	w := &writer{c: wsconn.New(nc, nil, wsconn.Config{}), o: o, batch: 20 * time.Millisecond}
	o.start(w)
	const n = 100
	for i := uint64(1); i <= n; i++ {
		pushTS(o, i, time.Now())
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "the flusher to end", func() bool { return !o.isFlushing() })
	records := 0
	for _, f := range nc.frames(t) {
		records += len(f.Payload) / protocol.RecordSize
	}
	if records != n {
		t.Fatalf("%d records written, want %d", records, n)
	}
	// 100 samples about 1 ms apart span 100 ms or more: five or six windows of
	// 20 ms, plus the first sample written at once. Writing every sample on
	// its own would take 100.
	if writes := nc.count(); writes > n/4 {
		t.Fatalf("%d writes for %d samples, want one per 20 ms window", writes, n)
	}
	o.stop()
	o.closeAll()
}

// The batch window grows with the number of fast streams, so that writing
// each once per window stays within the write budget, between the
// configured window and maxAdaptiveBatch.
func TestFastStreamsWindow(t *testing.T) {
	f := newFastStreams(2) // 50,000 writes/s
	for _, c := range []struct {
		fast int64
		want time.Duration
	}{
		{0, 5 * time.Millisecond}, {200, 5 * time.Millisecond}, {400, 8 * time.Millisecond},
		{1600, 32 * time.Millisecond}, {3200, 64 * time.Millisecond}, {1_000_000, maxAdaptiveBatch},
	} {
		f.n.Store(c.fast)
		if got := f.window(5 * time.Millisecond); got != c.want {
			t.Errorf("%d fast streams: window %v, want %v", c.fast, got, c.want)
		}
	}
	f.n.Store(3200)
	if got := f.window(200 * time.Millisecond); got != 200*time.Millisecond {
		t.Errorf("configured 200ms: window %v, want 200ms (never shorter than configured)", got)
	}
	if got := (*fastStreams)(nil).window(5 * time.Millisecond); got != 5*time.Millisecond {
		t.Errorf("no counter: window %v, want 5ms", got)
	}
}

// A stream whose flushes find several samples counts as fast, and holds
// its samples for the grown window; a flush of a single sample, or the end
// of the session, counts it out.
func TestFastStreamCounted(t *testing.T) {
	nc := &writesConn{}
	o := newOutbox()
	o.ring = make([]queued, 16)
	streams := newFastStreams(1)
	streams.n.Store(999) // with this stream, 1000 of a budget of 25,000 writes/s: a window of 40ms
	w := &writer{c: wsconn.New(nc, nil, wsconn.Config{}), o: o, batch: 5 * time.Millisecond, streams: streams}
	now := time.Now()
	o.mu.Lock() // three samples 1 ms apart (a 1 kHz stream), queued at once
	for i := uint64(1); i <= 3; i++ {
		s := testSample(i, false)
		s.tsNano = now.Add(time.Duration(i) * time.Millisecond).UnixNano()
		o.pushSampleLocked(s, true)
	}
	o.mu.Unlock()
	o.start(w)
	waitFor(t, "three samples in one write", func() bool { return nc.count() == 1 })
	waitFor(t, "the stream counted fast", func() bool { return streams.n.Load() == 1000 })
	o.mu.Lock()
	hold := time.Duration(o.holdUntil - now.Add(3*time.Millisecond).UnixNano())
	o.mu.Unlock()
	if hold != 40*time.Millisecond {
		t.Errorf("held for %v after the newest sample, want the grown window, 40ms", hold)
	}
	o.stop()
	w.setFast(false) // as serveSession does once the flushers have stopped
	if n := streams.n.Load(); n != 999 {
		t.Errorf("%d fast streams after the session ended, want 999", n)
	}
	o.closeAll()
}

// Whether a stream is fast depends on how often its samples were read
// (their timestamps), not on how many a flush finds: a 100 Hz stream under
// a 5 ms window that waits out a window grown by other streams must not
// count as fast (it would grow the window further and then find several
// samples in every flush for good). A flush that runs late, the gateway
// behind with its writes, is another matter: TestLateStreamCountsAsFast.
func TestFastStreamByTimestamps(t *testing.T) {
	streams := newFastStreams(1)
	w := &writer{batch: 5 * time.Millisecond, streams: streams}
	t0 := time.Unix(1_800_000_000, 0)
	ts := t0
	flush := func(n int, gap time.Duration) bool {
		w.samples = w.samples[:0]
		for i := 0; i < n; i++ {
			ts = ts.Add(gap)
			s := testSample(uint64(i+1), false)
			s.tsNano = ts.UnixNano()
			w.samples = append(w.samples, queued{s: s, binary: true})
		}
		w.classify(w.samples[0].s.tsNano, 0) // never late: the gaps alone decide (lateness: TestLateStreamCountsAsFast)
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
	w2 := &writer{batch: 5 * time.Millisecond, streams: streams}
	w2.samples = append(w2.samples[:0], w.samples[:2]...)
	w.setFast(false)
	w2.samples[0].s.tsNano, w2.samples[1].s.tsNano = t0.UnixNano(), t0.Add(time.Millisecond).UnixNano()
	w2.classify(t0.Add(time.Millisecond).UnixNano(), 0)
	if n := streams.n.Load(); n != 1 {
		t.Errorf("first flush of two samples 1 ms apart: %d fast streams, want 1", n)
	}
}

// A stream whose flushes run late (the gateway is behind with its writes)
// counts as fast, whatever its rate, so that the batch window grows; late
// is against when the flush was due: its oldest sample, or the end of the
// window that held it back.
func TestLateStreamCountsAsFast(t *testing.T) {
	streams := newFastStreams(1)
	w := &writer{batch: 5 * time.Millisecond, streams: streams}
	ms := int64(time.Millisecond)
	ts := int64(1_800_000_000) * int64(time.Second)
	// flush classifies a flush of the next 100 Hz sample, written late
	// after it; held, when not 0, is when the window that held it ended.
	flush := func(late, held int64) bool {
		ts += 10 * ms
		s := testSample(1, false)
		s.tsNano = ts
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
	old := testSample(1, false)
	old.tsNano = ts - 10*time.Second.Nanoseconds()
	w.samples = append(w.samples[:0], queued{s: old})
	w.classify(ts+ms, 0)
	if streams.n.Load() != 0 {
		t.Error("a sample older than the last one written counted as late")
	}
}

// A subscriber's queue starts small and grows, in order, as far as the
// samples waiting need and no further than the limit; past it the oldest
// are dropped and counted as before.
func TestSampleQueueGrows(t *testing.T) {
	o := newOutbox()
	o.limit = 100 // as hub.subscribe leaves it: no ring until the first sample
	seq := uint64(0)
	push := func(n int) {
		o.mu.Lock()
		defer o.mu.Unlock()
		for i := 0; i < n; i++ {
			seq++
			o.pushSampleLocked(testSample(seq, false), true)
		}
	}
	push(10)
	if _, got, _ := drain(o); len(got) != 10 || len(o.ring) != minRing {
		t.Fatalf("10 samples: %d taken, ring of %d", len(got), len(o.ring))
	}
	push(12) // wraps around the ring's end (head is 10)
	push(30) // grows it, twice
	_, got, dropped := drain(o)
	if len(got) != 42 || dropped != 0 || len(o.ring) != 64 {
		t.Fatalf("42 samples: %d taken, %d dropped, ring of %d, want 42, 0, 64", len(got), dropped, len(o.ring))
	}
	for i, q := range got {
		if q.s.seq != uint64(11+i) {
			t.Fatalf("sample %d has seq %d, want %d: order lost in growing", i, q.s.seq, 11+i)
		}
	}
	push(150) // 53 .. 202: grows to the limit, then drops the oldest 50
	_, got, dropped = drain(o)
	if len(got) != 100 || dropped != 50 || len(o.ring) != 100 || got[0].s.seq != 103 || got[99].s.seq != 202 {
		t.Fatalf("150 samples into a limit of 100: %d taken (seq %d..%d), %d dropped, ring of %d",
			len(got), got[0].s.seq, got[len(got)-1].s.seq, dropped, len(o.ring))
	}
}

// deliverPart writes what fan-out queued from the fanning goroutine when the
// socket takes it at once, and leaves the rest to a flusher: the end of a
// frame the socket took in part, or a write it did not take. The peer gets
// every message, whole and in order, and no flusher claims the outbox once
// all is written. (A Unix socket with a small send buffer takes a part of
// a large frame deterministically; a connection without a socket to try,
// none of it.)
func TestDeliverLeavesWhatWouldWaitToAFlusher(t *testing.T) {
	ncs, peers := unixPairs(t, 1)
	nc, peer := ncs[0], peers[0]
	nc.(*net.UnixConn).SetWriteBuffer(4096)
	msg := func(i, size int) []byte {
		return append([]byte(fmt.Sprintf("%05d:", i)), bytes.Repeat([]byte("x"), size)...)
	}
	// queue queues a message as fan-out does, claims the flush and
	// delivers it; it reports whether a flusher holds the claim after.
	queue := func(o *outbox, p []byte) bool {
		o.mu.Lock()
		o.ctrl = append(o.ctrl, ctrlMsg{data: p})
		if !o.claimFlushLocked() {
			o.mu.Unlock()
			t.Fatal("the outbox is claimed already")
		}
		o.w.direct = true
		o.mu.Unlock()
		deliverPart([]*outbox{o}, time.Now().Add(time.Second))
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.flushing
	}

	o := newOutbox()
	w := &writer{c: wsconn.New(nc, nil, wsconn.Config{WriteTimeout: 10 * time.Second}), o: o}
	o.start(w)
	defer w.c.CloseNow()
	if queue(o, msg(0, 100)) {
		t.Fatal("a flusher was started for a message the socket took at once")
	}
	if !queue(o, msg(1, 20000)) {
		t.Fatal("no flusher for the end of a message the socket took in part")
	}
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(peer)
	for i, size := range []int{100, 20000} {
		f, err := ws.ReadFrame(r)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if f.Header.OpCode != ws.OpText || !bytes.Equal(f.Payload, msg(i, size)) {
			t.Fatalf("message %d: %v, %d bytes beginning %q", i, f.Header.OpCode, len(f.Payload), f.Payload[:min(6, len(f.Payload))])
		}
	}
	o.stop() // waits for the flusher
	if o.flushing {
		t.Fatal("the flusher still claims the outbox")
	}

	// A connection that cannot be tried: the flusher writes it all.
	fake := &writesConn{}
	o = newOutbox()
	o.start(&writer{c: wsconn.New(fake, nil, wsconn.Config{}), o: o})
	queue(o, msg(2, 10)) // (the flusher may be done already)
	o.stop()
	if fs := fake.frames(t); len(fs) != 1 || !bytes.Equal(fs[0].Payload, msg(2, 10)) {
		t.Fatalf("frames %v", fs)
	}
}

// unixPairs makes n connected pairs of Unix stream sockets: the accepted
// sides, then the peers. They are closed when the test ends.
func unixPairs(t *testing.T, n int) (accepted, peers []net.Conn) {
	t.Helper()
	ln, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for range n {
		p, err := net.Dial("unix", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		a, err := ln.Accept()
		if err != nil {
			p.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close(); p.Close() })
		accepted, peers = append(accepted, a), append(peers, p)
	}
	return accepted, peers
}
