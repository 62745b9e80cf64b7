package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/edgegate/edgegate/gateway/wsconn"
)

// client is one WebSocket connection to the gateway, offering one
// subprotocol, on gateway/wsconn in client mode.
type client struct {
	o     *options
	url   string // normalised
	conn  *wsconn.Conn
	hello []byte // the hello event, raw
	ctx   context.Context
	do    dialOptions
	id    int

	stopWatch func()      // stops the goroutine that ends the connection with ctx
	timedOut  atomic.Bool // a reply did not come within --timeout
	closeOnce sync.Once
}

// dialOptions tune a connection beyond the global flags.
type dialOptions struct {
	// idle drops the connection when the gateway sends nothing (not even a
	// pong) for this long; 0: reads are bounded per call instead.
	idle time.Duration
	// end, when set, ends the connection gracefully (a closing handshake)
	// when it is done: watch's Ctrl-C and --for. Without it, the end of the
	// dial context drops the connection at once: an interrupted one-shot
	// command.
	end context.Context
}

// normaliseURL checks --url and gives it the /ws path when it has none;
// http(s):// is taken as ws(s)://.
func normaliseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return nil, usagef("--url %q: want a WebSocket URL such as %s", raw, defaultURL)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, usagef("--url %q: the scheme must be ws:// or wss://, e.g. %s", raw, defaultURL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/ws"
	}
	return u, nil
}

func (o *options) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{InsecureSkipVerify: o.insecureTLS} //nolint:gosec // only when asked for, for testing
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, usagef("--ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--ca %s: no PEM certificate in the file (want -----BEGIN CERTIFICATE-----)", o.caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// handshakeRefused is a non-101 answer to the upgrade request.
type handshakeRefused struct {
	status     int
	reason     string
	body       string
	retryAfter string
}

// dial connects offering proto and reads the gateway's hello.
func dial(ctx context.Context, o *options, proto string, do dialOptions) (*client, error) {
	if o.timeout <= 0 {
		return nil, usagef("--timeout must be positive, got %v", o.timeout)
	}
	u, err := normaliseURL(o.url)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	var refused *handshakeRefused
	d := ws.Dialer{
		Protocols: []string{proto},
		Timeout:   o.timeout,
		TLSConfig: tlsCfg,
		OnStatusError: func(status int, reason []byte, resp io.Reader) {
			refused = &handshakeRefused{status: status, reason: string(reason)}
			r, err := http.ReadResponse(bufio.NewReader(resp), nil)
			if err != nil {
				return
			}
			defer r.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
			refused.body = strings.TrimSpace(string(b))
			refused.retryAfter = r.Header.Get("Retry-After")
		},
	}
	if o.token != "" {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + o.token}})
	}
	target := u.String()
	conn, br, hs, err := d.Dial(ctx, target)
	if err != nil {
		return nil, dialError(ctx, o, u, refused, err)
	}
	if hs.Protocol != proto {
		conn.Close()
		return nil, &exitError{exitConnect, fmt.Sprintf("%s accepted the WebSocket handshake but not the %s subprotocol (negotiated %q): is it an edgegate gateway?", target, proto, hs.Protocol)}
	}
	cfg := wsconn.Config{Client: true, MaxMessageBytes: 16 << 20, WriteTimeout: o.timeout, IdleTimeout: do.idle}
	c := &client{o: o, url: target, conn: wsconn.New(conn, br, cfg), ctx: ctx, do: do}
	c.watchContext()

	op, msg, err := c.read(time.Now().Add(o.timeout))
	if err != nil {
		c.close()
		return nil, err
	}
	var h struct {
		Event string `json:"event"`
	}
	if op != ws.OpText || json.Unmarshal(msg, &h) != nil || h.Event != "hello" {
		c.close()
		return nil, &exitError{exitConnect, fmt.Sprintf("%s: the first message is not the gateway's hello: %.200q", target, msg)}
	}
	c.hello = append([]byte(nil), msg...)
	return c, nil
}

