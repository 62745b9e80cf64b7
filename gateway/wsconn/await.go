package wsconn

import (
	"bufio"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// An idle connection need not hold a goroutine's deep stack nor its read
// buffers. A server reads with Next, which returns when the peer has been
// quiet for a while between messages and gives the read buffers back to a
// pool; then Await, called from a shallow goroutine, waits for the peer's
// next bytes without reading them (the socket is polled, not read), and
// the connection is read again with Next once they are there.
//
// Only a plain TCP connection (or another whose SyscallConn polls a socket)
// can be awaited that way; others (TLS) report false from CanAwait, and
// their reader simply keeps reading.

// readBufSize is the size of a connection's pooled read buffer.
const readBufSize = 512

// maxPooledMsg is the largest message buffer given back to the pool when a
// connection goes quiet; a larger one is dropped.
const maxPooledMsg = 4096

// readBufs are the read side's buffers, pooled while connections are quiet.
type readBufs struct {
	br  *bufio.Reader
	msg []byte
}

var readPool = sync.Pool{New: func() any {
	return &readBufs{br: bufio.NewReaderSize(nil, readBufSize)}
}}

// errQuiet is the internal result of a wait that saw nothing arrive.
var errQuiet = errors.New("wsconn: nothing received")

// CanAwait reports whether Await can wait for this connection's input
// without reading it.
func (c *Conn) CanAwait() bool { return c.raw != nil }

// Next is ReadMessage for a server that parks quiet connections: it
// returns op 0 (and no error) when, between messages, the peer sent
// nothing for quiet. The connection's read buffers are then back in their
// pool; call Await before reading again. Control frames are handled on
// the way, as ReadMessage does, and count as traffic for the heartbeat
// timeout but not as messages: after one with nothing more buffered, Next
// reports quiet at once (a peer that only answers pings is idle). quiet 0 waits for the next message as long
// as the heartbeat timeout allows, as ReadMessage does.
func (c *Conn) Next(quiet time.Duration) (ws.OpCode, []byte, error) {
	c.quiet = quiet
	op, p, err := c.readMessage()
	c.quiet = 0
	switch {
	case err == errQuiet:
		c.release()
		return 0, nil, nil
	case err != nil:
		c.CloseNow()
	}
	return op, p, err
}

// Await blocks until the peer has sent something for Next to read, or the
// connection failed in a way Next will report, and returns nil; it reads
// nothing and holds no buffer meanwhile. When the heartbeat timeout passes
// first (or, after a Close, the peer does not answer within the linger), it
// ends the connection and returns what ReadMessage would have: the timeout
// error or a *CloseError. Only the reading goroutine may call it; without
// CanAwait it returns nil at once.
func (c *Conn) Await() error {
	if c.raw == nil {
		return nil
	}
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return nil
		}
		c.release()
	}
	deadline := time.Time{}
	if c.cfg.IdleTimeout > 0 {
		deadline = c.idleBy
	}
	if err := c.setReadDeadline(deadline); err != nil {
		c.CloseNow()
		return err
	}
	err := c.raw.Read(c.poll)
	if err == nil {
		c.woken = true
		return nil
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		// Closed under us (CloseNow): the next read reports it.
		return nil
	}
	err = c.readErr(err)
	c.CloseNow()
	return err
}

// awaitQuiet, at a message boundary with nothing buffered, waits up to
// c.quiet for the peer's next byte: errQuiet when none came, the timeout
// (as readErr makes it) when the heartbeat timeout came first.
func (c *Conn) awaitQuiet() error {
	now := time.Now()
	deadline := now.Add(c.quiet)
	heartbeat := false
	if c.cfg.IdleTimeout > 0 {
		c.idleBy = now.Add(c.cfg.IdleTimeout)
		if !c.idleBy.After(deadline) {
			deadline, heartbeat = c.idleBy, true
		}
	}
	c.quietArmed = true
	if err := c.setReadDeadline(deadline); err != nil {
		return err
	}
	_, err := c.br.Peek(1)
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && !heartbeat && !c.closing.Load() {
		return errQuiet
	}
	return c.readErr(err)
}

// setReadDeadline sets the read deadline to t (zero: none), unless the
// closing handshake has begun, whose linger deadline then stays.
func (c *Conn) setReadDeadline(t time.Time) error {
	if !c.closing.Load() {
		if err := c.nc.SetReadDeadline(t); err != nil {
			return err
		}
	}
	// A Close that raced with the line above stored closing before its own
	// deadline; if we see it now, its deadline may have been overwritten.
	if c.closing.Load() {
		return c.nc.SetReadDeadline(time.Unix(0, c.lingerUntil.Load()))
	}
	return nil
}

// acquire gives the connection read buffers from the pool.
func (c *Conn) acquire() {
	b := readPool.Get().(*readBufs)
	b.br.Reset(c.nc)
	c.br, c.msg, c.bufs = b.br, b.msg[:0], b
}

// release gives the read buffers back to the pool while the connection is
// quiet (nothing is buffered then).
func (c *Conn) release() {
	b := c.bufs
	if b == nil {
		// Reading through the HTTP server's reader, which is not kept.
		b = &readBufs{br: bufio.NewReaderSize(nil, readBufSize)}
	}
	b.br.Reset(nil)
	b.msg = nil
	if cap(c.msg) <= maxPooledMsg {
		b.msg = c.msg[:0]
	}
	c.br, c.msg, c.bufs = nil, nil, nil
	readPool.Put(b)
}

// rawOf returns the socket of nc for Await, or nil when it has none.
func rawOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok || !canPeek {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}
