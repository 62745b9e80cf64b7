// Command baseline is the yardstick for edgegate's benchmarks: a minimal,
// idiomatic gorilla/websocket server doing the gateway's job the way a user
// would otherwise write it. It speaks just enough of relay-control.v1
// (hello, set → reply after the "write", a state event to every client)
// and sensor-stream.v1 (hello, subscribe, samples of one synthetic sine
// sensor broadcast at a fixed rate, JSON or binary records, a dropped
// notice when a client's queue overflows).
//
// It follows the shape of gorilla's chat example: one reader and one
// writer goroutine per connection, a buffered send channel per client,
// encoding/json for messages, each sample encoded once and shared, and the
// writer coalescing queued binary records into one message.
//
// It lives in a module of its own so that gorilla/websocket never enters
// the gateway's dependencies.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

const (
	relayProto  = "relay-control.v1"
	sensorProto = "sensor-stream.v1"
	recordSize  = 32
	pingEvery   = 15 * time.Second
	idleTimeout = 45 * time.Second
	writeWait   = 10 * time.Second
)

var upgrader = websocket.Upgrader{
	Subprotocols: []string{relayProto, sensorProto},
	CheckOrigin:  func(*http.Request) bool { return true }, // loopback benchmark only
}

// msg is one message queued for a client.
type msg struct {
	data   []byte
	binary bool
	sample bool
}

type client struct {
	conn    *websocket.Conn
	send    chan msg
	dropped atomic.Uint64
	done    chan struct{}
	once    sync.Once
	// sensor-stream subscription
	subscribed atomic.Bool
	binary     atomic.Bool
}

func (c *client) close() { c.once.Do(func() { close(c.done) }) }

// queue hands m to the writer without blocking. Samples are dropped (and
// counted) when the queue is full; anything else marks the client as too
// slow and disconnects it, as gorilla's chat example does.
func (c *client) queue(m msg) {
	select {
	case c.send <- m:
	case <-c.done:
	default:
		if m.sample {
			c.dropped.Add(1)
			return
		}
		c.close()
	}
}

type server struct {
	queue  int
	mu     sync.Mutex
	relays map[string]bool
	order  []string
	rcs    map[*client]struct{} // relay-control clients
	scs    map[*client]struct{} // sensor-stream clients
	seq    uint64
}

type relayInfo struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	Driver    string `json:"driver"`
	ChangedAt int64  `json:"changed_at"`
}

type request struct {
	ID      json.RawMessage `json:"id,omitempty"`
	Op      string          `json:"op"`
	Relay   string          `json:"relay"`
	State   string          `json:"state"`
	Sensors []string        `json:"sensors"`
	Format  string          `json:"format"`
}

type relayReply struct {
	ID    json.RawMessage `json:"id,omitempty"`
	OK    bool            `json:"ok"`
	Relay string          `json:"relay,omitempty"`
	State string          `json:"state,omitempty"`
	Error *replyError     `json:"error,omitempty"`
}

type replyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type stateEvent struct {
	Event  string `json:"event"`
	Relay  string `json:"relay"`
	State  string `json:"state"`
	Source string `json:"source"`
	TS     int64  `json:"ts"`
}

