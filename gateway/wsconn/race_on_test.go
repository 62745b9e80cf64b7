//go:build race

package wsconn

// raceDetector: this test binary runs under the race detector, whose
// sync.Pool drops items at random, so allocations are not counted.
const raceDetector = true
