package wsconn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// echoServer runs a Conn over a loopback TCP pair whose server side echoes
// every message. It returns the raw client side and a channel that yields
// the error that ended the server's read loop, then is closed.
//
// The server reads as the gateway does: it awaits input, then reads with
// Next until the client has been quiet for a millisecond, so that most
// frames in these tests arrive at a connection that has let go of its read
// buffers.
func echoServer(t *testing.T, cfg Config) (net.Conn, <-chan error) {
	return echoServerReading(t, cfg, echoParked)
}

// echoParked is echoServer's read loop.
func echoParked(c *Conn) error {
	for {
		if err := c.Await(); err != nil {
			return err
		}
		for {
			op, p, err := c.Next(time.Millisecond)
			if err == nil && op == 0 {
				break
			}
			if err == nil {
				err = c.WriteMessage(op, p)
			}
			if err != nil {
				return err
			}
		}
	}
}

// echoBlocking is a read loop with ReadMessage, which waits in place.
func echoBlocking(c *Conn) error {
	for {
		op, p, err := c.ReadMessage()
		if err == nil {
			err = c.WriteMessage(op, p)
		}
		if err != nil {
			return err
		}
	}
}

func echoServerReading(t *testing.T, cfg Config, loop func(*Conn) error) (net.Conn, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := New(nc, nil, cfg)
	ended := make(chan error, 1)
	go func() {
		ended <- loop(c)
		close(ended)
	}()
	t.Cleanup(func() { client.Close(); c.CloseNow(); <-ended })
	client.SetDeadline(time.Now().Add(5 * time.Second))
	return client, ended
}

// frame is one frame as a client would send it.
type frame struct {
	op      ws.OpCode
	fin     bool
	payload []byte
	rsv     byte
	noMask  bool
	length  int64 // declared length, when not len(payload)
}

func send(t *testing.T, c net.Conn, frames ...frame) {
	t.Helper()
	var b bytes.Buffer
	for _, f := range frames {
		h := ws.Header{Fin: f.fin, Rsv: f.rsv, OpCode: f.op, Length: int64(len(f.payload)), Masked: !f.noMask}
		if f.length != 0 {
			h.Length = f.length
		}
		p := append([]byte(nil), f.payload...)
		if h.Masked {
			h.Mask = ws.NewMask()
			ws.Cipher(p, h.Mask, 0)
		}
		if err := ws.WriteHeader(&b, h); err != nil {
			t.Fatal(err)
		}
		b.Write(p)
	}
	if _, err := c.Write(b.Bytes()); err != nil {
		t.Fatalf("client write: %v", err)
	}
}

// recv reads one frame from the server.
func recv(t *testing.T, r io.Reader) (ws.Header, []byte) {
	t.Helper()
	h, err := ws.ReadHeader(r)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	if h.Masked {
		t.Fatal("the server masked a frame")
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatalf("client read payload: %v", err)
	}
	return h, p
}

// wantClose reads frames until a close frame and checks its code.
func wantClose(t *testing.T, r io.Reader, code ws.StatusCode) {
	t.Helper()
	for {
		h, p := recv(t, r)
		if h.OpCode != ws.OpClose {
			continue
		}
		got := ws.StatusCode(0)
		if len(p) >= 2 {
			got, _ = ws.ParseCloseFrameData(p)
		}
		if got != code {
			t.Fatalf("close code %d (%q), want %d", got, p, code)
		}
		return
	}
}

func txt(s string, fin bool) frame { return frame{op: ws.OpText, fin: fin, payload: []byte(s)} }
func cont(s string, fin bool) frame {
	return frame{op: ws.OpContinuation, fin: fin, payload: []byte(s)}
}
func closeBody(code ws.StatusCode, reason string) []byte {
	return ws.NewCloseFrameBody(code, reason)
}

