// Package uplink is the edge-uplink.v1 client: the gateway dials a backend,
// streams every sample through an on-disk buffer (gateway/spool) in seq
// order, forwards relay state events and sensor errors while connected,
// and carries out the backend's relay requests with source uplink. It is a
// subscriber of the sensor hub and of the relay service like any
// WebSocket session.
package uplink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/internal/retry"
	"github.com/edgegate/edgegate/gateway/relay"
	"github.com/edgegate/edgegate/gateway/sensor"
	"github.com/edgegate/edgegate/gateway/spool"
	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
)

// Uplink tuning. The backoff doubles from backoffMin to backoffMax, each
// wait drawn uniformly from its upper half (jitter), and starts over once
// a connection has lasted stableAfter.
const (
	backoffMin  = 500 * time.Millisecond
	backoffMax  = 30 * time.Second
	stableAfter = 10 * time.Second
	dialTimeout = 10 * time.Second
	// batchSamples and batchBytes bound one samples message, well under
	// the 64 KiB message limit a backend is likely to have.
	batchSamples = 256
	batchBytes   = 32 << 10
	// window is how many samples may be in flight, sent but not acked.
	window = 4096
	// liveQueueMax bounds the events and replies waiting to be sent; past
	// it sensor_error events are dropped (counted), and a backend that
	// still reads nothing is disconnected.
	liveQueueMax = 1024
	// spoolDir is the buffer's directory inside the data dir.
	spoolDir = "uplink"
)

// Uplink states, as /healthz shows them.
const (
	StateConnecting = "connecting"
	StateConnected  = "connected"
	StateBackoff    = "waiting_to_reconnect"
	StateStopped    = "stopped"
)

// Metrics are the uplink's counters, ready for /metrics.
type Metrics struct {
	State     string // connecting, connected, waiting_to_reconnect, stopped
	LastError string
	// Buffer: samples stored and not yet acknowledged, and its size.
	BufferDepth    uint64
	BufferBytes    int64
	BufferSegments int
	// Seqs: the last sample taken, the last one sent and the last one the
	// backend acknowledged.
	LastSeq  uint64
	SentSeq  uint64
	AckedSeq uint64
	// Reconnects counts connections lost or refused after the first try.
	Reconnects uint64
	// Dropped counts samples lost to the buffer bound (buffer_max_bytes)
	// or to a disk that could not keep up.
	Dropped uint64
	// Recovered counts torn or corrupt records cut away at start.
	Recovered uint64
	// Corrupt counts the corrupt records among them, skipped with the
	// records after them kept; BufferError is why the buffer cannot write
	// (a full disk), while that lasts.
	Corrupt     uint64
	BufferError string
	// SamplesSent counts samples sent (resends included).
	SamplesSent uint64
	// EventsDropped counts sensor_error events not sent because the
	// backend was not reading.
	EventsDropped uint64
}

// Options configure an Uplink.
type Options struct {
	Upstream *config.Upstream
	// Gateway is the gateway's configuration: its id, heartbeat and limits.
	Gateway config.Gateway
	Version string
	DataDir string // the buffer goes in its uplink/ (required)
	Relays  *relay.Service
	Hub     *sensor.Hub
	Logger  *slog.Logger
}

// Uplink is the edge-uplink.v1 client: it dials the backend, streams the
// samples from its durable buffer in seq order, forwards relay state events
// and sensor errors while connected, and carries out relay requests from
// the backend with source uplink.
type Uplink struct {
	opts  Options
	log   *slog.Logger
	url   string
	shown string // url without credentials, query or fragment (shownURL), for logs and health
	up    *config.Upstream
	spool *spool.Spool
	sub   sensor.Subscription // of every sensor: the hub's samples and errors

	cur atomic.Pointer[uplinkSession] // the live session, if any

	mu         sync.Mutex
	state      string
	lastErr    string
	reconnects uint64

	sent        atomic.Uint64
	samplesSent atomic.Uint64
	liveDropped atomic.Uint64

	cancel context.CancelFunc
	done   chan struct{}
}

