package wsconn

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/internal/wstest"
	"github.com/gobwas/ws"
)

// numbered is a text message of n bytes that begins with its number.
func numbered(i, n int) []byte {
	p := bytes.Repeat([]byte{'a' + byte(i%26)}, n)
	binary.BigEndian.PutUint32(p, uint32(i))
	return p
}

// readNumbered reads messages from the raw client side until it has want
// of them, and checks that they are messages 0..want-1 of size n, whole
// and in order.
func readNumbered(t *testing.T, client net.Conn, want, n int) {
	t.Helper()
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(client)
	for i := 0; i < want; i++ {
		f, err := wstest.ReadFrame(r)
		if err != nil {
			t.Fatalf("message %d of %d: %v", i, want, err)
		}
		if f.Header.OpCode != ws.OpText || !f.Header.Fin || !bytes.Equal(f.Payload, numbered(i, n)) {
			t.Fatalf("message %d: op %v fin %v, %d bytes, starts %x; want text %d of %d bytes",
				i, f.Header.OpCode, f.Header.Fin, len(f.Payload), f.Payload[:min(4, len(f.Payload))], i, n)
		}
	}
}

// A try write goes out whole while the socket has room; once it has none,
// the try writes nothing or leaves the end of a frame as backlog, further
// tries write nothing until the backlog is flushed, and the peer reads
// every message taken, whole and in order, and then what was written with
// WriteMessages. Over TCP the socket may or may not take a part of a frame
// when it fills up; a Unix socket does, when its send buffer is smaller
// than the message, so that the backlog is exercised.
func TestTryWriteBacklog(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			var a, client net.Conn
			const size = 20000
			if network == "tcp" {
				a, client = tcpPair(t)
				a.(*net.TCPConn).SetWriteBuffer(4096)
			} else {
				a, client = connPair(t, "unix", t.TempDir()+"/s")
				a.(*net.UnixConn).SetWriteBuffer(4096)
			}
			c := New(a, nil, Config{WriteTimeout: 10 * time.Second})
			if !c.CanAwait() {
				t.Fatal("no socket to try")
			}
			taken, backlogs := 0, 0
			for refused := 0; refused < 3 && taken < 10000; {
				written, backlog, err := c.TryWriteMessages([]Message{{Op: ws.OpText, Data: numbered(taken, size)}})
				if err != nil {
					t.Fatal(err)
				}
				if !written {
					refused++
					continue
				}
				if refused > 0 {
					t.Fatalf("message %d taken after a refusal: a backlog must refuse further tries", taken)
				}
				taken++
				if backlog {
					backlogs++
					if c.backlog == nil {
						t.Fatal("backlog reported, none kept")
					}
				}
			}
			if taken == 10000 {
				t.Fatal("a peer that does not read took 10,000 messages: the tries waited or lost data")
			}
			t.Logf("%d messages taken before the socket was full; backlog: %d", taken, backlogs)
			if network == "unix" && backlogs == 0 {
				t.Fatal("a Unix socket with a 4 KiB send buffer took 20,000-byte frames whole")
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				readNumbered(t, client, taken+1, size)
			}()
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
			if c.backlog != nil {
				t.Fatal("backlog kept after Flush")
			}
			if err := c.WriteMessages([]Message{{Op: ws.OpText, Data: numbered(taken, size)}}); err != nil {
				t.Fatal(err)
			}
			<-done
		})
	}
}

// The end of a frame left as backlog goes before the next frame, whatever
// writes it: a ping, a close frame.
func TestBacklogGoesFirst(t *testing.T) {
	for _, next := range []string{"ping", "close"} {
		t.Run(next, func(t *testing.T) {
			a, client := tcpPair(t)
			c := New(a, nil, Config{WriteTimeout: 10 * time.Second})
			// A backlog as a partial write leaves it: the end of message 0.
			c.mu()
			wire, _ := c.appendFrame(nil, ws.OpText, 0, numbered(0, 300))
			bp := getWriteBuf()
			*bp = append((*bp)[:0], wire[100:]...)
			c.backlogBuf, c.backlog = bp, *bp
			c.unmu()
			if _, err := a.Write(wire[:100]); err != nil {
				t.Fatal(err)
			}
			if written, _, _ := c.TryWriteMessages([]Message{{Op: ws.OpText, Data: []byte("x")}}); written {
				t.Fatal("a try write went ahead of the backlog")
			}
			var err error
			if next == "ping" {
				err = c.Ping([]byte("p"))
			} else {
				err = c.Close(ws.StatusNormalClosure, "bye")
			}
			if err != nil {
				t.Fatal(err)
			}
			client.SetReadDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(client)
			f, err := wstest.ReadFrame(r)
			if err != nil || !bytes.Equal(f.Payload, numbered(0, 300)) {
				t.Fatalf("first frame: %v, %d bytes", err, len(f.Payload))
			}
			f, err = wstest.ReadFrame(r)
			want := map[string]ws.OpCode{"ping": ws.OpPing, "close": ws.OpClose}[next]
			if err != nil || f.Header.OpCode != want {
				t.Fatalf("second frame: %v %v, want %v", err, f.Header.OpCode, want)
			}
		})
	}
}

