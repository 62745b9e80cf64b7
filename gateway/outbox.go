package gateway

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
)

// maxControlQueue is how many replies and events may wait for a client that
// reads slowly. They are never dropped: a client past this is disconnected
// (close 1008) and gets a fresh hello when it reconnects.
const maxControlQueue = 256

var errTooSlow = errors.New("client too slow: outgoing queue full")

// ctrlMsg is a reply or event waiting to be written. buf, when set, goes
// back to bufPool once written; event payloads are shared by all sessions.
type ctrlMsg struct {
	data []byte
	buf  *[]byte
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// outbox is everything waiting to be written to one connection: control
// messages (never dropped) and, for sensor subscribers, samples in a bounded
// ring that drops its oldest entries when full and counts them.
type outbox struct {
	mu      sync.Mutex
	ctrl    []ctrlMsg
	ring    []queued // nil until the first subscribe
	head, n int
	dropped uint64
	kicked  bool
	notify  chan struct{}    // capacity 1: "something to write"
	drops   *metrics.Counter // counts dropped samples too, when set
}

func newOutbox() *outbox { return &outbox{notify: make(chan struct{}, 1)} }

func (o *outbox) wake() {
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// pushCtrl queues a control message; false when the client is too far behind.
func (o *outbox) pushCtrl(m ctrlMsg) bool {
	o.mu.Lock()
	if len(o.ctrl) >= maxControlQueue || o.kicked {
		o.kicked = true
		o.mu.Unlock()
		o.release(m)
		o.wake()
		return false
	}
	o.ctrl = append(o.ctrl, m)
	o.mu.Unlock()
	o.wake()
	return true
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
}

// queued is a sample waiting for one subscriber, in that subscriber's format.
type queued struct {
	s      *sample
	binary bool
}

// pushSampleLocked queues a sample (the caller holds o.mu and has already
// taken a reference for it). When the ring is full the oldest goes.
func (o *outbox) pushSampleLocked(s *sample, binary bool) {
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

// writer owns a connection's write side: it drains the outbox, pings every
// heartbeat interval, and returns when stop closes or a write fails.
type writer struct {
	io       *ioCounters  // nil: not counted
	trace    *slog.Logger // nil unless debug logging is on
	c        *wsconn.Conn
	o        *outbox
	interval time.Duration
	ctrl     []ctrlMsg
	samples  []queued
	bin      []byte
	dropBuf  []byte
}

func (w *writer) run(stop <-chan struct{}) error {
	ping := time.NewTicker(w.interval)
	defer ping.Stop()
	for {
		select {
		case <-w.o.notify:
			if err := w.flush(); err != nil {
				w.fail(err)
				return err
			}
		case <-ping.C:
			if err := w.c.Ping(nil); err != nil {
				w.fail(err)
				return err
			}
		case <-stop:
			return nil
		}
	}
}

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
}

// flush writes everything queued now: control messages first, then the
// dropped notice if any, then samples (binary records batched into one
// message per run of consecutive binary samples).
func (w *writer) flush() error {
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
	dropped := o.dropped
	o.dropped = 0
	o.mu.Unlock()

	var err error
	for i, m := range w.ctrl {
		if err == nil {
			err = w.write(ws.OpText, m.data)
		}
		o.release(m)
		w.ctrl[i] = ctrlMsg{}
	}
	if err == nil && dropped > 0 && len(w.samples) > 0 {
		w.dropBuf = protocol.AppendDropped(w.dropBuf[:0], dropped)
		err = w.write(ws.OpText, w.dropBuf)
	} else if dropped > 0 {
		// Nothing to precede: keep the count for before the next sample.
		o.mu.Lock()
		o.dropped += dropped
		o.mu.Unlock()
	}
	w.bin = w.bin[:0]
	for i, q := range w.samples {
		if err == nil {
			if q.binary {
				w.bin = append(w.bin, q.s.record[:]...)
			} else {
				if len(w.bin) > 0 {
					err = w.write(ws.OpBinary, w.bin)
					w.bin = w.bin[:0]
				}
				if err == nil {
					err = w.write(ws.OpText, q.s.text)
				}
			}
		}
		q.s.release()
		w.samples[i] = queued{}
	}
	if err == nil && len(w.bin) > 0 {
		err = w.write(ws.OpBinary, w.bin)
	}
	return err
}

// write sends one message, counting it (and tracing it at debug level).
func (w *writer) write(op ws.OpCode, data []byte) error {
	err := w.c.WriteMessage(op, data)
	if err == nil {
		w.io.out(len(data))
		if w.trace != nil {
			w.trace.Debug("message out", "op", op, "bytes", len(data), "data", excerpt(data))
		}
	}
	return err
}
