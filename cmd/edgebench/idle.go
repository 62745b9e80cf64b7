package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// idleOpts configure the idle scenario.
type idleOpts struct {
	pid        int           // the server process whose memory is read
	settle     time.Duration // wait after opening before reading /proc
	metricsURL string        // Prometheus endpoint for go_goroutines ("" : none)
	proto      string        // subprotocol the connections speak
}

// runIdle opens connections up to each count in turn (counts ascending,
// connections kept from one step to the next) and reads the server's RSS
// after each step; every connection reads its hello, then only answers
// pings.
func runIdle(ctx context.Context, url, server string, counts []int, o idleOpts) (*Result, error) {
	res := &Result{Scenario: "idle", Server: server, Label: o.proto}
	time.Sleep(o.settle)
	base, err := procStatusKiB(o.pid, "VmRSS")
	if err != nil {
		return nil, err
	}
	baseG := metricGoroutines(ctx, o.metricsURL)
	var (
		mu      sync.Mutex
		clients []*wsClient
		wg      sync.WaitGroup
	)
	defer func() {
		mu.Lock()
		for _, c := range clients {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	for _, n := range counts {
		have := len(clients)
		if n <= have {
			continue
		}
		err := forEach(n-have, 64, func(int) error {
			c, err := dialWS(ctx, url, o.proto, 512)
			if err != nil {
				return err
			}
			c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := c.ReadMessage(); err != nil {
				c.Close()
				return fmt.Errorf("read hello: %w", err)
			}
			c.nc.SetReadDeadline(time.Time{})
			mu.Lock()
			clients = append(clients, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Answer pings until the connection is closed; bounded
				// by the connection's life (closed by the defer above).
				for i := 0; i < 1<<30; i++ {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			}()
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("open idle connection %d of %d: %w", len(clients)+1, n, err)
		}
		time.Sleep(o.settle)
		rss, err := procStatusKiB(o.pid, "VmRSS")
		if err != nil {
			return nil, err
		}
		res.Points = append(res.Points, Point{
			N: n, RSSKiB: rss, BaseRSSKiB: base, BaseGoroutines: baseG,
			Threads: procThreads(o.pid), Goroutines: metricGoroutines(ctx, o.metricsURL),
		})
	}
	return res, nil
}
