package automation

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/hardware"
	"github.com/edgegate/edgegate/gateway/relay"
	"github.com/edgegate/edgegate/gateway/sensor"
	"github.com/edgegate/edgegate/protocol"
)

// eventWaiter is a relay subscriber that signals each state event.
type eventWaiter chan struct{}

func (w eventWaiter) RelayEvent(relay.Event) {
	select {
	case w <- struct{}{}:
	default:
	}
}

// BenchmarkSampleToStateEvent is the time from a sample that crosses a
// thermostat's bound (handed over as the hub's Queue hands it) to the
// relay's state event, through the engine's goroutine and the real relay
// service on a simulated GPIO pin. BenchmarkDriverSet is the same relay
// service's Set alone (the driver's write and the event): the difference
// is the engine's part.
func BenchmarkSampleToStateEvent(b *testing.B) {
	cfg, err := config.Parse("b.yaml", []byte(`relays:
  - {name: heater, driver: gpio, pin: GPIO5}
sensors:
  - {name: room, driver: sim-wave, interval: 1s}
automations:
  - {name: keep_warm, thermostat: {sensor: room.value, relay: heater, target: 20, hysteresis: 2}}
`))
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rs, err := relay.New(cfg, hardware.Env{Buses: firmwaresim.NewHardware(nil), Logger: log}, relay.Options{})
	if err != nil {
		b.Fatal(err)
	}
	rs.Start(context.Background())
	defer rs.Shutdown(context.Background())
	hub, err := sensor.New(cfg, hardware.Env{Sim: true, Logger: log}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer hub.Stop()
	e, err := New(Options{Config: cfg, Relays: rs, Sensors: hub, Log: log, Tick: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	e.Start()
	defer e.Stop()
	w := make(eventWaiter, 1)
	defer rs.Subscribe(w, nil)()
	ix := hub.Catalog()[0].Index
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := 15.0 // below 19: on
		if i%2 == 1 {
			v = 25 // above 21: off
		}
		e.push(queued{index: ix, value: v})
		<-w
	}
}

func BenchmarkDriverSet(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := &config.Config{Relays: []config.Relay{{Name: "heater", Driver: "gpio", Pin: "GPIO5", MaxPulse: config.Duration(time.Minute)}}}
	rs, err := relay.New(cfg, hardware.Env{Buses: firmwaresim.NewHardware(nil), Logger: log}, relay.Options{})
	if err != nil {
		b.Fatal(err)
	}
	rs.Start(context.Background())
	defer rs.Shutdown(context.Background())
	w := make(eventWaiter, 1)
	defer rs.Subscribe(w, nil)()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := rs.Set(ctx, "heater", i%2 == 0, protocol.SourceClient); err != nil {
			b.Fatal(err)
		}
		<-w
	}
}

// nullRelays is relays that cost nothing, for the engine's own cost.
type nullRelays struct{ on map[string]bool }

func (n *nullRelays) SetBy(_ context.Context, name string, on bool, _, _ string) error {
	n.on[name] = on
	return nil
}
func (n *nullRelays) ToggleBy(_ context.Context, name, _, _ string) (bool, error) {
	n.on[name] = !n.on[name]
	return n.on[name], nil
}
func (n *nullRelays) PulseBy(context.Context, string, time.Duration, string, string) error {
	return nil
}
func (n *nullRelays) FailsafeBy(_ context.Context, name, _ string) (bool, error) {
	n.on[name] = false
	return true, nil
}
func (n *nullRelays) Get(name string) (protocol.RelayInfo, error) {
	return protocol.RelayInfo{Name: name, On: n.on[name]}, nil
}

// BenchmarkEngine100Automations is the engine's cost with 100 automations
// (50 thermostats, 50 whens) over 50 sensors sampled at 10 Hz: one op is
// one sample, with the 100 ms tick's share (one tick per 50 samples).
// cpu-%-at-10Hz is the share of one core that 500 samples a second take.
func BenchmarkEngine100Automations(b *testing.B) {
	var y strings.Builder
	y.WriteString("relays:\n")
	for i := 0; i < 100; i++ { // 8 channels a chip, 8 chips a bus
		fmt.Fprintf(&y, "  - {name: r%d, driver: i2c-relay, bus: /dev/i2c-%d, address: 0x%x, chip: pcf8574, channel: %d}\n", i, i/64, 0x20+i/8%8, i%8+1)
	}
	y.WriteString("sensors:\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&y, "  - {name: s%d, driver: sim-wave, interval: 100ms}\n", i)
	}
	y.WriteString("automations:\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&y, "  - {name: t%d, thermostat: {sensor: s%d.value, relay: r%d, target: 20, hysteresis: 1}}\n", i, i, i)
		fmt.Fprintf(&y, "  - {name: w%d, when: {sensor: s%d.value, above: 22, for: 5s}, do: [{set: r%d, state: on}], cooldown: 1m}\n", i, (i+25)%50, 50+i)
	}
	cfg, err := config.Parse("b.yaml", []byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub, err := sensor.New(cfg, hardware.Env{Sim: true, Logger: log}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer hub.Stop()
	clk := &clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	e, err := New(Options{Config: cfg, Relays: &nullRelays{on: map[string]bool{}}, Sensors: hub, Log: log, Now: clk.now})
	if err != nil {
		b.Fatal(err)
	}
	idx := make([]int, 50)
	for i, s := range hub.Catalog() {
		idx[i] = s.Index
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		s := i % 50
		// A slow wave per sensor: crosses the thermostat's bounds and the
		// when's threshold now and then, as a real room does.
		v := 20 + 3*float64((i/50+s*7)%40-20)/20
		now := clk.add(2 * time.Millisecond) // 500 samples a second
		e.mu.Lock()
		e.sampleLocked(idx[s], v, false, now)
		if s == 49 {
			e.tickLocked(now)
		}
		e.mu.Unlock()
	}
	el := time.Since(start)
	b.ReportMetric(float64(el.Nanoseconds())/float64(b.N)*500/1e9*100, "cpu-%-at-10Hz")
}