type sampleJSON struct {
	Sensor string  `json:"sensor"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	TS     int64   `json:"ts"`
	Seq    uint64  `json:"seq"`
}

func (s *server) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &client{conn: conn, send: make(chan msg, s.queue), done: make(chan struct{})}
	var hello []byte
	s.mu.Lock()
	switch conn.Subprotocol() {
	case relayProto:
		s.rcs[c] = struct{}{}
		list := make([]relayInfo, 0, len(s.order))
		for _, n := range s.order {
			list = append(list, relayInfo{Name: n, State: onOff(s.relays[n]), Driver: "gpio"})
		}
		hello, _ = json.Marshal(map[string]any{"event": "hello", "gateway": "gorilla-baseline", "version": "baseline", "role": "operator", "relays": list})
	case sensorProto:
		s.scs[c] = struct{}{}
		hello, _ = json.Marshal(map[string]any{"event": "hello", "gateway": "gorilla-baseline", "version": "baseline", "role": "operator",
			"sensors": []map[string]any{{"name": "wave.value", "unit": "", "index": 0, "interval_ms": 0}}})
	default:
		s.mu.Unlock()
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseProtocolError, "offer relay-control.v1 or sensor-stream.v1"), time.Now().Add(time.Second))
		conn.Close()
		return
	}
	s.mu.Unlock()
	c.queue(msg{data: hello})
	go s.writePump(c)
	s.readPump(c)
	s.mu.Lock()
	delete(s.rcs, c)
	delete(s.scs, c)
	s.mu.Unlock()
	c.close()
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func (s *server) readPump(c *client) {
	defer c.conn.Close()
	c.conn.SetReadLimit(64 << 10)
	c.conn.SetReadDeadline(time.Now().Add(idleTimeout))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(idleTimeout)) })
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		c.conn.SetReadDeadline(time.Now().Add(idleTimeout))
		var req request
		if err := json.Unmarshal(data, &req); err != nil {
			s.reply(c, relayReply{OK: false, Error: &replyError{"bad_request", err.Error()}})
			continue
		}
		switch req.Op {
		case "set":
			s.set(c, &req)
		case "subscribe":
			c.binary.Store(req.Format == "binary")
			c.subscribed.Store(true)
			b, _ := json.Marshal(map[string]any{"id": req.ID, "ok": true, "sensors": []string{"wave.value"}})
			c.queue(msg{data: b})
		default:
			s.reply(c, relayReply{ID: req.ID, Error: &replyError{"unknown_op", "unknown op " + strconv.Quote(req.Op)}})
		}
	}
}

func (s *server) reply(c *client, r relayReply) {
	b, _ := json.Marshal(r)
	c.queue(msg{data: b})
}

// set "drives" the relay, replies, and tells every relay-control client.
func (s *server) set(c *client, req *request) {
	if req.State != "on" && req.State != "off" {
		s.reply(c, relayReply{ID: req.ID, Error: &replyError{"bad_request", `set needs "state": "on" or "off"`}})
		return
	}
	s.mu.Lock()
	if _, ok := s.relays[req.Relay]; !ok {
		s.mu.Unlock()
		s.reply(c, relayReply{ID: req.ID, Error: &replyError{"unknown_relay", fmt.Sprintf("no relay named %q", req.Relay)}})
		return
	}
	s.relays[req.Relay] = req.State == "on"
	ev, _ := json.Marshal(stateEvent{Event: "state", Relay: req.Relay, State: req.State, Source: "client", TS: time.Now().UnixMilli()})
	s.reply(c, relayReply{ID: req.ID, OK: true, Relay: req.Relay, State: req.State})
	for o := range s.rcs {
		o.queue(msg{data: ev})
	}
	s.mu.Unlock()
}

// writePump owns the connection's writes: queued messages, a dropped
// notice before the next sample, and pings.
func (s *server) writePump(c *client) {
	ping := time.NewTicker(pingEvery)
	defer func() {
		ping.Stop()
		c.conn.Close()
	}()
	var bin []byte
	for {
		select {
		case m := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if m.sample {
				if n := c.dropped.Swap(0); n > 0 {
					if err := c.conn.WriteMessage(websocket.TextMessage, []byte(`{"event":"dropped","count":`+strconv.FormatUint(n, 10)+`}`)); err != nil {
						return
					}
				}
			}
			if !m.binary {
				if err := c.conn.WriteMessage(websocket.TextMessage, m.data); err != nil {
					return
				}
				continue
			}
			// Coalesce the binary records already queued into one message.
			bin = append(bin[:0], m.data...)
		more:
			for len(bin) < 64<<10 {
				select {
				case n := <-c.send:
					if !n.binary {
						if err := c.conn.WriteMessage(websocket.BinaryMessage, bin); err != nil {
							return
						}
						bin = bin[:0]
						if err := c.conn.WriteMessage(websocket.TextMessage, n.data); err != nil {
							return
						}
						break more
					}
					bin = append(bin, n.data...)
				default:
					break more
				}
			}
			if len(bin) > 0 {
				if err := c.conn.WriteMessage(websocket.BinaryMessage, bin); err != nil {
					return
				}
			}
		case <-ping.C:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		case <-c.done:
			return
		}
	}
}

// sample broadcasts sin(2πt/period) every interval until ctx ends.
func (s *server) sample(ctx context.Context, interval, period time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			now = time.Now()
			v := math.Sin(2 * math.Pi * float64(now.UnixNano()%int64(period)) / float64(period))
			s.mu.Lock()
			s.seq++
			js, _ := json.Marshal(sampleJSON{Sensor: "wave.value", Value: v, TS: now.UnixMilli(), Seq: s.seq})
			rec := make([]byte, recordSize)
			binary.LittleEndian.PutUint64(rec[0:], s.seq)
			binary.LittleEndian.PutUint64(rec[8:], uint64(now.UnixNano()))
			binary.LittleEndian.PutUint64(rec[16:], math.Float64bits(v))
			for c := range s.scs {
				if !c.subscribed.Load() {
					continue
				}
				if c.binary.Load() {
					c.queue(msg{data: rec, binary: true, sample: true})
				} else {
					c.queue(msg{data: js, sample: true})
				}
			}
			s.mu.Unlock()
		}
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18081", "listen address")
	rate := flag.Float64("rate", 100, "samples per second of the wave.value sensor")
	nRelays := flag.Int("relays", 16, "relays named r0 … r<n-1>")
	queue := flag.Int("queue", 1024, "per-client send queue")
	flag.Parse()
	if *rate <= 0 || *rate > 100_000 || *nRelays < 1 || *queue < 1 {
		fmt.Fprintln(os.Stderr, "baseline: -rate must be in (0, 100000], -relays and -queue at least 1")
		os.Exit(2)
	}
	s := &server{queue: *queue, relays: map[string]bool{}, rcs: map[*client]struct{}{}, scs: map[*client]struct{}{}}
	for i := 0; i < *nRelays; i++ {
		n := "r" + strconv.Itoa(i)
		s.relays[n] = false
		s.order = append(s.order, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("baseline: listen on %s: %v", *listen, err)
	}
	go s.sample(ctx, time.Duration(float64(time.Second) / *rate), time.Second)
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Printf("baseline serving on %s (%g Hz)", ln.Addr(), *rate)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("baseline: %v", err)
	}
}
