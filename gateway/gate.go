package gateway

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"time"
)

// The gates a WebSocket handshake passes before it is upgraded, besides
// the subprotocol and the token: the origin of browser connections, and
// the connection caps. After the upgrade, a per-connection rate limiter
// guards the request handlers.

// checkOrigin lets through requests without an Origin header (not from a
// browser; they still need a token when auth is on) and browser requests
// from the gateway's own origins or an allowed one (hosts.go). The
// request's Host is not consulted: a DNS-rebound page names itself there.
func (g *Gateway) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" || g.hosts.originAllowed(origin, r) {
		return nil
	}
	return fmt.Errorf("origin %s may not connect: browsers may connect from this gateway's own pages (%s:// at localhost, one of its IP addresses, its host name, "+
		"a name in gateway.allowed_hosts or gateway.public_url, on the port it listens on) or from an origin in gateway.allowed_origins", origin, g.hosts.scheme)
}

// connGate counts open WebSocket connections, in all and per remote IP.
type connGate struct {
	max, maxPerIP int

	mu    sync.Mutex
	total int
	perIP map[string]int
}

// errOverCap is a connection refused by a cap; retryAfter is a hint in
// seconds for the Retry-After header.
type errOverCap struct {
	msg        string
	retryAfter int
}

func (e *errOverCap) Error() string { return e.msg }

// admit counts a connection from remote in, or refuses it. A nil error
// comes with a release func that counts it out again.
func (cg *connGate) admit(remote string) (func(), error) {
	ip := remote
	if host, _, err := net.SplitHostPort(remote); err == nil {
		ip = host
	}
	cg.mu.Lock()
	defer cg.mu.Unlock()
	if cg.total >= cg.max {
		return nil, &errOverCap{fmt.Sprintf("the gateway is at its limit of %d connections (gateway.limits.max_connections); try again shortly", cg.max), 5}
	}
	if cg.perIP[ip] >= cg.maxPerIP {
		return nil, &errOverCap{fmt.Sprintf("%s already has %d connections open, the limit per address (gateway.limits.max_connections_per_ip); close some first", ip, cg.maxPerIP), 10}
	}
	cg.total++
	cg.perIP[ip]++
	var once sync.Once
	return func() {
		once.Do(func() {
			cg.mu.Lock()
			defer cg.mu.Unlock()
			cg.total--
			if cg.perIP[ip]--; cg.perIP[ip] <= 0 {
				delete(cg.perIP, ip)
			}
		})
	}, nil
}

// refuse writes an HTTP refusal of a handshake.
func refuse(w http.ResponseWriter, status int, err error) {
	var oc *errOverCap
	if errors.As(err, &oc) {
		w.Header().Set("Retry-After", fmt.Sprint(oc.retryAfter))
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="edgegate"`)
	}
	http.Error(w, err.Error(), status)
}

// rateLimiter is a token bucket for one connection's requests: rate per
// second, bursts up to twice that. A client that keeps sending while it is
// refused is abusive and gets disconnected (close 1008).
type rateLimiter struct {
	rate, burst float64
	tokens      float64
	last        time.Time
	refused     int // refusals since the last request let through
}

func newRateLimiter(perSecond float64) *rateLimiter {
	burst := math.Max(2*perSecond, 1)
	return &rateLimiter{rate: perSecond, burst: burst, tokens: burst}
}

// allow takes a token for a request arriving at now.
func (l *rateLimiter) allow(now time.Time) bool {
	if !l.last.IsZero() {
		l.tokens = math.Min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		l.refused = 0
		return true
	}
	l.refused++
	return false
}

// abusive reports a client that ignored its rate_limited replies: as many
// refusals in a row as five bursts (at least 100).
func (l *rateLimiter) abusive() bool {
	return float64(l.refused) >= math.Max(5*l.burst, 100)
}
