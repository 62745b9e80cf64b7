package gateway

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/edgegate/edgegate/gateway/mqtt"
	"github.com/edgegate/edgegate/gateway/relay"
	"github.com/edgegate/edgegate/gateway/sensor"
	"github.com/edgegate/edgegate/gateway/uplink"
	"github.com/edgegate/edgegate/protocol"
)

// GET /metrics, in the Prometheus text format, through
// github.com/VictoriaMetrics/metrics: measured on a static linux/arm64
// build it adds about 0.4 MiB to the binary, where
// prometheus/client_golang adds 2.6 MiB (the binary would no longer fit
// its 10 MiB budget); its counters are lock-free atomics that allocate
// nothing when they move (docs/operations.md).

// Handshake rejection reasons, the label of edgegate_handshakes_rejected_total.
const (
	rejectNotWebSocket = "not_websocket"
	rejectOrigin       = "origin"
	rejectSubprotocol  = "subprotocol"
	rejectAuth         = "auth"
	rejectCapacity     = "over_capacity"
	rejectShutdown     = "shutting_down"
)

var rejectReasons = []string{rejectNotWebSocket, rejectOrigin, rejectSubprotocol, rejectAuth, rejectCapacity, rejectShutdown}

// ioCounters count the messages and bytes of one subprotocol.
type ioCounters struct {
	msgsIn, bytesIn, msgsOut, bytesOut *metrics.Counter
}

func (c *ioCounters) in(n int) {
	if c != nil {
		c.msgsIn.Inc()
		c.bytesIn.Add(n)
	}
}

func (c *ioCounters) out(n int) {
	if c != nil {
		c.msgsOut.Inc()
		c.bytesOut.Add(n)
	}
}

// gatewayMetrics are one gateway's counters (a set of its own, so that
// several gateways in one process, as in tests, do not share them). Every
// method is safe on a nil receiver: parts built without a gateway count
// nothing.
type gatewayMetrics struct {
	set               *metrics.Set
	rejected          map[string]*metrics.Counter
	io                map[string]*ioCounters
	heartbeatTimeouts *metrics.Counter
	slowClients       *metrics.Counter
	rateLimited       *metrics.Counter
	samples           *metrics.Counter
	samplesDropped    *metrics.Counter
}

func newGatewayMetrics() *gatewayMetrics {
	s := metrics.NewSet()
	m := &gatewayMetrics{
		set:               s,
		rejected:          map[string]*metrics.Counter{},
		io:                map[string]*ioCounters{},
		heartbeatTimeouts: s.NewCounter("edgegate_heartbeat_timeouts_total"),
		slowClients:       s.NewCounter("edgegate_slow_clients_disconnected_total"),
		rateLimited:       s.NewCounter("edgegate_requests_rate_limited_total"),
		samples:           s.NewCounter("edgegate_sensor_samples_total"),
		samplesDropped:    s.NewCounter("edgegate_sensor_samples_dropped_total"),
	}
	for _, r := range rejectReasons {
		m.rejected[r] = s.NewCounter(fmt.Sprintf(`edgegate_handshakes_rejected_total{reason=%q}`, r))
	}
	for _, p := range []string{protocol.RelayControlV1, protocol.SensorStreamV1, "echo"} {
		m.io[p] = &ioCounters{
			msgsIn:   s.NewCounter(fmt.Sprintf(`edgegate_messages_received_total{protocol=%q}`, p)),
			bytesIn:  s.NewCounter(fmt.Sprintf(`edgegate_bytes_received_total{protocol=%q}`, p)),
			msgsOut:  s.NewCounter(fmt.Sprintf(`edgegate_messages_sent_total{protocol=%q}`, p)),
			bytesOut: s.NewCounter(fmt.Sprintf(`edgegate_bytes_sent_total{protocol=%q}`, p)),
		}
	}
	return m
}

func (m *gatewayMetrics) reject(reason string) {
	if m != nil {
		m.rejected[reason].Inc()
	}
}

func (m *gatewayMetrics) ioFor(proto string) *ioCounters {
	if m == nil {
		return nil
	}
	return m.io[proto]
}

func (m *gatewayMetrics) inc(c func(*gatewayMetrics) *metrics.Counter) {
	if m != nil {
		c(m).Inc()
	}
}

// counter returns the counter of a name with labels, made on first use
// (relay and device names are restricted to [A-Za-z0-9_-] by the loader).
func (m *gatewayMetrics) counter(format string, args ...any) *metrics.Counter {
	if m == nil {
		return nil
	}
	return m.set.GetOrCreateCounter(fmt.Sprintf(format, args...))
}

// RelayChanges is the counter of a relay's changes from one source (nil
// when m is): the relay service asks once per relay and source
// (relay.Metrics).
func (m *gatewayMetrics) RelayChanges(name, source string) relay.Counter {
	if m == nil {
		return nil
	}
	return m.counter(`edgegate_relay_changes_total{relay=%q,source=%q}`, name, source)
}

// RelayWriteFailed counts a relay's failed driver write (relay.Metrics).
func (m *gatewayMetrics) RelayWriteFailed(name string) {
	if c := m.counter(`edgegate_relay_write_errors_total{relay=%q}`, name); c != nil {
		c.Inc()
	}
}

// samplerMissedTicks is the counter of a sensor device's sampler ticks
// missed because a read and its fan-out took longer than the interval.
func (m *gatewayMetrics) samplerMissedTicks(device string) *metrics.Counter {
	return m.counter(`edgegate_sampler_missed_ticks_total{device=%q}`, device)
}

func (m *gatewayMetrics) sensorReadFailed(device string) {
	if c := m.counter(`edgegate_sensor_read_errors_total{device=%q}`, device); c != nil {
		c.Inc()
	}
}

