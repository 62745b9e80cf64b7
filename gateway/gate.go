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
// refused is abusive and gets disconnected (close 1008): one that sends a
// flood at once (five bursts' worth of refusals in a row), or one that
// goes on being refused for floodFor, however many of its requests the
// refilling bucket lets through meanwhile.
type rateLimiter struct {
	rate, burst float64
	tokens      float64
	last        int64 // unix ns of the last request; 0: none yet
	refused     int   // refusals since the last request let through
	// The current spell of refusals: from its first refusal to its last
	// one; a spell ends when none came for spellQuiet.
	spellStart, lastRefusal int64
	spellRefused            int
}

// A client refused again and again for floodFor (and at least a burst's
// worth of times) is closed; refusals spellQuiet apart are spells of
// their own.
const (
	floodFor   = 2 * time.Second
	spellQuiet = time.Second
)

func newRateLimiter(perSecond float64) *rateLimiter {
	burst := math.Max(2*perSecond, 1)
	return &rateLimiter{rate: perSecond, burst: burst, tokens: burst}
}

// allow takes a token for a request arriving at now.
func (l *rateLimiter) allow(now time.Time) bool {
	t := now.UnixNano()
	if l.last != 0 {
		l.tokens = math.Min(l.burst, l.tokens+float64(t-l.last)/1e9*l.rate)
	}
	l.last = t
	if l.tokens >= 1 {
		l.tokens--
		l.refused = 0
		return true
	}
	l.refused++
	if l.spellRefused == 0 || t-l.lastRefusal >= int64(spellQuiet) {
		l.spellStart, l.spellRefused = t, 0
	}
	l.lastRefusal = t
	l.spellRefused++
	return false
}

// abusive reports a client that ignores its rate_limited replies: as many
// refusals in a row as five bursts (at least 100), or refusals kept up
// for floodFor.
func (l *rateLimiter) abusive() bool {
	if float64(l.refused) >= math.Max(5*l.burst, 100) {
		return true
	}
	return l.lastRefusal-l.spellStart >= int64(floodFor) && float64(l.spellRefused) >= l.burst
}
