package mqtt

// Metrics are the bridge's counters, ready for /metrics.
type Metrics struct {
	State      string // connecting, connected, stopped
	LastError  string
	Reconnects uint64
	Published  uint64 // messages published (samples batches included)
	Received   uint64 // messages received (commands, Home Assistant's status)
	// Commands carried out, refused (an error event), and ignored because
	// they came retained.
	CommandsDone, CommandsRefused, CommandsIgnored uint64
	SamplesSent                                    uint64 // resends included
	BufferDepth                                    uint64 // samples not yet acknowledged by the broker
	BufferBytes                                    int64
	LastSeq, AckedSeq                              uint64
	Dropped                                        uint64 // samples lost to buffer_max_bytes
	EventsDropped                                  uint64 // events not published: the queue was full
	DiscoveryPublished                             uint64
}

// Metrics returns the counters.
func (b *Bridge) Metrics() Metrics {
	m := Metrics{
		Published: b.published.Load(), Received: b.received.Load(),
		CommandsDone: b.cmdsDone.Load(), CommandsRefused: b.cmdsRefused.Load(), CommandsIgnored: b.cmdsIgnored.Load(),
		SamplesSent: b.samplesSent.Load(), EventsDropped: b.eventsDropped.Load(), DiscoveryPublished: b.discPub.Load(),
	}
	if b.spool != nil {
		st := b.spool.Stats()
		m.BufferDepth, m.BufferBytes, m.LastSeq, m.AckedSeq, m.Dropped = st.Depth, st.Bytes, st.LastSeq, st.AckedSeq, st.Dropped
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	m.State, m.LastError, m.Reconnects = b.state, b.lastErr, b.reconnects
	return m
}

// Health is the mqtt object of /healthz.
type Health struct {
	State      string `json:"state"` // connected, connecting, disabled
	Broker     string `json:"broker,omitempty"`
	LastError  string `json:"last_error"`
	Buffered   uint64 `json:"buffered"`  // samples not yet acknowledged
	LastSeq    uint64 `json:"last_seq"`  // the last sample buffered
	AckedSeq   uint64 `json:"acked_seq"` // the last one the broker acknowledged
	Reconnects uint64 `json:"reconnects"`
	Dropped    uint64 `json:"dropped"`
}

// Health is the bridge's state for /healthz; a nil bridge is disabled.
func (b *Bridge) Health() *Health {
	if b == nil {
		return &Health{State: StateDisabled}
	}
	m := b.Metrics()
	return &Health{State: m.State, Broker: b.shown, LastError: m.LastError, Buffered: m.BufferDepth, LastSeq: m.LastSeq, AckedSeq: m.AckedSeq, Reconnects: m.Reconnects, Dropped: m.Dropped}
}