// watchContext ends the connection when ctx ends: at once, or (graceful)
// with a closing handshake that the reader completes.
func (c *client) watchContext() {
	stop := make(chan struct{})
	done := make(chan struct{})
	end := c.ctx
	if c.do.end != nil {
		end = c.do.end
	}
	go func() {
		defer close(done)
		select {
		case <-end.Done():
			if c.do.end != nil {
				c.conn.Close(ws.StatusNormalClosure, "")
			} else {
				c.conn.CloseNow()
			}
		case <-stop:
		}
	}()
	c.stopWatch = func() { close(stop); <-done }
}

// dialError turns a failed dial into what the user should do about it.
func dialError(ctx context.Context, o *options, u *url.URL, refused *handshakeRefused, err error) error {
	target := u.String()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return &exitError{exitInterrupted, "interrupted"}
	}
	var se ws.StatusError
	if errors.As(err, &se) && refused != nil {
		msg := fmt.Sprintf("%s refused the connection: HTTP %d %s", target, refused.status, refused.reason)
		if refused.body != "" {
			msg += ": " + refused.body
		}
		switch refused.status {
		case http.StatusUnauthorized:
			if o.token == "" {
				msg += "\nThe gateway has auth enabled: pass --token (or set EDGEGATE_TOKEN) with an API key from its config, or a token from 'edgectl token' / 'edgegate token'."
			} else {
				msg += "\nCheck --token (or EDGEGATE_TOKEN): it is not one of the gateway's API keys, or it is a signed token that has expired or was minted with another secret."
			}
		case http.StatusForbidden:
			msg += "\nThe gateway refused this client's origin or address; check gateway.allowed_origins in its config."
		case http.StatusServiceUnavailable:
			if refused.retryAfter != "" {
				msg += fmt.Sprintf("\nThe gateway is at its connection limit or shutting down; try again in %s s.", refused.retryAfter)
			} else {
				msg += "\nThe gateway is at its connection limit or shutting down; try again shortly."
			}
		case http.StatusNotFound, http.StatusBadRequest, http.StatusUpgradeRequired:
			msg += "\nCheck --url: the gateway's WebSocket endpoint is ws://HOST:PORT/ws (wss:// with TLS)."
		}
		return &exitError{exitConnect, msg}
	}
	if isTimeout(err) {
		return &exitError{exitTimeout, fmt.Sprintf("no WebSocket handshake with %s within %v: is edgegate listening there (and not a firewall dropping packets)? Raise --timeout on a slow link", target, o.timeout)}
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var cv *tls.CertificateVerificationError
	if errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &cv) {
		return &exitError{exitConnect, fmt.Sprintf("connect to %s: %v\nThe gateway's TLS certificate is not trusted: pass --ca with the CA certificate (PEM) that signed it, or --insecure-skip-verify for a test setup.", target, err)}
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return &exitError{exitConnect, fmt.Sprintf("connect to %s: %v\nThe gateway does not speak TLS there: use ws:// instead of wss://.", target, err)}
	}
	if u.Scheme == "ws" && (errors.Is(err, ws.ErrHandshakeBadProtocol) || strings.Contains(err.Error(), "malformed HTTP")) {
		return &exitError{exitConnect, fmt.Sprintf("connect to %s: %v\nIf the gateway uses TLS, use wss://.", target, err)}
	}
	return &exitError{exitConnect, fmt.Sprintf("cannot connect to %s: %v\nIs edgegate running and listening on %s? Check --url (or EDGEGATE_URL).", target, err, u.Host)}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// read returns the next data message. A non-zero deadline drops the
// connection when no message has come by then (a timer rather than a read
// deadline, which wsconn re-arms with its idle timeout on every frame).
func (c *client) read(deadline time.Time) (ws.OpCode, []byte, error) {
	if !deadline.IsZero() {
		t := time.AfterFunc(time.Until(deadline), func() {
			c.timedOut.Store(true)
			c.conn.CloseNow()
		})
		defer t.Stop()
	}
	op, msg, err := c.conn.ReadMessage()
	if err != nil {
		return 0, nil, c.readError(err)
	}
	return op, msg, nil
}

// errLocalClose is the end of a connection that we closed on purpose.
var errLocalClose = errors.New("closed by edgectl")

