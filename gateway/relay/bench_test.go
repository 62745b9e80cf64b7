package relay

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/hardware"
	"github.com/edgegate/edgegate/protocol"
)

type discardSink struct{ n int }

func (d *discardSink) RelayEvent(Event) { d.n++ }

// BenchmarkRelayRequest is one whole relay-control request as a session
// carries it out: decode, set a GPIO relay on a simulated pin (its journal
// written), the state event to a subscriber, and the reply encoded. Info
// logging is off, as in the benchmarks of docs/benchmarks.md.
func BenchmarkRelayRequest(b *testing.B) {
	hw := firmwaresim.NewHardware(io.Discard)
	defer hw.Close()
	cfg := &config.Config{Relays: []config.Relay{{Name: "pump", Driver: "gpio", Pin: "GPIO17", MaxPulse: config.Duration(time.Minute)}}}
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rs, err := New(cfg, hardware.Env{Buses: hw, Logger: log}, Options{Metrics: newCountingMetrics()})
	if err != nil {
		b.Fatal(err)
	}
	rs.Start(context.Background())
	defer rs.Shutdown(context.Background())
	defer rs.Subscribe(&discardSink{}, nil)()
	var out []byte
	r := &Requests{Service: rs, Role: protocol.RoleOperator, Source: protocol.SourceClient, Log: log,
		Reply: func(encode func([]byte) []byte) { out = encode(out[:0]) }}
	reqs := [][]byte{
		[]byte(`{"id":7,"op":"set","relay":"pump","state":"on"}`),
		[]byte(`{"id":8,"op":"set","relay":"pump","state":"off"}`),
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Handle(reqs[i&1])
		i++
	}
	if len(out) == 0 || out[len(out)-1] != '}' {
		b.Fatalf("reply %q", out)
	}
}
