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

// ctrlMsg is a reply or event waiting to be written: its bytes, and what
// they are made of, released once they are written or dropped: buf, a
// pooled reply buffer, or ev, the chunk of a shared event (at most one of
// the two).
type ctrlMsg struct {
	data []byte
	buf  *wsconn.ReplyBuf
	ev   *eventChunk
}

// pushCtrl queues a control message; false when the client is too far behind.
func (o *outbox) pushCtrl(m ctrlMsg) bool {
	var rel wsconn.Releaser
	switch {
	case m.buf != nil:
		rel = m.buf
	case m.ev != nil:
		rel = m.ev
	}
	return o.writer().PushControl(m.data, rel)
}

// pushReply encodes a message into a pooled buffer and queues it.
func (o *outbox) pushReply(encode func([]byte) []byte) { o.writer().PushReply(encode) }

// Release is release, for a writer that has written (or dropped) an event
// cut from the chunk.
func (c *eventChunk) Release() { c.release() }

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
