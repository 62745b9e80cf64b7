package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// rawRequest sends one request to the gateway with the given Host header
// (and other headers) and returns the status and body.
func rawRequest(t *testing.T, p *gatewayProc, method, path, host string, header http.Header) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	req, _ := http.NewRequest(method, "http://"+p.addr+path, nil)
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func wsUpgrade(origin string) http.Header {
	return http.Header{
		"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-Websocket-Protocol": {"relay-control.v1"},
		"Origin": {origin},
	}
}

// DNS rebinding against the real binary with auth off: the rebound page's
// handshake is refused, the dashboard's own names work, and a name in
// gateway.allowed_hosts does.
func TestRebindingRefused(t *testing.T) {
	cfg := writeConfig(t, `
gateway:
  allowed_hosts: [pi.lan]
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	_, port, _ := net.SplitHostPort(p.addr)
	evil := "evil.example:" + port
	if code, body := rawRequest(t, p, "GET", "/ws", evil, wsUpgrade("http://"+evil)); code != 403 || !strings.Contains(body, "gateway.allowed_hosts") {
		t.Fatalf("rebound handshake: %d %s", code, body)
	}
	if code, _ := rawRequest(t, p, "POST", "/sim/gpio/GPIO17?stuck=high", evil, nil); code != 403 {
		t.Fatalf("rebound POST /sim/: %d", code)
	}
	for _, host := range []string{p.addr, "localhost:" + port, "[::1]:" + port, "pi.lan:" + port} {
		if code, body := rawRequest(t, p, "GET", "/", host, nil); code != 200 {
			t.Fatalf("the dashboard at %s: %d %s", host, code, body)
		}
		if code, body := rawRequest(t, p, "GET", "/ws", host, wsUpgrade("http://"+host)); code != 101 {
			t.Fatalf("the dashboard's socket at %s: %d %s", host, code, body)
		}
	}
}

// Sessions against the real binary: the sign-in link works once, SIGHUP
// logs a fresh one, logout ends the session at once, and long tokens are
// not minted.
func TestSessionsEndToEnd(t *testing.T) {
	cfg := writeConfig(t, `
auth:
  enabled: true
  secret: "a-test-secret-of-enough-length"
  keys:
    - {name: wall, key: viewer-key-0123456789, role: viewer}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	links := func() []string {
		var l []string
		for _, m := range signInRe.FindAllStringSubmatch(p.out.String(), -1) {
			l = append(l, strings.Replace(m[1], publicHost(m[1]), p.addr, 1))
		}
		return l
	}
	first := links()
	if len(first) != 1 {
		t.Fatalf("sign-in links at start: %v", first)
	}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc := &http.Client{Timeout: 5 * time.Second, CheckRedirect: noRedirect}
	get := func(url string, header http.Header) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, _ := get(first[0], nil)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "edgegate_session" {
			cookie = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == nil {
		t.Fatalf("sign-in: %s %v", resp.Status, cookie)
	}
	if resp, body := get(first[0], nil); resp.StatusCode != 401 || !strings.Contains(body, "SIGHUP") {
		t.Fatalf("the link a second time: %s %s", resp.Status, body)
	}

	// SIGHUP: a fresh link in the log, which works.
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for len(links()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	l := links()
	if len(l) != 2 || l[1] == first[0] {
		t.Fatalf("no fresh sign-in link after SIGHUP: %v", l)
	}
	if resp, _ := get(l[1], nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the fresh link: %s", resp.Status)
	}

	// Logout: the cookie stops working at once, a copy of it too.
	withCookie := http.Header{"Cookie": {"edgegate_session=" + cookie.Value}}
	if resp, _ := get("http://"+p.addr+"/auth/token", withCookie); resp.StatusCode != 200 {
		t.Fatalf("token before logout: %s", resp.Status)
	}
	req, _ := http.NewRequest("POST", "http://"+p.addr+"/auth/logout", nil)
	req.Header.Set("Cookie", "edgegate_session="+cookie.Value)
	req.Header.Set("Origin", "http://"+p.addr)
	lresp, err := hc.Do(req)
	if err != nil || lresp.StatusCode != 200 {
		t.Fatalf("logout: %v %v", lresp, err)
	}
	lresp.Body.Close()
	if resp, _ := get("http://"+p.addr+"/auth/token", withCookie); resp.StatusCode != 401 {
		t.Fatalf("token after logout: %s", resp.Status)
	}

	// /healthz tells strangers its status only; /metrics nothing.
	if _, body := get("http://"+p.addr+"/healthz", nil); strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Fatalf("anonymous /healthz: %s", body)
	}
	if resp, _ := get("http://"+p.addr+"/metrics", nil); resp.StatusCode != 401 {
		t.Fatalf("anonymous /metrics: %s", resp.Status)
	}
	if resp, _ := get("http://"+p.addr+"/metrics", http.Header{"Authorization": {"Bearer viewer-key-0123456789"}}); resp.StatusCode != 200 {
		t.Fatalf("viewer's /metrics: %s", resp.Status)
	}

	// A 100-year token is not minted.
	out, err := exec.Command(binPath, "token", "--config", cfg, "--role", "operator", "--ttl", "876000h").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "auth.max_token_ttl") {
		t.Fatalf("token --ttl 876000h: %v\n%s", err, out)
	}
	if strings.Contains(p.out.String(), cookie.Value) || strings.Contains(p.out.String(), "viewer-key-0123456789") {
		t.Fatal("a secret appears in the log")
	}
}

// The dashboard's "Sign out" ends the session (POST auth/logout): the page
// comes back signed out (that the cookie's copies stop working is
// TestSessionsEndToEnd's).
func TestDashboardSignOutChromium(t *testing.T) {
	ctx, blog := startBrowser(t, 2*time.Minute)
	cfg := writeConfig(t, `
auth:
  enabled: true
  keys:
    - {name: ops, key: operator-key-0123456789, role: operator}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+p.addr+"/?token=operator-key-0123456789")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 10*time.Second, "both sockets connected after sign-in", bothConnected)
	waitJS(t, ctx, 2*time.Second, "a sign-out button", `!document.getElementById("signout").hidden`)
	blog.tolerateNetworkErrors(true) // auth/token's 401 once signed out
	click(t, ctx, "#signout")
	waitJS(t, ctx, 10*time.Second, "signed out after the click",
		`(document.getElementById("conn-relays") || {dataset: {}}).dataset.conn === "signed-out"`)
	// It stays signed out after a reload: the cookie is gone.
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+p.addr+"/")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 10*time.Second, "signed out after a reload",
		`(document.getElementById("conn-relays") || {dataset: {}}).dataset.conn === "signed-out"`)
}

// edgegate token takes its longest --ttl from the configuration.
func TestTokenTTLFromConfig(t *testing.T) {
	cfg := writeConfig(t, `
auth:
  enabled: true
  secret: "a-test-secret-of-enough-length"
  max_token_ttl: 2000h
`)
	if out, err := exec.Command(binPath, "token", "--config", cfg, "--role", "viewer", "--ttl", "1500h").CombinedOutput(); err != nil {
		t.Fatalf("--ttl 1500h under max_token_ttl 2000h: %v\n%s", err, out)
	}
	out, err := exec.Command(binPath, "token", "--config", cfg, "--role", "viewer", "--ttl", "2001h").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "auth.max_token_ttl: 2000h") {
		t.Fatalf("--ttl 2001h: %v\n%s", err, out)
	}
}
