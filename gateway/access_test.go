package gateway

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/auth"
	"github.com/edgegate/edgegate/protocol"
)

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// /healthz with auth on: only the status without a token
// (auth.public_health, default true), the whole body with one; none of it
// with public_health: false.
func TestHealthDetailNeedsAToken(t *testing.T) {
	_, addr, _ := startTestGateway(t, authTestYAML)
	url := "http://" + addr + "/healthz"
	resp, body := do(t, http.DefaultClient, "GET", url, nil)
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Fatalf("anonymous /healthz: %s %s", resp.Status, body)
	}
	resp, body = do(t, http.DefaultClient, "GET", url, bearer("viewer-key-0123456789"))
	var full map[string]any
	json.Unmarshal([]byte(body), &full)
	if resp.StatusCode != 200 || full["status"] != "ok" || full["devices"] == nil || full["connections"] == nil {
		t.Fatalf("viewer's /healthz: %s %s", resp.Status, body)
	}
	if _, body := do(t, http.DefaultClient, "GET", url, bearer("wrong-key-0123456789")); strings.Contains(body, "devices") {
		t.Fatalf("a bad token sees the devices: %s", body)
	}

	_, addr, _ = startTestGateway(t, strings.Replace(authTestYAML, "auth:\n", "auth:\n  public_health: false\n", 1))
	resp, body = do(t, http.DefaultClient, "GET", "http://"+addr+"/healthz", nil)
	if resp.StatusCode != 401 || !strings.Contains(body, "auth.public_health") {
		t.Fatalf("public_health false, anonymous: %s %s", resp.Status, body)
	}
	if resp, _ := do(t, http.DefaultClient, "GET", "http://"+addr+"/healthz?token=viewer-key-0123456789", nil); resp.StatusCode != 200 {
		t.Fatalf("public_health false, viewer: %s", resp.Status)
	}

	// Auth off: everything, as before.
	_, addr, _ = startTestGateway(t, hostTestYAML)
	if _, body := do(t, http.DefaultClient, "GET", "http://"+addr+"/healthz", nil); !strings.Contains(body, `"devices"`) {
		t.Fatalf("auth off: %s", body)
	}
}

// /metrics with auth on needs a viewer token (Prometheus sends it as a
// bearer token), unless auth.public_metrics.
func TestMetricsNeedAToken(t *testing.T) {
	_, addr, _ := startTestGateway(t, authTestYAML)
	url := "http://" + addr + "/metrics"
	resp, body := do(t, http.DefaultClient, "GET", url, nil)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" || !strings.Contains(body, "auth.public_metrics") || strings.Contains(body, "edgegate_") {
		t.Fatalf("anonymous /metrics: %s %s", resp.Status, body)
	}
	resp, body = do(t, http.DefaultClient, "GET", url, bearer("viewer-key-0123456789"))
	if resp.StatusCode != 200 || !strings.Contains(body, "edgegate_build_info") {
		t.Fatalf("viewer's /metrics: %s", resp.Status)
	}
	_, addr, _ = startTestGateway(t, strings.Replace(authTestYAML, "auth:\n", "auth:\n  public_metrics: true\n", 1))
	if resp, _ := do(t, http.DefaultClient, "GET", "http://"+addr+"/metrics", nil); resp.StatusCode != 200 {
		t.Fatalf("public_metrics: %s", resp.Status)
	}
}

// /sim/ with auth on needs an operator; a browser's cross-origin POST is
// refused whatever the auth.
func TestSimNeedsAnOperator(t *testing.T) {
	_, addr, _ := startTestGateway(t, authTestYAML)
	base := "http://" + addr
	if resp, body := do(t, http.DefaultClient, "POST", base+"/sim/gpio/GPIO17?stuck=high", nil); resp.StatusCode != 401 {
		t.Fatalf("anonymous POST /sim/: %s %s", resp.Status, body)
	}
	if resp, _ := do(t, http.DefaultClient, "GET", base+"/sim/gpio", nil); resp.StatusCode != 401 {
		t.Fatalf("anonymous GET /sim/: %s", resp.Status)
	}
	if resp, _ := do(t, http.DefaultClient, "POST", base+"/sim/gpio/GPIO17?stuck=high", bearer("viewer-key-0123456789")); resp.StatusCode != 403 {
		t.Fatalf("viewer's POST /sim/: %s", resp.Status)
	}
	if resp, body := do(t, http.DefaultClient, "POST", base+"/sim/gpio/GPIO17?stuck=none", bearer("operator-key-0123456789")); resp.StatusCode >= 300 {
		t.Fatalf("operator's POST /sim/: %s %s", resp.Status, body)
	}
	b := browser()
	do(t, b, "GET", base+"/?token=operator-key-0123456789", nil)
	if resp, _ := do(t, b, "GET", base+"/sim/gpio", http.Header{"Origin": {base}}); resp.StatusCode != 200 {
		t.Fatalf("operator's session: %s", resp.Status)
	}

	_, addr, _ = startTestGateway(t, hostTestYAML)
	base = "http://" + addr
	if resp, _ := do(t, http.DefaultClient, "POST", base+"/sim/gpio/GPIO17?stuck=high", http.Header{"Origin": {"http://evil.example"}}); resp.StatusCode != 403 {
		t.Fatalf("cross-origin POST /sim/ with auth off: %s", resp.Status)
	}
	if resp, _ := do(t, http.DefaultClient, "POST", base+"/sim/gpio/GPIO17?stuck=none", http.Header{"Origin": {base}}); resp.StatusCode >= 300 {
		t.Fatalf("same-origin POST /sim/ with auth off: %s", resp.Status)
	}
	if resp, _ := do(t, http.DefaultClient, "POST", base+"/sim/gpio/GPIO17?stuck=none", nil); resp.StatusCode >= 300 {
		t.Fatalf("POST /sim/ from a script with auth off: %s", resp.Status)
	}
}