func TestMessagesAndControlFrames(t *testing.T) {
	c, _ := echoServer(t, Config{MaxMessageBytes: 1 << 20})
	r := bufio.NewReader(c)

	send(t, c, txt("hello", true))
	if h, p := recv(t, r); h.OpCode != ws.OpText || string(p) != "hello" || !h.Fin {
		t.Fatalf("echo %v %q", h, p)
	}
	// Fragments with a ping between them: the pong comes at once, the
	// message whole afterwards.
	send(t, c, txt("frag", false), frame{op: ws.OpPing, fin: true, payload: []byte("p1")}, cont("men", false), cont("ted", true))
	if h, p := recv(t, r); h.OpCode != ws.OpPong || string(p) != "p1" {
		t.Fatalf("want pong p1, got %v %q", h.OpCode, p)
	}
	if h, p := recv(t, r); h.OpCode != ws.OpText || string(p) != "fragmented" {
		t.Fatalf("reassembled %v %q", h.OpCode, p)
	}
	// Binary, empty, and a large message (more than one write buffer).
	big := bytes.Repeat([]byte("0123456789"), 10000)
	send(t, c, frame{op: ws.OpBinary, fin: true, payload: []byte{0, 1, 2}}, txt("", true), frame{op: ws.OpBinary, fin: true, payload: big})
	if h, p := recv(t, r); h.OpCode != ws.OpBinary || !bytes.Equal(p, []byte{0, 1, 2}) {
		t.Fatalf("binary %v %v", h.OpCode, p)
	}
	if h, p := recv(t, r); h.OpCode != ws.OpText || len(p) != 0 {
		t.Fatalf("empty %v %q", h.OpCode, p)
	}
	if _, p := recv(t, r); !bytes.Equal(p, big) {
		t.Fatalf("large message came back with %d bytes", len(p))
	}
	// Unsolicited pongs are absorbed.
	send(t, c, frame{op: ws.OpPong, fin: true, payload: []byte("x")}, txt("after", true))
	if _, p := recv(t, r); string(p) != "after" {
		t.Fatalf("got %q", p)
	}
}

// Valid UTF-8 split across fragments at every byte position is accepted.
func TestUTF8SplitAcrossFragments(t *testing.T) {
	c, _ := echoServer(t, Config{})
	r := bufio.NewReader(c)
	msg := "κόσμε °C 日本 🚰 ok"
	for i := 0; i <= len(msg); i++ {
		send(t, c, txt(msg[:i], false), cont(msg[i:], true))
		if _, p := recv(t, r); string(p) != msg {
			t.Fatalf("split at %d: %q", i, p)
		}
	}
}

func TestViolationsClose(t *testing.T) {
	cases := []struct {
		name   string
		frames []frame
		code   ws.StatusCode
	}{
		{"unmasked", []frame{{op: ws.OpText, fin: true, payload: []byte("x"), noMask: true}}, ws.StatusProtocolError},
		{"reserved bit", []frame{{op: ws.OpText, fin: true, payload: []byte("x"), rsv: 4}}, ws.StatusProtocolError},
		{"reserved opcode", []frame{{op: 3, fin: true}}, ws.StatusProtocolError},
		{"reserved control opcode", []frame{{op: 0xB, fin: true}}, ws.StatusProtocolError},
		{"continuation first", []frame{cont("x", true)}, ws.StatusProtocolError},
		{"new message mid-fragment", []frame{txt("a", false), txt("b", true)}, ws.StatusProtocolError},
		{"fragmented ping", []frame{{op: ws.OpPing, fin: false, payload: []byte("x")}}, ws.StatusProtocolError},
		{"ping over 125 bytes", []frame{{op: ws.OpPing, fin: true, payload: bytes.Repeat([]byte("x"), 126)}}, ws.StatusProtocolError},
		{"invalid UTF-8", []frame{txt("ok \xff", true)}, ws.StatusInvalidFramePayloadData},
		{"surrogate half", []frame{txt("\xed\xa0\x80", true)}, ws.StatusInvalidFramePayloadData},
		{"truncated sequence at end", []frame{txt("caf\xc3", true)}, ws.StatusInvalidFramePayloadData},
		{"too big in one frame", []frame{txt(string(bytes.Repeat([]byte("x"), 101)), true)}, ws.StatusMessageTooBig},
		{"too big in fragments", []frame{txt(string(bytes.Repeat([]byte("x"), 60)), false), cont(string(bytes.Repeat([]byte("x"), 60)), true)}, ws.StatusMessageTooBig},
		{"close with 1 byte", []frame{{op: ws.OpClose, fin: true, payload: []byte{3}}}, ws.StatusProtocolError},
		{"close code 1005", []frame{{op: ws.OpClose, fin: true, payload: closeBody(1005, "")}}, ws.StatusProtocolError},
		{"close code 999", []frame{{op: ws.OpClose, fin: true, payload: closeBody(999, "")}}, ws.StatusProtocolError},
		{"close code 2000", []frame{{op: ws.OpClose, fin: true, payload: closeBody(2000, "")}}, ws.StatusProtocolError},
		{"close reason not UTF-8", []frame{{op: ws.OpClose, fin: true, payload: closeBody(1000, "\xff")}}, ws.StatusInvalidFramePayloadData},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, ended := echoServer(t, Config{MaxMessageBytes: 100})
			send(t, c, tc.frames...)
			wantClose(t, bufio.NewReader(c), tc.code)
			send(t, c, frame{op: ws.OpClose, fin: true, payload: closeBody(tc.code, "")})
			var ce *CloseError
			if err := <-ended; !errors.As(err, &ce) || ce.Code != tc.code || ce.Remote {
				t.Fatalf("server ended with %v, want a local CloseError %d", err, tc.code)
			}
		})
	}
}

