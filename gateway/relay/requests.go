package relay

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

// Requests carries out the relay-control.v1 requests of one connection,
// whichever way it came in (a relay-control session, or the uplink with
// source uplink), one at a time, and hands each reply to Reply, in request
// order. It checks the role, bounds each operation by a timeout and logs
// an audit line for every request to change a relay. Set the exported
// fields before the first request; a Requests is not for concurrent use.
type Requests struct {
	Service *Service
	Role    string // of who asks: only an operator may change relays
	Source  string // of the state changes it makes
	// Reply queues one reply: encode appends it to the buffer it is given.
	// It is called during Handle or Do.
	Reply func(encode func([]byte) []byte)
	// Who asks, for the audit log: the key's name (or "token", "sign-in
	// link"; empty with auth off) and the remote address.
	Who, Remote string
	Log         *slog.Logger // nil: no audit lines
	// Automations serves the automations, enable and disable ops; nil:
	// they are unknown ops (the uplink).
	Automations Automations

	req    protocol.Request
	list   []protocol.RelayInfo
	autos  []protocol.AutomationInfo
	result string // of the request being carried out: ok or an error code

	timeout     opTimeout
	replyOn     bool                // the state encodeReply reports
	encodeReply func([]byte) []byte // the reply to a change that succeeded
}

// opTimeout bounds each operation of one Requests (they come one at a
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

// Handle decodes one request, carries it out and queues its reply.
func (s *Requests) Handle(payload []byte) {
	if _, ok := s.Decode(payload); ok {
		s.Do()
	}
}

// Decode decodes one request, to be carried out by Do, and returns it
// (valid until the next Decode). A request that does not decode is
// answered at once with an error (false).
func (s *Requests) Decode(payload []byte) (*protocol.Request, bool) {
	if err := protocol.DecodeRequest(payload, &s.req); err != nil {
		var re *protocol.RequestError
		errors.As(err, &re)
		s.ReplyError(re.ID, re.Code, re.Message)
		return nil, false
	}
	return &s.req, true
}

// Do carries out the request decoded last and queues its reply.
func (s *Requests) Do() {
	req := &s.req
	rs := s.Service
	switch req.Op {
	case protocol.OpList:
		s.list = rs.Snapshot(s.list)
		s.Reply(func(b []byte) []byte { return protocol.AppendRelayList(b, req.ID, s.list) })
		return
	case protocol.OpGet, protocol.OpSet, protocol.OpToggle, protocol.OpPulse:
	case protocol.OpAutomations, protocol.OpEnable, protocol.OpDisable:
		if s.Automations != nil {
			s.doAutomation(req)
			return
		}
		fallthrough
	default:
		ops := "list, get, set, toggle, pulse"
		if s.Automations != nil {
			ops += ", automations, enable, disable"
		}
		s.ReplyError(req.ID, protocol.CodeUnknownOp, fmt.Sprintf("unknown op %q; relay-control.v1 ops are %s", req.Op, ops))
		return
	}
	if req.Relay == "" {
		s.ReplyError(req.ID, protocol.CodeBadRequest, fmt.Sprintf("%s needs \"relay\": the name of a relay", req.Op))
		return
	}
	if req.Op == protocol.OpGet {
		info, err := rs.Get(req.Relay)
		if err != nil {
			s.replyOpError(req, err)
			return
		}
		s.Reply(func(b []byte) []byte { return protocol.AppendRelayReply(b, req.ID, info.Name, info.On, info.ChangedAt) })
		return
	}
	// From here on the request asks for a change: every outcome is audited.
	s.result = ""
	defer s.audit()
	if _, err := rs.lookup(req.Relay); err != nil {
		s.replyOpError(req, err)
		return
	}
	if s.Role != protocol.RoleOperator {
		s.ReplyError(req.ID, protocol.CodeForbidden, fmt.Sprintf("role %q may not change relays; an operator token is needed for %s", s.Role, req.Op))
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
			s.ReplyError(req.ID, protocol.CodeBadRequest, `set needs "state": "on" or "off"`)
			return
		}
		err = rs.Set(ctx, req.Relay, on, s.Source)
	case protocol.OpToggle:
		on, err = rs.Toggle(ctx, req.Relay, s.Source)
	case protocol.OpPulse:
		ms, perr := req.PulseMS()
		if perr != nil {
			s.ReplyError(req.ID, protocol.CodeBadRequest, perr.Error())
			return
		}
		on = true
		err = rs.Pulse(ctx, req.Relay, pulseDuration(ms), s.Source) // checks the length against max_pulse
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
	s.Reply(s.encodeReply)
}