func (c *client) readError(err error) error {
	if c.do.end != nil && c.do.end.Err() != nil {
		return errLocalClose
	}
	if c.ctx.Err() != nil {
		return &exitError{exitInterrupted, "interrupted"}
	}
	var ce *wsconn.CloseError
	if errors.As(err, &ce) {
		if !ce.Remote && ce.Code == ws.StatusNormalClosure {
			return errLocalClose
		}
		by := "the gateway closed the connection"
		if !ce.Remote {
			by = "edgectl closed the connection"
		}
		msg := fmt.Sprintf("%s: %d %s", by, ce.Code, ce.Reason)
		if ce.Code == ws.StatusGoingAway && ce.Remote {
			msg += " (the gateway is shutting down or restarting)"
		}
		return &exitError{exitConnect, msg}
	}
	if c.timedOut.Load() {
		return &exitError{exitTimeout, fmt.Sprintf("no answer from the gateway at %s within %v (raise --timeout on a slow link)", c.url, c.o.timeout)}
	}
	if isTimeout(err) {
		if c.do.idle > 0 {
			return &exitError{exitTimeout, fmt.Sprintf("the gateway at %s sent nothing for %v, not even an answer to a ping: the connection is lost", c.url, c.do.idle)}
		}
		return &exitError{exitTimeout, fmt.Sprintf("no answer from the gateway at %s within %v (raise --timeout on a slow link)", c.url, c.o.timeout)}
	}
	return &exitError{exitConnect, fmt.Sprintf("connection to %s lost: %v", c.url, err)}
}

// reply is any message of either subprotocol, decoded as far as edgectl
// needs it; raw is the message as received.
type reply struct {
	ID    json.RawMessage `json:"id"`
	OK    *bool           `json:"ok"`
	Event string          `json:"event"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Relay     string            `json:"relay"`
	State     string            `json:"state"`
	ChangedAt int64             `json:"changed_at"`
	Relays    []json.RawMessage `json:"relays"`
	Sensors   json.RawMessage   `json:"sensors"`
	raw       []byte
}

// gatewayError is an error reply: exit 1.
type gatewayError struct {
	code, message string
	raw           []byte
}

func (e *gatewayError) Error() string { return e.code + ": " + e.message }

// call sends req with a fresh id and waits up to --timeout for its reply.
// Other messages that arrive meanwhile (events, samples) go to other, when
// not nil. An error reply is a *gatewayError.
func (c *client) call(req map[string]any, other func(op ws.OpCode, msg []byte) error) (*reply, error) {
	c.id++
	req["id"] = c.id
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	if err := c.conn.WriteMessage(ws.OpText, b); err != nil {
		if c.ctx.Err() != nil {
			return nil, &exitError{exitInterrupted, "interrupted"}
		}
		if isTimeout(err) {
			return nil, &exitError{exitTimeout, fmt.Sprintf("could not send to %s within %v: %v", c.url, c.o.timeout, err)}
		}
		return nil, &exitError{exitConnect, fmt.Sprintf("send to %s: %v", c.url, err)}
	}
	want := strconv.Itoa(c.id)
	deadline := time.Now().Add(c.o.timeout)
	for {
		op, msg, err := c.read(deadline)
		if err != nil {
			return nil, err
		}
		if op == ws.OpText {
			var r reply
			if err := json.Unmarshal(msg, &r); err != nil {
				return nil, &exitError{exitConnect, fmt.Sprintf("the gateway sent a message that is not JSON: %.200q", msg)}
			}
			if r.Event == "" && string(r.ID) == want {
				r.raw = append([]byte(nil), msg...)
				if r.OK != nil && !*r.OK {
					ge := &gatewayError{code: "unknown", message: string(msg), raw: r.raw}
					if r.Error != nil {
						ge.code, ge.message = r.Error.Code, r.Error.Message
					}
					return nil, ge
				}
				return &r, nil
			}
		}
		if other != nil {
			if err := other(op, msg); err != nil {
				return nil, err
			}
		}
	}
}

// close ends the connection politely: a close frame, and the gateway's
// answer awaited briefly (wsconn bounds the wait).
func (c *client) close() {
	c.closeOnce.Do(func() {
		c.stopWatch()
		c.conn.Close(ws.StatusNormalClosure, "")
		for {
			if _, _, err := c.conn.ReadMessage(); err != nil {
				break
			}
		}
		c.conn.CloseNow()
	})
}