// Invalid UTF-8 fails at the fragment that carries it, before the message ends.
func TestUTF8FailsFast(t *testing.T) {
	c, _ := echoServer(t, Config{})
	send(t, c, txt("fine so far \xf4\x90", false)) // U+110000 and above do not exist
	wantClose(t, bufio.NewReader(c), ws.StatusInvalidFramePayloadData)
}

func TestPeerCloseIsEchoed(t *testing.T) {
	for _, code := range []ws.StatusCode{1000, 1001, 1003, 1007, 1011, 3000, 4999} {
		c, ended := echoServer(t, Config{})
		send(t, c, frame{op: ws.OpClose, fin: true, payload: closeBody(code, "bye")})
		wantClose(t, bufio.NewReader(c), code)
		var ce *CloseError
		if err := <-ended; !errors.As(err, &ce) || ce.Code != code || ce.Reason != "bye" || !ce.Remote {
			t.Fatalf("code %d: server ended with %v", code, err)
		}
	}
	// An empty close is answered with an empty close.
	c, _ := echoServer(t, Config{})
	send(t, c, frame{op: ws.OpClose, fin: true})
	if h, p := recv(t, bufio.NewReader(c)); h.OpCode != ws.OpClose || len(p) != 0 {
		t.Fatalf("want an empty close, got %v %q", h.OpCode, p)
	}
}

// Data that arrives after our close frame is discarded until the peer's
// close; writes after Close fail.
func TestLocalCloseHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := New(nc, nil, Config{})
	read := make(chan error, 1)
	go func() {
		_, _, err := c.ReadMessage()
		read <- err
	}()
	if err := c.Close(ws.StatusGoingAway, "shutting down"); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(ws.OpText, []byte("late")); err != ErrClosed {
		t.Fatalf("write after close: %v", err)
	}
	client.SetDeadline(time.Now().Add(5 * time.Second))
	wantClose(t, bufio.NewReader(client), ws.StatusGoingAway)
	send(t, client, txt("ignored", true), frame{op: ws.OpClose, fin: true, payload: closeBody(1001, "")})
	var ce *CloseError
	if err := <-read; !errors.As(err, &ce) || ce.Code != ws.StatusGoingAway || ce.Remote {
		t.Fatalf("read ended with %v", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	for name, loop := range map[string]func(*Conn) error{"parked": echoParked, "blocking": echoBlocking} {
		t.Run(name, func(t *testing.T) {
			c, ended := echoServerReading(t, Config{IdleTimeout: 150 * time.Millisecond}, loop)
			start := time.Now()
			wantClose(t, bufio.NewReader(c), ws.StatusGoingAway)
			var ne net.Error
			if err := <-ended; !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("ended with %v, want the timeout", err)
			}
			if el := time.Since(start); el < 100*time.Millisecond || el > 3*time.Second {
				t.Fatalf("dropped after %v, want about 150ms", el)
			}
		})
	}
}

// A peer past the heartbeat timeout that no longer reads either gets a
// second to take the close frame, not the write timeout: its reader ends
// soon after the timeout, even with the socket full.
func TestHeartbeatCloseGivesUpWithinASecond(t *testing.T) {
	a, client := tcpPair(t)
	a.(*net.TCPConn).SetWriteBuffer(4096)
	client.(*net.TCPConn).SetReadBuffer(4096)
	// Fill both sides' buffers (the client reads nothing) until a write
	// no longer goes through; what was written need not be frames.
	junk := bytes.Repeat([]byte("x"), 20000)
	for {
		a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := a.Write(junk); err != nil {
			break
		}
	}
	c := New(a, nil, Config{IdleTimeout: 200 * time.Millisecond, WriteTimeout: 30 * time.Second})
	start := time.Now()
	_, _, err := c.ReadMessage()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("ended with %v, want the heartbeat timeout", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("the reader ended %v after it began, want about 1.2 s (the timeout, then a second for the close frame)", el)
	}
	client.Close()
}

