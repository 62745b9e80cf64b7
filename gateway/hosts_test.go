package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/config"
)

const hostTestYAML = `
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`

// request sends one HTTP request to addr with the given Host (and Origin,
// method, headers) over a real loopback connection and returns the status
// and body.
func request(t *testing.T, addr, method, path, host string, header http.Header) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	req, _ := http.NewRequest(method, "http://"+addr+path, nil)
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

// upgradeHeader is a WebSocket handshake offering relay-control.v1.
func upgradeHeader(origin string) http.Header {
	h := http.Header{
		"Connection":             {"Upgrade"},
		"Upgrade":                {"websocket"},
		"Sec-Websocket-Version":  {"13"},
		"Sec-Websocket-Key":      {"dGhlIHNhbXBsZSBub25jZQ=="},
		"Sec-Websocket-Protocol": {"relay-control.v1"},
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return h
}

// DNS rebinding with auth off: a page on evil.example rebound to the
// gateway's address sends its own name as Host and Origin. Every endpoint
// refuses it before anything else, and says what to do; the gateway's own
// names work.
func TestHostCheckRefusesRebinding(t *testing.T) {
	_, addr, _ := startTestGateway(t, hostTestYAML)
	_, port, _ := net.SplitHostPort(addr)
	evil := "evil.example:" + port

	// The attack itself: a 101 here is an operator session for the page.
	if code, body := request(t, addr, "GET", "/ws", evil, upgradeHeader("http://"+evil)); code != 403 || !strings.Contains(body, "gateway.allowed_hosts") {
		t.Fatalf("rebound handshake: %d %s", code, body)
	}
	for _, path := range []string{"/", "/healthz", "/metrics", "/auth/token", "/static/app.js", "/sim/gpio", "/nowhere"} {
		code, body := request(t, addr, "GET", path, evil, nil)
		if code != 403 || !strings.Contains(body, `"evil.example"`) || !strings.Contains(body, "add it to gateway.allowed_hosts") {
			t.Fatalf("GET %s with Host %s: %d %s", path, evil, code, body)
		}
	}
	if code, _ := request(t, addr, "POST", "/sim/gpio/GPIO17?stuck=high", evil, nil); code != 403 {
		t.Fatalf("POST /sim/ with a foreign Host: %d", code)
	}
	for _, host := range []string{"evil.example", "127.0.0.1.evil.example:" + port, "localhost.evil.example:" + port, "0.0.0.0:" + port} {
		if code, _ := request(t, addr, "GET", "/healthz", host, nil); code != 403 {
			t.Fatalf("Host %q: %d, want 403", host, code)
		}
	}
	// The dashboard opened at loopback names and addresses.
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST.:" + port, "[::1]:" + port, "127.0.0.2:" + port, "127.0.0.1", "localhost"} {
		if code, body := request(t, addr, "GET", "/", host, nil); code != 200 {
			t.Fatalf("GET / with Host %q: %d %s", host, code, body)
		}
		if code, body := request(t, addr, "GET", "/ws", host, upgradeHeader("http://"+host)); host != "127.0.0.1" && host != "localhost" && code != 101 {
			t.Fatalf("handshake with Host and Origin %q: %d %s", host, code, body)
		}
	}
}

