package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

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
	case "list":
		s.sub.out.pushReply(func(b []byte) []byte { return protocol.AppendSensorList(b, req.ID, s.g.sensorInfos) })
		return
	case "subscribe", "unsubscribe":
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
	if req.Op == "unsubscribe" {
		entries = s.g.hub.subscribed(s.sub, entries) // the reply names those removed
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.info.Name
	}
	bp := bufPool.Get().(*[]byte)
	*bp = protocol.AppendSensorNames((*bp)[:0], req.ID, names)
	reply := ctrlMsg{data: *bp, buf: bp}
	if req.Op == "unsubscribe" {
		s.g.hub.unsubscribe(s.sub, entries, reply)
		return
	}
	binary := false
	switch req.Format {
	case "", "json":
	case "binary":
		binary = true
	default:
		bufPool.Put(bp)
		s.replyError(req.ID, protocol.CodeBadRequest, `"format" must be "json" or "binary"`)
		return
	}
	var minGap int64
	if len(req.MaxHz) > 0 && string(req.MaxHz) != "null" {
		var hz float64
		if err := json.Unmarshal(req.MaxHz, &hz); err != nil || hz < 0 || math.IsInf(hz, 0) {
			bufPool.Put(bp)
			s.replyError(req.ID, protocol.CodeBadRequest, `"max_hz" must be a number ≥ 0 (0: every sample)`)
			return
		}
		if hz > 0 {
			minGap = int64(1e9 / hz)
		}
	}
	s.g.hub.subscribe(s.sub, entries, binary, minGap, reply)
}
