package gateway

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// The dashboard is a hand-written page (no framework, no build step) that is
// a client of relay-control.v1 and sensor-stream.v1 like any other. Its files
// are embedded so the binary serves it on a LAN with no internet.
//
//go:embed web
var webFiles embed.FS

// dashboardCSP keeps the page to its own origin: scripts, styles and images
// come only from the gateway, and fetches and sockets only go back to it.
// CSP level 3 lets 'self' cover ws: and wss: on the same host; older
// browsers need the socket origins spelled out, which serveIndex adds.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'; connect-src 'self'"

// webAsset is one embedded file, ready to serve.
type webAsset struct {
	body        []byte
	contentType string
	etag        string // strong validator: a hash of body
	version     string // short hash used in ?v= by index.html
}

// dashboard serves the embedded page at / and its files under /static/.
//
// Caching: index.html names every file as static/<name>?v=<hash of its
// content>, so a browser may keep a file whose ?v= matches for a year
// (immutable); the page itself is revalidated on every load (no-cache with an
// ETag), so a new binary's page reaches users at once and pulls new files.
type dashboard struct {
	index  webAsset
	static map[string]webAsset
}

var assetTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

func newWebAsset(name string, body []byte) (webAsset, error) {
	ct, ok := assetTypes[path.Ext(name)]
	if !ok {
		return webAsset{}, fmt.Errorf("dashboard file %s: no content type known for %q files", name, path.Ext(name))
	}
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	return webAsset{body: body, contentType: ct, etag: `"` + h[:32] + `"`, version: h[:12]}, nil
}

// loadDashboard reads the embedded files and stamps the version of every
// static file into the references index.html makes to it.
func loadDashboard(files fs.FS) (*dashboard, error) {
	d := &dashboard{static: map[string]webAsset{}}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("dashboard files: %w", err)
	}
	var index []byte
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := fs.ReadFile(files, e.Name())
		if err != nil {
			return nil, fmt.Errorf("dashboard file %s: %w", e.Name(), err)
		}
		if e.Name() == "index.html" {
			index = b
			continue
		}
		a, err := newWebAsset(e.Name(), b)
		if err != nil {
			return nil, err
		}
		d.static[e.Name()] = a
	}
	if index == nil {
		return nil, fmt.Errorf("dashboard files: index.html is missing")
	}
	for name, a := range d.static {
		ref := []byte(`"static/` + name + `"`)
		index = bytes.ReplaceAll(index, ref, []byte(`"static/`+name+`?v=`+a.version+`"`))
	}
	a, err := newWebAsset("index.html", index)
	if err != nil {
		return nil, err
	}
	d.index = a
	return d, nil
}

// mountDashboard registers the page and its files on mux. The files are
// fixed at build time, so failing to load them is a build defect (the tests
// catch it); the gateway still serves its sockets and says so at /.
func (g *Gateway) mountDashboard(mux *http.ServeMux) {
	d, err := loadEmbeddedDashboard()
	if err != nil {
		g.log.Error("dashboard unavailable", "err", err)
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "the dashboard of this build is broken ("+err.Error()+"); the WebSocket endpoint /ws still works", http.StatusInternalServerError)
		})
		return
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if g.handleSignIn(w, r) {
			return
		}
		d.serveIndex(w, r)
	})
	mux.HandleFunc("GET /static/{name}", d.serveStatic)
	mux.HandleFunc("GET /auth/token", g.serveAuthToken)
	mux.HandleFunc("POST /auth/logout", g.serveLogout)
}

func loadEmbeddedDashboard() (*dashboard, error) {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		return nil, fmt.Errorf("dashboard files: %w", err)
	}
	return loadDashboard(sub)
}

func (d *dashboard) serveIndex(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	csp := dashboardCSP
	if plainHost(r.Host) {
		csp += " ws://" + r.Host + " wss://" + r.Host
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	d.index.serve(w, r)
}

func (d *dashboard) serveStatic(w http.ResponseWriter, r *http.Request) {
	a, ok := d.static[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if v := r.URL.Query().Get("v"); v == a.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		// An unversioned or stale reference: serve the current file but
		// make the browser check again next time.
		w.Header().Set("Cache-Control", "no-cache")
	}
	a.serve(w, r)
}

// serve writes the asset, or 304 when the browser already holds this version.
func (a webAsset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if etagMatches(r.Header.Get("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Length", fmt.Sprint(len(a.body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(a.body)
}

// etagMatches reports whether an If-None-Match header names etag (weak
// comparison, as RFC 9110 asks for If-None-Match).
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// plainHost reports whether host is a bare host[:port] (letters, digits and
// .-:[] only), safe to repeat in a header.
func plainHost(host string) bool {
	if host == "" || len(host) > 255 {
		return false
	}
	for _, c := range host {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}
