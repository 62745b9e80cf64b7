package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
)

// serveSession runs one connection of any subprotocol: the read loop here,
// which hands each JSON text message to handle, and a writer that flushes
// the outbox from a goroutine of its own only while it has something to
// write, and pings from a timer. It returns when the connection ends, after
// the writer has stopped.
func (g *Gateway) serveSession(c *wsconn.Conn, p *peer, o *outbox, handle func(payload []byte)) {
	io := g.metrics.ioFor(p.protocol)
	w := &writer{c: c, o: o, interval: time.Duration(g.cfg.Gateway.Heartbeat.Interval), batch: time.Duration(g.cfg.Gateway.SampleBatch), streams: g.streams, io: io}
	debug := g.log.Enabled(context.Background(), slog.LevelDebug)
	if debug {
		w.trace = g.log.With("remote", p.remote, "protocol", p.protocol)
	}
	w.failed = func(err error) {
		if errors.Is(err, errTooSlow) {
			g.metrics.inc(func(m *gatewayMetrics) *metrics.Counter { return m.slowClients })
			g.log.Warn("client too slow: its outgoing queue is full; disconnecting", "remote", p.remote, "protocol", p.protocol)
		}
	}
	o.start(w)
	w.startPings()
	defer func() {
		o.stop()
		w.setFast(false)
		w.stopPings()
		o.closeAll()
	}()
	limit := newRateLimiter(g.cfg.Gateway.Limits.RequestsPerSecond)
	for {
		op, payload, err := c.ReadMessage()
		if err != nil {
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
			return
		}
		io.in(len(payload))
		if debug {
			w.trace.Debug("message in", "op", op, "bytes", len(payload), "data", excerpt(payload))
		}
		if op != ws.OpText {
			c.Close(ws.StatusUnsupportedData, p.protocol+" takes JSON text messages only")
			return
		}
		if !limit.allow(time.Now()) {
			g.metrics.inc(func(m *gatewayMetrics) *metrics.Counter { return m.rateLimited })
			rejectRateLimited(o, payload, limit.rate)
			if limit.abusive() {
				g.log.Warn("client keeps sending past its rate limit; disconnecting", "remote", p.remote, "protocol", p.protocol)
				c.Close(ws.StatusPolicyViolation, "request rate limit exceeded persistently")
			}
			continue
		}
		o.cork()
		handle(payload)
		o.uncork()
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
