package gateway

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/edgegate/edgegate/gateway/auth"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/protocol"
)

// Browser sign-in, when auth is on. A browser cannot set an Authorization
// header on a WebSocket, and a long-lived key in a ws:// URL would end up in
// its history. So:
//
//  1. The startup log prints a sign-in URL, /?token=<code>, with a random
//     code (operator role) that works once, within 10 minutes; each call
//     of SignInURL (at start, and on SIGHUP) makes a fresh one, which
//     replaces the previous. Any API key or signed token of the config
//     works there too.
//  2. Visiting it sets a session cookie (HttpOnly, SameSite=Strict, Secure
//     over TLS or behind an https:// gateway.public_url) and redirects to
//     /, which drops the code from the address bar.
//  3. The page asks GET /auth/token for a short-lived signed token before
//     each WebSocket connect and puts it in the ws URL.
//  4. POST /auth/logout ends the session at once (sessions.go).

const (
	sessionCookie   = "edgegate_session"
	sessionLifetime = 12 * time.Hour
	// wsTokenTTL is how long a token from /auth/token may be used to open
	// a WebSocket; an open socket outlives it.
	wsTokenTTL = time.Minute
	// signInCodeTTL is how long a sign-in code works (once).
	signInCodeTTL = 10 * time.Minute
)

// signIn holds the current operator sign-in code, if any. Sessions are
// signed tokens (role and expiry), so they survive a restart as long as
// the secret does; the ones ended early are in sessions.
type signIn struct {
	mu      sync.Mutex
	code    string // "": none (used, or never made)
	expires time.Time
	// spent is the code used or replaced last, to tell its user why it
	// no longer works.
	spent string

	sessions *sessionStore
	// lifetime of sessions and tokens the page gets: capped by
	// auth.max_token_ttl.
	sessionTTL, wsTTL time.Duration
	secure            bool // cookies are Secure
}

// newSignIn is the sign-in of cfg: lifetimes capped by auth.max_token_ttl,
// cookies Secure over TLS and behind an https:// gateway.public_url.
func newSignIn(cfg *config.Config, sessions *sessionStore) *signIn {
	maxTTL := time.Duration(cfg.Auth.MaxTokenTTL)
	return &signIn{
		sessions: sessions, sessionTTL: min(sessionLifetime, maxTTL), wsTTL: min(wsTokenTTL, maxTTL),
		secure: cfg.Gateway.TLS != nil || strings.HasPrefix(cfg.Gateway.PublicURL, "https://"),
	}
}

// fresh makes a new code valid from now, which replaces the previous one.
func (s *signIn) fresh(now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.code != "" {
		s.spent = s.code
	}
	s.code, s.expires = randomToken(24), now.Add(signInCodeTTL)
	return s.code
}

// errSignInCode is a sign-in code used twice or too late.
var errSignInCode = errors.New("this sign-in link was used already, was replaced by a newer one, or is older than 10 minutes; " +
	"get a fresh one from the gateway's log (sent SIGHUP, e.g. systemctl kill -s HUP edgegate, the gateway logs a new one)")

// use consumes the code tok: it reports whether tok is the code, and, if
// so, an error unless it is still valid. A code works once.
func (s *signIn) use(tok string, now time.Time) (isCode bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spent != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.spent)) == 1 {
		return true, errSignInCode
	}
	if s.code == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.code)) != 1 {
		return false, nil
	}
	s.spent, s.code = s.code, ""
	if !now.Before(s.expires) {
		return true, errSignInCode
	}
	return true, nil
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// SignInURL makes a fresh sign-in code, valid once within 10 minutes, and
// returns the URL with it that signs a browser in (empty with auth off).
// The previous code stops working.
func (g *Gateway) SignInURL(base string) string {
	if g.signin == nil {
		return ""
	}
	return strings.TrimSuffix(base, "/") + "/?token=" + g.signin.fresh(time.Now())
}

// PublicURL is gateway.public_url, or "" when it is not set.
func (g *Gateway) PublicURL() string { return g.cfg.Gateway.PublicURL }

