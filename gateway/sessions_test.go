package gateway

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/auth"
)

const authTestYAML = `
auth:
  enabled: true
  secret: 0123456789abcdef-secret
  keys:
    - {name: ops, key: operator-key-0123456789, role: operator}
    - {name: wall, key: viewer-key-0123456789, role: viewer}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
`

// browser is an HTTP client with a cookie jar that does not follow
// redirects.
func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func sessionCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

// POST /auth/logout ends the session on the server: a copy of the cookie
// stops working at once, and after a restart too.
func TestLogoutEndsTheSession(t *testing.T) {
	dataDir := t.TempDir()
	withDir := func(o *Options) { o.DataDir = dataDir }
	_, addr, _ := startTestGateway(t, authTestYAML, withDir)
	base := "http://" + addr

	b := browser()
	resp, _ := do(t, b, "GET", base+"/?token=operator-key-0123456789", nil)
	cookie := sessionCookieOf(resp)
	if resp.StatusCode != http.StatusSeeOther || cookie == nil {
		t.Fatalf("sign-in: %s, cookie %v", resp.Status, cookie)
	}
	stolen := http.Header{"Cookie": {sessionCookie + "=" + cookie.Value}}
	if resp, body := do(t, http.DefaultClient, "GET", base+"/auth/token", stolen); resp.StatusCode != 200 {
		t.Fatalf("token for the session: %s %s", resp.Status, body)
	}
	// A foreign page cannot sign the browser out.
	if resp, _ := do(t, b, "POST", base+"/auth/logout", http.Header{"Origin": {"http://evil.example"}}); resp.StatusCode != 403 {
		t.Fatalf("foreign logout: %s", resp.Status)
	}
	resp, body := do(t, b, "POST", base+"/auth/logout", http.Header{"Origin": {base}})
	if c := sessionCookieOf(resp); resp.StatusCode != 200 || c == nil || c.MaxAge >= 0 || !strings.Contains(body, `"signed_out":true`) {
		t.Fatalf("logout: %s %s, cookie %+v", resp.Status, body, c)
	}
	if resp, body := do(t, http.DefaultClient, "GET", base+"/auth/token", stolen); resp.StatusCode != 401 {
		t.Fatalf("the ended session's cookie still gets tokens: %s %s", resp.Status, body)
	}
	if resp, _ := do(t, http.DefaultClient, "GET", base+"/sim/gpio", stolen); resp.StatusCode != 401 {
		t.Fatalf("the ended session's cookie still drives /sim/: %s", resp.Status)
	}
	// Another session is not affected.
	other := browser()
	do(t, other, "GET", base+"/?token=operator-key-0123456789", nil)
	if resp, _ := do(t, other, "GET", base+"/auth/token", nil); resp.StatusCode != 200 {
		t.Fatalf("another session after a logout: %s", resp.Status)
	}

	// A gateway started again on the same data dir remembers it.
	_, addr2, _ := startTestGateway(t, authTestYAML, withDir)
	if resp, _ := do(t, http.DefaultClient, "GET", "http://"+addr2+"/auth/token", stolen); resp.StatusCode != 401 {
		t.Fatalf("the ended session works again after a restart: %s", resp.Status)
	}
	if resp, _ := do(t, other, "GET", "http://"+addr+"/auth/token", nil); resp.StatusCode != 200 {
		t.Fatalf("a live session: %s", resp.Status)
	}
}