// A token that outlives auth.max_token_ttl opens no socket.
func TestLongTokenRefused(t *testing.T) {
	_, addr, _ := startTestGateway(t, authTestYAML)
	long, _ := auth.Mint([]byte("0123456789abcdef-secret"), protocol.RoleOperator, 876000*time.Hour, time.Now())
	code, body := request(t, addr, "GET", "/ws?token="+long, addr, upgradeHeader(""))
	if code != 401 || !strings.Contains(body, "auth.max_token_ttl") {
		t.Fatalf("100-year token: %d %s", code, body)
	}
	ok, _ := auth.Mint([]byte("0123456789abcdef-secret"), protocol.RoleOperator, 24*time.Hour, time.Now())
	if code, body := request(t, addr, "GET", "/ws?token="+ok, addr, upgradeHeader("")); code != 101 {
		t.Fatalf("a day's token: %d %s", code, body)
	}
}

// A failed authentication logs a WARN line with the address and the
// reason, never the token; a flood gives a line a second and a count.
func TestFailedAuthLogged(t *testing.T) {
	var logs lockedBuf
	_, addr, _ := startTestGateway(t, authTestYAML, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	const bad = "not-a-key-but-a-guess-0123456789"
	start := time.Now()
	for i := 0; i < 50; i++ {
		request(t, addr, "GET", "/ws?token="+bad, addr, upgradeHeader(""))
	}
	seconds := int(time.Since(start)/authFailLogEvery) + 1
	lines := regexp.MustCompile(`(?m)^.*msg="authentication failed".*$`).FindAllString(logs.String(), -1)
	if len(lines) < 1 || len(lines) > seconds {
		t.Fatalf("%d lines for 50 failures in %d s:\n%s", len(lines), seconds, logs.String())
	}
	if !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "remote=127.0.0.1:") || !strings.Contains(lines[0], `reason="unknown token"`) || !strings.Contains(lines[0], "path=/ws") {
		t.Fatalf("line: %s", lines[0])
	}
	time.Sleep(authFailLogEvery + 100*time.Millisecond)
	request(t, addr, "GET", "/metrics", addr, bearer(bad))
	lines = regexp.MustCompile(`(?m)^.*msg="authentication failed".*$`).FindAllString(logs.String(), -1)
	last := lines[len(lines)-1]
	if !regexp.MustCompile(`suppressed=[1-9][0-9]*`).MatchString(last) || !strings.Contains(last, "path=/metrics") {
		t.Fatalf("the next line does not count the suppressed ones: %s", last)
	}
	if strings.Contains(logs.String(), bad) {
		t.Fatal("a presented token appears in the log")
	}
}

func TestFailLogRate(t *testing.T) {
	var logs lockedBuf
	f := &failLog{log: slog.New(slog.NewTextHandler(&logs, nil)), every: time.Second}
	now := time.Unix(1_800_000_000, 0)
	logged := 0
	for i := 0; i < 10000; i++ { // 10000 failures over 10 s
		if f.failed(now.Add(time.Duration(i)*time.Millisecond), "192.0.2.1:4000", "/ws", auth.ErrUnknown) {
			logged++
		}
	}
	if logged != 10 {
		t.Fatalf("%d lines for 10 s of failures, want 10", logged)
	}
	if n := strings.Count(logs.String(), "suppressed=999"); n != 9 {
		t.Fatalf("%d lines count 999 suppressed, want 9:\n%s", n, logs.String())
	}
}

// A secret_file every user may read is a warning at start.
func TestWorldReadableSecretWarns(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret.key")
	os.WriteFile(file, []byte("0123456789abcdef-secret\n"), 0o644)
	os.Chmod(file, 0o644)
	yaml := "auth:\n  enabled: true\n  secret_file: " + file + "\nrelays:\n  - {name: pump, driver: gpio, pin: GPIO17}\n"
	var logs lockedBuf
	startTestGateway(t, yaml, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "auth.secret_file is readable by every user") || !strings.Contains(l, "file="+file) {
		t.Fatalf("no warning for a 0644 secret file:\n%s", l)
	}
	os.Chmod(file, 0o640)
	var quiet lockedBuf
	startTestGateway(t, yaml, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&quiet, nil)) })
	if strings.Contains(quiet.String(), "readable by every user") {
		t.Fatalf("a warning for a 0640 secret file:\n%s", quiet.String())
	}
}
