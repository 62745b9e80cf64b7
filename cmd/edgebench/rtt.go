package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// loadOpts are the knobs shared by the round-trip scenarios.
type loadOpts struct {
	warmup, duration time.Duration
	maxIter          int // per client: bounds every loop by count as well as time
}

// runClients runs one round-trip loop per client until the measurement
// window ends (or maxIter), recording only round trips that started
// inside the window, and returns the merged histogram and error count.
func runClients(n int, o loadOpts, deadline func(t time.Time) error,
	roundTrip func(i, iter int) (ok bool, err error)) (*Hist, uint64, float64, int, error) {
	start := time.Now().Add(o.warmup)
	end := start.Add(o.duration)
	if err := deadline(end.Add(10 * time.Second)); err != nil {
		return nil, 0, 0, 0, err
	}
	hists := make([]Hist, n)
	errs := make([]uint64, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	lost := 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &hists[i]
			for iter := 0; iter < o.maxIter; iter++ {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				ok, err := roundTrip(i, iter)
				rt := time.Since(t0)
				if err != nil {
					// The server dropped this client (e.g. 1008: its
					// queue overflowed): counted, and the others go on.
					mu.Lock()
					lost++
					if first == nil {
						first = fmt.Errorf("client %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				if !t0.Before(start) {
					h.RecordDuration(rt)
					if !ok {
						errs[i]++
					}
				}
			}
		}()
	}
	wg.Wait()
	var all Hist
	var nerr uint64
	for i := range hists {
		all.Merge(&hists[i])
		nerr += errs[i]
	}
	if lost < n {
		first = nil // some clients lost; reported by the caller as disconnects
	}
	return &all, nerr, o.duration.Seconds(), lost, first
}

func point(n int, h *Hist, secs float64, nerr uint64) Point {
	return Point{
		N: n, DurationS: secs, Latency: h.Summarize(), CDF: h.CDF(), Dist: h.Distribution(),
		Throughput: float64(h.Count()) / secs, Errors: nerr,
	}
}

// echoFrame is the size of a floor round trip: about a set request.
const echoFrame = 64

// runFloor measures raw TCP echo round trips of echoFrame bytes against
// the echo server at addr, named server in the result (echoProcess or
// echoInproc). Each client writes a message and reads it back, as an rtt
// client writes a request and reads its reply, under the same loadOpts.
func runFloor(ctx context.Context, addr, server string, counts []int, o loadOpts) (*Result, error) {
	res := &Result{Scenario: "floor", Server: server}
	for _, n := range counts {
		conns := make([]net.Conn, n)
		err := forEach(n, 32, func(i int) error {
			c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr)
			conns[i] = c
			return err
		})
		closeAll := func() {
			for _, c := range conns {
				if c != nil {
					c.Close()
				}
			}
		}
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("connect to the echo server at %s: %w", addr, err)
		}
		bufs := make([][2 * echoFrame]byte, n)
		h, nerr, secs, lost, err := runClients(n, o, func(t time.Time) error {
			for _, c := range conns {
				c.SetDeadline(t)
			}
			return nil
		}, func(i, iter int) (bool, error) {
			b := bufs[i][:]
			b[0] = byte(iter)
			if _, err := conns[i].Write(b[:echoFrame]); err != nil {
				return false, err
			}
			_, err := io.ReadFull(conns[i], b[echoFrame:])
			return err == nil && b[echoFrame] == byte(iter), err
		})
		closeAll()
		if err != nil {
			return nil, err
		}
		p := point(n, h, secs, nerr)
		p.Disconnects = lost
		res.Points = append(res.Points, p)
	}
	return res, nil
}

// runRTT measures relay-control set/ack round trips: each client sets its
// relay (client i uses relays[i % len]) alternately on and off and waits
// for the reply with its id, skipping the state events of everyone's sets.
func runRTT(ctx context.Context, url, server string, counts []int, relays []string, o loadOpts) (*Result, error) {
	res := &Result{Scenario: "rtt", Server: server}
	for _, n := range counts {
		clients := make([]*wsClient, n)
		err := forEach(n, 32, func(i int) error {
			c, err := dialWS(ctx, url, "relay-control.v1", 4096)
			if err != nil {
				return err
			}
			clients[i] = c
			c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := c.ReadMessage(); err != nil { // hello
				return fmt.Errorf("read hello: %w", err)
			}
			return nil
		})
		closeAll := func() {
			for _, c := range clients {
				if c != nil {
					c.Close()
				}
			}
		}
		if err != nil {
			closeAll()
			return nil, err
		}
		reqs := make([][]byte, n)
		h, nerr, secs, lost, err := runClients(n, o, func(t time.Time) error {
			for _, c := range clients {
				c.nc.SetDeadline(t)
			}
			return nil
		}, func(i, iter int) (bool, error) {
			c := clients[i]
			reqs[i] = appendSetRequest(reqs[i][:0], iter, relays[i%len(relays)], iter%2 == 0)
			if err := c.WriteText(reqs[i]); err != nil {
				return false, err
			}
			for skipped := 0; skipped < 1_000_000; skipped++ {
				op, msg, err := c.ReadMessage()
				if err != nil {
					return false, err
				}
				if op != ws.OpText {
					continue
				}
				id, ok, isReply := parseReply(msg)
				if isReply && id == int64(iter) {
					return ok, nil
				}
			}
			return false, errors.New("no reply among a million messages")
		})
		closeAll()
		if err != nil {
			return nil, err
		}
		p := point(n, h, secs, nerr)
		p.Disconnects = lost
		res.Points = append(res.Points, p)
	}
	return res, nil
}

func appendSetRequest(b []byte, id int, relay string, on bool) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, int64(id), 10)
	b = append(b, `,"op":"set","relay":"`...)
	b = append(b, relay...)
	if on {
		b = append(b, `","state":"on"}`...)
	} else {
		b = append(b, `","state":"off"}`...)
	}
	return b
}

// parseReply recognises a reply by its leading numeric id, as both servers
// write it: {"id":7,"ok":true,...}. isReply is false for events.
func parseReply(msg []byte) (id int64, ok, isReply bool) {
	const prefix = `{"id":`
	if !bytes.HasPrefix(msg, []byte(prefix)) {
		return 0, false, false
	}
	rest := msg[len(prefix):]
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		id = id*10 + int64(rest[i]-'0')
		i++
	}
	if i == 0 || i >= len(rest) || rest[i] != ',' {
		return 0, false, false
	}
	return id, bytes.HasPrefix(rest[i+1:], []byte(`"ok":true`)), true
}