// The sign-in code works once, for 10 minutes; a fresh one replaces it.
func TestSignInCodeSingleUse(t *testing.T) {
	g, addr, _ := startTestGateway(t, authTestYAML)
	base := "http://" + addr
	link := g.SignInURL(base)
	if !strings.HasPrefix(link, base+"/?token=") {
		t.Fatalf("link %q", link)
	}
	resp, _ := do(t, browser(), "GET", link, nil)
	if resp.StatusCode != http.StatusSeeOther || sessionCookieOf(resp) == nil {
		t.Fatalf("first use: %s", resp.Status)
	}
	resp, body := do(t, browser(), "GET", link, nil)
	if resp.StatusCode != 401 || sessionCookieOf(resp) != nil || !strings.Contains(body, "used already") || !strings.Contains(body, "SIGHUP") {
		t.Fatalf("second use: %s %s", resp.Status, body)
	}

	// Too late: 10 minutes after it was made.
	link = g.SignInURL(base + "/")
	g.signin.mu.Lock()
	g.signin.expires = time.Now().Add(-time.Second)
	g.signin.mu.Unlock()
	if resp, _ := do(t, browser(), "GET", link, nil); resp.StatusCode != 401 {
		t.Fatalf("expired code: %s", resp.Status)
	}
	// A fresh code replaces the previous one.
	old := g.SignInURL(base)
	fresh := g.SignInURL(base)
	if old == fresh {
		t.Fatal("SignInURL did not make a fresh code")
	}
	if resp, _ := do(t, browser(), "GET", old, nil); resp.StatusCode != 401 {
		t.Fatalf("a replaced code: %s", resp.Status)
	}
	if resp, _ := do(t, browser(), "GET", fresh, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the fresh code: %s", resp.Status)
	}
}

// gateway.public_url: https://… marks the cookie Secure; the session and
// the page's tokens never outlive auth.max_token_ttl.
func TestSessionCookieSecureAndCapped(t *testing.T) {
	_, addr, _ := startTestGateway(t, authTestYAML)
	resp, _ := do(t, browser(), "GET", "http://"+addr+"/?token=operator-key-0123456789", nil)
	if c := sessionCookieOf(resp); c == nil || c.Secure || c.MaxAge != int(sessionLifetime.Seconds()) {
		t.Fatalf("plain http: %+v", c)
	}

	_, addr, _ = startTestGateway(t, strings.Replace(authTestYAML, "auth:\n", "gateway:\n  public_url: https://pi.example\nauth:\n  max_token_ttl: 1h\n", 1))
	b := browser()
	resp, _ = do(t, b, "GET", "http://"+addr+"/?token=operator-key-0123456789", nil)
	c := sessionCookieOf(resp)
	if c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.MaxAge != 3600 {
		t.Fatalf("behind https://: %+v", c)
	}
	_, exp, err := auth.Verify([]byte("0123456789abcdef-secret"), c.Value, time.Now())
	if err != nil || exp.After(time.Now().Add(time.Hour+time.Second)) {
		t.Fatalf("session token: %v %v", exp, err)
	}
	// The jar keeps Secure cookies for https only: present it by hand.
	_, body := do(t, http.DefaultClient, "GET", "http://"+addr+"/auth/token", http.Header{"Cookie": {sessionCookie + "=" + c.Value}})
	var tok struct {
		Token     string `json:"token"`
		ExpiresIn int    `json:"expires_in_s"`
	}
	json.Unmarshal([]byte(body), &tok)
	if tok.Token == "" || tok.ExpiresIn != 60 {
		t.Fatalf("/auth/token: %s", body)
	}
}

// The list of ended sessions is bounded: when it is full, every session
// signed until then ends, so that none is forgotten.
func TestSessionStoreBounded(t *testing.T) {
	s := newSessionStore("", slog.New(slog.NewTextHandler(io.Discard, nil)))
	secret := []byte("0123456789abcdef-secret")
	now := time.Now()
	mint := func() (string, time.Time) {
		tok, _ := auth.Mint(secret, "operator", sessionLifetime, now)
		_, exp, _ := auth.Verify(secret, tok, now)
		return tok, exp
	}
	first, firstExp := mint()
	s.end(first, firstExp, now, sessionLifetime)
	live, liveExp := mint()
	if !s.ended(first, firstExp) || s.ended(live, liveExp) {
		t.Fatal("ended/live sessions mixed up")
	}
	for i := 0; i < maxRevoked+10; i++ {
		tok, exp := mint()
		s.end(tok, exp, now, sessionLifetime)
		if len(s.revoked) > maxRevoked {
			t.Fatalf("%d entries, bound %d", len(s.revoked), maxRevoked)
		}
	}
	if !s.ended(first, firstExp) || !s.ended(live, liveExp) {
		t.Fatal("after the list overflowed, a session from before is still live")
	}
	later := now.Add(time.Minute)
	tok, _ := auth.Mint(secret, "operator", sessionLifetime, later)
	_, exp, _ := auth.Verify(secret, tok, later)
	if s.ended(tok, exp) {
		t.Fatal("a session signed after the cut-off is ended")
	}
}
