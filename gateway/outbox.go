package gateway

import (
	"runtime"
	"time"

	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
)

// outbox is a session's side of its connection's one writer
// (wsconn.Writer), under the names the services push through: pushCtrl
// and pushReply. It is the writer itself, not a wrapper: a conversion
// costs nothing and adds nothing to a connection.
type outbox wsconn.Writer

func newOutbox() *outbox { return &outbox{} }

func (o *outbox) writer() *wsconn.Writer { return (*wsconn.Writer)(o) }

// pushCtrl queues a control message (a relay event); rel, if not nil, is
// released once it is written or dropped. False: the client is too far
// behind.
func (o *outbox) pushCtrl(data []byte, rel wsconn.Releaser) bool {
	return o.writer().PushControl(data, rel)
}

// pushReply encodes a message into a pooled buffer and queues it.
func (o *outbox) pushReply(encode func([]byte) []byte) { o.writer().PushReply(encode) }

// newWriterConfig is what the writers of every connection share.
func newWriterConfig(cfg *config.Config, m *gatewayMetrics) *wsconn.WriterConfig {
	wc := &wsconn.WriterConfig{
		Heartbeat: time.Duration(cfg.Gateway.Heartbeat.Interval),
		Batch:     time.Duration(cfg.Gateway.SampleBatch),
		Streams:   wsconn.NewFastStreams(runtime.GOMAXPROCS(0)),
		Dropped:   protocol.AppendDropped,
	}
	if m != nil {
		wc.Drops = m.samplesDropped
	}
	return wc
}
