package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/cmd/internal/proctest"
	"github.com/edgegate/edgegate/configs"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// The e2e tests drive the real edgegate binary, built once here, over
// loopback with a real WebSocket client.

var binPath string

func TestMain(m *testing.M) {
	proctest.Main(m, proctest.Binary{Path: &binPath, Name: "edgegate", Pkg: "."})
}

// syncBuffer collects a process's output safely while it runs.
type syncBuffer = proctest.Output

// gatewayProc is one running edgegate process; cmd, out and exited are
// those of proc.
type gatewayProc struct {
	t       *testing.T
	proc    *proctest.Proc
	cmd     *exec.Cmd
	addr    string // host:port it listens on
	dataDir string
	out     *syncBuffer
	exited  chan struct{}
}

var urlRe = regexp.MustCompile(`url=https?://([0-9.:\[\]]+)/`)

// startGateway runs edgegate with args plus a loopback listener on a free
// port and a fresh data dir (unless args already name one), and waits until
// it serves.
func startGateway(t *testing.T, args ...string) *gatewayProc {
	t.Helper()
	dataDir := t.TempDir()
	full := append([]string{"--listen", "127.0.0.1:0"}, args...)
	if !containsArg(args, "--data-dir") {
		full = append(full, "--data-dir", dataDir)
		if slices.Contains(args, "--sim") && !containsArg(args, "--config") {
			disableDemoAutomations(t, dataDir)
		}
	} else {
		dataDir = argValue(args, "--data-dir")
	}
	proc := proctest.Start(t, "edgegate", binPath, full...)
	p := &gatewayProc{t: t, proc: proc, cmd: proc.Cmd, dataDir: dataDir, out: proc.Out, exited: proc.Exited}
	p.addr = proc.WaitFor(t, urlRe, 15*time.Second)[1]
	return p
}

// disableDemoAutomations keeps the embedded demo's automations from
// switching its heater, light and vent while a test counts the state
// events of the demo's relays: they start disabled, as an operator would
// leave them (TestSimDemoAutomations runs them).
func disableDemoAutomations(t *testing.T, dataDir string) {
	t.Helper()
	cfg, err := config.Parse(configs.SimName, configs.Sim)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range cfg.Automations {
		names = append(names, a.Name)
	}
	b, _ := json.Marshal(map[string][]string{"disabled": names})
	if err := os.WriteFile(filepath.Join(dataDir, "automations.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func containsArg(args []string, name string) bool { return argValue(args, name) != "" }

func argValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// stop sends SIGTERM and returns the exit code.
func (p *gatewayProc) stop() int {
	p.t.Helper()
	if !p.proc.Stop(15 * time.Second) {
		p.t.Fatalf("edgegate did not exit within 15 s of SIGTERM:\n%s", p.out.String())
	}
	var ee *exec.ExitError
	if errors.As(p.proc.Err, &ee) {
		return ee.ExitCode()
	}
	if p.proc.Err != nil {
		p.t.Fatalf("wait: %v", p.proc.Err)
	}
	return 0
}

func (p *gatewayProc) wsURL(query string) string {
	u := "ws://" + p.addr + "/ws"
	if query != "" {
		u += "?" + query
	}
	return u
}

func (p *gatewayProc) httpGet(path string) (*http.Response, []byte) {
	p.t.Helper()
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func (p *gatewayProc) httpPost(path string) {
	p.t.Helper()
	resp, err := http.Post("http://"+p.addr+path, "text/plain", nil)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		p.t.Fatalf("POST %s: %s", path, resp.Status)
	}
}

// writeConfig writes a config file into a temp dir and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "edgegate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// client is a real WebSocket client (gobwas/ws client side).
type client struct {
	t    *testing.T
	conn net.Conn
	rw   io.ReadWriter
	hs   ws.Handshake
}

type rw struct {
	io.Reader
	io.Writer
}

func dialWS(t *testing.T, url string, header http.Header, protocols ...string) (*client, error) {
	t.Helper()
	d := ws.Dialer{Protocols: protocols, Timeout: 5 * time.Second}
	if header != nil {
		d.Header = ws.HandshakeHeaderHTTP(header)
	}
	conn, br, hs, err := d.Dial(context.Background(), url)
	if err != nil {
		return nil, err
	}
	return newClient(t, conn, br, hs), nil
}

// newClient wraps a dialed connection; br holds any bytes the server sent
// right after its handshake response.
func newClient(t *testing.T, conn net.Conn, br *bufio.Reader, hs ws.Handshake) *client {
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, rw: rw{r, conn}, hs: hs}
}

// dialRelay connects offering relay-control.v1 and reads the hello.
func dialRelay(t *testing.T, p *gatewayProc, query string) (*client, map[string]any) {
	t.Helper()
	c, err := dialWS(t, p.wsURL(query), nil, "relay-control.v1")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if c.hs.Protocol != "relay-control.v1" {
		t.Fatalf("negotiated %q, want relay-control.v1", c.hs.Protocol)
	}
	hello := c.read()
	if hello["event"] != "hello" {
		t.Fatalf("first message is not hello: %v", hello)
	}
	return c, hello
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(ws.OpText, b)
}

func (c *client) sendRaw(op ws.OpCode, b []byte) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := wsutil.WriteClientMessage(c.conn, op, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// readMsg reads the next data message within d.
func (c *client) readMsg(d time.Duration) ([]byte, ws.OpCode, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	return wsutil.ReadServerData(c.rw)
}

// read returns the next message as a JSON object, failing the test after 5 s.
func (c *client) read() map[string]any {
	c.t.Helper()
	b, op, err := c.readMsg(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if op != ws.OpText {
		c.t.Fatalf("got a %v message, want text", op)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("message is not a JSON object: %q", b)
	}
	return m
}

// call sends a request and returns its reply (the next message with "ok"),
// collecting the events and samples that arrive before it.
func (c *client) call(req map[string]any) (reply map[string]any, events []map[string]any) {
	c.t.Helper()
	c.send(req)
	for {
		m := c.read()
		if _, isReply := m["ok"]; !isReply {
			events = append(events, m)
			continue
		}
		return m, events
	}
}

// expectClose reads until the server closes and checks the close code.
func (c *client) expectClose(code ws.StatusCode) {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, _, err := c.readMsg(time.Until(deadline))
		if err == nil {
			continue
		}
		var ce wsutil.ClosedError
		if errors.As(err, &ce) {
			if ce.Code != code {
				c.t.Fatalf("closed with %d %q, want %d", ce.Code, ce.Reason, code)
			}
			return
		}
		c.t.Fatalf("connection ended without a close frame (want %d): %v", code, err)
	}
	c.t.Fatalf("no close %d within 5 s", code)
}

// expectSilence checks that no message arrives within d.
func (c *client) expectSilence(d time.Duration) {
	c.t.Helper()
	b, _, err := c.readMsg(d)
	if err == nil {
		c.t.Fatalf("unexpected message: %s", b)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatalf("connection ended: %v", err)
	}
}

// journal reads the simulated GPIO journal: pin → levels driven, in order.
func readJournal(t *testing.T, dataDir string) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir, "sim-gpio.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	levels := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 4 || fields[2] != "out" {
			t.Fatalf("bad journal line %q", sc.Text())
		}
		levels[fields[1]] = append(levels[fields[1]], fields[3])
	}
	return levels
}
