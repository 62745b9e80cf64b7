package gateway

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/edgegate/edgegate/gateway/auth"
)

// failLog writes one WARN line per failed authentication, with the remote
// address, the endpoint and the reason (never the token), at most one line
// per interval: the failures in between are counted and the next line
// carries their number ("suppressed"), so a flood of bad tokens costs a
// line a second, not a line a request.
type failLog struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const authFailLogEvery = time.Second

// failed records one failure at now and reports whether it was logged.
func (f *failLog) failed(now time.Time, remote, path string, reason error) bool {
	f.mu.Lock()
	if !f.last.IsZero() && now.Sub(f.last) < f.every {
		f.suppressed++
		f.mu.Unlock()
		return false
	}
	f.last = now
	n := f.suppressed
	f.suppressed = 0
	f.mu.Unlock()
	attrs := []any{"remote", remote, "path", path, "reason", reason.Error()}
	if n > 0 {
		attrs = append(attrs, "suppressed", n)
	}
	f.log.Warn("authentication failed", attrs...)
	return true
}

// warnIfWorldReadable warns at start about a secret_file that every user
// of the machine may read.
func warnIfWorldReadable(log *slog.Logger, file string) {
	if file != "" && auth.WorldReadable(file) {
		log.Warn("auth.secret_file is readable by every user of this machine: anyone with a shell here can mint operator tokens; make it private (chmod 600, or 640 with the gateway's group)", "file", file)
	}
}

// authFailed logs (rate-limited) a request whose credentials were refused.
// The reasons are the auth package's and the gateway's own texts, which
// never hold the token.
func (g *Gateway) authFailed(r *http.Request, reason error) {
	if g.authFails != nil && reason != nil {
		g.authFails.failed(time.Now(), r.RemoteAddr, r.URL.Path, reason)
	}
}
