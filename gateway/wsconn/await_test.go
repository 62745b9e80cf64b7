package wsconn

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// awaitPair is a server Conn over loopback TCP and the raw client side.
func awaitPair(t *testing.T, cfg Config) (*Conn, net.Conn) {
	t.Helper()
	a, b := tcpPair(t)
	b.SetDeadline(time.Now().Add(10 * time.Second))
	c := New(a, nil, cfg)
	if !c.CanAwait() {
		t.Fatal("a server Conn over TCP cannot be awaited")
	}
	return c, b
}

// awaitAsync runs c.Await in the background and reports its result.
func awaitAsync(c *Conn) <-chan error {
	done := make(chan error, 1)
	go func() { done <- c.Await() }()
	return done
}

// A quiet connection gives its read buffers back; Await waits for the
// peer's next bytes without reading them, and Next then reads them.
func TestQuietConnectionLetsGoOfItsBuffers(t *testing.T) {
	c, client := awaitPair(t, Config{IdleTimeout: 5 * time.Second})
	r := bufio.NewReader(client)
	if c.br != nil {
		t.Fatal("a new connection took read buffers before it read anything")
	}
	send(t, client, txt("one", true))
	if op, p, err := c.Next(50 * time.Millisecond); err != nil || op != ws.OpText || string(p) != "one" {
		t.Fatalf("Next: %v %q %v", op, p, err)
	}
	if c.br == nil {
		t.Fatal("no read buffer while reading")
	}
	start := time.Now()
	if op, p, err := c.Next(50 * time.Millisecond); op != 0 || p != nil || err != nil {
		t.Fatalf("Next on a quiet peer: %v %q %v, want op 0 and no error", op, p, err)
	}
	if el := time.Since(start); el < 40*time.Millisecond || el > 2*time.Second {
		t.Fatalf("Next returned quiet after %v, want about 50ms", el)
	}
	if c.br != nil || c.msg != nil {
		t.Fatal("a quiet connection still holds its read buffers")
	}

	// Await blocks until the peer sends, and reads nothing.
	done := awaitAsync(c)
	select {
	case err := <-done:
		t.Fatalf("Await returned %v before the peer sent anything", err)
	case <-time.After(100 * time.Millisecond):
	}
	send(t, client, txt("two", true))
	if err := <-done; err != nil {
		t.Fatalf("Await: %v", err)
	}
	if c.br != nil {
		t.Fatal("Await took read buffers")
	}
	if op, p, err := c.Next(50 * time.Millisecond); err != nil || op != ws.OpText || string(p) != "two" {
		t.Fatalf("Next after Await: %v %q %v", op, p, err)
	}

	// A ping wakes it too: Next answers it and, with nothing following,
	// reports quiet at once, without waiting for quiet to pass.
	if op, _, err := c.Next(20 * time.Millisecond); op != 0 || err != nil {
		t.Fatalf("Next: %v %v", op, err)
	}
	done = awaitAsync(c)
	send(t, client, frame{op: ws.OpPing, fin: true, payload: []byte("hb")})
	if err := <-done; err != nil {
		t.Fatalf("Await: %v", err)
	}
	start = time.Now()
	if op, _, err := c.Next(time.Hour); op != 0 || err != nil {
		t.Fatalf("Next after a ping: %v %v, want quiet", op, err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Next took %v to report quiet after a lone ping", el)
	}
	if c.br != nil {
		t.Fatal("still holding read buffers after a lone ping")
	}
	if h, p := recv(t, r); h.OpCode != ws.OpPong || string(p) != "hb" {
		t.Fatalf("got %v %q, want the pong", h.OpCode, p)
	}
}

// The heartbeat timeout runs from the last frame, whether the connection
// is being read or awaited.
func TestAwaitHeartbeatTimeout(t *testing.T) {
	c, client := awaitPair(t, Config{IdleTimeout: 300 * time.Millisecond})
	send(t, client, txt("last", true))
	last := time.Now()
	if op, _, err := c.Next(100 * time.Millisecond); op != ws.OpText || err != nil {
		t.Fatalf("Next: %v %v", op, err)
	}
	if op, _, err := c.Next(100 * time.Millisecond); op != 0 || err != nil {
		t.Fatalf("Next: %v %v, want quiet", op, err)
	}
	err := c.Await()
	el := time.Since(last)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Await ended with %v, want the heartbeat timeout", err)
	}
	if el < 250*time.Millisecond || el > 3*time.Second {
		t.Fatalf("dropped %v after the last frame, want about 300ms", el)
	}
	wantClose(t, bufio.NewReader(client), ws.StatusGoingAway)

	// A timeout shorter than Next's wait is still the heartbeat's.
	c, client = awaitPair(t, Config{IdleTimeout: 100 * time.Millisecond})
	if _, _, err := c.Next(time.Hour); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Next ended with %v, want the heartbeat timeout", err)
	}
	wantClose(t, bufio.NewReader(client), ws.StatusGoingAway)
}

// A Close while the connection is awaited: the peer's answer wakes it, and
// Next completes the closing handshake.
func TestAwaitCloseHandshake(t *testing.T) {
	c, client := awaitPair(t, Config{IdleTimeout: 5 * time.Second})
	done := awaitAsync(c)
	time.Sleep(20 * time.Millisecond)
	if err := c.Close(ws.StatusGoingAway, "shutting down"); err != nil {
		t.Fatal(err)
	}
	wantClose(t, bufio.NewReader(client), ws.StatusGoingAway)
	send(t, client, frame{op: ws.OpClose, fin: true, payload: closeBody(ws.StatusGoingAway, "")})
	if err := <-done; err != nil {
		t.Fatalf("Await: %v", err)
	}
	var ce *CloseError
	if _, _, err := c.Next(time.Second); !errors.As(err, &ce) || ce.Code != ws.StatusGoingAway || ce.Remote {
		t.Fatalf("Next ended with %v, want our close", err)
	}
}

