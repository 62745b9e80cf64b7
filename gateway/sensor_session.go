package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/edgegate/edgegate/gateway/sensor"
	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
)

// sensorStream is the sensor-stream.v1 service: what its sessions need.
type sensorStream struct {
	hub         *sensor.Hub
	id, version string // the gateway's, for the hello
	queue       int    // samples a subscriber may have waiting (gateway.limits.subscriber_queue)
}

// sensorSession is one sensor-stream.v1 connection: a subscriber of the
// sensor hub whose samples go to the connection's writer.
type sensorSession struct {
	hub *sensor.Hub
	out *outbox
	sub sensor.Subscription
	req protocol.Request
}

// defaultSubscriberQueue is gateway.limits.subscriber_queue when unset.
const defaultSubscriberQueue = 1024

// start makes a session and queues its hello (a service: see
// Gateway.services).
func (ss *sensorStream) start(p *peer) (*outbox, func(payload []byte), func()) {
	s := &sensorSession{hub: ss.hub, out: newOutbox()}
	s.sub.Subscriber = s
	queue := ss.queue
	if queue <= 0 {
		queue = defaultSubscriberQueue
	}
	s.out.writer().SetQueueLimit(queue) // the queue is made by the first sample
	s.out.pushReply(func(b []byte) []byte {
		return protocol.AppendSensorHello(b, ss.id, ss.version, p.role, ss.hub.Catalog())
	})
	return s.out, s.handle, func() { ss.hub.Remove(&s.sub) }
}

// Queue, Deliver and Purge make the session the hub's subscriber: its
// samples go straight to the connection's writer.
func (s *sensorSession) Queue(smp *sensor.Sample, binary bool) bool {
	return s.out.writer().QueueSample(smp, binary)
}
func (s *sensorSession) Deliver(mayWrite bool) { s.out.writer().Deliver(mayWrite) }
func (s *sensorSession) Purge(drop func(*sensor.Sample) bool) {
	s.out.writer().Purge(func(q wsconn.Sample) bool { return drop(q.(*sensor.Sample)) })
}

func (s *sensorSession) replyError(id json.RawMessage, code, msg string) {
	s.out.pushReply(func(b []byte) []byte { return protocol.AppendError(b, id, code, msg) })
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
		s.out.pushReply(func(b []byte) []byte { return protocol.AppendSensorList(b, req.ID, s.hub.Catalog()) })
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
	hub := s.hub
	sensors, err := hub.Match(req.Sensors)
	if err != nil {
		var ue *sensor.UnknownSensorError
		if errors.As(err, &ue) {
			s.replyError(req.ID, protocol.CodeUnknownSensor, err.Error())
		} else {
			s.replyError(req.ID, protocol.CodeBadRequest, err.Error())
		}
		return
	}
	if req.Op == protocol.OpUnsubscribe {
		sensors = hub.Subscribed(&s.sub, sensors) // the reply names those removed
		// Purged first, then the reply: no sample of these follows it.
		hub.Unsubscribe(&s.sub, sensors)
		s.replyNames(sensors)
		return
	}
	var o sensor.Options
	if o.Binary, err = req.BinaryFormat(); err != nil {
		s.replyError(req.ID, protocol.CodeBadRequest, err.Error())
		return
	}
	minGap, err := req.MinGapNanos()
	if err != nil {
		s.replyError(req.ID, protocol.CodeBadRequest, err.Error())
		return
	}
	o.MinGap = time.Duration(minGap)
	// The reply first, then the sensors' latest samples and every newer
	// one (the reader corks the writer meanwhile: one write for them all).
	s.replyNames(sensors)
	hub.Subscribe(&s.sub, sensors, o)
}

// replyNames replies to a subscribe or unsubscribe with the sensors' names.
func (s *sensorSession) replyNames(sensors []*sensor.Sensor) {
	names := make([]string, len(sensors))
	for i, e := range sensors {
		names[i] = e.Info().Name
	}
	s.out.pushReply(func(b []byte) []byte { return protocol.AppendSensorNames(b, s.req.ID, names) })
}
