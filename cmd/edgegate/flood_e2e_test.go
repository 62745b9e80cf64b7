package main

import (
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// A client that keeps sending past its rate limit, steadily (the refilling
// bucket lets a request through now and then), is closed with 1008 after
// about two seconds of it; it used to be served rate_limited replies for
// as long as it liked.
func TestSteadyFloodIsClosed(t *testing.T) {
	cfg := writeConfig(t, `
gateway:
  limits: {requests_per_second: 20}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	c, _ := dialRelay(t, p, "")
	msg := ws.MustCompileFrame(ws.MaskFrameInPlace(ws.NewTextFrame([]byte(`{"op":"get","relay":"pump"}`))))
	done := make(chan struct{})
	stop := make(chan struct{})
	defer func() { close(stop); <-done }()
	start := time.Now()
	go func() { // 1,000 requests a second, for at most 6 s
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for time.Since(start) < 6*time.Second {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range 10 {
				if _, err := c.conn.Write(msg); err != nil {
					return
				}
			}
		}
	}()
	c.expectClose(ws.StatusPolicyViolation)
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Errorf("closed after %v: a steady flood is given about 2 s", el)
	}
}
