package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gobwas/ws"

	"github.com/edgegate/edgegate/protocol"
)

// watchOptions are watch's own flags.
type watchOptions struct {
	count    int
	dur      time.Duration
	maxHz    float64
	binary   bool
	patterns []string
}

func (w *watchOptions) register(fs *flag.FlagSet) {
	fs.IntVar(&w.count, "count", 0, "stop after N samples (0: no limit)")
	fs.DurationVar(&w.dur, "for", 0, "stop after this long (0: until interrupted)")
	fs.Float64Var(&w.maxHz, "max-hz", 0, "at most this many samples per second per sensor (0: all)")
	fs.BoolVar(&w.binary, "binary", false, "receive binary records instead of JSON")
}

// watchIdle drops a watch whose gateway sends nothing, not even a pong to
// the pings edgectl sends every watchPing, for this long.
const (
	watchPing = 10 * time.Second
	watchIdle = 3 * watchPing
)

type sensorInfo struct {
	Name  string `json:"name"`
	Unit  string `json:"unit"`
	Index int    `json:"index"`
}

// sample is a JSON sample of sensor-stream.v1, or an event.
type sample struct {
	Event   string   `json:"event"`
	Sensor  string   `json:"sensor"`
	Value   *float64 `json:"value"`
	Unit    string   `json:"unit"`
	TS      int64    `json:"ts"`
	Seq     uint64   `json:"seq"`
	Count   uint64   `json:"count"`
	Message string   `json:"message"`
}

// watcher prints what a subscription brings.
type watcher struct {
	o       *options
	w       *watchOptions
	stdout  io.Writer
	stderr  io.Writer
	byIndex map[uint32]sensorInfo
	seen    int // samples printed (the table's header comes with the first)
	done    func()
	records []protocol.Record
	buf     []byte
}

func cmdWatch(ctx context.Context, o *options, w *watchOptions, stdout, stderr io.Writer) error {
	switch {
	case w.count < 0:
		return usagef("--count must not be negative, got %d", w.count)
	case w.dur < 0:
		return usagef("--for must not be negative, got %v", w.dur)
	case w.maxHz < 0 || math.IsNaN(w.maxHz) || math.IsInf(w.maxHz, 0):
		return usagef("--max-hz must be 0 (every sample) or a positive number, got %v", w.maxHz)
	}
	patterns := w.patterns
	if len(patterns) == 0 {
		patterns = []string{"*"}
	}

	// end stops the stream: Ctrl-C, --for, or --count reached.
	end, stop := context.WithCancel(ctx)
	defer stop()
	if w.dur > 0 {
		var cancel context.CancelFunc
		end, cancel = context.WithTimeout(end, w.dur)
		defer cancel()
	}
	c, err := dial(ctx, o, protocol.SensorStreamV1, dialOptions{idle: watchIdle, end: end})
	if err != nil {
		return err
	}
	defer c.close()
	pingDone := make(chan struct{})
	pingStopped := make(chan struct{})
	go func() { // keep the connection alive and prove the gateway is
		defer close(pingStopped)
		t := time.NewTicker(watchPing)
		defer t.Stop()
		for {
			select {
			case <-pingDone:
				return
			case <-t.C:
				c.conn.Ping(nil)
			}
		}
	}()
	defer func() { close(pingDone); <-pingStopped }()

	var hello struct {
		Sensors []sensorInfo `json:"sensors"`
	}
	json.Unmarshal(c.hello, &hello)
	wt := &watcher{o: o, w: w, stdout: stdout, stderr: stderr, byIndex: map[uint32]sensorInfo{}, done: stop}
	for _, s := range hello.Sensors {
		wt.byIndex[uint32(s.Index)] = s
	}

	req := map[string]any{"op": protocol.OpSubscribe, "sensors": patterns}
	if w.maxHz > 0 {
		req["max_hz"] = w.maxHz
	}
	if w.binary {
		req["format"] = protocol.FormatBinary
	}
	rep, err := c.call(req, wt.handle)
	if err != nil {
		if errors.Is(err, errLocalClose) {
			return nil
		}
		var ge *gatewayError
		if errors.As(err, &ge) {
			if o.json {
				fmt.Fprintf(stdout, "%s\n", ge.raw)
			}
			msg := fmt.Sprintf("the gateway refused: %s: %s", ge.code, ge.message)
			if ge.code == protocol.CodeUnknownSensor {
				msg += "\nThe gateway's sensors: " + sensorNames(hello.Sensors)
			}
			return &exitError{exitGateway, msg}
		}
		return err
	}
	var names []string
	json.Unmarshal(rep.Sensors, &names)
	if len(names) == 0 {
		return &exitError{exitGateway, fmt.Sprintf("no sensor matches %s; the gateway's sensors: %s", strings.Join(patterns, " "), sensorNames(hello.Sensors))}
	}
	if end.Err() != nil { // --count reached by samples that came before the reply
		return nil
	}
	for {
		op, msg, err := c.read(time.Time{})
		if err != nil {
			if errors.Is(err, errLocalClose) {
				return nil
			}
			return err
		}
		if err := wt.handle(op, msg); err != nil {
			return err
		}
	}
}

