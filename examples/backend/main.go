// Command backend is a small example backend for edgegate's uplink
// (edge-uplink.v1): gateways dial it, it appends their samples to a file of
// JSON lines, acknowledges them once they are on disk, logs relay state
// events, and can send a relay command to a connected gateway.
//
//	backend [--listen 127.0.0.1:9000] [--token T | --token-file F] [--out samples.jsonl]
//
// POST /command takes the same bearer token as the gateways (it switches
// their relays); GET /status needs none.
//
//	POST /command?gateway=greenhouse-pi&relay=pump&state=on    set (state on|off)
//	POST /command?gateway=greenhouse-pi&relay=pump&op=toggle   any relay-control.v1 op (get, set, toggle, pulse&ms=500, list)
//	GET  /status                                               connected gateways and their last seq
//
// Every line of the output file is one sample with the gateway's id added:
//
//	{"gateway":"greenhouse-pi","sensor":"room.temperature","value":21.37,"unit":"°C","ts":1732450000123,"seq":42}
//
// Delivery is at least once: after a reconnect the gateway resends what was
// not acknowledged. The backend drops samples whose seq it already stored
// (it reads the file at start to learn the last seq of each gateway), so
// the file holds each seq once.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/edgegate/edgegate/protocol"
	"github.com/gobwas/ws"
)