// New opens the buffer in the data dir and subscribes to every sensor of
// the hub, whose seq it makes continue after the last sample buffered: call
// it before the hub starts. Start dials.
func New(o Options) (*Uplink, error) {
	up, dataDir, log := o.Upstream, o.DataDir, o.Logger
	if log == nil {
		log = slog.Default()
		o.Logger = log
	}
	if dataDir == "" {
		return nil, errors.New("upstream needs a data directory for its buffer (run with --data-dir DIR)")
	}
	policy, err := spool.ParseFsync(up.Fsync)
	if err != nil {
		return nil, fmt.Errorf("upstream.%w", err)
	}
	pu, err := url.Parse(up.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream.url: %w", err)
	}
	if up.Insecure && pu.Scheme == "ws" {
		log.Warn("upstream.insecure: the uplink's token and relay commands travel unencrypted; anyone on the network path can read them or pose as the backend", "url", shownURL(pu))
	}
	sp, err := spool.Open(spool.Options{
		Dir: filepath.Join(dataDir, spoolDir), MaxBytes: int64(up.BufferMaxBytes), Fsync: policy,
		Logger: log.With("component", "uplink"),
	})
	if err != nil {
		return nil, fmt.Errorf("upstream buffer: %w (move the directory aside to start with an empty buffer)", err)
	}
	u := &Uplink{opts: o, log: log.With("component", "uplink"), url: up.URL, shown: shownURL(pu), up: up, spool: sp, state: StateConnecting}
	st := sp.Stats()
	u.sent.Store(st.AckedSeq)
	if st.Depth > 0 || st.Recovered > 0 {
		u.log.Info("uplink buffer opened", "samples_waiting", st.Depth, "last_seq", st.LastSeq, "acked_seq", st.AckedSeq, "bytes", st.Bytes)
	}
	if o.Hub != nil {
		o.Hub.StartSeqAfter(sp.LastSeq()) // seq continues across restarts
		u.subscribe(o.Hub)
	}
	return u, nil
}

// shownURL is u as logs, /healthz and /metrics show it: scheme, host and
// path only. Userinfo, the query (where a ?token= would be) and the
// fragment are left out, whatever they hold.
func shownURL(u *url.URL) string {
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return v.String()
}

// subscribe makes the uplink a subscriber of every sensor of h, before
// h starts.
func (u *Uplink) subscribe(h *sensor.Hub) {
	u.sub.Subscriber = (*sampleSink)(u)
	all, _ := h.Match([]string{"*"})
	h.Subscribe(&u.sub, all, sensor.Options{})
}

// sampleSink is the uplink as the hub's subscriber.
type sampleSink Uplink

// Queue is the hub's hand-off of every sample and sensor_error, called
// under the hub's lock and in seq order. It never blocks: samples go to
// the buffer's memory queue, errors to the live session's queue, if any.
func (u *sampleSink) Queue(smp *sensor.Sample, _ bool) bool {
	if !smp.IsError() {
		u.spool.Add(smp.Seq(), smp.Text())
	} else if s := u.cur.Load(); s != nil {
		s.push(smp.Text(), true)
	}
	smp.Release()
	return false
}

// Deliver and Purge are never called: Queue keeps nothing.
func (u *sampleSink) Deliver(bool)                      {}
func (u *sampleSink) Purge(func(s *sensor.Sample) bool) {}

// Start runs the connect loop until Stop.
func (u *Uplink) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	u.cancel = cancel
	u.done = make(chan struct{})
	go u.run(ctx)
}

// Stop ends the session (sending what events are queued and a close 1001,
// within ctx) and closes the buffer after writing what is pending.
func (u *Uplink) Stop(ctx context.Context) {
	if u.cancel != nil {
		u.cancel()
		select {
		case <-u.done:
		case <-ctx.Done():
			if s := u.cur.Load(); s != nil {
				s.c.CloseNow()
			}
			<-u.done
		}
	}
	if err := u.spool.Close(); err != nil {
		u.log.Error("uplink buffer close", "err", err)
	}
	u.setState(StateStopped, "")
}