// A peer that never answers our close is dropped after the linger.
func TestAwaitCloseLingerRunsOut(t *testing.T) {
	c, client := awaitPair(t, Config{IdleTimeout: time.Minute})
	if err := c.Close(ws.StatusGoingAway, "bye"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := c.Await()
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != ws.StatusGoingAway {
		t.Fatalf("Await ended with %v, want our close", err)
	}
	if el := time.Since(start); el < closeLinger/2 || el > 3*closeLinger {
		t.Fatalf("dropped after %v, want about %v", el, closeLinger)
	}
	r := bufio.NewReader(client)
	wantClose(t, r, ws.StatusGoingAway)
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("the TCP connection is still open")
	}
}

// CloseNow from another goroutine wakes Await; Next reports the end.
func TestAwaitCloseNow(t *testing.T) {
	c, _ := awaitPair(t, Config{})
	done := awaitAsync(c)
	time.Sleep(20 * time.Millisecond)
	c.CloseNow()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Await: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Await still blocked 5 s after CloseNow")
	}
	if _, _, err := c.Next(time.Second); err == nil {
		t.Fatal("Next read from a closed connection")
	}
}

// Bytes the HTTP server read past the handshake are read first, and its
// large reader is not kept once the connection goes quiet.
func TestAwaitWithBufferedHandshakeReader(t *testing.T) {
	a, client := tcpPair(t)
	send(t, client, txt("early", true))
	br := bufio.NewReaderSize(a, 4096)
	if _, err := br.Peek(1); err != nil {
		t.Fatal(err)
	}
	c := New(a, br, Config{})
	if err := c.Await(); err != nil {
		t.Fatal(err)
	}
	if c.br != br {
		t.Fatal("Await dropped a reader that holds unread bytes")
	}
	if op, p, err := c.Next(20 * time.Millisecond); err != nil || op != ws.OpText || string(p) != "early" {
		t.Fatalf("Next: %v %q %v", op, p, err)
	}
	if op, _, err := c.Next(20 * time.Millisecond); op != 0 || err != nil {
		t.Fatalf("Next: %v %v, want quiet", op, err)
	}
	send(t, client, txt("later", true))
	if err := c.Await(); err != nil {
		t.Fatal(err)
	}
	if op, p, err := c.Next(20 * time.Millisecond); err != nil || string(p) != "later" {
		t.Fatalf("Next: %v %q %v", op, p, err)
	}
	if c.br.Size() != readBufSize {
		t.Fatalf("reading through a %d-byte reader, want a pooled %d-byte one", c.br.Size(), readBufSize)
	}
}

// Connections that cannot be awaited say so, and Await returns at once.
func TestCanAwait(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if c := New(a, nil, Config{}); c.CanAwait() || c.Await() != nil {
		t.Fatal("a net.Pipe connection claims it can be awaited")
	}
	x, _ := tcpPair(t)
	if c := New(x, nil, Config{Client: true}); c.CanAwait() {
		t.Fatal("a client Conn claims it can be awaited")
	}
}

// Waking a quiet connection and reading a message allocates nothing of
// ours: the buffers come back from the pool. (The net package makes one
// error when the quiet wait's deadline passes: at most one allocation per
// quiet spell, none while messages keep coming.)
func TestAwaitWakeAllocates(t *testing.T) {
	if raceDetector {
		t.Skip("allocations are not counted under the race detector (its sync.Pool drops items); scripts/test.sh runs this test without it")
	}
	c, client := awaitPair(t, Config{IdleTimeout: time.Minute})
	msg := strings.Repeat("x", 200)
	wire := frameBytes([]frame{txt(msg, true)})
	cycle := func() {
		if _, err := client.Write(wire); err != nil {
			t.Fatal(err)
		}
		if err := c.Await(); err != nil {
			t.Fatal(err)
		}
		if op, p, err := c.Next(time.Microsecond); err != nil || op != ws.OpText || string(p) != msg {
			t.Fatalf("Next: %v %d %v", op, len(p), err)
		}
		for {
			op, _, err := c.Next(time.Microsecond)
			if err != nil {
				t.Fatal(err)
			}
			if op == 0 {
				break
			}
		}
		if c.br != nil {
			t.Fatal("still holding read buffers")
		}
	}
	cycle()
	// A GC in the middle may empty the pool once; on average, only net's.
	if allocs := testing.AllocsPerRun(100, cycle); allocs >= 1.5 {
		t.Fatalf("%.2f allocations per wake, read and quiet wait, want only the deadline error net makes", allocs)
	}
}

// frameBuffered tells a frame that is wholly buffered (no read can block,
// no deadline needed) from one that is not, for every length encoding.
func TestFrameBuffered(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 300, 65535, 65536, 70000} {
		wire := frameBytes([]frame{binF(make([]byte, n), true)})
		for _, cut := range []int{0, 1, 2, len(wire) - n - 1, len(wire) - 1, len(wire)} {
			if cut < 0 {
				continue
			}
			c := &Conn{br: bufio.NewReaderSize(bytes.NewReader(wire[:cut]), len(wire)+16)}
			c.br.Peek(cut) // buffer what there is
			if got, want := c.frameBuffered(), cut == len(wire); got != want {
				t.Errorf("payload %d, %d of %d bytes buffered: frameBuffered %v, want %v", n, cut, len(wire), got, want)
			}
		}
	}
}
