package gateway

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// writesConn is a net.Conn that records what is written and in how many
// Write calls.
type writesConn struct {
	net.Conn // nil: only the methods below are used
	mu       sync.Mutex
	buf      bytes.Buffer
	writes   int
}

func (c *writesConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}
func (c *writesConn) SetWriteDeadline(time.Time) error { return nil }
func (c *writesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *writesConn) Close() error                     { return nil }

func (c *writesConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// frames parses what was written into (opcode, payload) pairs.
func (c *writesConn) frames(t *testing.T) []ws.Frame {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	r := bufio.NewReader(bytes.NewReader(c.buf.Bytes()))
	var fs []ws.Frame
	for {
		f, err := ws.ReadFrame(r)
		if err == io.EOF {
			return fs
		}
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
}

func testSample(seq uint64, isErr bool) *sample {
	s := &sample{seq: seq, isErr: isErr}
	s.refs.Store(1)
	if isErr {
		s.text = []byte(`{"event":"sensor_error"}`)
	} else {
		protocol.PutRecord(s.record[:], seq, 1, 2, 0)
		s.text = []byte(`{"event":"sample"}`)
	}
	return s
}

// A flush writes control messages, the dropped notice and the samples
// (runs of binary records batched) in that order, each message its own
// frame as before, all in one write.
func TestFlushCoalescesIntoOneWrite(t *testing.T) {
	nc := &writesConn{}
	o := newOutbox()
	w := &writer{c: wsconn.New(nc, nil, wsconn.Config{}), o: o}
	o.ring = make([]queued, 8)
	for _, m := range []string{`{"id":1}`, `{"event":"state","n":1}`, `{"event":"state","n":2}`} {
		o.pushCtrl(ctrlMsg{data: []byte(m)})
	}
	o.mu.Lock()
	o.dropped = 2
	o.pushSampleLocked(testSample(1, false), true)
	o.pushSampleLocked(testSample(2, false), true)
	o.pushSampleLocked(testSample(0, true), true) // errors go as JSON even to binary subscribers
	o.pushSampleLocked(testSample(3, false), true)
	o.pushSampleLocked(testSample(4, false), false)
	o.mu.Unlock()
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if nc.count() != 1 {
		t.Fatalf("flush took %d writes, want 1", nc.count())
	}
	want := []struct {
		op  ws.OpCode
		len int
		txt string
	}{
		{ws.OpText, 0, `{"id":1}`},
		{ws.OpText, 0, `{"event":"state","n":1}`},
		{ws.OpText, 0, `{"event":"state","n":2}`},
		{ws.OpText, 0, `{"event":"dropped","count":2}`},
		{ws.OpBinary, 2 * protocol.RecordSize, ""},
		{ws.OpText, 0, `{"event":"sensor_error"}`},
		{ws.OpBinary, protocol.RecordSize, ""},
		{ws.OpText, 0, `{"event":"sample"}`},
	}
	fs := nc.frames(t)
	if len(fs) != len(want) {
		t.Fatalf("%d frames, want %d", len(fs), len(want))
	}
	for i, f := range fs {
		if !f.Header.Fin || f.Header.OpCode != want[i].op ||
			(want[i].txt != "" && string(f.Payload) != want[i].txt) || (want[i].len > 0 && len(f.Payload) != want[i].len) {
			t.Errorf("frame %d: %v fin=%v %q", i, f.Header.OpCode, f.Header.Fin, f.Payload)
		}
	}
}

// While the read loop handles a request nothing is flushed; uncork then
// writes the reply and the events it caused in one write, from the calling
// goroutine, and no flusher is left running.
func TestCorkWritesOnceAfterTheRequest(t *testing.T) {
	nc := &writesConn{}
	o := newOutbox()
	w := &writer{c: wsconn.New(nc, nil, wsconn.Config{}), o: o}
	o.start(w)
	o.cork()
	o.pushCtrl(ctrlMsg{data: []byte(`{"event":"state"}`)})
	o.pushReply(func(b []byte) []byte { return append(b, `{"id":1,"ok":true}`...) })
	o.mu.Lock()
	flushing := o.flushing
	o.mu.Unlock()
	if flushing || nc.count() != 0 {
		t.Fatalf("flushing %v, %d writes while corked", flushing, nc.count())
	}
	o.uncork()
	if nc.count() != 1 {
		t.Fatalf("%d writes after uncork, want 1", nc.count())
	}
	o.mu.Lock()
	flushing = o.flushing
	o.mu.Unlock()
	if flushing {
		t.Fatal("a flusher still claims the outbox with nothing queued")
	}
	if fs := nc.frames(t); len(fs) != 2 || string(fs[0].Payload) != `{"event":"state"}` || string(fs[1].Payload) != `{"id":1,"ok":true}` {
		t.Fatalf("frames %v", fs)
	}
	o.stop()
}

// An idle connection costs one goroutine (its read loop): no writer waits
// on it, and the handler goroutine of the HTTP server is gone.
func TestIdleConnectionsHoldOneGoroutineEach(t *testing.T) {
	_, addr, _ := startTestGateway(t, `
gateway:
  limits: {max_connections: 1000, max_connections_per_ip: 1000}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	const n = 200
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()
	for i := 0; i < n; i++ {
		conn, br, _, err := ws.Dialer{Protocols: []string{"relay-control.v1"}, Timeout: 5 * time.Second}.Dial(context.Background(), "ws://"+addr+"/ws")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var r io.Reader = conn
		if br != nil {
			r = io.MultiReader(br, conn)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := wsutil.ReadServerText(struct {
			io.Reader
			io.Writer
		}{r, conn}); err != nil { // hello
			t.Fatal(err)
		}
	}
	// Flushers of the hellos end on their own; wait for them, bounded.
	deadline := time.Now().Add(5 * time.Second)
	for {
		per := float64(runtime.NumGoroutine()-base) / n
		if per <= 1.01 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%.2f goroutines per idle connection, want 1", per)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
