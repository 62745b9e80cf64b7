package drivers

import (
	"context"
	"errors"
	"math"
	"time"
)

// SimWaveDriver is the name of the sim-wave sensor driver.
const SimWaveDriver = "sim-wave"

// SimWaveOpts describe a synthetic sine signal.
type SimWaveOpts struct {
	Name     string
	Interval time.Duration
	Period   time.Duration // at least 1ms
}

// Validate checks the options.
func (o SimWaveOpts) Validate() error {
	if o.Period < time.Millisecond {
		return fieldError("period", "must be at least %v, got %v", time.Millisecond, o.Period)
	}
	return nil
}

// simWave is a synthetic sine signal in [-1, 1] with a configured period,
// sampled at any interval down to 1 ms: a sensor for tests and benchmarks
// that needs no bus. It exists in --sim only.
type simWave struct {
	name     string
	interval time.Duration
	period   time.Duration
}

// OpenSimWave opens a sim-wave sensor; it refuses to unless env.Sim.
func OpenSimWave(o SimWaveOpts, env Env) (Sensor, error) {
	if !env.Sim {
		return nil, errors.New("sim-wave is a synthetic signal for --sim only; remove it from the configuration to run on hardware")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &simWave{name: o.Name, interval: o.Interval, period: o.Period}, nil
}

func (w *simWave) Name() string            { return w.name }
func (w *simWave) Driver() string          { return SimWaveDriver }
func (w *simWave) Quantities() []Quantity  { return []Quantity{{Name: "value"}} }
func (w *simWave) Interval() time.Duration { return w.interval }
func (w *simWave) Close() error            { return nil }

// Read returns sin(2π t / period) at the current time.
func (w *simWave) Read(_ context.Context, dst []float64) error {
	phase := float64(time.Now().UnixNano()%int64(w.period)) / float64(w.period)
	dst[0] = math.Sin(2 * math.Pi * phase)
	return nil
}
