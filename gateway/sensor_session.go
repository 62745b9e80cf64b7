package gateway

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgegate/edgegate/protocol"
)

// sensorSession is one sensor-stream.v1 connection.
type sensorSession struct {
	g   *Gateway
	sub *subscriber
	req protocol.Request
}

// startSensorSession makes a session and queues its hello (a service: see
// Gateway.services).
func startSensorSession(g *Gateway, p *peer) (*outbox, func(payload []byte), func()) {
	s := &sensorSession{g: g, sub: &subscriber{out: newOutbox()}}
	if g.metrics != nil {
		s.sub.out.drops = g.metrics.samplesDropped
	}
	s.sub.out.pushReply(func(b []byte) []byte {
		return protocol.AppendSensorHello(b, g.cfg.Gateway.ID, g.version, p.role, g.sensorInfos)
	})
	return s.sub.out, s.handle, func() { g.hub.remove(s.sub) }
}

func (s *sensorSession) replyError(id json.RawMessage, code, msg string) {
	s.sub.out.pushReply(func(b []byte) []byte { return protocol.AppendError(b, id, code, msg) })
}

func (s *sensorSession) handle(payload []byte) {
	req := &s.req
	if err := protocol.DecodeRequest(payload, req); err != nil {
		var re *protocol.RequestError
		errors.As(err, &re)
		s.replyError(re.ID, re.Code, re.Message)
		return
	}
	switch req.Op {
	case protocol.OpList:
		s.sub.out.pushReply(func(b []byte) []byte { return protocol.AppendSensorList(b, req.ID, s.g.sensorInfos) })
		return
	case protocol.OpSubscribe, protocol.OpUnsubscribe:
	default:
		s.replyError(req.ID, protocol.CodeUnknownOp, fmt.Sprintf("unknown op %q; sensor-stream.v1 ops are list, subscribe, unsubscribe", req.Op))
		return
	}
	if len(req.Sensors) == 0 {
		s.replyError(req.ID, protocol.CodeBadRequest, req.Op+` needs "sensors": a list of names or patterns, e.g. ["room.*"]`)
		return
	}
	entries, err := s.g.hub.match(req.Sensors)
	if err != nil {
		var ue *unknownSensorError
		if errors.As(err, &ue) {
			s.replyError(req.ID, protocol.CodeUnknownSensor, err.Error())
		} else {
			s.replyError(req.ID, protocol.CodeBadRequest, err.Error())
		}
		return
	}
	if req.Op == protocol.OpUnsubscribe {
		entries = s.g.hub.subscribed(s.sub, entries) // the reply names those removed
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.info.Name
	}
	bp := bufPool.Get().(*[]byte)
	*bp = protocol.AppendSensorNames((*bp)[:0], req.ID, names)
	reply := ctrlMsg{data: *bp, buf: bp}
	if req.Op == protocol.OpUnsubscribe {
		s.g.hub.unsubscribe(s.sub, entries, reply)
		return
	}
	binary, err := req.BinaryFormat()
	if err != nil {
		bufPool.Put(bp)
		s.replyError(req.ID, protocol.CodeBadRequest, err.Error())
		return
	}
	minGap, err := req.MinGapNanos()
	if err != nil {
		bufPool.Put(bp)
		s.replyError(req.ID, protocol.CodeBadRequest, err.Error())
		return
	}
	s.g.hub.subscribe(s.sub, entries, binary, minGap, reply)
}