// audit logs one line for a request to change a relay: who asked (key
// name, role, remote address), what, with which source, and the result.
func (s *Requests) audit() {
	if s.Log == nil || !s.Log.Enabled(context.Background(), slog.LevelInfo) {
		return // building the line would allocate for nothing
	}
	req := &s.req
	attrs := []any{"op", req.Op, "relay", req.Relay, "source", s.Source, "who", s.Who, "role", s.Role, "remote", s.Remote, "result", s.result}
	if req.State != "" {
		attrs = append(attrs, "state", req.State)
	}
	if req.Op == protocol.OpPulse && len(req.MS) > 0 {
		attrs = append(attrs, "ms", string(req.MS))
	}
	s.Log.Info("audit", attrs...)
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

func (s *Requests) replyOpError(req *protocol.Request, err error) {
	var de *DeviceError
	var pe *PulseLengthError
	var te *TooSoonError
	switch {
	case errors.As(err, &te):
		s.ReplyError(req.ID, protocol.CodeTooSoon, te.Error())
	case errors.As(err, &pe):
		s.ReplyError(req.ID, protocol.CodeBadRequest, fmt.Sprintf("\"ms\" must be between 1 and %d for relay %q", pe.Max.Milliseconds(), req.Relay))
	case errors.Is(err, ErrUnknownRelay):
		s.ReplyError(req.ID, protocol.CodeUnknownRelay, fmt.Sprintf("no relay named %q", req.Relay))
	case errors.Is(err, ErrBusy):
		s.ReplyError(req.ID, protocol.CodeBusy, fmt.Sprintf("relay %q is already pulsing; wait for it to finish, or set it to end the pulse", req.Relay))
	case errors.As(err, &de):
		s.ReplyError(req.ID, protocol.CodeDeviceError, de.Error())
	default: // the gateway is shutting down
		s.ReplyError(req.ID, protocol.CodeBusy, err.Error())
	}
}

// ReplyError queues an error reply to the request with id.
func (s *Requests) ReplyError(id []byte, code, msg string) {
	s.result = code
	s.Reply(func(b []byte) []byte { return protocol.AppendError(b, id, code, msg) })
}

// Automations is what the automation ops need of the automation engine
// (*automation.Engine).
type Automations interface {
	List(dst []protocol.AutomationInfo) []protocol.AutomationInfo
	// SetEnabled fails with ErrUnknownAutomation for a name no automation has.
	SetEnabled(name string, enabled bool) error
}

// ErrUnknownAutomation is an enable or disable of no automation.
var ErrUnknownAutomation = errors.New("unknown automation")

// doAutomation carries out automations, enable and disable; enable and
// disable are an operator's, and audited.
func (s *Requests) doAutomation(req *protocol.Request) {
	if req.Op == protocol.OpAutomations {
		s.autos = s.Automations.List(s.autos[:0])
		s.Reply(func(b []byte) []byte { return protocol.AppendAutomationList(b, req.ID, s.autos) })
		return
	}
	s.result = ""
	defer s.auditAutomation()
	if req.Automation == "" {
		s.ReplyError(req.ID, protocol.CodeBadRequest, fmt.Sprintf("%s needs \"automation\": the name of an automation", req.Op))
		return
	}
	if s.Role != protocol.RoleOperator {
		s.ReplyError(req.ID, protocol.CodeForbidden, fmt.Sprintf("role %q may not %s automations; an operator token is needed", s.Role, req.Op))
		return
	}
	enabled := req.Op == protocol.OpEnable
	if err := s.Automations.SetEnabled(req.Automation, enabled); err != nil {
		if errors.Is(err, ErrUnknownAutomation) {
			s.ReplyError(req.ID, protocol.CodeUnknownAutomation, fmt.Sprintf("no automation named %q", req.Automation))
		} else {
			s.ReplyError(req.ID, protocol.CodeDeviceError, err.Error())
		}
		return
	}
	s.result = "ok"
	s.Reply(func(b []byte) []byte { return protocol.AppendAutomationReply(b, req.ID, req.Automation, enabled) })
}

func (s *Requests) auditAutomation() {
	if s.Log == nil {
		return
	}
	s.Log.Info("audit", "op", s.req.Op, "automation", s.req.Automation, "who", s.Who, "role", s.Role, "remote", s.Remote, "result", s.result)
}
