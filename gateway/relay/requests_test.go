package relay

import (
	"testing"
	"time"
)

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
		to.begin(time.Duration(i%3) * time.Microsecond)
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