func (u *Uplink) setState(state, lastErr string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.state = state
	if lastErr != "" {
		u.lastErr = lastErr
	}
}

func (u *Uplink) run(ctx context.Context) {
	defer close(u.done)
	attempt := 0
	for {
		u.setState(StateConnecting, "")
		c, err := u.dial(ctx)
		if ctx.Err() != nil {
			if c != nil {
				c.CloseNow()
			}
			return
		}
		if err == nil {
			u.setState(StateConnected, "")
			u.log.Info("uplink connected", "url", u.shown, "acked_seq", u.spool.Stats().AckedSeq)
			began := time.Now()
			err = u.session(ctx, c)
			if ctx.Err() != nil {
				return
			}
			if time.Since(began) >= stableAfter {
				attempt = 0
			}
		}
		u.mu.Lock()
		u.reconnects++
		u.mu.Unlock()
		wait := backoff(attempt)
		attempt++
		u.setState(StateBackoff, err.Error())
		u.log.Warn("uplink down; retrying", "url", u.shown, "err", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// backoff is the wait before retry number attempt (from 0): capped
// exponential, drawn from the upper half of the step.
func backoff(attempt int) time.Duration { return retry.Backoff(attempt, backoffMin, backoffMax) }

// token returns the bearer token: inline, or read from token_file at each
// dial (so that a rotated file is picked up). It is never logged.
func (u *Uplink) token() (string, error) {
	if u.up.TokenFile == "" {
		return u.up.Token, nil
	}
	b, err := os.ReadFile(u.up.TokenFile)
	if err != nil {
		return "", fmt.Errorf("upstream.token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("upstream.token_file %s is empty; put the backend's token in it", u.up.TokenFile)
	}
	return tok, nil
}

// dial connects to the backend, offering edge-uplink.v1 and requiring it.
func (u *Uplink) dial(ctx context.Context) (*wsconn.Conn, error) {
	tok, err := u.token()
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	var status int
	var body []byte
	d := ws.Dialer{
		Protocols: []string{protocol.EdgeUplinkV1},
		Header:    ws.HandshakeHeaderHTTP(h),
		Timeout:   dialTimeout,
		OnStatusError: func(st int, _ []byte, resp io.Reader) {
			status = st
			body, _ = io.ReadAll(io.LimitReader(resp, 256))
		},
	}
	nc, br, hs, err := d.Dial(ctx, u.url)
	if err != nil {
		if nc != nil {
			nc.Close()
		}
		switch {
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return nil, fmt.Errorf("the backend refused the token (HTTP %d); check upstream.token or upstream.token_file", status)
		case status != 0:
			return nil, fmt.Errorf("the backend refused the uplink: HTTP %d %s", status, strings.TrimSpace(string(bytes.ToValidUTF8(body, nil))))
		}
		return nil, fmt.Errorf("dial %s: %w", u.shown, err)
	}
	if hs.Protocol != protocol.EdgeUplinkV1 {
		nc.Close()
		return nil, fmt.Errorf("the backend at %s did not select the %s subprotocol (it chose %q); is upstream.url an edgegate uplink endpoint?", u.shown, protocol.EdgeUplinkV1, hs.Protocol)
	}
	cfg := u.opts.Gateway
	return wsconn.New(nc, br, wsconn.Config{
		Client:          true,
		MaxMessageBytes: cfg.Limits.MaxMessageBytes,
		IdleTimeout:     time.Duration(cfg.Heartbeat.Timeout),
		WriteTimeout:    time.Duration(cfg.Limits.WriteTimeout),
	}), nil
}

// uplinkSession is one connection to the backend.
type uplinkSession struct {
	u      *Uplink
	c      *wsconn.Conn
	ops    relay.Requests
	notify chan struct{} // capacity 1: live messages queued or an ack arrived

	mu      sync.Mutex
	live    [][]byte
	kicked  bool // the backend fell too far behind
	pending [][]byte
}

// push queues a live message (an event or a reply), copying it.
// Sensor errors are dropped when the queue is full; anything else then
// ends the session, whose next hello carries the current states.
func (s *uplinkSession) push(msg []byte, isSensorError bool) {
	s.mu.Lock()
	if len(s.live) >= liveQueueMax {
		if !isSensorError {
			s.kicked = true
		}
		s.mu.Unlock()
		s.u.liveDropped.Add(1)
		s.wake()
		return
	}
	s.live = append(s.live, append([]byte(nil), msg...))
	s.mu.Unlock()
	s.wake()
}

func (s *uplinkSession) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// RelayEvent is the relay service's subscriber: every state change while
// connected.
func (s *uplinkSession) RelayEvent(ev relay.Event) { s.push(ev.Data, false) }

func (s *uplinkSession) reply(encode func([]byte) []byte) { s.push(encode(nil), false) }

// session runs one connection: hello, then samples from the buffer, live
// messages, pings, until the connection ends or ctx is cancelled.
func (u *Uplink) session(ctx context.Context, c *wsconn.Conn) error {
	s := &uplinkSession{u: u, c: c, notify: make(chan struct{}, 1)}
	s.ops = relay.Requests{Service: u.opts.Relays, Role: protocol.RoleOperator, Source: protocol.SourceUplink, Reply: s.reply,
		Who: "upstream backend", Remote: u.shown, Log: u.opts.Logger}

	// Subscribe to relay changes and queue hello in one step, so that the
	// backend gets every change after the states hello carries.
	unsubscribe := u.opts.Relays.Subscribe(s, func(relays []protocol.RelayInfo) {
		s.live = append(s.live, u.appendHello(nil, relays))
	})
	u.cur.Store(s)
	defer func() {
		u.cur.Store(nil)
		unsubscribe()
	}()

	readErr := make(chan error, 1)
	go func() { readErr <- s.readLoop() }()
	defer func() {
		c.CloseNow()
		<-readErr
	}()

	// Resend from the oldest unacknowledged sample.
	acked := u.spool.Stats().AckedSeq
	u.sent.Store(acked)
	ping := time.NewTicker(time.Duration(u.opts.Gateway.Heartbeat.Interval))
	defer ping.Stop()
	var msg []byte
	for {
		if err := s.flushLive(); err != nil {
			return err
		}
		// Samples, as long as the window allows and some are readable.
		for {
			st := u.spool.Stats()
			sent := u.sent.Load()
			if sent < st.AckedSeq {
				sent = st.AckedSeq
				u.sent.Store(sent)
			}
			if sent-st.AckedSeq >= window {
				break
			}
			recs, err := u.spool.Read(sent, min(batchSamples, int(window-(sent-st.AckedSeq))), batchBytes)
			if err != nil {
				return fmt.Errorf("uplink buffer: %w", err)
			}
			if len(recs) == 0 {
				break
			}
			msg = protocol.AppendSamples(msg[:0], len(recs), func(i int) []byte { return recs[i].Data })
			// Counted as sent before the write: the backend may ack the
			// batch before WriteMessage returns here, and an ack above
			// sent would be clamped. A failed write ends the session, and
			// the next one starts again from the acknowledged seq.
			u.sent.Store(recs[len(recs)-1].Seq)
			if err := c.WriteMessage(ws.OpText, msg); err != nil {
				return fmt.Errorf("send samples: %w", err)
			}
			u.samplesSent.Add(uint64(len(recs)))
			// Live messages (replies, state events) do not wait behind a
			// backlog of samples.
			if err := s.flushLive(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			// Shutting down: send the events queued (the relays' failsafe
			// states), then close.
			s.flushLive()
			c.Close(ws.StatusGoingAway, "gateway shutting down")
			select {
			case <-readErr:
				readErr <- nil
			case <-time.After(2 * time.Second):
			}
			return ctx.Err()
		case err := <-readErr:
			readErr <- err // for the deferred wait
			if err == nil {
				err = errors.New("connection closed")
			}
			return err
		case <-s.notify:
		case <-u.spool.Notify():
		case <-ping.C:
			if err := c.Ping(nil); err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		}
	}
}

// flushLive writes the queued events and replies.
func (s *uplinkSession) flushLive() error {
	s.mu.Lock()
	if s.kicked {
		s.mu.Unlock()
		return errors.New("the backend is not reading: too many events queued")
	}
	s.pending, s.live = s.live, s.pending[:0]
	s.mu.Unlock()
	for i, m := range s.pending {
		if err := s.c.WriteMessage(ws.OpText, m); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		s.pending[i] = nil
	}
	return nil
}

// readLoop reads the backend's messages: acks and relay requests.
func (s *uplinkSession) readLoop() error {
	for {
		op, payload, err := s.c.ReadMessage()
		if err != nil {
			var ce *wsconn.CloseError
			if errors.As(err, &ce) && ce.Remote {
				return fmt.Errorf("the backend closed the connection: %d %s", ce.Code, ce.Reason)
			}
			return err
		}
		if op != ws.OpText {
			s.c.Close(ws.StatusUnsupportedData, protocol.EdgeUplinkV1+" takes JSON text messages only")
			return errors.New("the backend sent a binary message")
		}
		s.handle(payload)
	}
}

// handle carries out one message from the backend. Relay requests are
// carried out now or answered with an error now: never queued for later.
func (s *uplinkSession) handle(payload []byte) {
	req, ok := s.ops.Decode(payload)
	if !ok {
		return
	}
	if req.Op != protocol.OpAck {
		s.ops.Do()
		return
	}
	seq, err := req.AckSeq()
	if err != nil {
		s.ops.ReplyError(req.ID, protocol.CodeBadRequest, err.Error())
		return
	}
	u := s.u
	if sent := u.sent.Load(); seq > sent {
		u.log.Warn("the backend acknowledged samples not sent yet; ignoring the excess", "ack", seq, "sent", sent)
		seq = sent
	}
	u.spool.Ack(seq)
	s.wake()
}

// appendHello encodes the uplink's hello: the relays and the sensor catalog.
func (u *Uplink) appendHello(b []byte, relays []protocol.RelayInfo) []byte {
	return protocol.AppendUplinkHello(b, u.opts.Gateway.ID, u.opts.Version, relays, u.opts.Hub.Catalog())
}

// Metrics returns the counters.
func (u *Uplink) Metrics() Metrics {
	st := u.spool.Stats()
	u.mu.Lock()
	defer u.mu.Unlock()
	return Metrics{
		State: u.state, LastError: u.lastErr,
		BufferDepth: st.Depth, BufferBytes: st.Bytes, BufferSegments: st.Segments,
		LastSeq: st.LastSeq, SentSeq: u.sent.Load(), AckedSeq: st.AckedSeq,
		Reconnects: u.reconnects, Dropped: st.Dropped, Recovered: st.Recovered,
		Corrupt: st.Corrupt, BufferError: st.Error,
		SamplesSent: u.samplesSent.Load(), EventsDropped: u.liveDropped.Load(),
	}
}

// Health is the uplink object of /healthz.
type Health struct {
	URL         string `json:"url"`
	State       string `json:"state"`
	LastError   string `json:"last_error"`
	LastSeq     uint64 `json:"last_seq"`
	SentSeq     uint64 `json:"sent_seq"`
	AckedSeq    uint64 `json:"acked_seq"`
	BufferDepth uint64 `json:"buffer_depth"`
	BufferBytes int64  `json:"buffer_bytes"`
	Dropped     uint64 `json:"dropped"`
	Reconnects  uint64 `json:"reconnects"`
	BufferError string `json:"buffer_error"` // why samples cannot be buffered (a full disk), "" when they can
}

// Health is the uplink's state for /healthz.
func (u *Uplink) Health() *Health {
	m := u.Metrics()
	return &Health{
		URL: u.shown, State: m.State, LastError: m.LastError, LastSeq: m.LastSeq, SentSeq: m.SentSeq,
		AckedSeq: m.AckedSeq, BufferDepth: m.BufferDepth, BufferBytes: m.BufferBytes,
		Dropped: m.Dropped, Reconnects: m.Reconnects, BufferError: m.BufferError,
	}
}
