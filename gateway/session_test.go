package gateway

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"
)

// An idle connection costs one goroutine (its read loop): no writer waits
// on it, and the handler goroutine of the HTTP server is gone.
func TestIdleConnectionsHoldOneGoroutineEach(t *testing.T) {
	_, addr, _ := startTestGateway(t, `
gateway:
  limits: {max_connections: 1000, max_connections_per_ip: 1000}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	const n = 200
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()
	for i := 0; i < n; i++ {
		conn, rw := dialTest(t, "ws://"+addr+"/ws", "relay-control.v1")
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := wsutil.ReadServerText(rw); err != nil { // hello
			t.Fatal(err)
		}
	}
	// Flushers of the hellos end on their own; wait for them, bounded.
	deadline := time.Now().Add(5 * time.Second)
	for {
		per := float64(runtime.NumGoroutine()-base) / n
		if per <= 1.01 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%.2f goroutines per idle connection, want 1", per)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The sensor hub's counters are the gateway's: a sampler's missed ticks
// are on /metrics, per device.
func TestSensorMetricsExposed(t *testing.T) {
	m := newGatewayMetrics()
	sm := sensorMetrics{m}
	sm.MissedTicks("dev").Add(3)
	sm.Sampled()
	sm.ReadFailed("dev")
	var b strings.Builder
	m.set.WritePrometheus(&b)
	for _, want := range []string{
		`edgegate_sampler_missed_ticks_total{device="dev"} 3`,
		`edgegate_sensor_read_errors_total{device="dev"} 1`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("%s not exposed:\n%s", want, b.String())
		}
	}
	if c := (sensorMetrics{}).MissedTicks("dev"); c != nil {
		t.Errorf("no metrics: a counter of missed ticks %v, want none", c)
	}
	(sensorMetrics{}).Sampled() // counts nothing, and does not fail
}
