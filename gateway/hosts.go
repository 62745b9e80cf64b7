package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/edgegate/edgegate/gateway/config"
)

// The Host check and the gateway's own origins: a defence against DNS
// rebinding. A page on evil.example whose name the attacker then points
// at 127.0.0.1 is, to the browser, still evil.example: its requests reach
// the gateway with "Host: evil.example:8080" and, on a WebSocket,
// "Origin: http://evil.example:8080". So the gateway answers only to the
// names it knows to be its own, and takes a browser's Origin for its own
// only when that origin names one of them: it never trusts what the
// request's Host claims.
//
// The gateway's own names are:
//
//   - loopback: localhost and every loopback address (127.0.0.0/8, ::1);
//   - an IP literal of the listener: the listen address when it is a
//     specific one, and, whatever it is, the local address of the very
//     connection the request came on (so with listen: 0.0.0.0:8080 every
//     address of every interface of this machine that a client actually
//     reached works, and none other);
//   - the machine's host name (the name the sign-in link is printed with
//     when listening on 0.0.0.0) and its mDNS name (<host name>.local), a
//     listen address given as a name, the host of gateway.public_url, and
//     every entry of gateway.allowed_hosts.
//
// An IP literal is never what a rebinding attack sends (rebinding needs a
// DNS name that the attacker controls), so allowing the listener's
// addresses costs nothing; nor can an attacker's page be served under
// this machine's own host name or a .local name, which public DNS does
// not resolve.
//
// The check refuses requests with any other Host (403, on every endpoint,
// before anything else) when auth is off, where a rebound page would
// otherwise be an operator, and when gateway.allowed_hosts is set. With
// auth on and no allowed_hosts, requests by other names are served (a
// rebound page holds no token and gets no cookie, which is bound to the
// real name) but browsers' Origins are still judged by the list above.

// hostPolicy is the gateway's own names and origins, fixed at start.
type hostPolicy struct {
	// enforce: requests naming another Host get 403.
	enforce bool
	names   map[string]bool // lower case, no trailing dot
	ips     []net.IP
	// origins are allowed_origins and public_url's origin.
	origins []string
	scheme  string // the listener's: http or https
	// listenPort is the configured port, for requests that came on no
	// connection (handlers called directly).
	listenPort string
}

func newHostPolicy(cfg *config.Config, tls bool) *hostPolicy {
	p := &hostPolicy{names: map[string]bool{}, scheme: "http", enforce: !cfg.Auth.Enabled || len(cfg.Gateway.AllowedHosts) > 0}
	if tls {
		p.scheme = "https"
	}
	add := func(h string) {
		h = normHost(h)
		if h == "" {
			return
		}
		if ip := net.ParseIP(h); ip != nil {
			p.ips = append(p.ips, ip)
			return
		}
		p.names[h] = true
	}
	if host, port, err := net.SplitHostPort(cfg.Gateway.Listen); err == nil {
		p.listenPort = port
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			add(host)
		}
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		add(h)
		if !strings.Contains(h, ".") {
			add(h + ".local") // its mDNS name, as raspberrypi.local
		}
	}
	for _, h := range cfg.Gateway.AllowedHosts {
		add(h)
	}
	if pu := cfg.Gateway.PublicURL; pu != "" {
		if u, err := url.Parse(pu); err == nil && u.Host != "" {
			add(u.Hostname())
			p.origins = append(p.origins, u.Scheme+"://"+u.Host)
		}
	}
	p.origins = append(p.origins, cfg.Gateway.AllowedOrigins...)
	return p
}

// normHost is h without port, brackets and trailing dot, in lower case.
func normHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// localAddr is the local address of the connection r came on (nil for a
// request that came on none).
func localAddr(ctx context.Context) *net.TCPAddr {
	a, _ := ctx.Value(http.LocalAddrContextKey).(net.Addr)
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta
	}
	if a != nil {
		if ap, err := net.ResolveTCPAddr("tcp", a.String()); err == nil {
			return ap
		}
	}
	return nil
}

// own reports whether host (a Host header, or the host of an Origin) is
// one of the gateway's names; local is the connection's local address.
func (p *hostPolicy) own(host string, local *net.TCPAddr) bool {
	h := normHost(host)
	if h == "" {
		return false
	}
	if h == "localhost" {
		return true
	}
	if ip := net.ParseIP(h); ip != nil {
		if ip.IsLoopback() || local != nil && ip.Equal(local.IP) {
			return true
		}
		for _, o := range p.ips {
			if ip.Equal(o) {
				return true
			}
		}
		return false
	}
	return p.names[h]
}

// guard is the Host check in front of every endpoint.
func (p *hostPolicy) guard(next http.Handler) http.Handler {
	if !p.enforce {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.own(r.Host, localAddr(r.Context())) {
			port := p.listenPort
			if l := localAddr(r.Context()); l != nil {
				port = fmt.Sprint(l.Port)
			}
			name := normHost(r.Host)
			http.Error(w, fmt.Sprintf("this gateway does not answer to the host name %q (a defence against DNS rebinding). "+
				"Open it at %s://localhost:%s/ or at one of its IP addresses, or, if %q is a name of this gateway, "+
				"add it to gateway.allowed_hosts in the configuration and restart", name, p.scheme, port, name), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// originAllowed reports whether a browser's Origin is one of the
// gateway's own or an allowed one: scheme, one of the gateway's names and
// the port the request came on, never what its Host header says.
func (p *hostPolicy) originAllowed(origin string, r *http.Request) bool {
	for _, o := range p.origins {
		if strings.EqualFold(origin, o) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Scheme, p.scheme) || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[p.scheme]
	}
	local := localAddr(r.Context())
	want := p.listenPort
	if local != nil {
		want = fmt.Sprint(local.Port)
	}
	return port == want && p.own(u.Host, local)
}
