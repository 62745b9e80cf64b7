package gateway

import (
	"errors"
	"fmt"
	"time"

	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
)

// serveSession runs one connection of any subprotocol: a writer goroutine
// that owns the socket's write side, and the read loop here, which hands
// each JSON text message to handle. It returns when the connection ends,
// after the writer has stopped.
func (g *Gateway) serveSession(c *wsconn.Conn, p *peer, o *outbox, handle func(payload []byte)) {
	w := &writer{c: c, o: o, interval: time.Duration(g.cfg.Gateway.Heartbeat.Interval)}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.run(stop); errors.Is(err, errTooSlow) {
			g.log.Warn("client too slow: its outgoing queue is full; disconnecting", "remote", p.remote, "protocol", p.protocol)
		}
	}()
	defer func() {
		close(stop)
		<-done
		o.closeAll()
	}()
	limit := newRateLimiter(g.cfg.Gateway.Limits.RequestsPerSecond)
	for {
		op, payload, err := c.ReadMessage()
		if err != nil {
			var ce *wsconn.CloseError
			if errors.As(err, &ce) {
				g.log.Debug("session closed", "remote", p.remote, "code", int(ce.Code), "reason", ce.Reason, "by_peer", ce.Remote)
			} else {
				g.log.Debug("session read ended", "remote", p.remote, "err", err)
			}
			return
		}
		if op != ws.OpText {
			c.Close(ws.StatusUnsupportedData, p.protocol+" takes JSON text messages only")
			return
		}
		if !limit.allow(time.Now()) {
			rejectRateLimited(o, payload, limit.rate)
			if limit.abusive() {
				g.log.Warn("client keeps sending past its rate limit; disconnecting", "remote", p.remote, "protocol", p.protocol)
				c.Close(ws.StatusPolicyViolation, "request rate limit exceeded persistently")
			}
			continue
		}
		handle(payload)
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
