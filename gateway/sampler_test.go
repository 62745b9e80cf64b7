package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/drivers"
)

func TestMissedTicks(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		elapsed time.Duration
		want    int
	}{
		{10 * ms, 0},
		{14 * ms, 0}, // late, but within half an interval
		{6 * ms, 0},  // early
		{15 * ms, 1},
		{20 * ms, 1},
		{31 * ms, 2},
		{1000 * ms, 99},
	} {
		if got := missedTicks(tc.elapsed, 10*ms); got != tc.want {
			t.Errorf("missedTicks(%v, 10ms) = %d, want %d", tc.elapsed, got, tc.want)
		}
	}
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

// A sampler slower than its interval loses ticks: they are counted on
// /metrics, per device, instead of vanishing.
func TestSamplerCountsMissedTicks(t *testing.T) {
	h, d := testHub(1, 16)
	d.drv = slowSensor{interval: 5 * time.Millisecond}
	h.metrics = newGatewayMetrics()
	missed := h.metrics.samplerMissedTicks("dev") // the sampler's own counter
	h.start()
	deadline := time.Now().Add(5 * time.Second)
	for missed.Get() < 4 {
		if time.Now().After(deadline) {
			t.Fatal("no missed ticks counted for a sampler three times slower than its interval")
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.stop()
	var b strings.Builder
	h.metrics.set.WritePrometheus(&b)
	if !strings.Contains(b.String(), `edgegate_sampler_missed_ticks_total{device="dev"}`) {
		t.Fatalf("metric not exposed:\n%s", b.String())
	}
}

// opTimeout cancels an operation that overruns, and a timeout that fires
// as an operation ends never cancels the next one.
func TestOpTimeout(t *testing.T) {
	var to opTimeout
	ctx := to.begin(5 * time.Millisecond)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("an operation past its timeout was not cancelled")
	}
	to.end()
	for i := 0; i < 50; i++ {
		// Timeouts about as long as the operations: some fire as they end.
		ctx = to.begin(time.Duration(i%3) * time.Microsecond)
		to.end()
	}
	ctx = to.begin(time.Hour)
	time.Sleep(20 * time.Millisecond) // room for any stale callback to run
	if ctx.Err() != nil {
		t.Fatal("a stale timeout cancelled the next operation")
	}
	to.end()
	ctx = to.begin(5 * time.Millisecond) // and timeouts still work after all that
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a timeout was lost")
	}
	to.end()
}