// serveMetrics writes every metric: the counters, then the values read at
// scrape time (connections, device health, the uplink), build info, and
// the Go runtime and process metrics.
func (g *Gateway) serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	g.metrics.set.WritePrometheus(w)

	conns := g.connections()
	protos := make([]string, 0, len(conns))
	for p := range conns {
		protos = append(protos, p)
	}
	sort.Strings(protos)
	for _, p := range protos {
		metrics.WriteGaugeUint64(w, fmt.Sprintf(`edgegate_connections{protocol=%q}`, p), uint64(conns[p]))
	}
	for _, d := range g.deviceHealth() {
		metrics.WriteGaugeUint64(w, fmt.Sprintf(`edgegate_device_up{device=%q}`, d.Name), boolGauge(d.OK))
	}
	// The sample batch window under load (wsconn.FastStreams): how many
	// subscriber streams it holds back, and for how long now.
	metrics.WriteGaugeUint64(w, "edgegate_sensor_batched_streams", uint64(g.writers.Streams.Count()))
	metrics.WriteGaugeFloat64(w, "edgegate_sensor_batch_window_seconds", g.writers.Streams.Window(g.writers.Batch).Seconds())
	if g.uplink != nil {
		writeUplinkMetrics(w, g.uplink.Metrics())
	}
	if g.mqtt != nil {
		writeMQTTMetrics(w, g.mqtt.Metrics())
	}
	fmt.Fprintf(w, "edgegate_build_info{version=%s,go_version=%q} 1\n", strconv.Quote(g.version), runtime.Version())
	fmt.Fprintf(w, "edgegate_uptime_seconds %.3f\n", time.Since(g.started).Seconds())
	metrics.WriteProcessMetrics(w)
	// process_open_fds and process_max_fds (not part of the process
	// metrics on Linux): a leak of connections or files shows here.
	metrics.WriteFDMetrics(w)
}

func boolGauge(ok bool) uint64 {
	if ok {
		return 1
	}
	return 0
}

// writeUplinkMetrics writes the uplink's counters and gauges.
func writeUplinkMetrics(w io.Writer, m uplink.Metrics) {
	metrics.WriteGaugeUint64(w, "edgegate_uplink_connected", boolGauge(m.State == uplink.StateConnected))
	metrics.WriteCounterUint64(w, "edgegate_uplink_reconnects_total", m.Reconnects)
	metrics.WriteGaugeUint64(w, "edgegate_uplink_last_seq", m.LastSeq)
	metrics.WriteGaugeUint64(w, "edgegate_uplink_acked_seq", m.AckedSeq)
	metrics.WriteGaugeUint64(w, "edgegate_uplink_buffer_samples", m.BufferDepth)
	metrics.WriteGaugeUint64(w, "edgegate_uplink_buffer_bytes", uint64(max(m.BufferBytes, 0)))
	metrics.WriteCounterUint64(w, "edgegate_uplink_samples_sent_total", m.SamplesSent)
	metrics.WriteCounterUint64(w, "edgegate_uplink_buffer_dropped_total", m.Dropped)
	metrics.WriteCounterUint64(w, "edgegate_uplink_records_recovered_total", m.Recovered)
	metrics.WriteCounterUint64(w, "edgegate_uplink_buffer_corrupt_records_total", m.Corrupt)
}

// sensorMetrics counts the sensor hub's samples, read errors and missed
// sampler ticks in the gateway's metrics.
type sensorMetrics struct{ m *gatewayMetrics }

func (s sensorMetrics) Sampled() {
	if s.m != nil {
		s.m.samples.Inc()
	}
}

func (s sensorMetrics) ReadFailed(device string) { s.m.sensorReadFailed(device) }

func (s sensorMetrics) MissedTicks(device string) sensor.Counter {
	if c := s.m.samplerMissedTicks(device); c != nil {
		return c
	}
	return nil
}

// writeMQTTMetrics writes the MQTT bridge's counters and gauges.
func writeMQTTMetrics(w io.Writer, m mqtt.Metrics) {
	metrics.WriteGaugeUint64(w, "edgegate_mqtt_connected", boolGauge(m.State == mqtt.StateConnected))
	metrics.WriteCounterUint64(w, "edgegate_mqtt_reconnects_total", m.Reconnects)
	metrics.WriteCounterUint64(w, "edgegate_mqtt_messages_published_total", m.Published)
	metrics.WriteCounterUint64(w, "edgegate_mqtt_messages_received_total", m.Received)
	metrics.WriteCounterUint64(w, `edgegate_mqtt_commands_total{result="done"}`, m.CommandsDone)
	metrics.WriteCounterUint64(w, `edgegate_mqtt_commands_total{result="refused"}`, m.CommandsRefused)
	metrics.WriteCounterUint64(w, `edgegate_mqtt_commands_total{result="ignored_retained"}`, m.CommandsIgnored)
	metrics.WriteCounterUint64(w, "edgegate_mqtt_samples_sent_total", m.SamplesSent)
	metrics.WriteGaugeUint64(w, "edgegate_mqtt_buffer_samples", m.BufferDepth)
	metrics.WriteGaugeUint64(w, "edgegate_mqtt_buffer_bytes", uint64(max(m.BufferBytes, 0)))
	metrics.WriteGaugeUint64(w, "edgegate_mqtt_acked_seq", m.AckedSeq)
	metrics.WriteCounterUint64(w, "edgegate_mqtt_buffer_dropped_total", m.Dropped)
	metrics.WriteCounterUint64(w, "edgegate_mqtt_events_dropped_total", m.EventsDropped)
}