// A try write is refused, writing nothing, while another write holds the
// connection, and for a message it would compress; after the closing
// handshake began it fails as writes do.
func TestTryWriteRefuses(t *testing.T) {
	a, client := tcpPair(t)
	c := New(a, nil, Config{Deflate: &Deflate{MinSize: 100}})
	msg := []Message{{Op: ws.OpText, Data: []byte("small")}}
	c.mu()
	written, _, err := c.TryWriteMessages(msg)
	c.unmu()
	if written || err != nil {
		t.Fatalf("under another write: written %v, %v", written, err)
	}
	big := []Message{{Op: ws.OpText, Data: bytes.Repeat([]byte("z"), 100)}}
	if written, _, err := c.TryWriteMessages(big); written || err != nil {
		t.Fatalf("a message to compress: written %v, %v", written, err)
	}
	if written, _, err := c.TryWriteMessages(msg); !written || err != nil {
		t.Fatalf("a small message under compression: written %v, %v", written, err)
	}
	c.Close(ws.StatusNormalClosure, "")
	if _, _, err := c.TryWriteMessages(msg); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(client)
	if f, err := wstest.ReadFrame(r); err != nil || string(f.Payload) != "small" || f.Header.Rsv != 0 {
		t.Fatalf("first frame: %v %q rsv %d", err, f.Payload, f.Header.Rsv)
	}
	if f, err := wstest.ReadFrame(r); err != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("second frame: %v %v", err, f.Header.OpCode)
	}
	if _, err := wstest.ReadFrame(r); err != io.EOF {
		t.Fatalf("after the close frame: %v, want EOF", err)
	}

	// Without a socket to try (a pipe), tries are refused.
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if written, _, err := New(p, nil, Config{}).TryWriteMessages(msg); written || err != nil {
		t.Fatalf("over a pipe: written %v, %v", written, err)
	}
}

// A blocking write leaves its deadline behind; a try write long after it
// still goes out.
func TestTryWriteAfterAnOldDeadline(t *testing.T) {
	a, client := tcpPair(t)
	c := New(a, nil, Config{WriteTimeout: time.Millisecond})
	if err := c.WriteMessages([]Message{{Op: ws.OpText, Data: numbered(0, 10)}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	written, _, err := c.TryWriteMessages([]Message{{Op: ws.OpText, Data: numbered(1, 10)}})
	if !written || err != nil {
		t.Fatalf("written %v, %v", written, err)
	}
	readNumbered(t, client, 2, 10)
}

// A try write to a peer that has gone reports the failure.
func TestTryWriteToAGonePeer(t *testing.T) {
	a, client := tcpPair(t)
	c := New(a, nil, Config{})
	client.(*net.TCPConn).SetLinger(0) // a reset, not an orderly end
	client.Close()
	msg := []Message{{Op: ws.OpText, Data: []byte("anyone?")}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := c.TryWriteMessages(msg)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes to a reset connection kept succeeding")
		}
		time.Sleep(time.Millisecond)
	}
}

// A try write of a sample allocates nothing.
func TestTryWriteAllocates(t *testing.T) {
	if raceDetector {
		t.Skip("allocations are not counted under the race detector (its sync.Pool drops items); scripts/test.sh runs this test without it")
	}
	x, y := tcpPair(t)
	c := New(x, nil, Config{WriteTimeout: 10 * time.Second})
	go io.Copy(io.Discard, y)
	msgs := []Message{{Op: ws.OpText, Data: []byte(`{"sensor":"wave.value","seq":1234,"v":0.5}`)}}
	if allocs := testing.AllocsPerRun(1000, func() {
		if written, _, err := c.TryWriteMessages(msgs); !written || err != nil {
			t.Fatalf("written %v, %v", written, err)
		}
	}); allocs > 0.01 {
		t.Fatalf("%.2f allocations per try write", allocs)
	}
}

// BenchmarkTryWriteSample is BenchmarkWriteSample written with
// TryWriteMessages, as fan-out writes a sample to a connection that
// takes it at once.
func BenchmarkTryWriteSample(b *testing.B) {
	benchSampleWrites(b, func(c *Conn, msgs []Message) error {
		written, _, err := c.TryWriteMessages(msgs)
		if !written && err == nil {
			err = c.WriteMessages(msgs)
		}
		return err
	})
}
