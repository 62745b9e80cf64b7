// Package retry holds the reconnect policy the gateway's clients share
// (the uplink, the MQTT bridge).
package retry

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait before retry number attempt (from 0): capped
// exponential from lo to hi, drawn uniformly from the upper half of the
// step (jitter, so that a fleet does not reconnect in step).
func Backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := hi
	if attempt < 16 {
		d = min(lo<<attempt, hi)
	}
	return d/2 + rand.N(d/2+1)
}
