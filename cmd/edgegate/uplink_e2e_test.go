package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgegate/edgegate/cmd/internal/proctest"
)

// The uplink e2e tests run the real gateway against the real example
// backend (examples/backend), each as its own process.

var (
	backendOnce sync.Once
	backendBin  string
	backendErr  error
)

// buildBackend builds examples/backend next to the gateway binary (the
// harness removes that directory after the tests).
func buildBackend(t *testing.T) string {
	t.Helper()
	backendOnce.Do(func() {
		backendBin, backendErr = proctest.Build(filepath.Dir(binPath), "backend", "../../examples/backend")
	})
	if backendErr != nil {
		t.Fatal(backendErr)
	}
	return backendBin
}

const backendToken = "s3cret-uplink-token"

// backendProc is one running example backend.
type backendProc struct {
	t    *testing.T
	proc *proctest.Proc
	addr string
	out  string // samples file
	log  *syncBuffer
}

var backendURLRe = regexp.MustCompile(`url=http://([0-9.:]+)/`)

// startBackend runs the backend on listen (host:port; port 0 picks one),
// appending samples to out.
func startBackend(t *testing.T, listen, out string) *backendProc {
	t.Helper()
	proc := proctest.Start(t, "backend", buildBackend(t), "--listen", listen, "--token", backendToken, "--out", out)
	b := &backendProc{t: t, proc: proc, out: out, log: proc.Out}
	b.addr = proc.WaitFor(t, backendURLRe, 10*time.Second)[1]
	return b
}

func (b *backendProc) stop() {
	if !b.proc.Stop(10 * time.Second) {
		b.t.Fatalf("backend did not stop:\n%s", b.log.String())
	}
}

// freeAddr returns a loopback address nothing listens on (for a backend
// that starts later).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// uplinkConfig is a gateway with a 100 Hz sensor and a relay, dialing
// the backend at addr.
func uplinkConfig(t *testing.T, addr, extra string) string {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "upstream.token")
	os.WriteFile(tokenFile, []byte(backendToken+"\n"), 0o600)
	return writeConfig(t, fmt.Sprintf(`
gateway:
  id: gw1
  heartbeat: {interval: 500ms, timeout: 3s}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
sensors:
  - {name: wave, driver: sim-wave, interval: 10ms, period: 1s}
upstream:
  url: ws://%s/uplink
  token_file: %s
%s`, addr, tokenFile, extra))
}

// storedSeqs reads the backend's samples file: every seq, in file order.
func storedSeqs(t *testing.T, path string) []uint64 {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var seqs []uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s struct {
			Gateway string   `json:"gateway"`
			Sensor  string   `json:"sensor"`
			Value   *float64 `json:"value"`
			Seq     uint64   `json:"seq"`
		}
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil || s.Gateway != "gw1" || s.Sensor != "wave.value" || s.Value == nil {
			// the last line may be mid-write while the backend runs
			continue
		}
		seqs = append(seqs, s.Seq)
	}
	return seqs
}

// waitStored waits until the backend stored a sample with seq ≥ atLeast.
func waitStored(t *testing.T, path string, atLeast uint64, d time.Duration) []uint64 {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		seqs := storedSeqs(t, path)
		if n := len(seqs); n > 0 && seqs[n-1] >= atLeast {
			return seqs
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend stored %d samples (last %v) within %v, want seq %d", len(seqs), lastOf(seqs), d, atLeast)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lastOf(s []uint64) any {
	if len(s) == 0 {
		return "none"
	}
	return s[len(s)-1]
}

// wantContiguous checks that seqs are exactly from, from+1, … (each once).
func wantContiguous(t *testing.T, seqs []uint64, from uint64) {
	t.Helper()
	if len(seqs) == 0 || seqs[0] != from {
		t.Fatalf("stored seqs start at %v, want %d", seqs[:min(len(seqs), 5)], from)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("stored seqs jump from %d to %d (at line %d of %d)", seqs[i-1], seqs[i], i+1, len(seqs))
		}
	}
}

