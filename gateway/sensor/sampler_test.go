package sensor

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/drivers"
)

func TestNextTick(t *testing.T) {
	const ms = time.Millisecond
	t0 := time.Now()
	for _, tc := range []struct {
		interval, now, next time.Duration // now and next after t0, the last tick
		missed              int
	}{
		{10 * ms, 5 * ms, 10 * ms, 0},       // on time: wait for the next tick
		{10 * ms, 12 * ms, 10 * ms, 0},      // late: read again at once
		{10 * ms, 20 * ms, 10 * ms, 0},      // a whole interval behind: still made up
		{10 * ms, 21 * ms, 20 * ms, 1},      // more: the missed tick is given up
		{10 * ms, 1000 * ms, 1000 * ms, 99}, // a read slower than its interval
		{1 * ms, 4 * ms, 1 * ms, 0},         // fast sensors make up 5 ms of delays
		{1 * ms, 7 * ms, 7 * ms, 6},
	} {
		next, missed := nextTick(t0, t0.Add(tc.now), tc.interval)
		if next.Sub(t0) != tc.next || missed != tc.missed {
			t.Errorf("nextTick(t0, t0+%v, %v) = t0+%v, %d; want t0+%v, %d", tc.now, tc.interval, next.Sub(t0), missed, tc.next, tc.missed)
		}
	}
}

// jitterSensor counts its reads; every other read takes two intervals, as
// a sampler woken late by a busy gateway would see.
type jitterSensor struct {
	interval time.Duration
	reads    atomic.Int64
}

func (s *jitterSensor) Name() string   { return "jitter" }
func (s *jitterSensor) Driver() string { return "test-jitter" }
func (s *jitterSensor) Quantities() []drivers.Quantity {
	return []drivers.Quantity{{Name: "v", Unit: "u"}}
}
func (s *jitterSensor) Interval() time.Duration { return s.interval }
func (s *jitterSensor) Close() error            { return nil }
func (s *jitterSensor) Read(ctx context.Context, dst []float64) error {
	if s.reads.Add(1)%2 == 0 {
		time.Sleep(2 * s.interval)
	}
	dst[0] = 1
	return nil
}

// A sampler that falls behind its schedule by less than catchUp makes the
// reads up: the sensor keeps its rate and no tick is counted as missed.
// (A ticker would drop about every third tick here.) The margin is the
// 3 ms between the sensor's lateness and catchUp, which a machine busy
// with other tests can eat up now and then: the measurement is given three
// tries, and a sampler that does not make reads up fails them all.
func TestSamplerKeepsItsRate(t *testing.T) {
	var tries []string
	for try := 0; try < 3; try++ {
		h, d := testHub(1)
		drv := &jitterSensor{interval: 2 * time.Millisecond}
		d.drv = drv
		m := &testMetrics{}
		h.metrics = m
		missed := &m.missed
		h.Start()
		time.Sleep(50 * time.Millisecond)
		r0, m0, t0 := drv.reads.Load(), missed.Get(), time.Now()
		time.Sleep(600 * time.Millisecond)
		r1, m1, t1 := drv.reads.Load(), missed.Get(), time.Now()
		h.Stop()
		due := float64(t1.Sub(t0)) / float64(drv.interval)
		got := float64(r1 - r0)
		if got >= 0.85*due {
			return
		}
		tries = append(tries, fmt.Sprintf("%.0f reads in %v, want about %.0f (%d ticks counted missed)", got, t1.Sub(t0), due, m1-m0))
	}
	t.Fatalf("at a 2ms interval: %s", strings.Join(tries, "; "))
}

// slowSensor takes three intervals to read.
type slowSensor struct{ interval time.Duration }

func (s slowSensor) Name() string   { return "slow" }
func (s slowSensor) Driver() string { return "test-slow" }
func (s slowSensor) Quantities() []drivers.Quantity {
	return []drivers.Quantity{{Name: "v", Unit: "u"}}
}
func (s slowSensor) Interval() time.Duration { return s.interval }
func (s slowSensor) Close() error            { return nil }
func (s slowSensor) Read(ctx context.Context, dst []float64) error {
	select {
	case <-time.After(3 * s.interval):
	case <-ctx.Done():
	}
	dst[0] = 1
	return nil
}

// testMetrics counts a hub's missed ticks, of every device together.
type testMetrics struct {
	missed  tickCounter
	devices []string // asked for a counter of missed ticks
}

type tickCounter struct{ n atomic.Int64 }

func (c *tickCounter) Add(n int)  { c.n.Add(int64(n)) }
func (c *tickCounter) Get() int64 { return c.n.Load() }

func (m *testMetrics) Sampled()          {}
func (m *testMetrics) ReadFailed(string) {}
func (m *testMetrics) MissedTicks(device string) Counter {
	m.devices = append(m.devices, device)
	return &m.missed
}

// A sampler slower than its interval loses ticks: they are counted, per
// device, instead of vanishing (on /metrics: gateway's
// TestSensorMetricsExposed).
func TestSamplerCountsMissedTicks(t *testing.T) {
	h, d := testHub(1)
	d.drv = slowSensor{interval: 5 * time.Millisecond}
	m := &testMetrics{}
	h.metrics = m
	missed := &m.missed // the sampler's own counter
	h.Start()
	deadline := time.Now().Add(5 * time.Second)
	for missed.Get() < 4 {
		if time.Now().After(deadline) {
			t.Fatal("no missed ticks counted for a sampler three times slower than its interval")
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.Stop()
	if len(m.devices) != 1 || m.devices[0] != "dev" {
		t.Fatalf("counters of missed ticks asked for %q, want the device's, once", m.devices)
	}
}
