package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

func TestForeignOriginRefused(t *testing.T) {
	cfg := writeConfig(t, `
gateway:
  allowed_origins: ["https://dash.example"]
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	for origin, want := range map[string]string{
		"http://evil.example":    "403",
		"https://dash.example":   "",
		"http://" + p.addr:       "", // the gateway's own pages
		"http://127.0.0.1:1":     "403",
		"https://dash.example:8": "403",
	} {
		_, err := dialWS(t, p.wsURL(""), http.Header{"Origin": {origin}}, "relay-control.v1")
		if want == "" && err != nil {
			t.Fatalf("origin %s: %v, want accepted", origin, err)
		}
		if want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Fatalf("origin %s: %v, want %s", origin, err, want)
		}
	}
	// No Origin: not a browser, let through (with auth off).
	if _, err := dialWS(t, p.wsURL(""), nil, "relay-control.v1"); err != nil {
		t.Fatal(err)
	}
}

func TestConnectionCaps(t *testing.T) {
	cfg := writeConfig(t, `
gateway:
  limits: {max_connections: 3, max_connections_per_ip: 2}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	upgrade := func(localIP string) *http.Response {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}
		conn, err := d.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/ws", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Sec-WebSocket-Protocol", "relay-control.v1")
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufioReader(conn), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// Two from 127.0.0.1 are fine; a third from it is over the per-address cap.
	for i := 0; i < 2; i++ {
		if r := upgrade("127.0.0.1"); r.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("connection %d: %s", i, r.Status)
		}
	}
	r := upgrade("127.0.0.1")
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "max_connections_per_ip") {
		t.Fatalf("third from one address: %s Retry-After=%q %s", r.Status, r.Header.Get("Retry-After"), body)
	}
	// Another loopback address gets one more, then the global cap of 3.
	if r := upgrade("127.0.0.2"); r.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("from 127.0.0.2: %s", r.Status)
	}
	r = upgrade("127.0.0.3")
	body, _ = io.ReadAll(r.Body)
	if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "max_connections") {
		t.Fatalf("over the global cap: %s %s", r.Status, body)
	}
}

// A client that sends half a handshake and stalls is cut at the timeout.
func TestHalfSentHandshakeIsCut(t *testing.T) {
	cfg := writeConfig(t, `
gateway:
  limits: {handshake_timeout: 300ms}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n") // never finished
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, conn) // until the gateway hangs up
	if el := time.Since(start); el < 200*time.Millisecond || el > 3*time.Second {
		t.Fatalf("half-sent handshake ended after %v, want about 300ms", el)
	}
}

func TestRateLimit(t *testing.T) {
	cfg := writeConfig(t, `
gateway:
  limits: {requests_per_second: 20}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	c, _ := dialRelay(t, p, "")
	var batch []byte
	for i := 0; i < 200; i++ {
		frame := ws.NewTextFrame([]byte(`{"id":` + itoa(i) + `,"op":"get","relay":"pump"}`))
		b, err := ws.CompileFrame(ws.MaskFrameInPlace(frame))
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, b...)
	}
	c.conn.Write(batch) // 200 requests at once
	ok, limited := 0, 0
	for i := 0; i < 200; i++ {
		m := c.read()
		switch {
		case m["ok"] == true:
			ok++
		case m["error"].(map[string]any)["code"] == "rate_limited":
			limited++
			if m["id"] == nil {
				t.Fatalf("rate_limited reply without the request's id: %v", m)
			}
		default:
			t.Fatalf("unexpected reply %v", m)
		}
	}
	// A burst of twice the rate passes, plus what refills meanwhile.
	if ok < 40 || ok > 60 || limited != 200-ok {
		t.Fatalf("%d served, %d rate_limited of 200 at once with 20/s", ok, limited)
	}
	// After a pause the client is served again: the socket stayed open.
	time.Sleep(300 * time.Millisecond)
	reply, _ := c.call(map[string]any{"op": "get", "relay": "pump"})
	if reply["ok"] != true {
		t.Fatalf("after a pause: %v", reply)
	}
	// A client that keeps pushing past its refusals is disconnected (1008).
	abusive, _ := dialRelay(t, p, "")
	go func() {
		msg := ws.MustCompileFrame(ws.MaskFrameInPlace(ws.NewTextFrame([]byte(`{"op":"list"}`))))
		for i := 0; i < 2000; i++ {
			if _, err := abusive.conn.Write(msg); err != nil {
				return
			}
		}
	}()
	abusive.expectClose(ws.StatusPolicyViolation)
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := selfSigned(t, certFile, keyFile)
	cfg := writeConfig(t, `
gateway:
  tls: {cert: `+certFile+`, key: `+keyFile+`}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	if !strings.Contains(p.out.String(), "url=https://") {
		t.Fatalf("startup log does not show an https URL:\n%s", p.out.String())
	}
	tlsCfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 5 * time.Second}
	resp, err := hc.Get("https://" + p.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("https /healthz: %s", resp.Status)
	}
	d := ws.Dialer{Protocols: []string{"relay-control.v1"}, TLSConfig: tlsCfg, Timeout: 5 * time.Second}
	conn, br, hs, err := d.Dial(context.Background(), "wss://"+p.addr+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, conn, br, hs)
	if hello := c.read(); hello["event"] != "hello" {
		t.Fatalf("hello over wss: %v", hello)
	}
	reply, _ := c.call(map[string]any{"op": "set", "relay": "pump", "state": "on"})
	wantOK(t, reply, "pump", "on")
	// Plain HTTP to a TLS listener gets nothing useful.
	if r, err := http.Get("http://" + p.addr + "/healthz"); err == nil && r.StatusCode == 200 {
		t.Fatal("plain http served by the TLS listener")
	}
	// A broken key file refuses to start, naming the files.
	os.WriteFile(keyFile, []byte("not a key"), 0o600)
	out, err := runBinary(t, "--sim", "--config", cfg, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	if err == nil || !strings.Contains(out, "gateway.tls") || !strings.Contains(out, keyFile) {
		t.Fatalf("broken key: %v\n%s", err, out)
	}
}

// selfSigned writes a certificate for localhost/127.0.0.1 and its key, and
// returns a pool that trusts it.
func selfSigned(t *testing.T, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edgegate test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// runBinary runs edgegate to completion (for runs that must refuse to start).
func runBinary(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binPath, args...).CombinedOutput()
	return string(out), err
}

var signInRe = regexp.MustCompile(`signin_url="?([^"\s]+)`)

// The sign-in link from the log establishes a browser session; the page
// then gets short-lived tokens for its sockets. No key or token is logged
// except the sign-in link itself.
func TestDashboardSignIn(t *testing.T) {
	cfg := writeConfig(t, `
