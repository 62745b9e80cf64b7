// Package gateway is edgegate's HTTP and WebSocket side: the handshake and
// its gates, the sessions of each subprotocol, heartbeats, the relay service
// and health reporting.
package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edgegate/edgegate/drivers"
	"github.com/edgegate/edgegate/gateway/auth"
	"github.com/edgegate/edgegate/gateway/automation"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/hardware"
	"github.com/edgegate/edgegate/gateway/mqtt"
	"github.com/edgegate/edgegate/gateway/relay"
	"github.com/edgegate/edgegate/gateway/sensor"
	"github.com/edgegate/edgegate/gateway/uplink"
	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
)

// socketSendBuffer is the kernel send buffer of a WebSocket connection:
// enough for bursts at loopback and LAN speeds, small enough that samples
// do not queue in the kernel for seconds behind a slow reader.
const socketSendBuffer = 64 << 10

// Options configure a Gateway.
type Options struct {
	Config  *config.Config
	Version string
	Buses   drivers.Buses
	Logger  *slog.Logger
	// SessionSecret signs browser sessions and dashboard tokens when the
	// config has no auth secret; it should outlive restarts.
	SessionSecret []byte
	// Sim, when set, is mounted under /sim/ (the simulator's control API).
	Sim http.Handler
	// DataDir holds state that outlives a restart: the uplink's buffer
	// and the saved relay states. Needed with upstream or initial: restore.
	DataDir string
	// EchoEndpoint mounts GET /echo, an echo service over the same
	// connection layer, for conformance suites (see echo.go).
	EchoEndpoint bool
}

// Gateway serves the dashboard, the WebSocket subprotocols and health.
type Gateway struct {
	cfg       *config.Config
	version   string
	log       *slog.Logger
	started   time.Time
	relays    *relay.Service
	hub       *sensor.Hub
	autos     *automation.Engine  // the automations section (may have none)
	devices   *drivers.DevicePool // serial devices shared by relays and sensors
	mux       *http.ServeMux
	handler   http.Handler // mux behind the Host check (hosts.go)
	hosts     *hostPolicy
	srv       *http.Server
	auth      *auth.Authenticator // nil: auth disabled, everyone is an operator
	gate      *connGate
	metrics   *gatewayMetrics
	writers   *wsconn.WriterConfig // what the connections' writers share
	signin    *signIn              // nil: auth disabled
	authFails *failLog             // nil: auth disabled
	tls       *tls.Config          // nil: plain http:// and ws://

	uplink *uplink.Uplink // nil: no upstream
	mqtt   *mqtt.Bridge   // nil: no mqtt section

	// services maps each supported subprotocol to the start of its
	// sessions.
	services map[string]service

	mu       sync.Mutex
	sessions map[*peer]struct{}
	closing  bool
	wg       sync.WaitGroup // one per running session
}

// peer is what the gate learned about a connection before it was upgraded.
type peer struct {
	protocol string
	role     string
	who      string // key name, for logs
	remote   string
	conn     *wsconn.Conn
}

