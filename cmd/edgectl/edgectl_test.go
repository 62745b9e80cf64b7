package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRelayCommands drives every relay command against the real gateway and
// checks the table and JSON output and the effect on the (simulated) pins.
func TestRelayCommands(t *testing.T) {
	p := startGateway(t)
	env := as(p, operatorKey)

	// list: a table with the contract's columns, aligned.
	r := edgectl(t, env, "list")
	if r.code != 0 {
		t.Fatalf("list: %v", r)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("list: want a header and 4 relays:\n%v", r)
	}
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "NAME STATE DRIVER CHANGED INTERLOCK" {
		t.Fatalf("list header %q", lines[0])
	}
	col := strings.Index(lines[0], "DRIVER")
	for _, l := range lines[1:] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Fatalf("list: column DRIVER not aligned at %d in %q", col, l)
		}
	}
	if !regexp.MustCompile(`(?m)^valve_open +off +gpio +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +valves$`).MatchString(r.stdout) {
		t.Fatalf("list: no row for valve_open with its interlock:\n%s", r.stdout)
	}

	// list --json: one relay object per line, flags after the command.
	r = edgectl(t, env, "list", "--json")
	if r.code != 0 {
		t.Fatalf("list --json: %v", r)
	}
	relays := jsonLines(t, r.stdout)
	if len(relays) != 4 || relays[0]["name"] != "pump" || relays[2]["interlock"] != "valves" || relays[3]["max_pulse_ms"] != 5000.0 {
		t.Fatalf("list --json: %v", relays)
	}

	// set, then get shows it, and the active-low pin went low.
	r = edgectl(t, env, "set", "pump", "on")
	if r.code != 0 || r.stdout != "pump: on\n" {
		t.Fatalf("set pump on: %v", r)
	}
	r = edgectl(t, env, "--json", "get", "pump")
	if r.code != 0 {
		t.Fatalf("get --json: %v", r)
	}
	if m := jsonLines(t, r.stdout); len(m) != 1 || m[0]["ok"] != true || m[0]["state"] != "on" || m[0]["changed_at"] == nil {
		t.Fatalf("get --json: %v", r)
	}
	if lv := pinLevel(t, p, "GPIO17"); lv != "low" {
		t.Fatalf("pump on: GPIO17 is %s, want low (active-low)", lv)
	}
	r = edgectl(t, env, "get", "pump")
	if r.code != 0 || !regexp.MustCompile(`(?m)^NAME +STATE +DRIVER +CHANGED +INTERLOCK\npump +on +gpio +\S+ \S+ +-$`).MatchString(r.stdout) {
		t.Fatalf("get pump: %v", r)
	}

	// toggle: the new state.
	r = edgectl(t, env, "toggle", "pump")
	if r.code != 0 || r.stdout != "pump: off\n" {
		t.Fatalf("toggle pump: %v", r)
	}
	if lv := pinLevel(t, p, "GPIO17"); lv != "high" {
		t.Fatalf("pump off: GPIO17 is %s, want high", lv)
	}

	// set --json echoes the reply; an interlock partner is switched off.
	edgectl(t, env, "set", "valve_open", "on")
	r = edgectl(t, env, "set", "valve_close", "ON", "--json")
	if m := jsonLines(t, r.stdout); r.code != 0 || len(m) != 1 || m[0]["relay"] != "valve_close" || m[0]["state"] != "on" {
		t.Fatalf("set valve_close ON --json: %v", r)
	}
	if r = edgectl(t, env, "--json", "get", "valve_open"); !strings.Contains(r.stdout, `"state":"off"`) {
		t.Fatalf("interlock: valve_open should be off: %v", r)
	}

	// pulse: on now, off by itself after the duration.
	r = edgectl(t, env, "pulse", "door", "300ms")
	if r.code != 0 || r.stdout != "door: on for 300ms, then off\n" {
		t.Fatalf("pulse: %v", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r = edgectl(t, env, "--json", "get", "door")
		if strings.Contains(r.stdout, `"state":"off"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("door still on 5 s after a 300ms pulse: %v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r = edgectl(t, env, "pulse", "door", "1s", "--json")
	if m := jsonLines(t, r.stdout); r.code != 0 || len(m) != 1 || m[0]["state"] != "on" {
		t.Fatalf("pulse --json: %v", r)
	}

	// The global flags work in place of the environment.
	r = edgectl(t, nil, "--url", "http://"+p.addr, "--token", operatorKey, "get", "door")
	if r.code != 0 {
		t.Fatalf("--url http://HOST:PORT without a path and --token: %v", r)
	}
}

func pinLevel(t *testing.T, p *gatewayProc, pin string) string {
	t.Helper()
	// With auth on, the simulator's control API needs an operator's token.
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/sim/gpio", nil)
	req.Header.Set("Authorization", "Bearer "+operatorKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pins []struct {
		Name  string `json:"name"`
		Level string `json:"level"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&pins); err != nil {
		t.Fatal(err)
	}
	for _, x := range pins {
		if x.Name == pin {
			return x.Level
		}
	}
	t.Fatalf("no pin %s in /sim/gpio: %v", pin, pins)
	return ""
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON object: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// TestExitCodes checks every exit code with the message that says what to do.
func TestExitCodes(t *testing.T) {
	p := startGateway(t)

	// A port that refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "ws://" + ln.Addr().String() + "/ws"
	ln.Close()

	// A listener that accepts and never answers the handshake.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	silentURL := "ws://" + silent.Addr().String() + "/ws"

	op, viewer := as(p, operatorKey), as(p, viewerKey)
	cases := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stderr []string
		json   string // on stdout, with --json
	}{
		{"unknown relay", op, []string{"set", "pmp", "on"}, 1, []string{"unknown_relay", `no relay named "pmp"`, "pump, valve_open, valve_close, door"}, ""},
		{"unknown relay --json", op, []string{"--json", "toggle", "nope"}, 1, []string{"unknown_relay"}, `"code":"unknown_relay"`},
		{"viewer set", viewer, []string{"set", "pump", "on"}, 1, []string{"forbidden", "viewer role", "operator"}, ""},
		{"viewer pulse --json", viewer, []string{"pulse", "door", "1s", "--json"}, 1, []string{"forbidden"}, `"code":"forbidden"`},
		{"pulse over max_pulse", op, []string{"pulse", "door", "10s"}, 1, []string{"bad_request"}, ""},
		{"unknown sensor", op, []string{"watch", "nosuch.sensor"}, 1, []string{"unknown_sensor", "room.temperature"}, ""},
		{"no sensor matches", op, []string{"watch", "zz*"}, 1, []string{"no sensor matches zz*", "wave.value"}, ""},
		{"viewer may read", viewer, []string{"get", "pump"}, 0, nil, ""},
		{"no token", map[string]string{"EDGEGATE_URL": p.url()}, []string{"list"}, 3, []string{"HTTP 401", "pass --token"}, ""},
		{"wrong token", as(p, "wrong"), []string{"list"}, 3, []string{"HTTP 401", "Check --token"}, ""},
		{"wrong path", map[string]string{"EDGEGATE_URL": "ws://" + p.addr + "/nope", "EDGEGATE_TOKEN": operatorKey}, []string{"list"}, 3, []string{"HTTP 404", "Check --url"}, ""},
		{"refused port", map[string]string{"EDGEGATE_URL": closedURL}, []string{"list"}, 3, []string{"cannot connect", "Is edgegate running"}, ""},
		{"refused port, watch", map[string]string{"EDGEGATE_URL": closedURL}, []string{"watch"}, 3, []string{"cannot connect"}, ""},
		{"no handshake", map[string]string{"EDGEGATE_URL": silentURL}, []string{"--timeout", "300ms", "list"}, 4, []string{"within 300ms"}, ""},
		{"no handshake, watch", map[string]string{"EDGEGATE_URL": silentURL}, []string{"watch", "--timeout", "300ms"}, 4, []string{"within 300ms"}, ""},
		{"no command", op, nil, 2, []string{"usage:"}, ""},
		{"unknown command", op, []string{"lst"}, 2, []string{`unknown command "lst"`, "did you mean list"}, ""},
		{"set without state", op, []string{"set", "pump"}, 2, []string{"usage: edgectl set RELAY on|off"}, ""},
		{"set bad state", op, []string{"set", "pump", "maybe"}, 2, []string{"on or off"}, ""},
		{"get too many", op, []string{"get", "pump", "door"}, 2, []string{"wrong number of arguments"}, ""},
		{"list extra", op, []string{"list", "pump"}, 2, []string{"wrong number of arguments"}, ""},
		{"pulse without unit", op, []string{"pulse", "door", "1500"}, 2, []string{"1500ms"}, ""},
		{"pulse bad duration", op, []string{"pulse", "door", "soon"}, 2, []string{"not a duration"}, ""},
		{"pulse sub-millisecond", op, []string{"pulse", "door", "1500us"}, 2, []string{"whole number of milliseconds"}, ""},
		{"unknown flag", op, []string{"list", "--colour"}, 2, []string{"colour"}, ""},
		{"bad url scheme", op, []string{"--url", "ftp://x/ws", "list"}, 2, []string{"ws:// or wss://"}, ""},
		{"bad timeout", op, []string{"--timeout", "0s", "list"}, 2, []string{"--timeout"}, ""},
		{"negative count", op, []string{"watch", "--count", "-1"}, 2, []string{"--count"}, ""},
		{"missing --ca", op, []string{"--url", "wss://" + p.addr + "/ws", "--ca", "/nonexistent/ca.pem", "list"}, 2, []string{"--ca"}, ""},
		{"token without role", nil, []string{"token"}, 2, []string{"--role is required"}, ""},
		{"token bad role", nil, []string{"token", "--role", "admin"}, 2, []string{"want viewer or operator"}, ""},
		{"token no secret file", nil, []string{"token", "--role", "viewer", "--secret-file", "/nonexistent/secret.key"}, 2, []string{"--secret-file"}, ""},
		{"help", nil, []string{"--help"}, 0, nil, ""},
		{"help after command", nil, []string{"watch", "-h"}, 0, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := edgectl(t, tc.env, tc.args...)
			if r.code != tc.code {
				t.Fatalf("want exit %d:\n%v", tc.code, r)
			}
			for _, s := range tc.stderr {
				mustContain(t, r, "stderr", s)
			}
			if tc.json != "" {
				if m := jsonLines(t, r.stdout); len(m) != 1 || !strings.Contains(r.stdout, tc.json) {
					t.Fatalf("want one JSON reply with %s on stdout:\n%v", tc.json, r)
				}
			}
			if tc.code == 4 && time.Since(start) > 3*time.Second {
				t.Fatalf("a 300ms timeout took %v", time.Since(start))
			}
		})
	}

	t.Run("device error", func(t *testing.T) {
		p.sim("/sim/gpio/GPIO24?fail=relay+driver+chip+on+fire")
		r := edgectl(t, op, "set", "door", "on")
		p.sim("/sim/gpio/GPIO24?fail=none")
		if r.code != 1 {
			t.Fatalf("want exit 1:\n%v", r)
		}
		mustContain(t, r, "stderr", "device_error")
		mustContain(t, r, "stderr", "did not confirm")
	})

	// The help documents every exit code.
	r := edgectl(t, nil, "--help")
	for _, code := range []string{"0    ok", "1    the gateway answered with an error", "2    usage error", "3    cannot connect", "4    timeout"} {
		mustContain(t, r, "stdout", code)
	}
}

