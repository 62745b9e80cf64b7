package wsconn

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// Writing without waiting. A server that fans one sample out to a
// thousand connections can write each socket from the goroutine that has
// the sample, one after the other, when each takes its frame at once (a
// socket with room in its send buffer always does); only a connection
// that would make it wait (its send buffer full, or a write of its own
// under way) needs a goroutine that waits. TryWriteMessages is that
// attempt; Flush and every other write send what it left over first.

// TryWriteMessages writes msgs as WriteMessages would, but only if it can
// without waiting: for the write lock, held by another write, or for room
// in the socket's send buffer. It returns written false, having written
// nothing, when it would have to wait, when a backlog from an earlier try
// is still unsent, or when the connection cannot be written without
// waiting at all (TLS, a client, a message to compress, or frames over
// 64 KiB): write with WriteMessages then. When the socket takes only a
// part of the frames, the rest is kept, written and backlog are true, and
// the rest goes first with the next write on the connection: call Flush
// to send it. The caller's slices are not kept. An error means the
// connection failed, as from WriteMessages.
func (c *Conn) TryWriteMessages(msgs []Message) (written, backlog bool, err error) {
	if c.raw == nil || len(msgs) == 0 {
		return false, false, nil
	}
	if !c.wmu.TryLock() {
		return false, false, nil
	}
	defer c.unmu()
	if c.closing.Load() || c.closed {
		return false, false, ErrClosed
	}
	if c.backlog != nil {
		return false, false, nil
	}
	bp := getWriteBuf()
	buf := (*bp)[:0]
	for _, m := range msgs {
		if len(buf)+ws.MaxHeaderSize+len(m.Data) > maxBatch || c.z != nil && m.Op.IsData() && len(m.Data) >= c.z.minSize {
			putWriteBuf(bp)
			return false, false, nil
		}
		buf, _ = c.appendFrame(buf, m.Op, 0, m.Data) // fits: appendFrame does not write
	}
	*bp = buf
	n, err := c.writeNow(buf)
	switch {
	case err != nil:
		putWriteBuf(bp)
		return false, false, err
	case n == 0:
		putWriteBuf(bp)
		return false, false, nil
	case n < len(buf):
		c.backlogBuf, c.backlog = bp, buf[n:]
		return true, true, nil
	}
	putWriteBuf(bp)
	return true, false, nil
}

// writeNow writes as much of b as the socket takes now: 0 and no error
// when it takes nothing.
func (c *Conn) writeNow(b []byte) (int, error) {
	op := tryOps.Get().(*tryOp)
	defer tryOps.Put(op)
	op.buf, op.n, op.err = b, 0, nil
	err := c.raw.Write(op.fn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The deadline of an earlier blocking write, long past: a write
		// that does not wait needs none.
		if err = c.nc.SetWriteDeadline(time.Time{}); err == nil {
			err = c.raw.Write(op.fn)
		}
	}
	op.buf = nil
	switch {
	case err != nil: // closed under us
		return 0, err
	case op.err != nil:
		return 0, &net.OpError{Op: "write", Net: c.nc.LocalAddr().Network(), Source: c.nc.LocalAddr(),
			Addr: c.nc.RemoteAddr(), Err: os.NewSyscallError("write", op.err)}
	}
	return op.n, nil
}

// tryOp is one attempt of writeNow's: what to write and what came of it,
// for op.fn (op.write, made once: a function passed to RawConn.Write on
// each call would allocate). Pooled, so that a connection holds none.
type tryOp struct {
	buf []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

var tryOps = sync.Pool{New: func() any {
	op := &tryOp{}
	op.fn = op.write
	return op
}}

// Flush writes what a TryWriteMessages left unsent, waiting (under the
// write timeout) as other writes do.
func (c *Conn) Flush() error {
	c.mu()
	defer c.unmu()
	if c.closing.Load() || c.closed {
		return ErrClosed
	}
	if c.backlog == nil {
		return nil
	}
	if err := c.armWriteDeadline(); err != nil {
		return err
	}
	return c.flushBacklogLocked()
}

// flushBacklogLocked writes the backlog, if any, under the write deadline
// the caller set. Every write calls it first: the backlog is the end of a
// frame already begun.
func (c *Conn) flushBacklogLocked() error {
	if c.backlog == nil {
		return nil
	}
	_, err := c.nc.Write(c.backlog)
	putWriteBuf(c.backlogBuf)
	c.backlogBuf, c.backlog = nil, nil
	return err
}