// New opens the devices and drives every relay to its initial state. A
// start that fails half-way closes what it had opened, last first.
func New(opts Options) (_ *Gateway, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{
		cfg: opts.Config, version: opts.Version, log: opts.Logger, started: time.Now(),
		sessions: map[*peer]struct{}{}, metrics: newGatewayMetrics(),
	}
	if a := opts.Config.Auth; a.Enabled {
		secret, err := auth.LoadSecret(a.Secret, a.SecretFile)
		if err != nil {
			return nil, err
		}
		warnIfWorldReadable(g.log, a.SecretFile)
		g.auth = &auth.Authenticator{Secret: secret, MaxTTL: time.Duration(a.MaxTokenTTL)}
		for _, k := range a.Keys {
			g.auth.Keys = append(g.auth.Keys, auth.Key{Name: k.Name, Key: k.Key, Role: k.Role})
		}
		// Browser sessions are signed tokens: with no secret in the config
		// they are signed with the one main keeps in the data dir (or, in
		// tests, one made now, which a restart forgets).
		if len(g.auth.Secret) == 0 {
			g.auth.Secret = opts.SessionSecret
		}
		if len(g.auth.Secret) == 0 {
			g.auth.Secret = []byte(randomToken(32))
		}
		g.signin = newSignIn(opts.Config, newSessionStore(opts.DataDir, opts.Logger))
		g.authFails = &failLog{log: opts.Logger, every: authFailLogEvery}
	}
	// Checks that can fail come before any device is opened or driven.
	if t := opts.Config.Gateway.TLS; t != nil {
		certs, err := newCertReloader(t)
		if err != nil {
			return nil, err
		}
		g.tls = certs.tlsConfig()
	}
	g.hosts = newHostPolicy(opts.Config, g.tls != nil)
	// The first level a relay sees is its initial one; with restore, the
	// last state saved (off when none was).
	initial, err := relay.LoadInitial(opts.DataDir, opts.Config, opts.Logger)
	if err != nil {
		return nil, err
	}

	// From here on each step that opens something says how to close it.
	var opened closers
	defer func() {
		if err != nil {
			opened.closeAll()
		}
	}()
	g.devices = hardware.NewDevicePool(opts.Config.Devices, opts.Buses, opts.Logger)
	opened.push(func() { g.devices.Close() })
	env := hardware.Env{Buses: opts.Buses, Logger: opts.Logger, Sim: opts.Sim != nil, Relays: opts.Config.Relays, Initial: initial.On, Devices: g.devices, DataDir: opts.DataDir}
	if g.relays, err = relay.New(opts.Config, env, relay.Options{Initial: initial, Metrics: g.metrics, Watchdog: time.Duration(opts.Config.Gateway.Watchdog)}); err != nil {
		return nil, err
	}
	opened.push(func() { g.relays.Shutdown(context.Background()) })
	g.writers = newWriterConfig(opts.Config, g.metrics)
	if g.hub, err = sensor.New(opts.Config, env, sensorMetrics{g.metrics}); err != nil {
		return nil, err
	}
	opened.push(g.hub.Stop)
	if g.autos, err = automation.New(automation.Options{Config: opts.Config, Relays: g.relays, Sensors: g.hub, DataDir: opts.DataDir, Log: opts.Logger}); err != nil {
		return nil, err
	}
	opened.push(g.autos.Stop)
	g.services = map[string]service{
		protocol.RelayControlV1: (&relayControl{relays: g.relays, automations: g.autos, id: opts.Config.Gateway.ID, version: opts.Version, log: opts.Logger}).start,
		protocol.SensorStreamV1: (&sensorStream{hub: g.hub, id: opts.Config.Gateway.ID, version: opts.Version, queue: opts.Config.Gateway.Limits.SubscriberQueue}).start,
	}
	if up := opts.Config.Upstream; up != nil {
		g.uplink, err = uplink.New(uplink.Options{Upstream: up, Gateway: opts.Config.Gateway, Version: opts.Version,
			DataDir: opts.DataDir, Relays: g.relays, Hub: g.hub, Logger: opts.Logger})
		if err != nil {
			return nil, err
		}
	}
	if m := opts.Config.MQTT; m != nil {
		g.mqtt, err = mqtt.New(mqtt.Options{MQTT: m, Config: opts.Config, Version: opts.Version,
			DataDir: opts.DataDir, Relays: g.relays, Hub: g.hub, Logger: opts.Logger})
		if err != nil {
			return nil, err
		}
		opened.push(g.mqtt.Close)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g.relays.Start(ctx) // also saves the states to restore and arms the watchdog
	g.hub.Start()
	g.autos.Start() // after the relays' initial states
	if g.uplink != nil {
		g.uplink.Start()
	}
	if g.mqtt != nil {
		g.mqtt.Start()
	}

	lim := opts.Config.Gateway.Limits
	g.gate = &connGate{max: lim.MaxConnections, maxPerIP: lim.MaxConnectionsPerIP, perIP: map[string]int{}}
	g.mux = http.NewServeMux()
	g.mountDashboard(g.mux)
	g.mux.HandleFunc("GET /ws", g.serveWS)
	if opts.EchoEndpoint {
		g.mux.HandleFunc("GET /echo", g.serveEcho)
	}
	g.mux.HandleFunc("GET /healthz", g.serveHealth)
	g.mux.HandleFunc("GET /metrics", g.metricsAccess(g.serveMetrics))
	if opts.Sim != nil {
		g.mux.Handle("/sim/", g.simAccess(opts.Sim))
	}
	g.handler = g.hosts.guard(g.mux)
	g.srv = &http.Server{
		Handler:           g.handler,
		ReadHeaderTimeout: time.Duration(lim.HandshakeTimeout),
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	return g, nil
}

// Handler is the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Scheme is "https" when the gateway serves TLS, else "http".
func (g *Gateway) Scheme() string {
	if g.tls != nil {
		return "https"
	}
	return "http"
}

// Serve accepts connections on ln until Shutdown (over TLS when the
// configuration has a certificate).
func (g *Gateway) Serve(ln net.Listener) error {
	if g.tls != nil {
		ln = tls.NewListener(ln, g.tls)
	}
	err := g.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, closes every session with 1001 (going away),
// then puts the relays into their failsafe states and closes the devices.
func (g *Gateway) Shutdown(ctx context.Context) error {
	// Sessions still in their handshake have no conn yet; serveWS closes
	// those itself once it sees closing.
	g.mu.Lock()
	g.closing = true
	conns := make([]*wsconn.Conn, 0, len(g.sessions))
	for p := range g.sessions {
		if p.conn != nil {
			conns = append(conns, p.conn)
		}
	}
	g.mu.Unlock()
	err := g.srv.Shutdown(ctx)
	var closers sync.WaitGroup
	for _, c := range conns {
		closers.Add(1)
		go func() {
			defer closers.Done()
			c.Close(ws.StatusGoingAway, "gateway shutting down")
		}()
	}
	closers.Wait()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		g.log.Warn("sessions still running at shutdown deadline")
	}
	g.autos.Stop() // before the failsafe states: nothing switches after them
	g.hub.Stop()
	g.relays.Shutdown(ctx) // stops the watchdog; the failsafe states are not saved for restore
	if g.uplink != nil {
		// After the failsafe, so that the backend gets the final states.
		g.uplink.Stop(ctx)
	}
	if g.mqtt != nil {
		// Likewise: the failsafe states, then status offline.
		g.mqtt.Stop(ctx)
	}
	g.devices.Close()
	return err
}

func (g *Gateway) supported() []string {
	names := make([]string, 0, len(g.services))
	for n := range g.services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// negotiate picks the first offered subprotocol that the gateway supports,
// in the client's order of preference.
func (g *Gateway) negotiate(h http.Header) string {
	for _, line := range h.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(line, ",") {
			p = strings.TrimSpace(p)
			if _, ok := g.services[p]; ok {
				return p
			}
		}
	}
	return ""
}

// authenticate returns the identity behind the request's token. With auth
// disabled every client is an operator.
func (g *Gateway) authenticate(r *http.Request) (role, who string, err error) {
	if g.auth == nil {
		return protocol.RoleOperator, "", nil
	}
	tok := r.URL.Query().Get("token")
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", "", errors.New("the Authorization header must be \"Bearer <token>\"")
		}
		tok = strings.TrimSpace(rest)
	}
	if tok == "" {
		return "", "", errors.New("a token is required: send \"Authorization: Bearer <token>\" or add ?token=<token> to the URL")
	}
	id, err := g.auth.Check(tok, time.Now())
	if err != nil {
		return "", "", err
	}
	return id.Role, id.Name, nil
}