// TestToken mints tokens locally and uses them against the gateway, whose
// auth.secret_file holds the same secret (with a trailing newline).
func TestToken(t *testing.T) {
	p := startGateway(t)
	secretFile := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(secretFile, []byte("  "+testSecret+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mint := func(role string) string {
		t.Helper()
		r := edgectl(t, nil, "token", "--role", role, "--ttl", "10m", "--secret-file", secretFile)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "eg1."+role+".") {
			t.Fatalf("token --role %s: %v", role, r)
		}
		return strings.TrimSpace(r.stdout)
	}
	opTok, viewTok := mint("operator"), mint("viewer")
	if r := edgectl(t, as(p, opTok), "set", "pump", "on"); r.code != 0 {
		t.Fatalf("set with a minted operator token: %v", r)
	}
	r := edgectl(t, as(p, viewTok), "set", "pump", "off")
	if r.code != 1 || !strings.Contains(r.stderr, "forbidden") {
		t.Fatalf("set with a minted viewer token: %v", r)
	}

	// A token minted with another secret is refused at the handshake.
	other := filepath.Join(t.TempDir(), "other.key")
	os.WriteFile(other, []byte("another-secret-of-enough-bytes"), 0o600)
	r = edgectl(t, nil, "token", "--role", "operator", "--secret-file", other)
	if r.code != 0 {
		t.Fatalf("token: %v", r)
	}
	r = edgectl(t, as(p, strings.TrimSpace(r.stdout)), "list")
	if r.code != 3 || !strings.Contains(r.stderr, "401") || !strings.Contains(r.stderr, "another secret") {
		t.Fatalf("foreign token: %v", r)
	}

	// A secret too short to sign with.
	short := filepath.Join(t.TempDir(), "short.key")
	os.WriteFile(short, []byte("short\n"), 0o600)
	if r := edgectl(t, nil, "token", "--role", "viewer", "--secret-file", short); r.code != 2 || !strings.Contains(r.stderr, "at least 16") {
		t.Fatalf("short secret: %v", r)
	}
}

// TestWatch streams samples with --count, in JSON and binary, as a table,
// and reports sensor read errors.
func TestWatch(t *testing.T) {
	p := startGateway(t)
	env := as(p, viewerKey)

	for _, format := range []string{"json", "binary"} {
		t.Run(format, func(t *testing.T) {
			args := []string{"watch", "--count", "20", "--json", "wave.*"}
			if format == "binary" {
				args = append(args, "--binary")
			}
			r := edgectl(t, env, args...)
			if r.code != 0 {
				t.Fatalf("%v", r)
			}
			samples := jsonLines(t, r.stdout)
			if len(samples) != 20 {
				t.Fatalf("want 20 samples, got %d:\n%v", len(samples), r)
			}
			var last float64
			for i, s := range samples {
				seq, _ := s["seq"].(float64)
				ts, _ := s["ts"].(float64)
				_, isNum := s["value"].(float64)
				if s["sensor"] != "wave.value" || !isNum || seq <= last || ts < 1e12 || ts > 1e13 {
					t.Fatalf("sample %d: %v (previous seq %v)", i, s, last)
				}
				last = seq
			}
		})
	}

	t.Run("table", func(t *testing.T) {
		r := edgectl(t, env, "watch", "--count", "3", "room.temperature")
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		if r.code != 0 || len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "TIME SENSOR VALUE UNIT" {
			t.Fatalf("%v", r)
		}
		row := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} +room\.temperature +[0-9.]+ +°C$`)
		for _, l := range lines[1:] {
			if !row.MatchString(l) {
				t.Fatalf("row %q", l)
			}
		}
	})

	t.Run("for", func(t *testing.T) {
		start := time.Now()
		r := edgectl(t, env, "watch", "--for", "400ms", "--json", "--max-hz", "5", "wave.value")
		if el := time.Since(start); r.code != 0 || el < 400*time.Millisecond || el > 4*time.Second {
			t.Fatalf("--for 400ms took %v: %v", el, r)
		}
		if n := len(jsonLines(t, r.stdout)); n < 1 || n > 6 {
			t.Fatalf("--max-hz 5 for 400ms gave %d samples:\n%v", n, r)
		}
	})

	t.Run("sensor_error", func(t *testing.T) {
		p.sim("/sim/i2c/0x76?nack=1")
		defer p.sim("/sim/i2c/0x76?nack=0")
		r := edgectl(t, env, "watch", "--for", "600ms", "--json", "room.*")
		if r.code != 0 {
			t.Fatalf("%v", r)
		}
		found := false
		for _, m := range jsonLines(t, r.stdout) {
			if m["event"] == "sensor_error" && strings.HasPrefix(m["sensor"].(string), "room.") && m["message"] != "" {
				found = true
			}
		}
		if !found {
			t.Fatalf("no sensor_error event with the chip unplugged:\n%v", r)
		}
		r = edgectl(t, env, "watch", "--for", "300ms", "room.temperature")
		if r.code != 0 || !strings.Contains(r.stderr, "room.temperature: read failed") {
			t.Fatalf("table mode should report read errors on stderr:\n%v", r)
		}
	})

	t.Run("gateway goes away", func(t *testing.T) {
		q := startGateway(t)
		done := make(chan result, 1)
		var out, errOut syncBuffer
		env := as(q, viewerKey)
		go func() {
			code := run(context.Background(), []string{"watch", "wave.*"}, func(k string) string { return env[k] }, &out, &errOut)
			done <- result{code, out.String(), errOut.String()}
		}()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), "wave.value") { // streaming
			if time.Now().After(deadline) {
				t.Fatalf("no samples:\n%s", errOut.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		q.stop()
		select {
		case r := <-done:
			if r.code != 3 || !strings.Contains(r.stderr, "1001") {
				t.Fatalf("want exit 3 with the close code 1001:\n%v", r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("watch did not end when the gateway shut down")
		}
	})
}

// TestWatchInterrupt runs the built binary and stops a watch with SIGINT:
// the samples so far are printed and the exit code is 0.
func TestWatchInterrupt(t *testing.T) {
	p := startGateway(t)
	cmd := exec.Command(edgectlBin, "watch", "--json", "wave.*")
	cmd.Env = append(os.Environ(), "EDGEGATE_URL="+p.url(), "EDGEGATE_TOKEN="+viewerKey)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	for i := 0; i < 3; i++ {
		select {
		case l := <-lines:
			if !strings.Contains(l, `"sensor":"wave.value"`) {
				t.Fatalf("not a sample: %q", l)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no samples:\n%s", stderr.String())
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("watch ended with %v after SIGINT:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not end within 10 s of SIGINT")
	}
}

// TestInterruptOneShot: a one-shot command interrupted while it waits for
// the gateway exits 130 at once.
func TestInterruptOneShot(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		c, err := silent.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(200*time.Millisecond, cancel) // stands for Ctrl-C, which cancels run's context
	start := time.Now()
	r := edgectlCtx(ctx, t, map[string]string{"EDGEGATE_URL": "ws://" + silent.Addr().String()}, "--timeout", "20s", "list")
	if r.code != 130 {
		t.Fatalf("want exit 130:\n%v", r)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
}