// The Origin is compared with the gateway's own origins, never with what
// the Host header claims.
func TestOriginIsNotJudgedByHost(t *testing.T) {
	_, addr, _ := startTestGateway(t, `
gateway:
  allowed_hosts: [pi.lan]
  allowed_origins: ["https://dash.example"]
`+hostTestYAML)
	_, port, _ := net.SplitHostPort(addr)
	for _, c := range []struct {
		host, origin string
		want         int
	}{
		{addr, "http://evil.example:" + port, 403},
		{"pi.lan:" + port, "http://pi.lan:" + port, 101},
		{addr, "http://pi.lan:" + port, 101},
		{addr, "http://localhost:" + port, 101},
		{addr, "http://[::1]:" + port, 101},
		{addr, "http://" + addr, 101},
		{addr, "https://dash.example", 101},
		{addr, "http://127.0.0.1:1", 403}, // another port: another origin
		{addr, "https://" + addr, 403},    // another scheme
		{addr, "http://pi.lan.evil:" + port, 403},
		{addr, "null", 403},
		{"pi.lan:" + port, "http://other.lan:" + port, 403},
	} {
		if code, body := request(t, addr, "GET", "/ws", c.host, upgradeHeader(c.origin)); code != c.want {
			t.Errorf("Host %s, Origin %s: %d %s, want %d", c.host, c.origin, code, body, c.want)
		}
	}
	if code, _ := request(t, addr, "GET", "/healthz", "PI.LAN:"+port, nil); code != 200 {
		t.Fatalf("a name of gateway.allowed_hosts: %d", code)
	}
	if code, _ := request(t, addr, "GET", "/healthz", "other.lan:"+port, nil); code != 403 {
		t.Fatalf("a name not in gateway.allowed_hosts: %d", code)
	}
}

// With auth on and no allowed_hosts, other names are served (a rebound
// page has no token and no cookie), but browsers' origins still have to be
// the gateway's own.
func TestHostCheckWithAuth(t *testing.T) {
	_, addr, _ := startTestGateway(t, `
auth:
  enabled: true
  keys:
    - {name: ops, key: operator-key-0123456789, role: operator}
`+hostTestYAML)
	_, port, _ := net.SplitHostPort(addr)
	if code, _ := request(t, addr, "GET", "/healthz", "pi.example:"+port, nil); code != 200 {
		t.Fatalf("auth on, no allowed_hosts, another name: %d", code)
	}
	if code, _ := request(t, addr, "GET", "/ws?token=operator-key-0123456789", "evil.example:"+port, upgradeHeader("http://evil.example:"+port)); code != 403 {
		t.Fatalf("a foreign origin that names itself as Host: %d, want 403", code)
	}
	if code, _ := request(t, addr, "GET", "/ws?token=operator-key-0123456789", addr, upgradeHeader("http://"+addr)); code != 101 {
		t.Fatalf("own origin: %d", code)
	}
}

// "An IP literal of the listener": the listen address, and the local
// address of the connection (any interface address when listening on
// 0.0.0.0), besides loopback; the machine's host name and public_url's.
func TestHostPolicyNames(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`
gateway:
  listen: 0.0.0.0:8080
  public_url: https://Pi.Example/edge
`))
	if err != nil {
		t.Fatal(err)
	}
	p := newHostPolicy(cfg, false)
	lan := &net.TCPAddr{IP: net.ParseIP("192.168.1.5"), Port: 8080}
	for host, want := range map[string]bool{
		"192.168.1.5:8080": true, "192.168.1.5": true, "192.168.1.6:8080": false, "[::ffff:192.168.1.5]:8080": true,
		"pi.example": true, "0.0.0.0:8080": false, "[::1]:8080": true, "evil.example": false,
	} {
		if got := p.own(host, lan); got != want {
			t.Errorf("own(%q) on a connection to %v = %v, want %v", host, lan, got, want)
		}
	}
	if !p.enforce {
		t.Fatal("auth off: the check must be enforced")
	}
	if h, _ := os.Hostname(); h != "" && (!p.own(h+":8080", lan) || !strings.Contains(h, ".") && !p.own(h+".local", lan)) {
		t.Fatalf("the machine's own name %q (and %s.local) must be allowed", h, h)
	}
	cfg, _ = config.Parse("t.yaml", []byte("gateway:\n  listen: 10.0.0.7:8080\n"))
	p = newHostPolicy(cfg, false)
	if !p.own("10.0.0.7:8080", nil) || p.own("10.0.0.8:8080", nil) {
		t.Fatal("the listen address is the listener's IP literal")
	}
}