func (g *Gateway) serveWS(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		w.Header().Set("Upgrade", "websocket")
		g.metrics.reject(rejectNotWebSocket)
		http.Error(w, "this endpoint speaks WebSocket only; connect with a WebSocket client offering one of: "+strings.Join(g.supported(), ", "), http.StatusUpgradeRequired)
		return
	}
	if err := g.checkOrigin(r); err != nil {
		g.metrics.reject(rejectOrigin)
		refuse(w, http.StatusForbidden, err)
		return
	}
	proto := g.negotiate(r.Header)
	if proto == "" {
		g.metrics.reject(rejectSubprotocol)
		http.Error(w, "no supported subprotocol offered in Sec-WebSocket-Protocol; supported: "+strings.Join(g.supported(), ", "), http.StatusBadRequest)
		return
	}
	role, who, err := g.authenticate(r)
	if err != nil {
		g.authFailed(r, err)
		g.metrics.reject(rejectAuth)
		refuse(w, http.StatusUnauthorized, err)
		return
	}
	release, err := g.gate.admit(r.RemoteAddr)
	if err != nil {
		g.log.Warn("connection refused", "remote", r.RemoteAddr, "reason", err)
		g.metrics.reject(rejectCapacity)
		refuse(w, http.StatusServiceUnavailable, err)
		return
	}
	// Once the connection is upgraded, the session runs in a goroutine of
	// its own (handedOff), which then releases the admission and ends the
	// session.
	handedOff := false
	defer func() {
		if !handedOff {
			release()
		}
	}()
	p := &peer{protocol: proto, role: role, who: who, remote: r.RemoteAddr}
	if !g.register(w, p) {
		return
	}
	defer func() {
		if !handedOff {
			g.endSession(p)
		}
	}()

	deflate := g.deflateNegotiator(true)
	up := ws.HTTPUpgrader{Protocol: func(s string) bool { return s == proto }, Negotiate: deflate.Negotiate}
	c := g.upgrade(w, r, p, up, deflate, g.cfg.Gateway.Limits.MaxMessageBytes)
	if c == nil {
		return
	}
	// The session is set up here, then runs in a fresh goroutine, so that
	// this one returns and net/http lets go of the request, the response
	// and its deep stack: for the connection's life only the session's
	// shallow one is kept (see reader.serve).
	handedOff = true
	g.logSession("session start", p)
	o, handle, end := g.services[proto](p)
	s := g.startSession(c, p, o, handle)
	go func() {
		defer release()
		defer g.endSession(p)
		defer g.logSession("session end", p)
		defer end()
		s.serve()
	}()
}