// uplinkHealth returns /healthz's uplink object.
func uplinkHealth(t *testing.T, p *gatewayProc) map[string]any {
	t.Helper()
	_, body := p.httpGet("/healthz")
	var h struct {
		Uplink map[string]any `json:"uplink"`
	}
	if err := json.Unmarshal(body, &h); err != nil || h.Uplink == nil {
		t.Fatalf("healthz without an uplink object: %s", body)
	}
	return h.Uplink
}

func waitHealth(t *testing.T, p *gatewayProc, d time.Duration, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		h := uplinkHealth(t, p)
		if ok(h) {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("uplink health never showed %s within %v: %v", what, d, h)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func num(v any) uint64 { f, _ := v.(float64); return uint64(f) }

func TestUplinkBackendOutage(t *testing.T) {
	out := filepath.Join(t.TempDir(), "samples.jsonl")
	b := startBackend(t, "127.0.0.1:0", out)
	p := startGateway(t, "--sim", "--config", uplinkConfig(t, b.addr, ""))
	waitStored(t, out, 50, 15*time.Second)
	waitHealth(t, p, 5*time.Second, "connected", func(h map[string]any) bool { return h["state"] == "connected" })

	b.stop()
	// The outage: the sensor keeps streaming at 100 Hz into the buffer.
	down := time.Now()
	waitHealth(t, p, 10*time.Second, "the outage", func(h map[string]any) bool {
		return h["state"] != "connected" && h["last_error"] != ""
	})
	time.Sleep(4*time.Second - time.Since(down))
	h := uplinkHealth(t, p)
	if num(h["buffer_depth"]) < 100 {
		t.Fatalf("after 4 s down the buffer holds %v samples, want ≥ 100 (100 Hz): %v", h["buffer_depth"], h)
	}
	before := num(h["last_seq"])

	startBackend(t, b.addr, out)
	seqs := waitStored(t, out, before+100, 60*time.Second)
	wantContiguous(t, seqs, 1)
	h = waitHealth(t, p, 10*time.Second, "acks caught up", func(h map[string]any) bool {
		return num(h["acked_seq"]) >= before && num(h["buffer_depth"]) < 100
	})
	if num(h["reconnects"]) == 0 || num(h["dropped"]) != 0 {
		t.Fatalf("health after the outage: %v", h)
	}
}

func TestUplinkGatewayKilledAndRestarted(t *testing.T) {
	out := filepath.Join(t.TempDir(), "samples.jsonl")
	b := startBackend(t, "127.0.0.1:0", out)
	cfg := uplinkConfig(t, b.addr, "  fsync: always\n")
	dataDir := t.TempDir()
	p := startGateway(t, "--sim", "--config", cfg, "--data-dir", dataDir)
	waitStored(t, out, 100, 15*time.Second)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	killedAt := storedSeqs(t, out)

	p2 := startGateway(t, "--sim", "--config", cfg, "--data-dir", dataDir)
	h := uplinkHealth(t, p2)
	if num(h["last_seq"]) < lastOf(killedAt).(uint64) {
		t.Fatalf("restarted gateway numbers from %v, below the %v already stored: seq must continue", h["last_seq"], lastOf(killedAt))
	}
	seqs := waitStored(t, out, lastOf(killedAt).(uint64)+200, 30*time.Second)
	wantContiguous(t, seqs, 1)
}

func TestUplinkBufferBound(t *testing.T) {
	out := filepath.Join(t.TempDir(), "samples.jsonl")
	addr := freeAddr(t) // the backend starts later
	p := startGateway(t, "--sim", "--config", uplinkConfig(t, addr, "  buffer_max_bytes: 16KiB\n  fsync: never\n"))
	waitHealth(t, p, 30*time.Second, "dropped samples", func(h map[string]any) bool { return num(h["dropped"]) > 0 })
	if !strings.Contains(p.out.String(), "buffer full") {
		t.Fatalf("no log line about the full buffer:\n%s", p.out.String())
	}
	h := uplinkHealth(t, p)
	if num(h["buffer_bytes"]) > 16<<10 {
		t.Fatalf("buffer holds %v bytes, over its 16 KiB bound", h["buffer_bytes"])
	}
	startBackend(t, addr, out)
	target := num(uplinkHealth(t, p)["last_seq"])
	waitStored(t, out, target, 60*time.Second)
	h = waitHealth(t, p, 10*time.Second, "acks caught up", func(h map[string]any) bool { return num(h["acked_seq"]) >= target })
	seqs := storedSeqs(t, out)
	// The oldest were dropped, exactly as many as counted; the rest arrived intact.
	wantContiguous(t, seqs, num(h["dropped"])+1)
}

func TestUplinkTornLastRecord(t *testing.T) {
	out := filepath.Join(t.TempDir(), "samples.jsonl")
	addr := freeAddr(t)
	cfg := uplinkConfig(t, addr, "  fsync: never\n")
	dataDir := t.TempDir()
	p := startGateway(t, "--sim", "--config", cfg, "--data-dir", dataDir)
	waitHealth(t, p, 10*time.Second, "samples buffered", func(h map[string]any) bool { return num(h["buffer_depth"]) >= 100 })
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited

	// Tear the last record: cut the newest segment 5 bytes short.
	segs, _ := filepath.Glob(filepath.Join(dataDir, "uplink", "*.seg"))
	sort.Strings(segs)
	if len(segs) == 0 {
		t.Fatalf("no segment files in %s", filepath.Join(dataDir, "uplink"))
	}
	last := segs[len(segs)-1]
	fi, err := os.Stat(last)
	if err != nil || fi.Size() < 100 {
		t.Fatalf("newest segment %s: %v %v", last, fi, err)
	}
	if err := os.Truncate(last, fi.Size()-5); err != nil {
		t.Fatal(err)
	}

	p2 := startGateway(t, "--sim", "--config", cfg, "--data-dir", dataDir)
	if !strings.Contains(p2.out.String(), "torn record") {
		t.Fatalf("no log line about the torn record:\n%s", p2.out.String())
	}
	startBackend(t, addr, out)
	target := num(uplinkHealth(t, p2)["last_seq"])
	seqs := waitStored(t, out, target, 30*time.Second)
	// The torn record's seq was never sent; the restarted gateway numbers
	// on from the last whole record, so there is no gap.
	wantContiguous(t, seqs, 1)
	if code := p2.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// postCommand asks the example backend to send a relay command.
func postCommand(addr, query, token string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/command?"+query, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return http.DefaultClient.Do(req)
}

// The example backend switches relays only for a caller with its token.
func TestBackendCommandNeedsToken(t *testing.T) {
	b := startBackend(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "samples.jsonl"))
	for _, tok := range []string{"", "wrong-token", backendToken + "x"} {
		resp, err := postCommand(b.addr, "relay=pump&state=on", tok)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: status %d, want 401", tok, resp.StatusCode)
		}
	}
	resp, err := postCommand(b.addr, "relay=pump&state=on", backendToken)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		t.Errorf("the right token was refused")
	}
}

func TestUplinkRelayCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "samples.jsonl")
	b := startBackend(t, "127.0.0.1:0", out)
	p := startGateway(t, "--sim", "--config", uplinkConfig(t, b.addr, ""))
	local, _ := dialRelay(t, p, "")
	waitHealth(t, p, 10*time.Second, "connected", func(h map[string]any) bool { return h["state"] == "connected" })

	command := func(query string) (int, map[string]any) {
		resp, err := postCommand(b.addr, query, backendToken)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(body, &m)
		if resp.StatusCode == http.StatusOK && m == nil {
			t.Fatalf("command reply is not JSON: %s", body)
		}
		return resp.StatusCode, m
	}
	code, reply := command("gateway=gw1&relay=pump&state=on")
	if code != http.StatusOK || reply["ok"] != true || reply["state"] != "on" || reply["relay"] != "pump" {
		t.Fatalf("set from the backend: %d %v", code, reply)
	}
	wantEvent(t, local, "pump", "on", "uplink")
	if j := readJournal(t, p.dataDir); j["GPIO17"][len(j["GPIO17"])-1] != "high" {
		t.Fatalf("pump pin levels %v: the relay did not move", j["GPIO17"])
	}
	code, reply = command("gateway=gw1&relay=pmp&state=on")
	if code != http.StatusOK || reply["ok"] != false || reply["error"].(map[string]any)["code"] != "unknown_relay" {
		t.Fatalf("unknown relay from the backend: %d %v", code, reply)
	}
	code, reply = command("gateway=gw1&op=toggle&relay=pump")
	if reply["ok"] != true || reply["state"] != "off" {
		t.Fatalf("toggle: %d %v", code, reply)
	}
	wantEvent(t, local, "pump", "off", "uplink")
	// A local change reaches the backend as a state event.
	r, _ := local.call(map[string]any{"op": "set", "relay": "pump", "state": "on"})
	wantOK(t, r, "pump", "on")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.log.String(), `relay=pump state=on source=client`) {
		if time.Now().After(deadline) {
			t.Fatalf("backend never logged the state event:\n%s", b.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A command while the gateway is not connected is refused at once,
	// never queued for later.
	b.stop()
	b2 := startBackend(t, b.addr, out)
	start := time.Now()
	resp, err := postCommand(b2.addr, "gateway=gw1&relay=pump&state=off", backendToken)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		// the gateway reconnected already: fine, it was carried out now
		return
	}
	if resp.StatusCode != http.StatusNotFound || time.Since(start) > 2*time.Second {
		t.Fatalf("command to a disconnected gateway: %s after %v", resp.Status, time.Since(start))
	}
	local.expectSilence(2 * time.Second) // and nothing replays it later
}

func TestUplinkRelayRestoreAcrossRestart(t *testing.T) {
	cfg := writeConfig(t, `
relays:
  - {name: pump, driver: gpio, pin: GPIO17, initial: restore, failsafe: off}
  - {name: fan, driver: gpio, pin: GPIO18, initial: restore}
`)
	dataDir := t.TempDir()
	p := startGateway(t, "--sim", "--config", cfg, "--data-dir", dataDir)
	c, hello := dialRelay(t, p, "")
	if st := relayNames(t, hello["relays"]); st["pump"]["state"] != "off" {
		t.Fatalf("first start with nothing saved: %v", hello["relays"])
	}
	r, _ := c.call(map[string]any{"op": "set", "relay": "pump", "state": "on"})
	wantOK(t, r, "pump", "on")
	stateFile := filepath.Join(dataDir, "relay-state.json")
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(stateFile)
		if strings.Contains(string(b), `"pump": "on"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state file never saved pump on: %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A crash, then a graceful stop (its failsafe off is not what restore
	// brings back): both times pump starts on, and its first level is on.
	for i, kill := range []bool{true, false} {
		levelsBefore := len(readJournal(t, dataDir)["GPIO17"])
		if kill {
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.exited
		} else if code := p.stop(); code != 0 {
			t.Fatalf("exit %d", code)
		}
		if !kill {
			levelsBefore = len(readJournal(t, dataDir)["GPIO17"]) // includes the failsafe off
		}
		p = startGateway(t, "--sim", "--config", cfg, "--data-dir", dataDir)
		_, hello = dialRelay(t, p, "")
		st := relayNames(t, hello["relays"])
		if st["pump"]["state"] != "on" || st["fan"]["state"] != "off" {
			t.Fatalf("restart %d: relays %v, want pump on (restored), fan off", i, hello["relays"])
		}
		levels := readJournal(t, dataDir)["GPIO17"][levelsBefore:]
		if len(levels) == 0 || levels[0] != "high" {
			t.Fatalf("restart %d: pump levels driven %v, want high first (no glitch through off)", i, levels)
		}
		for _, l := range levels {
			if l != "high" {
				t.Fatalf("restart %d: pump levels %v: a transient", i, levels)
			}
		}
	}
}
