package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/edgegate/edgegate/protocol"
)

// Who may read /healthz and /metrics and drive the simulator's /sim/ with
// auth on. Credentials are a token (Authorization: Bearer, or ?token=) or
// the browser's session cookie.

var errNoCredentials = errors.New("no token: send \"Authorization: Bearer <token>\", add ?token=<token>, or sign in")

// requestRole is the role of the request's credentials (operator for all
// with auth off).
func (g *Gateway) requestRole(r *http.Request) (string, error) {
	if g.auth == nil {
		return protocol.RoleOperator, nil
	}
	if r.Header.Get("Authorization") != "" || r.URL.Query().Get("token") != "" {
		role, _, err := g.authenticate(r)
		return role, err
	}
	role, _, _, err := g.sessionToken(r)
	if errors.Is(err, http.ErrNoCookie) {
		return "", errNoCredentials
	}
	return role, err
}

// healthDetail decides what /healthz tells r: everything (detail), or,
// with auth on, only the status to clients without a token while
// auth.public_health is on. With public_health off such a client gets 401
// (ok false: the answer is written).
func (g *Gateway) healthDetail(w http.ResponseWriter, r *http.Request) (detail, ok bool) {
	if g.auth == nil {
		return true, true
	}
	_, err := g.requestRole(r)
	if err == nil {
		return true, true
	}
	if !errors.Is(err, errNoCredentials) {
		g.authFailed(r, err)
	}
	if g.cfg.Auth.PublicHealth {
		return false, true
	}
	refuse(w, http.StatusUnauthorized, fmt.Errorf("/healthz needs a viewer token with auth on (%v); or set auth.public_health: true to show its status to everyone", err))
	return false, false
}

// writeStatusOnly is /healthz for those who may see only the status.
func writeStatusOnly(w http.ResponseWriter, status string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(struct {
		Status string `json:"status"`
	}{status})
}

// metricsAccess puts /metrics behind a viewer token with auth on, unless
// auth.public_metrics.
func (g *Gateway) metricsAccess(next http.HandlerFunc) http.HandlerFunc {
	if g.auth == nil || g.cfg.Auth.PublicMetrics {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := g.requestRole(r); err != nil {
			g.authFailed(r, err)
			refuse(w, http.StatusUnauthorized, fmt.Errorf("/metrics needs a viewer token with auth on (%v): give Prometheus an API key "+
				"(scrape_config authorization: {credentials: <key>}, sent as Authorization: Bearer), or set auth.public_metrics: true", err))
			return
		}
		next(w, r)
	}
}

// simAccess guards the simulator's control API like every endpoint that
// changes something: a browser's request must come from the gateway's own
// origins (so no other web page can POST to it), and with auth on it needs
// an operator's token or session.
func (g *Gateway) simAccess(sim http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.checkOrigin(r); err != nil {
			refuse(w, http.StatusForbidden, err)
			return
		}
		role, err := g.requestRole(r)
		if err != nil {
			g.authFailed(r, err)
			refuse(w, http.StatusUnauthorized, fmt.Errorf("the simulator's control API needs an operator token with auth on (%v)", err))
			return
		}
		if role != protocol.RoleOperator {
			http.Error(w, "the simulator's control API changes the hardware: it needs the operator role, this token is a "+role+"'s", http.StatusForbidden)
			return
		}
		sim.ServeHTTP(w, r)
	})
}
