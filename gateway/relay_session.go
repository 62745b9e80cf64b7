package gateway

import (
	"log/slog"

	"github.com/edgegate/edgegate/gateway/automation"
	"github.com/edgegate/edgegate/gateway/relay"
	"github.com/edgegate/edgegate/protocol"
)

// relaySession is one relay-control.v1 connection.
type relaySession struct {
	out *outbox
	ops relay.Requests
}

// relayControl is the relay-control.v1 service: what its sessions need.
type relayControl struct {
	relays      *relay.Service
	automations *automation.Engine
	id, version string // the gateway's, for the hello
	log         *slog.Logger
}

// start subscribes a session to relay events and queues its hello, in one
// step, before any event can be queued (a service: see Gateway.services).
func (rc *relayControl) start(p *peer) (*outbox, func(payload []byte), func()) {
	operator := p.role == protocol.RoleOperator
	if operator {
		rc.relays.OperatorUp()
	}
	s := &relaySession{out: newOutbox()}
	s.ops = relay.Requests{Service: rc.relays, Role: p.role, Source: protocol.SourceClient, Reply: s.out.pushReply,
		Who: p.who, Remote: p.remote, Log: rc.log, Automations: rc.automations}
	// Automation events: the engine calls with its lock held, and
	// pushReply copies the bytes at once without blocking.
	unsubAuto := rc.automations.Subscribe(func(ev []byte) {
		s.out.pushReply(func(b []byte) []byte { return append(b, ev...) })
	})
	unsubscribe := rc.relays.Subscribe(s, func(list []protocol.RelayInfo) {
		s.out.pushReply(func(b []byte) []byte {
			return protocol.AppendRelayHello(b, rc.id, rc.version, p.role, list)
		})
	})
	return s.out, s.ops.Handle, func() {
		unsubscribe()
		unsubAuto()
		if operator {
			rc.relays.OperatorDown()
		}
	}
}

// RelayEvent queues a state event; it never blocks the relay service. The
// queued message holds a reference to the event until it is written.
func (s *relaySession) RelayEvent(ev relay.Event) {
	s.out.pushCtrl(ev.Data, ev.Retain())
}
