package gateway

import (
	"context"
	"errors"
	"fmt"
	"github.com/edgegate/edgegate/gateway/internal/stack"
	"log/slog"
	"net"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
)

// quietAfter is how long a session's reader waits for the peer's next
// message before it lets go of its goroutine and read buffers (see
// reader.serve); a client that sends more often keeps them.
const quietAfter = time.Second

// A session runs one connection of any subprotocol: a reader, which
// hands each JSON text message to the service's handler, and the
// connection's one writer (wsconn.Writer, the session's outbox), which
// writes from a goroutine of its own only while it has something to
// write, and pings from a timer.
//
// A connection that has been quiet for quietAfter costs little: the
// session's goroutine (reader.serve) only awaits the peer's next bytes,
// with a stack too shallow to outgrow the smallest, and holds no read
// buffer. Each burst of messages is read and handled by a goroutine of its
// own (reader.burst), which serve starts and waits for. A connection that
// cannot be awaited that way (TLS) is read by serve itself, for its whole
// life.

// reader reads one session's messages.
type reader struct {
	g      *Gateway
	c      *wsconn.Conn
	p      *peer
	o      *outbox
	io     *ioCounters
	trace  *slog.Logger // nil unless debug logging is on
	handle func(payload []byte)
	limit  *rateLimiter
	debug  bool
	burst  func()    // read(quietAfter), then its result to done
	done   chan bool // true: the connection has ended
}

// startSession starts a session's writer and pings, and returns its
// reader; its serve runs the session.
func (g *Gateway) startSession(c *wsconn.Conn, p *peer, o *outbox, handle func(payload []byte)) *reader {
	r := &reader{g: g, c: c, p: p, o: o, io: g.metrics.ioFor(p.protocol), handle: handle, limit: newRateLimiter(g.cfg.Gateway.Limits.RequestsPerSecond)}
	r.debug = g.log.Enabled(context.Background(), slog.LevelDebug)
	if r.debug {
		r.trace = g.log.With("remote", p.remote, "protocol", p.protocol)
	}
	o.writer().Start(c, g.writers, r)
	r.done = make(chan bool, 1)
	r.burst = func() {
		stack.Grow(0)
		r.done <- r.read(quietAfter)
	}
	return r
}

// serve reads the connection until it ends, then stops the writer.
func (r *reader) serve() {
	defer r.stop()
	if !r.c.CanAwait() {
		r.read(0)
		return
	}
	for {
		if err := r.c.Await(); err != nil {
			r.ended(err)
			return
		}
		go r.burst()
		if ended := <-r.done; ended {
			return
		}
	}
}

// stop stops the session's writer and pings and drops what it had queued.
func (r *reader) stop() { r.o.writer().Stop() }

// Sent counts (and at debug level logs) a message the writer wrote.
func (r *reader) Sent(op ws.OpCode, data []byte) {
	r.io.out(len(data))
	if r.trace != nil {
		r.trace.Debug("message out", "op", op, "bytes", len(data), "data", excerpt(data))
	}
}

// Failed is told of the write error that ends the connection.
func (r *reader) Failed(err error) {
	if errors.Is(err, wsconn.ErrTooSlow) {
		r.g.metrics.inc(func(m *gatewayMetrics) *metrics.Counter { return m.slowClients })
		r.g.log.Warn("client too slow: its outgoing queue is full; disconnecting", "remote", r.p.remote, "protocol", r.p.protocol)
	}
}

// read reads and handles messages until the connection ends (true) or, with
// quiet > 0, the peer has sent nothing for quiet (false).
func (r *reader) read(quiet time.Duration) bool {
	g, c, p := r.g, r.c, r.p
	for {
		op, payload, err := c.Next(quiet)
		if err != nil {
			r.ended(err)
			return true
		}
		if op == 0 {
			return false
		}
		r.io.in(len(payload))
		if r.debug {
			r.trace.Debug("message in", "op", op, "bytes", len(payload), "data", excerpt(payload))
		}
		if op != ws.OpText {
			c.Close(ws.StatusUnsupportedData, p.protocol+" takes JSON text messages only")
			continue // Next ends with the closing handshake
		}
		if !r.limit.allow(time.Now()) {
			g.metrics.inc(func(m *gatewayMetrics) *metrics.Counter { return m.rateLimited })
			rejectRateLimited(r.o, payload, r.limit.rate)
			if r.limit.abusive() {
				g.log.Warn("client keeps sending past its rate limit; disconnecting", "remote", p.remote, "protocol", p.protocol)
				c.Close(ws.StatusPolicyViolation, "request rate limit exceeded persistently")
			}
			continue
		}
		r.o.writer().Cork()
		r.handle(payload)
		r.o.writer().Uncork()
	}
}

// ended logs why the connection ended.
func (r *reader) ended(err error) {
	g, p := r.g, r.p
	var ce *wsconn.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		g.log.Debug("session closed", "remote", p.remote, "code", int(ce.Code), "reason", ce.Reason, "by_peer", ce.Remote)
	case errors.As(err, &ne) && ne.Timeout():
		g.metrics.inc(func(m *gatewayMetrics) *metrics.Counter { return m.heartbeatTimeouts })
		g.log.Info("peer sent nothing within the heartbeat timeout; dropped", "remote", p.remote, "protocol", p.protocol, "timeout", time.Duration(g.cfg.Gateway.Heartbeat.Timeout))
	default:
		g.log.Debug("session read ended", "remote", p.remote, "err", err)
	}
}

// rejectRateLimited answers a request refused by the rate limit, echoing
// its id when it has one.
func rejectRateLimited(o *outbox, payload []byte, rate float64) {
	var req protocol.Request
	protocol.DecodeRequest(payload, &req)
	msg := fmt.Sprintf("too many requests: this connection may send %g per second (bursts of %g); slow down", rate, 2*rate)
	o.pushReply(func(b []byte) []byte { return protocol.AppendError(b, req.ID, protocol.CodeRateLimited, msg) })
}

// excerpt is a message as a debug log shows it: at most 200 bytes.
func excerpt(b []byte) string {
	const most = 200
	if len(b) > most {
		return string(b[:most]) + "…"
	}
	return string(b)
}