const subprotocol = "edge-uplink.v1"

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	token := flag.String("token", "", "bearer token gateways must present")
	tokenFile := flag.String("token-file", "", "file holding the token (instead of --token)")
	out := flag.String("out", "samples.jsonl", "file the samples are appended to")
	idle := flag.Duration("idle-timeout", 60*time.Second, "drop a gateway that sends nothing (not even a ping) for this long")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			log.Error("read token file", "err", err)
			os.Exit(1)
		}
		*token = strings.TrimSpace(string(b))
	}
	if *token == "" {
		fmt.Fprintln(os.Stderr, "backend: give --token or --token-file: gateways must authenticate")
		os.Exit(2)
	}
	b, err := newBackend(*out, *token, *idle, log)
	if err != nil {
		log.Error("open the output file", "err", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	log.Info("backend listening", "url", "http://"+ln.Addr().String()+"/", "uplink", "ws://"+ln.Addr().String()+"/uplink", "out", *out)
	srv := &http.Server{Handler: b.mux(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		b.closeAll()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
	b.wg.Wait()
	b.file.Close()
	log.Info("backend stopped")
}

// backend holds the output file and the connected gateways.
type backend struct {
	token string
	idle  time.Duration
	log   *slog.Logger

	fmu     sync.Mutex // the file and lastSeq
	file    *os.File
	lastSeq map[string]uint64 // per gateway: the highest seq stored
	line    []byte

	mu    sync.Mutex
	conns map[string]*gatewayConn
	wg    sync.WaitGroup
}

// gatewayConn is one connected gateway.
type gatewayConn struct {
	id      string
	c       *wsconn.Conn
	mu      sync.Mutex
	nextID  int
	waiting map[string]chan json.RawMessage // request id → its reply
}

func newBackend(path, token string, idle time.Duration, log *slog.Logger) (*backend, error) {
	b := &backend{token: token, idle: idle, log: log, lastSeq: map[string]uint64{}, conns: map[string]*gatewayConn{}}
	// Learn the last seq of each gateway from what is stored.
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var s struct {
				Gateway string `json:"gateway"`
				Seq     uint64 `json:"seq"`
			}
			if json.Unmarshal(sc.Bytes(), &s) == nil && s.Seq > b.lastSeq[s.Gateway] {
				b.lastSeq[s.Gateway] = s.Seq
			}
		}
		f.Close()
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	b.file = f
	return b, nil
}

func (b *backend) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /uplink", b.serveUplink)
	m.HandleFunc("POST /command", b.serveCommand)
	m.HandleFunc("GET /status", b.serveStatus)
	return m
}

// authorized reports whether r carries the backend's token as a bearer
// token, compared in constant time; if not, it answers 401 itself.
func (b *backend) authorized(w http.ResponseWriter, r *http.Request, who string) bool {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(b.token)) == 1 {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="backend"`)
	http.Error(w, "a valid bearer token is required: send \"Authorization: Bearer <token>\"", http.StatusUnauthorized)
	b.log.Warn("refused "+who+": bad or missing token", "remote", r.RemoteAddr)
	return false
}

func (b *backend) serveUplink(w http.ResponseWriter, r *http.Request) {
	if !b.authorized(w, r, "a gateway") {
		return
	}
	offered := false
	for _, line := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(line, ",") {
			offered = offered || strings.TrimSpace(p) == subprotocol
		}
	}
	if !offered {
		http.Error(w, "offer the "+subprotocol+" subprotocol", http.StatusBadRequest)
		return
	}
	up := ws.HTTPUpgrader{Protocol: func(p string) bool { return p == subprotocol }}
	nc, rw, _, err := up.Upgrade(r, w)
	if err != nil {
		b.log.Warn("upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	b.wg.Add(1)
	defer b.wg.Done()
	c := wsconn.New(nc, rw.Reader, wsconn.Config{MaxMessageBytes: 1 << 20, IdleTimeout: b.idle, WriteTimeout: 10 * time.Second})
	b.serveGateway(c, r.RemoteAddr)
}

// serveGateway reads one gateway's messages until it goes away.
func (b *backend) serveGateway(c *wsconn.Conn, remote string) {
	gc := &gatewayConn{c: c, waiting: map[string]chan json.RawMessage{}}
	defer func() {
		c.CloseNow()
		b.mu.Lock()
		if gc.id != "" && b.conns[gc.id] == gc {
			delete(b.conns, gc.id)
		}
		b.mu.Unlock()
		if gc.id != "" {
			b.log.Info("gateway disconnected", "gateway", gc.id)
		}
	}()
	var ack []byte
	for {
		op, payload, err := c.ReadMessage()
		if err != nil {
			return
		}
		if op != ws.OpText {
			c.Close(ws.StatusUnsupportedData, "JSON text messages only")
			return
		}
		var m struct {
			Event   string            `json:"event"`
			Gateway string            `json:"gateway"`
			Samples []json.RawMessage `json:"samples"`
			Relay   string            `json:"relay"`
			State   string            `json:"state"`
			Source  string            `json:"source"`
			Sensor  string            `json:"sensor"`
			Message string            `json:"message"`
			ID      json.RawMessage   `json:"id"`
			Relays  []json.RawMessage `json:"relays"`
			Sensors []json.RawMessage `json:"sensors"`
		}
		if err := json.Unmarshal(payload, &m); err != nil {
			b.log.Warn("bad message from gateway", "gateway", gc.id, "err", err)
			continue
		}
		switch {
		case m.Event == "hello":
			if m.Gateway == "" {
				c.Close(ws.StatusPolicyViolation, "hello without a gateway id")
				return
			}
			gc.id = m.Gateway
			b.mu.Lock()
			old := b.conns[gc.id]
			b.conns[gc.id] = gc
			b.mu.Unlock()
			if old != nil {
				old.c.Close(ws.StatusPolicyViolation, "replaced by a newer connection")
			}
			b.log.Info("gateway connected", "gateway", gc.id, "remote", remote, "relays", len(m.Relays), "sensors", len(m.Sensors), "last_seq_stored", b.storedSeq(gc.id))
		case gc.id == "":
			c.Close(ws.StatusPolicyViolation, "hello first")
			return
		case m.Event == "samples":
			last, err := b.store(gc.id, m.Samples)
			if err != nil {
				b.log.Error("cannot store samples; not acknowledging them", "gateway", gc.id, "err", err)
				c.Close(ws.StatusInternalServerError, "storage failure")
				return
			}
			ack = protocol.AppendAck(ack[:0], last)
			if err := c.WriteMessage(ws.OpText, ack); err != nil {
				return
			}
		case m.Event == "state":
			b.log.Info("relay state", "gateway", gc.id, "relay", m.Relay, "state", m.State, "source", m.Source)
		case m.Event == "sensor_error":
			b.log.Warn("sensor error", "gateway", gc.id, "sensor", m.Sensor, "message", m.Message)
		case m.Event != "":
			b.log.Debug("event", "gateway", gc.id, "event", m.Event)
		default: // a reply to a command
			gc.mu.Lock()
			ch := gc.waiting[string(m.ID)]
			delete(gc.waiting, string(m.ID))
			gc.mu.Unlock()
			if ch != nil {
				ch <- append(json.RawMessage(nil), payload...)
			} else {
				b.log.Info("reply", "gateway", gc.id, "msg", string(payload))
			}
		}
	}
}

func (b *backend) storedSeq(id string) uint64 {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	return b.lastSeq[id]
}

// store appends the samples not stored yet, fsyncs, and returns the highest
// seq of the batch (to acknowledge: duplicates are stored already).
func (b *backend) store(id string, samples []json.RawMessage) (uint64, error) {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	last := b.lastSeq[id]
	var ackSeq uint64
	b.line = b.line[:0]
	prefix := fmt.Appendf(nil, `{"gateway":%q,`, id)
	for _, raw := range samples {
		var s struct {
			Seq *uint64 `json:"seq"`
		}
		raw = bytes.TrimSpace(raw)
		if json.Unmarshal(raw, &s) != nil || s.Seq == nil || len(raw) < 2 || raw[0] != '{' {
			return 0, fmt.Errorf("a sample without a seq: %.80s", raw)
		}
		ackSeq = max(ackSeq, *s.Seq)
		if *s.Seq <= last {
			continue // a resend
		}
		if last != 0 && *s.Seq != last+1 {
			b.log.Warn("gap in seq: samples lost upstream (the gateway's buffer bound?)", "gateway", id, "after", last, "next", *s.Seq)
		}
		last = *s.Seq
		b.line = append(b.line, prefix...)
		b.line = append(b.line, raw[1:]...)
		b.line = append(b.line, '\n')
	}
	if len(b.line) > 0 {
		if _, err := b.file.Write(b.line); err != nil {
			return 0, err
		}
		if err := b.file.Sync(); err != nil {
			return 0, err
		}
		b.lastSeq[id] = last
	}
	return ackSeq, nil
}

// serveCommand sends one relay-control request to a gateway and returns
// its reply.
func (b *backend) serveCommand(w http.ResponseWriter, r *http.Request) {
	if !b.authorized(w, r, "a command") {
		return
	}
	q := r.URL.Query()
	id := q.Get("gateway")
	b.mu.Lock()
	gc := b.conns[id]
	if gc == nil && id == "" && len(b.conns) == 1 {
		for _, only := range b.conns {
			gc = only
		}
	}
	b.mu.Unlock()
	if gc == nil {
		http.Error(w, fmt.Sprintf("gateway %q is not connected (give ?gateway=<id>; GET /status lists them)", id), http.StatusNotFound)
		return
	}
	req := map[string]any{}
	op := q.Get("op")
	if op == "" {
		op = "set"
	}
	req["op"] = op
	for _, k := range []string{"relay", "state"} {
		if v := q.Get(k); v != "" {
			req[k] = v
		}
	}
	if v := q.Get("ms"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			http.Error(w, "ms must be a whole number", http.StatusBadRequest)
			return
		}
		req["ms"] = ms
	}
	gc.mu.Lock()
	gc.nextID++
	n := gc.nextID
	reqID := strconv.Itoa(n)
	ch := make(chan json.RawMessage, 1)
	gc.waiting[reqID] = ch
	gc.mu.Unlock()
	req["id"] = n
	msg, _ := json.Marshal(req)
	if err := gc.c.WriteMessage(ws.OpText, msg); err != nil {
		http.Error(w, "send: "+err.Error(), http.StatusBadGateway)
		return
	}
	b.log.Info("command sent", "gateway", gc.id, "request", string(msg))
	select {
	case reply := <-ch:
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(reply, '\n'))
	case <-time.After(10 * time.Second):
		gc.mu.Lock()
		delete(gc.waiting, reqID)
		gc.mu.Unlock()
		http.Error(w, "no reply from the gateway within 10 s", http.StatusGatewayTimeout)
	}
}

func (b *backend) serveStatus(w http.ResponseWriter, r *http.Request) {
	type gw struct {
		Connected bool   `json:"connected"`
		LastSeq   uint64 `json:"last_seq"`
	}
	out := map[string]*gw{}
	b.fmu.Lock()
	for id, seq := range b.lastSeq {
		out[id] = &gw{LastSeq: seq}
	}
	b.fmu.Unlock()
	b.mu.Lock()
	for id := range b.conns {
		if out[id] == nil {
			out[id] = &gw{}
		}
		out[id].Connected = true
	}
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"gateways": out})
}

// closeAll says goodbye to every gateway (close 1001).
func (b *backend) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, gc := range b.conns {
		gc.c.Close(ws.StatusGoingAway, "backend shutting down")
	}
}
