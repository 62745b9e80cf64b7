package gateway

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/edgegate/edgegate/gateway/auth"
	"github.com/edgegate/edgegate/protocol"
)

// Browser sign-in, when auth is on. A browser cannot set an Authorization
// header on a WebSocket, and a long-lived key in a ws:// URL would end up in
// its history. So:
//
//  1. The startup log prints a sign-in URL, /?token=<code>, with a random
//     code made at startup (operator role, valid while the process runs).
//     Any API key or signed token of the config works there too.
//  2. Visiting it once sets a session cookie (HttpOnly, SameSite=Strict,
//     Secure over TLS) and redirects to /, which drops the code from the
//     address bar.
//  3. The page asks GET /auth/token for a short-lived signed token before
//     each WebSocket connect and puts it in the ws URL.

const (
	sessionCookie   = "edgegate_session"
	sessionLifetime = 12 * time.Hour
	// wsTokenTTL is how long a token from /auth/token may be used to open
	// a WebSocket; an open socket outlives it.
	wsTokenTTL = time.Minute
)

// signIn holds the operator sign-in code made at startup. Sessions need
// no state here: the cookie is itself a signed token (role and expiry), so
// it survives a restart of the gateway as long as the secret does.
type signIn struct {
	code string
}

func newSignIn() *signIn { return &signIn{code: randomToken(24)} }

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// SignInURL is the URL that signs a browser in (empty with auth off).
func (g *Gateway) SignInURL(base string) string {
	if g.signin == nil {
		return ""
	}
	return base + "/?token=" + g.signin.code
}

// identify checks a token presented to sign in: the startup code, an API
// key or a signed token.
func (g *Gateway) identify(tok string) (auth.Identity, error) {
	if subtle.ConstantTimeCompare([]byte(tok), []byte(g.signin.code)) == 1 {
		return auth.Identity{Role: protocol.RoleOperator, Name: "sign-in link"}, nil
	}
	return g.auth.Check(tok, time.Now())
}

// handleSignIn handles GET /?token=...: it sets the session cookie and
// redirects to the bare page. It reports whether it answered the request.
func (g *Gateway) handleSignIn(w http.ResponseWriter, r *http.Request) bool {
	tok := r.URL.Query().Get("token")
	if tok == "" || g.signin == nil {
		return false
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	id, err := g.identify(tok)
	if err == nil {
		var cookie string
		cookie, err = auth.Mint(g.auth.Secret, id.Role, sessionLifetime, time.Now())
		if err == nil {
			g.log.Info("browser signed in", "role", id.Role, "key", id.Name, "remote", r.RemoteAddr)
			http.SetCookie(w, &http.Cookie{
				Name: sessionCookie, Value: cookie, Path: "/", MaxAge: int(sessionLifetime.Seconds()),
				HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
			})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return true
		}
	}
	http.Error(w, "this sign-in link is not valid ("+err.Error()+"); use the sign-in URL from the gateway's log, or /?token=<an API key or a token from edgegate token>", http.StatusUnauthorized)
	return true
}

// session returns the role of the request's session cookie.
func (g *Gateway) session(r *http.Request) (string, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", false
	}
	role, _, err := auth.Verify(g.auth.Secret, c.Value, time.Now())
	return role, err == nil
}

// serveAuthToken answers GET /auth/token: a short-lived signed token for
// the session's role, for the page's next WebSocket. With auth off it says
// so and the page connects without a token.
func (g *Gateway) serveAuthToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	if g.signin == nil {
		enc.Encode(map[string]any{"auth": false})
		return
	}
	if err := g.checkOrigin(r); err != nil {
		w.WriteHeader(http.StatusForbidden)
		enc.Encode(map[string]any{"auth": true, "error": err.Error()})
		return
	}
	role, ok := g.session(r)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		enc.Encode(map[string]any{"auth": true, "error": "signed out: open the sign-in URL from the gateway's log, or /?token=<key>"})
		return
	}
	tok, err := auth.Mint(g.auth.Secret, role, wsTokenTTL, time.Now())
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		enc.Encode(map[string]any{"auth": true, "error": err.Error()})
		return
	}
	enc.Encode(map[string]any{"auth": true, "token": tok, "role": role, "expires_in_s": int(wsTokenTTL.Seconds())})
}
