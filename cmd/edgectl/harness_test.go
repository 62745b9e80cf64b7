package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/cmd/internal/proctest"
)

// The tests run edgectl (in process, through run, and once as a built
// binary) against the real edgegate binary, built here, on loopback.

var (
	gatewayBin string // edgegate
	edgectlBin string // this command
)

func TestMain(m *testing.M) {
	proctest.Main(m, proctest.Binary{Path: &gatewayBin, Name: "edgegate", Pkg: "../edgegate"},
		proctest.Binary{Path: &edgectlBin, Name: "edgectl", Pkg: "."})
}

// syncBuffer collects a process's output while it runs.
type syncBuffer = proctest.Output

// gatewayProc is one running edgegate.
type gatewayProc struct {
	t    *testing.T
	proc *proctest.Proc
	addr string
	out  *syncBuffer
}

var urlRe = regexp.MustCompile(`url=https?://([0-9.:\[\]]+)/`)

// Test credentials of testConfig.
const (
	operatorKey = "operator-key-for-edgectl-tests"
	viewerKey   = "viewer-key-for-edgectl-tests"
	testSecret  = "a-secret-of-more-than-sixteen-bytes"
)

// testConfig has auth on (two API keys and a token secret), four GPIO
// relays (two interlocked) and two sensors, all on simulated buses.
func testConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.key")
	if err := os.WriteFile(secret, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`gateway:
  id: edgectl-test
auth:
  enabled: true
  secret_file: %s
  keys:
    - {name: ops, key: %s, role: operator}
    - {name: view, key: %s, role: viewer}
relays:
  - {name: pump, driver: gpio, pin: GPIO17, active_low: true}
  - {name: valve_open, driver: gpio, pin: GPIO22, interlock: valves}
  - {name: valve_close, driver: gpio, pin: GPIO23, interlock: valves}
  - {name: door, driver: gpio, pin: GPIO24, max_pulse: 5s}
sensors:
  - {name: room, driver: bme280, bus: /dev/i2c-1, address: 0x76, interval: 50ms}
  - {name: wave, driver: sim-wave, interval: 10ms, period: 1s}
`, secret, operatorKey, viewerKey)
	path := filepath.Join(dir, "edgegate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startGateway runs edgegate --sim with testConfig on a free loopback port.
func startGateway(t *testing.T) *gatewayProc {
	t.Helper()
	proc := proctest.Start(t, "edgegate", gatewayBin, "--sim", "--config", testConfig(t), "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	p := &gatewayProc{t: t, proc: proc, out: proc.Out}
	p.addr = proc.WaitFor(t, urlRe, 15*time.Second)[1]
	return p
}

func (p *gatewayProc) url() string { return "ws://" + p.addr + "/ws" }

// stop sends SIGTERM and waits for the exit.
func (p *gatewayProc) stop() {
	p.t.Helper()
	if !p.proc.Stop(15 * time.Second) {
		p.t.Fatalf("edgegate did not exit within 15 s of SIGTERM")
	}
}

// sim posts to the simulator's control API.
func (p *gatewayProc) sim(path string) {
	p.t.Helper()
	// With auth on, the simulator's control API needs an operator's token.
	req, _ := http.NewRequest("POST", "http://"+p.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+operatorKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		p.t.Fatalf("POST %s: %s", path, resp.Status)
	}
}

// result is one edgectl run.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// edgectl runs edgectl in process with env as its whole environment.
func edgectl(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	return edgectlCtx(context.Background(), t, env, args...)
}

func edgectlCtx(ctx context.Context, t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut syncBuffer
	code := run(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// as is the environment of a client of p with the given token.
func as(p *gatewayProc, token string) map[string]string {
	return map[string]string{"EDGEGATE_URL": p.url(), "EDGEGATE_TOKEN": token}
}

func mustContain(t *testing.T, r result, where, want string) {
	t.Helper()
	s := r.stdout
	if where == "stderr" {
		s = r.stderr
	}
	if !strings.Contains(s, want) {
		t.Fatalf("%s does not contain %q:\n%v", where, want, r)
	}
}
