// Package proctest runs the project's programs in end-to-end tests as real
// processes: built once, started on loopback, their output collected, and
// stopped (or killed) by the test that started them.
package proctest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the package at pkg (as go build takes it, relative to the
// test's directory) into dir/name and returns the binary's path.
func Build(dir, name, pkg string) (string, error) {
	bin := dir + "/" + name
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// Binary is a program that a test package builds once: the package Pkg
// (as go build takes it), built as Name, its path stored in *Path.
type Binary struct {
	Path      *string
	Name, Pkg string
}

// Main is the TestMain of a package that drives the project's programs:
// it builds bins into a temporary directory, runs the tests, removes the
// directory and exits with the tests' code.
func Main(m *testing.M, bins ...Binary) {
	dir, err := os.MkdirTemp("", "proctest-")
	for _, b := range bins {
		if err != nil {
			break
		}
		*b.Path, err = Build(dir, b.Name, b.Pkg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Output collects a process's output safely while it runs.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// cleanupGrace is how long a process still running when its test ends
// has to exit after SIGTERM before it is killed.
const cleanupGrace = 10 * time.Second

// Proc is a running process.
type Proc struct {
	Cmd    *exec.Cmd
	Out    *Output
	Exited chan struct{} // closed when the process has exited
	Err    error         // how it exited; valid once Exited is closed
}

// Start runs bin with args, its stdout and stderr into Out. When the test
// ends a process still running is stopped as a user would stop it
// (SIGTERM), so that it cleans up after itself (a simulated serial port's
// temporary directory, for one), and killed if it has not exited within
// cleanupGrace; its output is logged if the test failed.
func Start(t testing.TB, name, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Cmd: exec.Command(bin, args...), Out: &Output{}, Exited: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.Err = p.Cmd.Wait(); close(p.Exited) }()
	t.Cleanup(func() {
		if !p.Stop(cleanupGrace) {
			p.Cmd.Process.Kill()
			<-p.Exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.Out.String())
		}
	})
	return p
}

// WaitFor waits until the output matches re and returns the submatches,
// failing the test when the process exits first or timeout passes.
func (p *Proc) WaitFor(t testing.TB, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.Out.String()); m != nil {
			return m
		}
		select {
		case <-p.Exited:
			t.Fatalf("%s exited (%v) before its output matched %s:\n%s", p.Cmd.Path, p.Err, re, p.Out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s: output did not match %s within %v:\n%s", p.Cmd.Path, re, timeout, p.Out.String())
	return nil
}

// Stop sends SIGTERM and reports whether the process exited within timeout.
func (p *Proc) Stop(timeout time.Duration) bool {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Exited:
		return true
	case <-time.After(timeout):
		return false
	}
}
