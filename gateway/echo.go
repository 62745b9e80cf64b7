package gateway

import (
	"net/http"
	"strings"

	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/gobwas/ws"
)

// The echo service (GET /echo, mounted with Options.EchoEndpoint, the
// --echo-endpoint flag) sends every message back as it came: text as text,
// binary as binary, with no subprotocol. It runs over the same connection
// layer as the relay and sensor services (the same gates, upgrade,
// permessage-deflate negotiation, frame reader and writer, UTF-8 checks,
// control frames and close handling), so that RFC 6455 / RFC 7692
// conformance suites such as Autobahn's fuzzingclient can exercise that
// layer from outside.

// echoProtocol names echo sessions in logs and in /healthz's connection
// counts.
const echoProtocol = "echo"

// echoMaxMessageBytes is the message size limit of /echo when the
// configured limit is smaller: the Autobahn testsuite's section 9 sends
// messages of up to 16 MiB. Messages above it close the connection with 1009.
const echoMaxMessageBytes = 16 << 20

// deflateNegotiator is the permessage-deflate negotiation of one handshake,
// or nil (which declines every offer) when gateway.compression is off.
// serverNoTakeover makes the gateway compress each message on its own even
// when the client would allow context takeover: a compressor that keeps its
// context costs about 1 MB per connection, too much for a board serving
// hundreds of them; without it compressors are pooled.
func (g *Gateway) deflateNegotiator(serverNoTakeover bool) *wsconn.DeflateNegotiator {
	if !g.cfg.Gateway.Compression {
		return nil
	}
	return &wsconn.DeflateNegotiator{ServerNoContextTakeover: serverNoTakeover}
}

func (g *Gateway) serveEcho(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "/echo speaks WebSocket only: connect with a WebSocket client (no subprotocol needed)", http.StatusUpgradeRequired)
		return
	}
	if err := g.checkOrigin(r); err != nil {
		refuse(w, http.StatusForbidden, err)
		return
	}
	_, who, err := g.authenticate(r)
	if err != nil {
		refuse(w, http.StatusUnauthorized, err)
		return
	}
	release, err := g.gate.admit(r.RemoteAddr)
	if err != nil {
		g.log.Warn("connection refused", "remote", r.RemoteAddr, "reason", err)
		refuse(w, http.StatusServiceUnavailable, err)
		return
	}
	defer release()
	p := &peer{protocol: echoProtocol, who: who, remote: r.RemoteAddr}
	if !g.register(w, p) {
		return
	}
	defer g.endSession(p)

	// Context takeover is honoured as the client asks: echo is for
	// conformance runs, not for many long-lived connections. Every reply
	// is compressed, however short, so that a suite checks the compressor
	// on all sizes.
	deflate := g.deflateNegotiator(false)
	if deflate != nil {
		deflate.MinSize = -1
	}
	up := ws.HTTPUpgrader{Negotiate: deflate.Negotiate}
	lim := g.cfg.Gateway.Limits
	c := g.upgrade(w, r, p, up, deflate, max(lim.MaxMessageBytes, echoMaxMessageBytes))
	if c == nil {
		return
	}
	g.log.Debug("session start", "protocol", echoProtocol, "remote", p.remote, "compressed", deflate.Accepted() != nil)
	for {
		op, msg, err := c.ReadMessage()
		if err != nil {
			g.log.Debug("session end", "protocol", echoProtocol, "remote", p.remote, "err", err)
			return
		}
		if err := c.WriteMessage(op, msg); err != nil && err != wsconn.ErrClosed {
			// ErrClosed: closing, the reader waits for the peer's close.
			g.log.Debug("session end", "protocol", echoProtocol, "remote", p.remote, "err", err)
			c.CloseNow()
			return
		}
	}
}
