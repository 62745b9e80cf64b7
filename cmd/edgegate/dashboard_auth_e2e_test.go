package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// With auth on, the page is signed out until the sign-in link from the log
// is opened once; then it opens its sockets with short-lived tokens, and
// the link's code is gone from the address bar.
func TestDashboardSignInChromium(t *testing.T) {
	ctx, blog := startBrowser(t, 2*time.Minute)
	cfg := writeConfig(t, `
gateway:
  id: signed-pi
auth:
  enabled: true
  keys:
    - {name: wall, key: viewer-key-0123456789, role: viewer}
relays:
  - {name: pump, driver: gpio, pin: GPIO17}
sensors:
  - {name: wave, driver: sim-wave, interval: 100ms, period: 5s}
`)
	p := startGateway(t, "--sim", "--config", cfg)
	m := signInRe.FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("no sign-in link in the log:\n%s", p.out.String())
	}
	link := strings.Replace(m[1], publicHost(m[1]), p.addr, 1)

	// No session yet: the page says it is signed out and does not hammer.
	// (The browser logs the 401 of auth/token as a network error.)
	blog.tolerateNetworkErrors(true)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+p.addr+"/")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 10*time.Second, "signed out without a session",
		`document.getElementById("conn-relays").dataset.conn === "signed-out"`)

	// Chromium offers permessage-deflate: every handshake of the page
	// must come back with it negotiated.
	var hsMu sync.Mutex
	var extensions []string
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventWebSocketHandshakeResponseReceived); ok && e.Response != nil {
			ext := ""
			for k, v := range e.Response.Headers {
				if strings.EqualFold(k, "Sec-WebSocket-Extensions") {
					ext = fmt.Sprint(v)
				}
			}
			hsMu.Lock()
			extensions = append(extensions, ext)
			hsMu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}

	// The sign-in link: redirected to the bare page, both sockets up.
	if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 10*time.Second, "both sockets connected after sign-in", bothConnected)
	blog.tolerateNetworkErrors(false)
	if q := js[string](t, ctx, `location.search`); q != "" {
		t.Fatalf("the sign-in code is still in the address bar: %q", q)
	}
	if role := js[string](t, ctx, `document.getElementById("role").dataset.role`); role != "operator" {
		t.Fatalf("role on the page: %q", role)
	}
	hsMu.Lock()
	got := append([]string(nil), extensions...)
	hsMu.Unlock()
	if len(got) < 2 {
		t.Fatalf("saw %d WebSocket handshakes of the page, want 2", len(got))
	}
	for _, ext := range got {
		if !strings.Contains(ext, "permessage-deflate") {
			t.Fatalf("a handshake of the page did not negotiate compression: %q", ext)
		}
	}
	// A click switches the relay, seen by a client with a key of its own.
	watcher, _ := dialRelay(t, p, "token=viewer-key-0123456789")
	click(t, ctx, `button[data-relay="pump"]`)
	waitStateEvent(t, watcher, "pump", "on", 2*time.Second)
	waitJS(t, ctx, 2*time.Second, "pump shown on", `document.querySelector('[data-relay="pump"]').dataset.state === "on"`)

	// A viewer signs in with its key: the page is read-only.
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+p.addr+"/?token=viewer-key-0123456789")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 10*time.Second, "viewer connected", bothConnected)
	if role := js[string](t, ctx, `document.getElementById("role").dataset.role`); role != "viewer" {
		t.Fatalf("viewer's role on the page: %q", role)
	}
	waitJS(t, ctx, 2*time.Second, "a viewer's relay controls are disabled",
		`[...document.querySelectorAll("#relays button")].every(b => b.disabled) && document.querySelector('[data-relay="pump"]').dataset.state === "on"`)
	if errs := blog.errors(); len(errs) > 0 {
		t.Fatalf("JavaScript errors:\n%s", strings.Join(errs, "\n"))
	}
}