auth:
  enabled: true
  keys:
    - {name: wall, key: viewer-key-0123456789, role: viewer}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	m := signInRe.FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("no sign-in link in the log:\n%s", p.out.String())
	}
	link := m[1]
	if !strings.Contains(link, "/?token=") {
		t.Fatalf("sign-in link %q", link)
	}
	browser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, Timeout: 5 * time.Second}
	}
	tokenFor := func(c *http.Client) (int, map[string]any) {
		t.Helper()
		resp, err := c.Get("http://" + p.addr + "/auth/token")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}

	// Without a session: signed out.
	anon := browser()
	if code, body := tokenFor(anon); code != 401 || body["auth"] != true {
		t.Fatalf("token without a session: %d %v", code, body)
	}
	// A bad link: 401, no cookie.
	if resp, err := anon.Get("http://" + p.addr + "/?token=nope"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("bad sign-in link: %v %v", resp, err)
	}

	// The log's link: a cookie, and a redirect to the bare page.
	op := browser()
	resp, err := op.Get(strings.Replace(link, publicHost(link), p.addr, 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.RawQuery != "" || resp.Request.URL.Path != "/" {
		t.Fatalf("after sign-in: %s at %s", resp.Status, resp.Request.URL)
	}
	var cookie *http.Cookie
	for _, c := range resp.Request.Response.Cookies() {
		if c.Name == "edgegate_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v", cookie)
	}
	code, body := tokenFor(op)
	tok, _ := body["token"].(string)
	if code != 200 || body["role"] != "operator" || tok == "" || body["expires_in_s"] != float64(60) {
		t.Fatalf("token for the session: %d %v", code, body)
	}
	c, hello := dialRelay(t, p, "token="+url.QueryEscape(tok))
	if hello["role"] != "operator" {
		t.Fatalf("hello %v", hello)
	}
	reply, _ := c.call(map[string]any{"op": "set", "relay": "pump", "state": "on"})
	wantOK(t, reply, "pump", "on")

	// A viewer key signs in as a viewer.
	view := browser()
	if resp, err := view.Get("http://" + p.addr + "/?token=viewer-key-0123456789"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("viewer sign-in: %v %v", resp, err)
	}
	if _, body := tokenFor(view); body["role"] != "viewer" {
		t.Fatalf("viewer token: %v", body)
	}
	// A token request from a foreign page is refused.
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/auth/token", nil)
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := op.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("foreign origin token request: %v %v", resp, err)
	}

	logs := p.out.String()
	for _, secret := range []string{tok, "viewer-key-0123456789", cookie.Value} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a secret appears in the log: %q", secret)
		}
	}
}

// publicHost is the host:port of a URL.
func publicHost(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return ""
	}
	return u.Host
}
