package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// recordSize is the binary sample record of sensor-stream.v1:
// u64 seq, i64 ts_unix_ns, f64 value, u32 index, u32 flags (little-endian).
const recordSize = 32

// fanoutStats is what one subscriber saw inside the measurement window.
type fanoutStats struct {
	samples uint64
	gaps    uint64
	dropped uint64
	lastSeq uint64
}

// window is the measurement window, published to the readers once every
// subscriber is connected (until then nothing is counted).
type window struct{ start, end atomic.Int64 }

func (w *window) in(ns int64) bool { return ns >= w.start.Load() && ns < w.end.Load() }

// shardedHist lets many readers record latencies with little contention.
type shardedHist struct {
	shards [16]histShard
}

type histShard struct {
	mu sync.Mutex
	h  Hist
	_  [64]byte // keep shards' locks off each other's cache lines
}

func (s *shardedHist) merged() *Hist {
	var all Hist
	for i := range s.shards {
		all.Merge(&s.shards[i].h)
	}
	return &all
}

// runFanout subscribes n clients to sensor (binary format, ns timestamps)
// and measures, for each n, delivered samples/s, sample-to-receive latency
// and losses (seq gaps and the server's dropped notices). Seq gaps are
// meaningful when the server samples this one sensor only, as the bench
// configuration does (seq is gateway-wide).
func runFanout(ctx context.Context, url, server, label, sensor string, rate float64, counts []int, o loadOpts) (*Result, error) {
	res := &Result{Scenario: "fanout", Server: server, Label: label}
	for _, n := range counts {
		p, err := fanoutPoint(ctx, url, sensor, rate, n, o)
		if err != nil {
			return nil, fmt.Errorf("fanout with %d subscribers: %w", n, err)
		}
		res.Points = append(res.Points, p)
		time.Sleep(time.Second) // let the server tear the sessions down
	}
	return res, nil
}

func fanoutPoint(ctx context.Context, url, sensor string, rate float64, n int, o loadOpts) (Point, error) {
	var win window
	win.start.Store(math.MaxInt64)
	win.end.Store(math.MaxInt64)
	var hists shardedHist
	stats := make([]fanoutStats, n)
	clients := make([]*wsClient, n)
	var wg sync.WaitGroup
	var readErrs atomic.Uint64
	sub := []byte(`{"id":1,"op":"subscribe","sensors":["` + sensor + `"],"format":"binary"}`)
	connectBy := time.Now().Add(2*time.Minute + o.warmup + o.duration)
	err := forEach(n, 32, func(i int) error {
		c, err := dialWS(ctx, url, "sensor-stream.v1", 4096)
		if err != nil {
			return err
		}
		clients[i] = c
		c.nc.SetReadDeadline(connectBy)
		if _, _, err := c.ReadMessage(); err != nil {
			return fmt.Errorf("read hello: %w", err)
		}
		if err := c.WriteText(sub); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !readSamples(c, &stats[i], &hists.shards[i%len(hists.shards)], &win, o.maxIter) {
				readErrs.Add(1)
			}
		}()
		return nil
	})
	start := time.Now().Add(o.warmup)
	end := start.Add(o.duration)
	win.end.Store(end.UnixNano())
	win.start.Store(start.UnixNano())
	if err == nil {
		select {
		case <-time.After(time.Until(end)):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	for _, c := range clients {
		if c != nil {
			c.Close()
		}
	}
	wg.Wait()
	if err != nil {
		return Point{}, err
	}
	h := hists.merged()
	var p Point
	p.N, p.RateHz, p.DurationS, p.WarmupS = n, rate, o.duration.Seconds(), o.warmup.Seconds()
	p.Latency, p.Dist = h.Summarize(), h.Distribution()
	var delivered uint64
	for i := range stats {
		delivered += stats[i].samples
		p.SeqGaps += stats[i].gaps
		p.Dropped += stats[i].dropped
	}
	p.Throughput = float64(delivered) / o.duration.Seconds()
	p.Offered = rate * float64(n)
	p.Errors = readErrs.Load()
	return p, nil
}

// readSamples reads one subscriber's stream until the connection is
// closed; false when it ended inside the measurement window for another
// reason (the server dropped it, or a malformed message).
func readSamples(c *wsClient, st *fanoutStats, sh *histShard, win *window, maxMsgs int) bool {
	for m := 0; m < maxMsgs; m++ {
		op, msg, err := c.ReadMessage()
		now := time.Now().UnixNano()
		if err != nil {
			return now >= win.end.Load()
		}
		in := win.in(now)
		switch op {
		case ws.OpBinary:
			if len(msg)%recordSize != 0 {
				return false
			}
			if in {
				sh.mu.Lock()
			}
			for off := 0; off < len(msg); off += recordSize {
				r := msg[off : off+recordSize]
				seq := binary.LittleEndian.Uint64(r[0:])
				ts := int64(binary.LittleEndian.Uint64(r[8:]))
				if in {
					st.samples++
					sh.h.Record(now - ts)
					if st.lastSeq != 0 && seq > st.lastSeq+1 {
						st.gaps += seq - st.lastSeq - 1
					}
				}
				if seq > st.lastSeq {
					st.lastSeq = seq
				}
			}
			if in {
				sh.mu.Unlock()
			}
		case ws.OpText:
			if cnt, ok := droppedCount(msg); ok && in {
				st.dropped += cnt
			}
		}
	}
	return true
}

// droppedCount recognises {"event":"dropped","count":N}.
func droppedCount(msg []byte) (uint64, bool) {
	const prefix = `{"event":"dropped","count":`
	if !bytes.HasPrefix(msg, []byte(prefix)) {
		return 0, false
	}
	rest := bytes.TrimSuffix(msg[len(prefix):], []byte("}"))
	n, err := strconv.ParseUint(string(rest), 10, 64)
	return n, err == nil
}
