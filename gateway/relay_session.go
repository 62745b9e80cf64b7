package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/edgegate/edgegate/protocol"
)

// relaySession is one relay-control.v1 connection.
type relaySession struct {
	g   *Gateway
	p   *peer
	out *outbox
	ops relayRequests
}

// startRelaySession subscribes a session to relay events and queues its
// hello, in one step, before any event can be queued (a service: see
// Gateway.services).
func startRelaySession(g *Gateway, p *peer) (*outbox, func(payload []byte), func()) {
	operator := p.role == protocol.RoleOperator && g.dog != nil
	if operator {
		g.dog.operatorUp()
	}
	s := &relaySession{g: g, p: p, out: newOutbox()}
	s.ops = relayRequests{rs: g.relays, role: p.role, source: protocol.SourceClient, reply: s.out.pushReply,
		who: p.who, remote: p.remote, log: g.log}
	g.relays.mu.Lock()
	g.relays.sinks[s] = struct{}{}
	list := g.relays.snapshotLocked(nil) // not kept: the session holds only what it needs
	s.out.pushReply(func(b []byte) []byte {
		return protocol.AppendRelayHello(b, g.cfg.Gateway.ID, g.version, p.role, list)
	})
	g.relays.mu.Unlock()
	return s.out, s.ops.handle, func() {
		g.relays.unsubscribe(s)
		if operator {
			g.dog.operatorDown()
		}
	}
}

// relayEvent queues a state event; it never blocks the relay service. The
// queued message holds a reference to the event until it is written.
func (s *relaySession) relayEvent(ev sharedEvent) {
	ev.retain()
	s.out.pushCtrl(ctrlMsg{data: ev.data, ev: ev.chunk})
}

// relayRequests carries out relay-control.v1 requests for one connection,
// whichever way it came in (a relay-control session, or the uplink with
// source uplink), and hands each reply to reply, in request order.
type relayRequests struct {
	rs     *relayService
	role   string
	source string // of the state changes it makes
	reply  func(encode func([]byte) []byte)
	req    protocol.Request
	list   []protocol.RelayInfo

	// Who asks, for the audit log: the key's name (or "token", "sign-in
	// link"; empty with auth off) and the remote address.
	who, remote string
	log         *slog.Logger
	result      string // of the request being carried out: ok or an error code

	timeout     opTimeout
	replyOn     bool                // the state encodeReply reports
	encodeReply func([]byte) []byte // the reply to a change that succeeded
}

// opTimeout bounds each operation of one relayRequests (they come one at a
// time) with one context and one timer reused from one operation to the
// next, where context.WithTimeout would allocate both every time. The
// context is replaced only after a timeout has cancelled it.
type opTimeout struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	timer  *time.Timer
	active bool // an operation is under way
	fired  bool // its timeout has cancelled it
	stale  int  // timer callbacks under way for operations already ended
}

// begin returns the context of an operation that may take up to d.
func (t *opTimeout) begin(d time.Duration) context.Context {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx == nil || t.ctx.Err() != nil {
		t.ctx, t.cancel = context.WithCancel(context.Background())
	}
	t.active, t.fired = true, false
	if t.timer == nil {
		t.timer = time.AfterFunc(d, t.expire)
	} else {
		t.timer.Reset(d)
	}
	return t.ctx
}

// end ends the operation begun last.
func (t *opTimeout) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active = false
	if !t.timer.Stop() && !t.fired {
		t.stale++ // it fired, and its callback is about to run: for nothing
	}
}

func (t *opTimeout) expire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stale > 0 {
		t.stale--
		return
	}
	if t.active {
		t.fired = true
		t.cancel()
	}
}

// handle decodes one request, carries it out and queues its reply.
func (s *relayRequests) handle(payload []byte) {
	if err := protocol.DecodeRequest(payload, &s.req); err != nil {
		var re *protocol.RequestError
		errors.As(err, &re)
		s.replyError(re.ID, re.Code, re.Message)
		return
	}
	s.do()
}