// A service starts a session of its subprotocol for p: it queues the hello
// and returns the session's outbox, the handler of each message it
// receives, and end, which undoes the start once the session is over.
type service func(p *peer) (o *outbox, handle func(payload []byte), end func())

// logSession logs a session's start or end at debug level.
func (g *Gateway) logSession(msg string, p *peer) {
	g.log.Debug(msg, "protocol", p.protocol, "remote", p.remote, "role", p.role, "key", p.who)
}

// register counts a session in, so that Shutdown waits for it and closes
// it; while the gateway shuts down it answers 503 instead and reports false.
// A registered session ends with endSession.
func (g *Gateway) register(w http.ResponseWriter, p *peer) bool {
	g.mu.Lock()
	closing := g.closing
	if !closing {
		g.sessions[p] = struct{}{}
		g.wg.Add(1)
	}
	g.mu.Unlock()
	if closing {
		w.Header().Set("Retry-After", "5")
		g.metrics.reject(rejectShutdown)
		http.Error(w, "the gateway is shutting down", http.StatusServiceUnavailable)
	}
	return !closing
}

// upgrade completes the handshake of a registered session and returns its
// connection, attached to p so that Shutdown can close it. It returns nil
// when the upgrade failed, or when shutdown began meanwhile: then it has
// run the closing handshake (1001) and closed the connection itself.
func (g *Gateway) upgrade(w http.ResponseWriter, r *http.Request, p *peer, up ws.HTTPUpgrader, deflate *wsconn.DeflateNegotiator, maxMessage int) *wsconn.Conn {
	nc, rw, _, err := up.Upgrade(r, w)
	if err != nil {
		g.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return nil
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		// Bound what the kernel buffers for a peer. Left to autotuning it
		// grows to megabytes, where a slow subscriber's samples go stale
		// instead of reaching its bounded queue, which drops the oldest.
		tc.SetWriteBuffer(socketSendBuffer)
	}
	// The HTTP server's 4 KiB reader is kept only while it holds bytes the
	// client sent right after its handshake; otherwise the connection reads
	// through a small one of its own (an idle connection holds little).
	br := rw.Reader
	if br.Buffered() == 0 {
		br = nil
	}
	lim := g.cfg.Gateway.Limits
	c := wsconn.New(nc, br, wsconn.Config{
		MaxMessageBytes: maxMessage,
		IdleTimeout:     time.Duration(g.cfg.Gateway.Heartbeat.Timeout),
		WriteTimeout:    time.Duration(lim.WriteTimeout),
		Deflate:         deflate.Accepted(),
	})
	g.mu.Lock()
	p.conn = c
	closing := g.closing
	g.mu.Unlock()
	if closing {
		c.Close(ws.StatusGoingAway, "gateway shutting down")
		c.ReadMessage() // waits for the peer's close (or the linger), then closes
		return nil
	}
	return c
}