// identify checks a token presented to sign in: the sign-in code, an API
// key or a signed token.
func (g *Gateway) identify(tok string) (auth.Identity, error) {
	now := time.Now()
	if isCode, err := g.signin.use(tok, now); isCode {
		return auth.Identity{Role: protocol.RoleOperator, Name: "sign-in link"}, err
	}
	return g.auth.Check(tok, now)
}

// setSessionCookie sets (or, with maxAge < 0, clears) the session cookie.
func (g *Gateway) setSessionCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || g.signin.secure,
	})
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
		cookie, err = auth.Mint(g.auth.Secret, id.Role, g.signin.sessionTTL, time.Now())
		if err == nil {
			g.log.Info("browser signed in", "role", id.Role, "key", id.Name, "remote", r.RemoteAddr)
			g.setSessionCookie(w, r, cookie, int(g.signin.sessionTTL.Seconds()))
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return true
		}
	}
	g.authFailed(r, err)
	msg := "this sign-in link is not valid (" + err.Error() + "); use the sign-in URL from the gateway's log, or /?token=<an API key or a token from edgegate token>"
	if errors.Is(err, errSignInCode) {
		msg = err.Error() + "; or sign in with /?token=<an API key or a token from edgegate token>"
	}
	http.Error(w, msg, http.StatusUnauthorized)
	return true
}

// errSessionEnded is a session cookie whose session was ended.
var errSessionEnded = errors.New("this session was signed out")

func (g *Gateway) sessionToken(r *http.Request) (role, tok string, exp time.Time, err error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", "", time.Time{}, err
	}
	role, exp, err = auth.Verify(g.auth.Secret, c.Value, time.Now())
	if err == nil && exp.After(time.Now().Add(g.signin.sessionTTL+time.Minute)) {
		err = auth.ErrTooLong
	}
	if err == nil && g.signin.sessions.ended(c.Value, exp) {
		err = errSessionEnded
	}
	return role, c.Value, exp, err
}

// serveLogout answers POST /auth/logout: the session ends at once, here
// and in every copy of its cookie, and the browser's cookie is cleared.
func (g *Gateway) serveLogout(w http.ResponseWriter, r *http.Request) {
	enc, ok := g.startAuthJSON(w, r)
	if !ok {
		return
	}
	role, tok, exp, err := g.sessionToken(r)
	if err == nil {
		g.signin.sessions.end(tok, exp, time.Now(), g.signin.sessionTTL)
		g.log.Info("browser signed out", "role", role, "remote", r.RemoteAddr)
	}
	g.setSessionCookie(w, r, "", -1)
	enc.Encode(map[string]any{"auth": true, "signed_out": true})
}

// startAuthJSON begins the JSON answer of an /auth/ endpoint: with auth
// off it answers {"auth":false}, to a foreign origin 403; ok is false when
// the answer is complete.
func (g *Gateway) startAuthJSON(w http.ResponseWriter, r *http.Request) (enc *json.Encoder, ok bool) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc = json.NewEncoder(w)
	if g.signin == nil {
		enc.Encode(map[string]any{"auth": false})
		return enc, false
	}
	if err := g.checkOrigin(r); err != nil {
		w.WriteHeader(http.StatusForbidden)
		enc.Encode(map[string]any{"auth": true, "error": err.Error()})
		return enc, false
	}
	return enc, true
}

// serveAuthToken answers GET /auth/token: a short-lived signed token for
// the session's role, for the page's next WebSocket. With auth off it says
// so and the page connects without a token.
func (g *Gateway) serveAuthToken(w http.ResponseWriter, r *http.Request) {
	enc, ok := g.startAuthJSON(w, r)
	if !ok {
		return
	}
	role, _, _, err := g.sessionToken(r)
	if err != nil {
		if !errors.Is(err, http.ErrNoCookie) {
			g.authFailed(r, err)
		}
		w.WriteHeader(http.StatusUnauthorized)
		enc.Encode(map[string]any{"auth": true, "error": "signed out: open the sign-in URL from the gateway's log, or /?token=<key>"})
		return
	}
	tok, err := auth.Mint(g.auth.Secret, role, g.signin.wsTTL, time.Now())
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		enc.Encode(map[string]any{"auth": true, "error": err.Error()})
		return
	}
	enc.Encode(map[string]any{"auth": true, "token": tok, "role": role, "expires_in_s": int(g.signin.wsTTL.Seconds())})
}