func sensorNames(ss []sensorInfo) string {
	if len(ss) == 0 {
		return "(none)"
	}
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// handle prints one message of the stream. After --count samples it ends
// the stream (and ignores what still comes before the close).
func (wt *watcher) handle(op ws.OpCode, msg []byte) error {
	if wt.w.count > 0 && wt.seen >= wt.w.count {
		return nil
	}
	switch op {
	case ws.OpBinary:
		recs, ok := protocol.DecodeRecords(msg, wt.records[:0])
		wt.records = recs
		if !ok {
			fmt.Fprintf(wt.stderr, "edgectl: ignoring a binary message of %d bytes (not a whole number of %d-byte records)\n", len(msg), protocol.RecordSize)
			return nil
		}
		for _, r := range recs {
			s, known := wt.byIndex[r.Index]
			if !known {
				s = sensorInfo{Name: "#" + strconv.FormatUint(uint64(r.Index), 10)}
			}
			wt.sample(s.Name, s.Unit, r.Value, r.TsNanos/int64(time.Millisecond), r.Seq, nil)
			if wt.w.count > 0 && wt.seen >= wt.w.count {
				break
			}
		}
		return nil
	case ws.OpText:
	default:
		return nil
	}
	var s sample
	if err := json.Unmarshal(msg, &s); err != nil {
		fmt.Fprintf(wt.stderr, "edgectl: ignoring a message that is not JSON: %.200q\n", msg)
		return nil
	}
	switch s.Event {
	case "":
		if s.Sensor == "" || s.Value == nil {
			return nil // a reply to a request we did not send: not ours
		}
		wt.sample(s.Sensor, s.Unit, *s.Value, s.TS, s.Seq, msg)
	case "dropped":
		if wt.o.json {
			fmt.Fprintf(wt.stdout, "%s\n", msg)
		} else {
			fmt.Fprintf(wt.stderr, "edgectl: the gateway dropped %d samples: this client did not keep up (try --max-hz, or a faster link)\n", s.Count)
		}
	case "sensor_error":
		if wt.o.json {
			fmt.Fprintf(wt.stdout, "%s\n", msg)
		} else {
			fmt.Fprintf(wt.stderr, "edgectl: %s %s: read failed: %s\n", clock(s.TS), s.Sensor, s.Message)
		}
	}
	return nil
}

// sample prints one sample; raw is its JSON as received (nil for a binary
// record, which is printed in the JSON sample's shape).
func (wt *watcher) sample(name, unit string, value float64, tsMillis int64, seq uint64, raw []byte) {
	wt.seen++
	if wt.o.json {
		if raw == nil {
			if math.IsNaN(value) || math.IsInf(value, 0) {
				raw = fmt.Appendf(wt.buf[:0], `{"sensor":%s,"value":null,"unit":%s,"ts":%d,"seq":%d}`,
					protocol.AppendString(nil, name), protocol.AppendString(nil, unit), tsMillis, seq)
			} else {
				raw = protocol.AppendSample(wt.buf[:0], name, unit, value, tsMillis, seq)
			}
			wt.buf = raw
		}
		fmt.Fprintf(wt.stdout, "%s\n", raw)
	} else {
		if wt.seen == 1 {
			fmt.Fprintf(wt.stdout, "%-12s  %-28s %14s  %s\n", "TIME", "SENSOR", "VALUE", "UNIT")
		}
		fmt.Fprintf(wt.stdout, "%-12s  %-28s %14s  %s\n", clock(tsMillis), name, strconv.FormatFloat(value, 'g', 6, 64), unit)
	}
	if wt.w.count > 0 && wt.seen >= wt.w.count {
		wt.done()
	}
}

func clock(ms int64) string {
	return time.UnixMilli(ms).Local().Format("15:04:05.000")
}