// The client side masks what it writes and refuses masked server frames.
func TestClientMode(t *testing.T) {
	a, b := tcpPair(t)
	srv := New(a, nil, Config{})
	cli := New(b, nil, Config{Client: true})
	payload := bytes.Repeat([]byte("m"), 3*smallWrite+7)
	go cli.WriteMessage(ws.OpBinary, payload)
	op, p, err := srv.ReadMessage()
	if err != nil || op != ws.OpBinary || !bytes.Equal(p, payload) {
		t.Fatalf("server read %v %d bytes %v", op, len(p), err)
	}
	go srv.WriteMessage(ws.OpText, []byte("reply"))
	if op, p, err := cli.ReadMessage(); err != nil || op != ws.OpText || string(p) != "reply" {
		t.Fatalf("client read %v %q %v", op, p, err)
	}
}

func tcpPair(t testing.TB) (net.Conn, net.Conn) { return connPair(t, "tcp", "127.0.0.1:0") }

// connPair is a connected pair of stream sockets: the accepted side first.
func connPair(t testing.TB, network, addr string) (net.Conn, net.Conn) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// BenchmarkReadWrite is one request and one reply over loopback: the
// steady state allocates nothing.
func BenchmarkReadWrite(b *testing.B) {
	x, y := tcpPair(b)
	srv := New(x, nil, Config{MaxMessageBytes: 65536, IdleTimeout: time.Minute, WriteTimeout: time.Minute})
	cli := New(y, nil, Config{Client: true, MaxMessageBytes: 65536})
	req := []byte(`{"id":7,"op":"set","relay":"pump","state":"on"}`)
	reply := []byte(`{"id":7,"ok":true,"relay":"pump","state":"on"}`)
	benchRoundTrips(b, srv, cli, req, reply)
}

// benchRoundTrips measures one request from cli and one reply from srv.
func benchRoundTrips(b *testing.B, srv, cli *Conn, req, reply []byte) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		if err := cli.WriteMessage(ws.OpText, req); err != nil {
			b.Fatal(err)
		}
		if _, _, err := srv.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		if err := srv.WriteMessage(ws.OpText, reply); err != nil {
			b.Fatal(err)
		}
		if _, _, err := cli.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

// A message of many small fragments grows its buffer by doubling, not by
// each fragment's length: 64 KiB in 1-byte fragments is a few allocations
// (and copies), not 65,536 of them.
func TestFragmentsGrowTheMessageByDoubling(t *testing.T) {
	a, client := tcpPair(t)
	c := New(a, nil, Config{MaxMessageBytes: 1 << 20})
	const n = 64 << 10
	fs := make([]frame, n)
	for i := range fs {
		fs[i] = cont("a", i == n-1)
	}
	fs[0].op = ws.OpText
	done := writeAsync(t, client, frameBytes(fs), 0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	op, p, err := c.ReadMessage()
	runtime.ReadMemStats(&after)
	<-done
	if err != nil || op != ws.OpText || len(p) != n {
		t.Fatalf("read %v %d bytes %v", op, len(p), err)
	}
	if allocs := after.Mallocs - before.Mallocs; allocs > 1000 {
		t.Fatalf("%d allocations to read one message of %d fragments", allocs, n)
	}
}

// BenchmarkWriteSample is what a flush of one sample costs: a small
// message written (with a write deadline) to a peer that keeps reading.
func BenchmarkWriteSample(b *testing.B) {
	benchSampleWrites(b, func(c *Conn, msgs []Message) error { return c.WriteMessages(msgs) })
}

// benchSampleWrites times write, of one small message, to a peer that
// keeps reading.
func benchSampleWrites(b *testing.B, write func(*Conn, []Message) error) {
	x, y := tcpPair(b)
	srv := New(x, nil, Config{WriteTimeout: 10 * time.Second})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		io.Copy(io.Discard, y)
	}()
	msgs := []Message{{Op: ws.OpText, Data: []byte(`{"sensor":"wave.value","seq":1234,"ts":"2026-11-26T15:00:00.000Z","v":0.5}`)}}
	b.ReportAllocs()
	for b.Loop() {
		if err := write(srv, msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	x.Close()
	y.Close()
	<-drained
}