// do carries out the request decoded into s.req and queues its reply.
func (s *relayRequests) do() {
	req := &s.req
	rs := s.rs
	switch req.Op {
	case protocol.OpList:
		s.list = rs.Snapshot(s.list)
		s.reply(func(b []byte) []byte { return protocol.AppendRelayList(b, req.ID, s.list) })
		return
	case protocol.OpGet, protocol.OpSet, protocol.OpToggle, protocol.OpPulse:
	default:
		s.replyError(req.ID, protocol.CodeUnknownOp, fmt.Sprintf("unknown op %q; relay-control.v1 ops are list, get, set, toggle, pulse", req.Op))
		return
	}
	if req.Relay == "" {
		s.replyError(req.ID, protocol.CodeBadRequest, fmt.Sprintf("%s needs \"relay\": the name of a relay", req.Op))
		return
	}
	if req.Op == protocol.OpGet {
		info, err := rs.Get(req.Relay)
		if err != nil {
			s.replyOpError(req, err)
			return
		}
		s.reply(func(b []byte) []byte { return protocol.AppendRelayReply(b, req.ID, info.Name, info.On, info.ChangedAt) })
		return
	}
	// From here on the request asks for a change: every outcome is audited.
	s.result = ""
	defer s.audit()
	if _, err := rs.lookup(req.Relay); err != nil {
		s.replyOpError(req, err)
		return
	}
	if s.role != protocol.RoleOperator {
		s.replyError(req.ID, protocol.CodeForbidden, fmt.Sprintf("role %q may not change relays; an operator token is needed for %s", s.role, req.Op))
		return
	}
	ctx := s.timeout.begin(5 * time.Second)
	defer s.timeout.end()
	var on bool
	var err error
	switch req.Op {
	case protocol.OpSet:
		var ok bool
		if on, ok = protocol.ParseState(req.State); !ok {
			s.replyError(req.ID, protocol.CodeBadRequest, `set needs "state": "on" or "off"`)
			return
		}
		err = rs.Set(ctx, req.Relay, on, s.source)
	case protocol.OpToggle:
		on, err = rs.Toggle(ctx, req.Relay, s.source)
	case protocol.OpPulse:
		ms, perr := req.PulseMS()
		if perr != nil {
			s.replyError(req.ID, protocol.CodeBadRequest, perr.Error())
			return
		}
		on = true
		err = rs.Pulse(ctx, req.Relay, pulseDuration(ms), s.source) // checks the length against max_pulse
	}
	if err != nil {
		s.replyOpError(req, err)
		return
	}
	s.result = "ok"
	s.req.State = protocol.StateString(on) // the state it now has, for the audit line
	s.replyOn = on
	if s.encodeReply == nil {
		// Made once: a closure made per reply would be allocated per reply.
		s.encodeReply = func(b []byte) []byte {
			return protocol.AppendRelayReply(b, s.req.ID, s.req.Relay, s.replyOn, 0)
		}
	}
	s.reply(s.encodeReply)
}

// audit logs one line for a request to change a relay: who asked (key
// name, role, remote address), what, with which source, and the result.
func (s *relayRequests) audit() {
	if s.log == nil || !s.log.Enabled(context.Background(), slog.LevelInfo) {
		return // building the line would allocate for nothing
	}
	req := &s.req
	attrs := []any{"op", req.Op, "relay", req.Relay, "source", s.source, "who", s.who, "role", s.role, "remote", s.remote, "result", s.result}
	if req.State != "" {
		attrs = append(attrs, "state", req.State)
	}
	if req.Op == protocol.OpPulse && len(req.MS) > 0 {
		attrs = append(attrs, "ms", string(req.MS))
	}
	s.log.Info("audit", attrs...)
}

// pulseDuration is a pulse's ms as a duration, saturated rather than
// wrapped: a length out of range stays out of range for Pulse to refuse.
func pulseDuration(ms int64) time.Duration {
	switch {
	case ms < 1:
		return 0
	case ms > int64(math.MaxInt64/time.Millisecond):
		return math.MaxInt64
	}
	return time.Duration(ms) * time.Millisecond
}

func (s *relayRequests) replyOpError(req *protocol.Request, err error) {
	var de *deviceError
	var pe *pulseLengthError
	switch {
	case errors.As(err, &pe):
		s.replyError(req.ID, protocol.CodeBadRequest, fmt.Sprintf("\"ms\" must be between 1 and %d for relay %q", pe.max.Milliseconds(), req.Relay))
	case errors.Is(err, errUnknownRelay):
		s.replyError(req.ID, protocol.CodeUnknownRelay, fmt.Sprintf("no relay named %q", req.Relay))
	case errors.Is(err, errBusy):
		s.replyError(req.ID, protocol.CodeBusy, fmt.Sprintf("relay %q is already pulsing; wait for it to finish, or set it to end the pulse", req.Relay))
	case errors.As(err, &de):
		s.replyError(req.ID, protocol.CodeDeviceError, de.Error())
	default: // the gateway is shutting down
		s.replyError(req.ID, protocol.CodeBusy, err.Error())
	}
}

func (s *relayRequests) replyError(id []byte, code, msg string) {
	s.result = code
	s.reply(func(b []byte) []byte { return protocol.AppendError(b, id, code, msg) })
}
