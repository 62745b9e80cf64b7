package relay

import (
	"context"
	"fmt"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/protocol"
	"periph.io/x/conn/v3/gpio"
)

// countingMetrics is Metrics over a VictoriaMetrics set, as the gateway's.
type countingMetrics struct{ set *metrics.Set }

func newCountingMetrics() *countingMetrics { return &countingMetrics{set: metrics.NewSet()} }

func (m *countingMetrics) RelayChanges(name, source string) Counter {
	return m.set.GetOrCreateCounter(fmt.Sprintf(`changes{relay=%q,source=%q}`, name, source))
}

func (m *countingMetrics) RelayWriteFailed(name string) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`write_errors{relay=%q}`, name)).Inc()
}

func (m *countingMetrics) get(name string) uint64 { return m.set.GetOrCreateCounter(name).Get() }

// Changes are counted by relay and source, failed writes by relay.
func TestMetricsCountChangesAndFailedWrites(t *testing.T) {
	ctx := context.Background()
	s, sim := newTestService(t, config.Relay{Name: "pump", Pin: "GPIO17"})
	m := newCountingMetrics()
	s.metrics = m
	s.Set(ctx, "pump", true, protocol.SourceClient)
	s.Set(ctx, "pump", true, protocol.SourceClient) // no change: not counted
	s.Toggle(ctx, "pump", protocol.SourceUplink)
	sim.Pin("GPIO17").SetStuck(gpio.High)
	if err := s.Set(ctx, "pump", false, protocol.SourceClient); err == nil {
		t.Fatal("a write to a stuck pin succeeded")
	}
	for name, want := range map[string]uint64{
		`changes{relay="pump",source="client"}`: 1,
		`changes{relay="pump",source="uplink"}`: 1,
		`write_errors{relay="pump"}`:            1,
	} {
		if got := m.get(name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}
