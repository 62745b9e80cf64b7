package main

import (
	"fmt"
	"testing"
	"time"
)

// A quiet connection costs one goroutine with the smallest stack (2 KiB):
// the gateway reads a burst of messages on a goroutine of its own and, once
// the peer is quiet, keeps only a shallow one awaiting its next bytes. A
// session whose goroutine read and handled messages itself would hold a
// 4 KiB stack or more for its whole life.
func TestQuietConnectionsAreCheap(t *testing.T) {
	const n = 400
	cfg := writeConfig(t, fmt.Sprintf(`
gateway:
  limits: {max_connections: %d, max_connections_per_ip: %d}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`, n+10, n+10))
	p := startGateway(t, "--sim", "--config", cfg)
	before := scrape(t, p)

	clients := make([]*client, n)
	for i := range clients {
		clients[i], _ = dialRelay(t, p, "")
	}
	time.Sleep(200 * time.Millisecond) // the hellos' flushers finish
	open := scrape(t, p)
	perConn := func(m map[string]float64, name string) float64 {
		return (m[name] - before[name]) / n
	}
	if g := perConn(open, "go_goroutines"); g < 0.99 || g > 1.05 {
		t.Fatalf("%.2f goroutines per quiet connection, want 1", g)
	}
	t.Logf("per quiet connection: %.2f goroutines, %.0f bytes of stack", perConn(open, "go_goroutines"), perConn(open, "go_memstats_stack_inuse_bytes"))
	if s := perConn(open, "go_memstats_stack_inuse_bytes"); s > 3<<10 {
		t.Fatalf("%.0f bytes of goroutine stack per quiet connection, want about 2 KiB", s)
	}

	// Every one wakes for a request, then goes quiet again: its reader's
	// goroutine ends.
	for i, c := range clients {
		reply, _ := c.call(map[string]any{"id": i, "op": "list"})
		if reply["ok"] != true {
			t.Fatalf("client %d: list after a quiet spell: %v", i, reply)
		}
	}
	waitFor(t, 5*time.Second, "the readers of connections gone quiet to end", func() bool {
		g := perConn(scrape(t, p), "go_goroutines")
		return g < 1.05
	})

	// Closing them all leaves nothing behind.
	for _, c := range clients {
		c.conn.Close()
	}
	waitFor(t, 5*time.Second, "every session to end", func() bool {
		return scrape(t, p)["go_goroutines"] <= before["go_goroutines"]
	})
}

// waitFor polls cond every 50 ms until it holds, failing the test after
// limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
