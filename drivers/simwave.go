package drivers

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/edgegate/edgegate/gateway/config"
)

func init() { RegisterSensor(config.DriverSimWave, openSimWave) }

// simWave is a synthetic sine signal in [-1, 1] with a configured period,
// sampled at any interval down to 1 ms: a sensor for tests and benchmarks
// that needs no bus. It exists in --sim only.
type simWave struct {
	name     string
	interval time.Duration
	period   time.Duration
}

func openSimWave(cfg config.Sensor, env Env) (Sensor, error) {
	if !env.Sim {
		return nil, errors.New("sim-wave is a synthetic signal for --sim only; remove it from the configuration to run on hardware")
	}
	return &simWave{name: cfg.Name, interval: time.Duration(cfg.Interval), period: time.Duration(cfg.Period)}, nil
}

func (w *simWave) Name() string            { return w.name }
func (w *simWave) Driver() string          { return config.DriverSimWave }
func (w *simWave) Quantities() []Quantity  { return []Quantity{{Name: "value"}} }
func (w *simWave) Interval() time.Duration { return w.interval }
func (w *simWave) Close() error            { return nil }

// Read returns sin(2π t / period) at the current time.
func (w *simWave) Read(_ context.Context, dst []float64) error {
	phase := float64(time.Now().UnixNano()%int64(w.period)) / float64(w.period)
	dst[0] = math.Sin(2 * math.Pi * phase)
	return nil
}
