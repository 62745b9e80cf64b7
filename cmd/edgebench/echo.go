package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// The floor for rtt is a raw TCP echo served by a separate process: every
// gateway round trip crosses from the edgebench process to the gateway
// process and back, so the floor must cross the same process boundary (the
// kernel has to wake the other process's thread, possibly on an idle CPU).
// An echo server inside edgebench skips that wake-up and measures only the
// loopback stack; it is still run, reported as "in-process echo", but the
// rtt target compares against the separate-process floor.

// Server names of the two echo measurements in the results.
const (
	echoProcess = "echo-process" // edgebench echo-server in its own process: the floor
	echoInproc  = "echo-inproc"  // echo server inside edgebench: for reference only
)

// echoReady is the line an echo-server prints on stdout once it listens,
// followed by its address; a parent that started it reads the address
// from it.
const echoReady = "echo-server listening on "

// serveEcho echoes whatever arrives on each connection accepted from ln:
// one goroutine per connection doing blocking reads and writes, as a
// minimal Go server would. The returned stop closes the listener and
// every connection and waits for the goroutines to end.
func serveEcho(ln net.Listener) (stop func()) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		done  bool
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if done {
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = struct{}{}
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return func() {
		ln.Close()
		mu.Lock()
		done = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// startEchoInproc runs an echo server inside this process on loopback.
func startEchoInproc() (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen for the in-process echo server: %w", err)
	}
	return ln.Addr().String(), serveEcho(ln), nil
}

// runEchoServer is the echo-server subcommand: it listens on addr, says
// so on stdout (echoReady + the address) and echoes until ctx ends or,
// with lifeline, until stdin reaches end of file (the parent that started
// it has closed its end of the pipe or died).
func runEchoServer(ctx context.Context, addr string, lifeline bool, stdin io.Reader, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (is the port free? -listen 127.0.0.1:0 picks one): %w", addr, err)
	}
	stop := serveEcho(ln)
	defer stop()
	if _, err := fmt.Fprintf(stdout, "%s%s\n", echoReady, ln.Addr()); err != nil {
		return fmt.Errorf("announce the address: %w", err)
	}
	if !lifeline {
		<-ctx.Done()
		return nil
	}
	eof := make(chan struct{})
	go func() { // ends when stdin does; the process exits right after
		io.Copy(io.Discard, stdin)
		close(eof)
	}()
	select {
	case <-ctx.Done():
	case <-eof:
	}
	return nil
}

// echoProc is an echo-server child process owned by the floor scenario.
type echoProc struct {
	cmd    *exec.Cmd
	stdin  io.Closer
	exited chan struct{} // closed once the child has exited and been waited for
	Addr   string
	Pid    int
}

// startEchoProcess starts exe (this program) as "echo-server" on a free
// loopback port in a child process and returns once it listens. The
// child's stdin is a pipe from us: if we die, it sees end of file and
// exits too, so it never outlives its owner.
func startEchoProcess(ctx context.Context, exe string) (*echoProc, error) {
	cmd := exec.Command(exe, "echo-server", "-listen", "127.0.0.1:0", "-lifeline")
	cmd.Stderr = os.Stderr
	first := &firstLine{ch: make(chan string, 1)}
	cmd.Stdout = first // exec copies the child's stdout into it until Wait
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("echo-server stdin: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s echo-server: %w", exe, err)
	}
	p := &echoProc{cmd: cmd, stdin: stdin, Pid: cmd.Process.Pid}
	exited := make(chan struct{})
	var waitErr error
	go func() { // ends when the child does (at the latest in Stop)
		waitErr = cmd.Wait()
		close(exited)
	}()
	p.exited = exited
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case l := <-first.ch:
		if !strings.HasPrefix(l, echoReady) {
			p.Stop()
			return nil, fmt.Errorf("echo-server child printed %q instead of its address; run `%s echo-server` by hand to see why", l, exe)
		}
		p.Addr = strings.TrimSpace(strings.TrimPrefix(l, echoReady))
		return p, nil
	case <-exited:
		return nil, fmt.Errorf("echo-server child exited before listening (%v); its errors are above", waitErr)
	case <-timer.C:
		p.Stop()
		return nil, errors.New("echo-server child did not announce its address within 10s")
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	}
}

// firstLine is a child's stdout: it hands over the first line and
// discards the rest.
type firstLine struct {
	buf  []byte
	sent bool
	ch   chan string
}

func (w *firstLine) Write(b []byte) (int, error) {
	if w.sent {
		return len(b), nil
	}
	w.buf = append(w.buf, b...)
	if i := bytes.IndexByte(w.buf, '\n'); i >= 0 || len(w.buf) > 4096 {
		if i < 0 {
			i = len(w.buf)
		}
		w.ch <- string(w.buf[:i])
		w.sent, w.buf = true, nil
	}
	return len(b), nil
}

// Stop ends the child (closing its stdin is its signal to exit; it is
// killed if it has not exited within 5 s), waits for it and says how it
// ended.
func (p *echoProc) Stop() error {
	p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return errors.New("echo-server child did not exit within 5s of its stdin closing; killed")
	}
	if st := p.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("echo-server child: %s", st)
	}
	return nil
}
