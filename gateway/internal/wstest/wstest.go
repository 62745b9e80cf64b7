// Package wstest holds the test doubles of the gateway's connection tests:
// a net.Conn that records what is written to it, pairs of connected Unix
// sockets, and a poll for a condition.
package wstest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// RecordConn is a net.Conn that records what is written to it and in how
// many Write calls. Any goroutine may write; Buf and Writes are for a
// test that reads them once the writes are done, Count and Frames for
// any time.
type RecordConn struct {
	net.Conn // nil: only the methods below are used
	mu       sync.Mutex
	Buf      bytes.Buffer
	Writes   int
}

func (c *RecordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Writes++
	return c.Buf.Write(p)
}
func (c *RecordConn) SetWriteDeadline(time.Time) error { return nil }
func (c *RecordConn) SetReadDeadline(time.Time) error  { return nil }
func (c *RecordConn) Close() error                     { return nil }

// Count is how many Write calls there were.
func (c *RecordConn) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Writes
}

// Frames parses what was written into frames.
func (c *RecordConn) Frames(t testing.TB) []ws.Frame {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	r := bufio.NewReader(bytes.NewReader(c.Buf.Bytes()))
	var fs []ws.Frame
	for {
		f, err := ReadFrame(r)
		if err == io.EOF {
			return fs
		}
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
}

// UnixPairs makes n connected pairs of Unix stream sockets: the accepted
// sides, then the peers. They are closed when the test ends.
func UnixPairs(t testing.TB, n int) (accepted, peers []net.Conn) {
	t.Helper()
	ln, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for range n {
		p, err := net.Dial("unix", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		a, err := ln.Accept()
		if err != nil {
			p.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close(); p.Close() })
		accepted, peers = append(accepted, a), append(peers, p)
	}
	return accepted, peers
}

// WaitFor polls cond for up to 5 s.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// MaxFrame bounds the payload ReadFrame takes: the tests' frames are small.
const MaxFrame = 16 << 20

// ReadFrame reads one frame from r and unmasks its payload, refusing a
// payload over MaxFrame before reading it (ws.ReadFrame reads whatever
// length the header declares).
func ReadFrame(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > MaxFrame {
		return ws.Frame{}, fmt.Errorf("a frame of %d bytes: more than a test's %d", h.Length, MaxFrame)
	}
	f := ws.Frame{Header: h, Payload: make([]byte, h.Length)}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		return ws.Frame{}, err
	}
	if h.Masked {
		ws.Cipher(f.Payload, h.Mask, 0)
	}
	return f, nil
}