func (g *Gateway) endSession(p *peer) {
	g.mu.Lock()
	delete(g.sessions, p)
	g.mu.Unlock()
	g.wg.Done()
}

// connections counts sessions by subprotocol.
func (g *Gateway) connections() map[string]int {
	counts := map[string]int{protocol.RelayControlV1: 0, protocol.SensorStreamV1: 0}
	g.mu.Lock()
	defer g.mu.Unlock()
	for p := range g.sessions {
		if p.conn != nil {
			counts[p.protocol]++
		}
	}
	return counts
}

// deviceHealth is one entry of /healthz's devices.
type deviceHealth struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	// State is a serial device's connection: connected, connecting,
	// reconnecting or closed (absent for relays and sensors).
	State string `json:"state,omitempty"`
}

// deviceHealth is every relay, sensor device and serial device, with its
// state.
func (g *Gateway) deviceHealth() []deviceHealth {
	var devices []deviceHealth
	for _, r := range g.relays.Health(nil) {
		devices = append(devices, deviceHealth{Name: r.Name, OK: r.OK, Error: r.Error})
	}
	g.hub.Devices(func(name, lastErr string) {
		devices = append(devices, deviceHealth{Name: name, OK: lastErr == "", Error: lastErr})
	})
	for _, d := range g.devices.Status() {
		devices = append(devices, deviceHealth{Name: d.Name, OK: d.OK, Error: d.Error, State: d.State})
	}
	return devices
}

func (g *Gateway) serveHealth(w http.ResponseWriter, r *http.Request) {
	if detail, ok := g.healthDetail(w, r); !ok {
		return
	} else if !detail {
		writeStatusOnly(w, "ok")
		return
	}
	// status is the gateway's own ("ok" while it serves); each device's
	// health is in devices, summed up in devices_ok.
	devices := g.deviceHealth()
	allOK := true
	for _, d := range devices {
		allOK = allOK && d.OK
	}
	body := struct {
		Status      string         `json:"status"`
		Version     string         `json:"version"`
		Gateway     string         `json:"gateway"`
		UptimeS     float64        `json:"uptime_s"`
		Connections map[string]int `json:"connections"`
		Devices     []deviceHealth `json:"devices"`
		DevicesOK   bool           `json:"devices_ok"`
		Uplink      *uplink.Health `json:"uplink,omitempty"`
		MQTT        *mqtt.Health   `json:"mqtt"`
	}{"ok", g.version, g.cfg.Gateway.ID, time.Since(g.started).Seconds(), g.connections(), devices, allOK, nil, g.mqtt.Health()}
	if g.uplink != nil {
		body.Uplink = g.uplink.Health()
	}
	if body.Devices == nil {
		body.Devices = []deviceHealth{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(body)
}
