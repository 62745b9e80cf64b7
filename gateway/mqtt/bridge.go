// Package mqtt is the gateway's MQTT bridge (MQTT.md): it publishes the
// gateway's status (with a Last Will), the retained relay states, rate-capped
// retained sensor states, events and every sample (through an on-disk buffer
// of its own, at QoS 1), Home Assistant discovery configs, and carries out
// relay commands with source mqtt. Like the uplink it is a subscriber of
// the relay service and of the sensor hub; it never makes either wait: what
// they hand it is queued, and only the bridge's own goroutines talk to the
// broker.
package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/internal/retry"
	"github.com/edgegate/edgegate/gateway/relay"
	"github.com/edgegate/edgegate/gateway/sensor"
	"github.com/edgegate/edgegate/gateway/spool"
	"github.com/edgegate/edgegate/protocol"
)

// Tuning. The backoff doubles from backoffMin to backoffMax, each wait drawn
// from its upper half (jitter), and starts over once a connection has lasted
// stableAfter. Its cap is lower than the uplink's: a broker is usually on
// the LAN, a reconnection costs it little, and a buffer held back after the
// broker's return is samples late for every consumer (the catch-up of a
// 60 s outage is to take under 5 s from the broker's return: at most 4 s of
// waiting, then about 50 ms of publishing).
const (
	backoffMin  = 500 * time.Millisecond
	backoffMax  = 4 * time.Second
	stableAfter = 10 * time.Second
	dialTimeout = 10 * time.Second
	// batchSamples and batchBytes bound one message on <base>/<id>/samples.
	batchSamples = 256
	batchBytes   = 32 << 10
	// window is how many samples batches may await their PUBACK.
	window = 32
	// queueMax bounds the messages (events, replies, states) waiting to be
	// published; past it events are dropped (counted) and the relay states
	// re-published from a snapshot.
	queueMax = 4096
	// commandQueue bounds the commands waiting to be carried out.
	commandQueue = 64
	// finalWait bounds the wait for the last messages' PUBACKs at Stop.
	finalWait = 3 * time.Second
	// dirName is the bridge's directory in the data dir.
	dirName = "mqtt"
)

// States, as /healthz shows them.
const (
	StateConnecting = "connecting"
	StateConnected  = "connected"
	StateDisabled   = "disabled"
	StateStopped    = "stopped"
)

// Options configure a Bridge.
type Options struct {
	MQTT    *config.MQTT
	Config  *config.Config // the relays, sensors and gateway id
	Version string
	DataDir string // the samples' buffer and the discovery list go in its mqtt/ (required)
	Relays  *relay.Service
	Hub     *sensor.Hub
	Logger  *slog.Logger
	// Fsync is the samples buffer's policy (default batch).
	Fsync spool.Fsync
}

// outMsg is one message waiting to be published by the bridge's goroutine.
type outMsg struct {
	topic    string
	payload  []byte
	retained bool
	qos      byte
	state    bool // a relay state event: also the relay's retained state
}

// command is one command taken from the broker, for the command goroutine.
type command struct {
	relay   string
	payload []byte
	session uint64 // the connection it came in on
}

// latest is a sensor's newest sample, for its state topic.
type latest struct {
	value float64
	ts    int64 // ms
	seq   uint64
	dirty bool
}

// Bridge is the MQTT bridge. New, Start, Stop.
type Bridge struct {
	opts     Options
	cfg      *config.MQTT
	log      *slog.Logger
	id       string // gateway.id as a topic level
	base     string // <base>/<id>
	shown    string // broker URL without credentials
	clientID string
	spool    *spool.Spool // nil with samples: false
	sub      sensor.Subscription
	catalog  []protocol.SensorInfo
	entities []entity // for discovery
	sensorT  []string // state topic by catalog index
	stateGap time.Duration

	qmu     sync.Mutex
	queue   []outMsg
	live    bool // a session is up: events are queued
	resync  bool // events were dropped: re-publish the relay states
	notify  chan struct{}
	haBirth chan struct{}

	lmu    sync.Mutex
	latest []latest
	kick   chan struct{} // sensor_max_hz 0: a sample arrived

	cmds    chan command
	session atomic.Uint64

	mu         sync.Mutex
	state      string
	lastErr    string
	reconnects uint64

	published, received, samplesSent      atomic.Uint64
	cmdsDone, cmdsRefused, cmdsIgnored    atomic.Uint64
	eventsDropped, publishErrors, discPub atomic.Uint64

	cancel context.CancelFunc
	done   chan struct{}
	cmdEnd chan struct{}
}

// New opens the samples buffer, reads the configuration's entities and
// subscribes to every sensor of the hub (whose seq it makes continue after
// the last sample buffered): call it before the hub starts. Start connects.
func New(o Options) (*Bridge, error) {
	m := o.MQTT
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.DataDir == "" {
		return nil, errors.New("mqtt needs a data directory for its samples buffer and discovery list (run with --data-dir DIR)")
	}
	pu, err := url.Parse(m.URL)
	if err != nil {
		return nil, fmt.Errorf("mqtt.url: %w", err)
	}
	b := &Bridge{
		opts: o, cfg: m, log: o.Logger.With("component", "mqtt"),
		id:    protocol.TopicLevel(o.Config.Gateway.ID),
		shown: (&url.URL{Scheme: pu.Scheme, Host: pu.Host}).String(),
		state: StateConnecting, notify: make(chan struct{}, 1), haBirth: make(chan struct{}, 1),
		kick: make(chan struct{}, 1), cmds: make(chan command, commandQueue),
	}
	b.base = m.BaseTopic + "/" + b.id
	b.clientID = m.ClientID
	if b.clientID == "" {
		b.clientID = "edgegate-" + b.id
	}
	if m.SensorMaxHz > 0 {
		b.stateGap = time.Duration(float64(time.Second) / m.SensorMaxHz)
	}
	if o.Hub != nil {
		b.catalog = o.Hub.Catalog()
	}
	b.latest = make([]latest, len(b.catalog))
	for _, s := range b.catalog {
		dev, q, _ := strings.Cut(s.Name, ".")
		b.sensorT = append(b.sensorT, b.base+"/sensor/"+dev+"/"+q)
	}
	b.entities = b.discoveryEntities()
	if m.Samples {
		b.spool, err = spool.Open(spool.Options{
			Dir: filepath.Join(o.DataDir, dirName, "samples"), MaxBytes: int64(m.BufferMaxBytes), Fsync: o.Fsync,
			Logger: b.log, BoundKey: "mqtt.buffer_max_bytes",
		})
		if err != nil {
			return nil, fmt.Errorf("mqtt samples buffer: %w (move the directory aside to start with an empty buffer)", err)
		}
		if st := b.spool.Stats(); st.Depth > 0 {
			b.log.Info("mqtt buffer opened", "samples_waiting", st.Depth, "last_seq", st.LastSeq, "acked_seq", st.AckedSeq)
		}
	}
	if o.Hub != nil {
		if b.spool != nil {
			o.Hub.StartSeqAfter(b.spool.LastSeq())
		}
		b.sub.Subscriber = (*sampleSink)(b)
		all, _ := o.Hub.Match([]string{"*"})
		o.Hub.Subscribe(&b.sub, all, sensor.Options{})
	}
	return b, nil
}

// sampleSink is the bridge as the hub's subscriber.
type sampleSink Bridge

// Queue takes every sample and sensor error, under the hub's lock: the
// sample into the buffer's memory queue and the sensor's latest slot, an
// error into the publish queue. It never blocks.
func (s *sampleSink) Queue(smp *sensor.Sample, _ bool) bool {
	b := (*Bridge)(s)
	if smp.IsError() {
		b.push(outMsg{topic: b.base + "/events", payload: append([]byte(nil), smp.Text()...), qos: byte(b.cfg.QoS)})
	} else {
		if b.spool != nil {
			b.spool.Add(smp.Seq(), smp.Text())
		}
		if i := smp.Index(); i < len(b.latest) {
			b.lmu.Lock()
			b.latest[i] = latest{value: smp.Value(), ts: smp.Time() / 1e6, seq: smp.Seq(), dirty: true}
			b.lmu.Unlock()
			if b.stateGap == 0 {
				select {
				case b.kick <- struct{}{}:
				default:
				}
			}
		}
	}
	smp.Release()
	return false
}

// Deliver and Purge are never called: Queue keeps nothing.
func (s *sampleSink) Deliver(bool)                      {}
func (s *sampleSink) Purge(func(s *sensor.Sample) bool) {}

// relaySink is the bridge as the relay service's subscriber.
type relaySink Bridge

// RelayEvent queues a state event, under the service's lock.
func (s *relaySink) RelayEvent(ev relay.Event) {
	b := (*Bridge)(s)
	b.push(outMsg{topic: b.base + "/events", payload: append([]byte(nil), ev.Data...), qos: byte(b.cfg.QoS), state: true})
}

// push queues m for the session's goroutine, if a session is up.
func (b *Bridge) push(m outMsg) {
	b.qmu.Lock()
	if !b.live {
		b.qmu.Unlock()
		return
	}
	if len(b.queue) >= queueMax {
		b.resync = true
		b.qmu.Unlock()
		b.eventsDropped.Add(1)
		b.wake()
		return
	}
	b.queue = append(b.queue, m)
	b.qmu.Unlock()
	b.wake()
}

func (b *Bridge) wake() {
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

// Start runs the connect loop and the command goroutine until Stop.
func (b *Bridge) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.done = make(chan struct{})
	b.cmdEnd = make(chan struct{})
	go b.run(ctx)
	go b.runCommands(ctx)
}

// Stop publishes what is queued (the relays' failsafe states, when the
// relay service has shut down before), then status offline, disconnects
// and closes the buffer.
func (b *Bridge) Stop(ctx context.Context) {
	if b.cancel != nil {
		b.cancel()
		<-b.done
		<-b.cmdEnd
	}
	if b.opts.Hub != nil {
		b.opts.Hub.Remove(&b.sub)
	}
	if b.spool != nil {
		if err := b.spool.Close(); err != nil {
			b.log.Error("mqtt buffer close", "err", err)
		}
	}
	b.setState(StateStopped, "")
}

// Close undoes New for a gateway that fails to start: it closes the buffer.
func (b *Bridge) Close() {
	if b.spool != nil {
		b.spool.Close()
	}
}

func (b *Bridge) setState(state, lastErr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state = state
	if lastErr != "" {
		b.lastErr = lastErr
	}
}

func (b *Bridge) run(ctx context.Context) {
	defer close(b.done)
	attempt := 0
	for {
		b.setState(StateConnecting, "")
		c, lost, err := b.connect(ctx)
		if ctx.Err() != nil {
			if c != nil {
				c.Disconnect(0)
			}
			return
		}
		if err == nil {
			b.setState(StateConnected, "")
			b.log.Info("mqtt connected", "broker", b.shown, "client_id", b.clientID)
			began := time.Now()
			err = b.runSession(ctx, c, lost)
			if ctx.Err() != nil {
				return
			}
			if time.Since(began) >= stableAfter {
				attempt = 0
			}
		}
		b.mu.Lock()
		b.reconnects++
		b.mu.Unlock()
		wait := backoff(attempt)
		attempt++
		b.setState(StateConnecting, err.Error())
		b.log.Warn("mqtt down; retrying", "broker", b.shown, "err", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// backoff is the wait before retry number attempt (from 0): capped
// exponential, drawn from the upper half of the step.
func backoff(attempt int) time.Duration { return retry.Backoff(attempt, backoffMin, backoffMax) }

// wait waits for t, the connection's loss or ctx, whichever comes first.
func wait(ctx context.Context, t paho.Token, lost *lostSignal) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-lost.c:
		return lost.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runSession runs one connection until it is lost or ctx is cancelled.
func (b *Bridge) runSession(ctx context.Context, c paho.Client, lost *lostSignal) error {
	sess := b.session.Add(1)
	defer b.session.Add(1) // what this session took and did not carry out yet, it never will
	defer c.Disconnect(0)
	qos := byte(b.cfg.QoS)
	// Live from here on: what the handlers queue (a retained command's
	// clearing, say) is published.
	b.qmu.Lock()
	b.live, b.queue, b.resync = true, b.queue[:0], false
	b.qmu.Unlock()
	defer func() {
		b.qmu.Lock()
		b.live, b.queue = false, nil
		b.qmu.Unlock()
	}()
	p := &publisher{b: b, c: c}
	// Commands, and Home Assistant's birth message.
	if err := wait(ctx, c.Subscribe(b.base+"/relay/+/set", 1, func(_ paho.Client, m paho.Message) { b.onCommand(m, sess) }), lost); err != nil {
		return b.subscribeFailed(ctx, p, lost, err)
	}
	if b.cfg.Discovery {
		if err := wait(ctx, c.Subscribe(b.cfg.DiscoveryPrefix+"/status", 1, b.onHAStatus), lost); err != nil {
			return b.subscribeFailed(ctx, p, lost, err)
		}
	}
	// The relay states at subscription, then every change after them.
	var snap []protocol.RelayInfo
	unsubscribe := b.opts.Relays.Subscribe((*relaySink)(b), func(s []protocol.RelayInfo) { snap = append(snap, s...) })
	defer unsubscribe()
	p.pub(b.base+"/status", qos, true, []byte("online"))
	for _, r := range snap {
		p.pub(b.base+"/relay/"+r.Name, qos, true, []byte(protocol.StateString(r.On)))
	}
	if b.cfg.Discovery {
		b.publishDiscovery(ctx, p, lost)
	}
	b.publishSensorStates(p, true)

	var inflight []batch
	var sent uint64
	if b.spool != nil {
		sent = b.spool.Stats().AckedSeq // resend from the oldest unacknowledged sample
	}
	var stateTick <-chan time.Time
	if b.stateGap > 0 {
		t := time.NewTicker(b.stateGap)
		defer t.Stop()
		stateTick = t.C
	}
	var spoolNotify <-chan struct{}
	if b.spool != nil {
		spoolNotify = b.spool.Notify()
	}
	for {
		if err := p.err(); err != nil {
			return err
		}
		b.flushQueue(p)
		// Acknowledged batches, in order, trim the buffer.
		for len(inflight) > 0 && isDone(inflight[0].tok) {
			if err := inflight[0].tok.Error(); err != nil {
				return fmt.Errorf("publish samples: %w", err)
			}
			b.spool.Ack(inflight[0].last)
			inflight = inflight[1:]
		}
		for b.spool != nil && len(inflight) < window {
			recs, err := b.spool.Read(sent, batchSamples, batchBytes)
			if err != nil {
				return fmt.Errorf("mqtt buffer: %w", err)
			}
			if len(recs) == 0 {
				break
			}
			n := 16
			for _, r := range recs {
				n += len(r.Data) + 1
			}
			msg := protocol.AppendMQTTSamples(make([]byte, 0, n), len(recs), func(i int) []byte { return recs[i].Data })
			last := recs[len(recs)-1].Seq
			tok := c.Publish(b.base+"/samples", 1, false, msg)
			b.published.Add(1)
			b.samplesSent.Add(uint64(len(recs)))
			inflight = append(inflight, batch{tok: tok, last: last})
			sent = last
			b.flushQueue(p) // live messages do not wait behind a backlog
		}
		var oldest <-chan struct{}
		if len(inflight) > 0 {
			oldest = inflight[0].tok.Done()
		}
		select {
		case <-ctx.Done():
			// Shutting down: publish what is queued (the failsafe states),
			// then offline.
			b.flushQueue(p)
			b.goodbye(p, lost)
			return ctx.Err()
		case <-lost.c:
			return fmt.Errorf("connection lost: %w", lost.err)
		case <-b.notify:
		case <-spoolNotify:
		case <-oldest:
		case <-stateTick:
			b.publishSensorStates(p, false)
		case <-b.kick:
			b.publishSensorStates(p, false)
		case <-b.haBirth:
			b.log.Info("Home Assistant came online; publishing discovery and states again")
			for _, r := range b.opts.Relays.Snapshot(nil) {
				p.pub(b.base+"/relay/"+r.Name, qos, true, []byte(protocol.StateString(r.On)))
			}
			b.publishDiscovery(ctx, p, lost)
			b.publishSensorStates(p, true)
		}
	}
}

// goodbye publishes status offline (a clean disconnect sends no Last
// Will), waits a little for the PUBACKs of what was published, and
// disconnects.
func (b *Bridge) goodbye(p *publisher, lost *lostSignal) {
	p.pub(b.base+"/status", byte(b.cfg.QoS), true, []byte("offline"))
	p.waitAll(finalWait, lost)
	p.c.Disconnect(250)
}

// subscribeFailed ends a session whose subscription failed: a shutdown
// meanwhile still says goodbye.
func (b *Bridge) subscribeFailed(ctx context.Context, p *publisher, lost *lostSignal, err error) error {
	if ctx.Err() != nil {
		b.goodbye(p, lost)
		return ctx.Err()
	}
	return fmt.Errorf("subscribe: %w", err)
}

// batch is one samples message awaiting its PUBACK.
type batch struct {
	tok  paho.Token
	last uint64
}

func isDone(t paho.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

// publisher publishes the live messages of one session and keeps the
// tokens not yet complete, to see their errors and to wait for them at
// the end.
type publisher struct {
	b      *Bridge
	c      paho.Client
	tokens []paho.Token
	failed error
}

func (p *publisher) pub(topic string, qos byte, retained bool, payload []byte) {
	t := p.c.Publish(topic, qos, retained, payload)
	p.b.published.Add(1)
	// Drop the completed tokens, keeping their first error.
	n := 0
	for _, x := range p.tokens {
		if isDone(x) {
			if err := x.Error(); err != nil && p.failed == nil {
				p.failed = err
			}
			continue
		}
		p.tokens[n] = x
		n++
	}
	p.tokens = append(p.tokens[:n], t)
}

func (p *publisher) err() error {
	if p.failed != nil {
		p.b.publishErrors.Add(1)
		return fmt.Errorf("publish: %w", p.failed)
	}
	return nil
}

// waitAll waits up to d for every message published to complete.
func (p *publisher) waitAll(d time.Duration, lost *lostSignal) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for _, t := range p.tokens {
		select {
		case <-t.Done():
		case <-lost.c:
			return
		case <-deadline.C:
			return
		}
	}
}

// flushQueue publishes the queued messages; a state event also updates the
// relay's retained state.
func (b *Bridge) flushQueue(p *publisher) {
	b.qmu.Lock()
	q, resync := b.queue, b.resync
	b.queue, b.resync = nil, false
	b.qmu.Unlock()
	qos := byte(b.cfg.QoS)
	for _, m := range q {
		p.pub(m.topic, m.qos, m.retained, m.payload)
		if m.state {
			if name, on, err := protocol.DecodeStateEvent(m.payload); err == nil {
				p.pub(b.base+"/relay/"+name, qos, true, []byte(protocol.StateString(on)))
			}
		}
	}
	if resync {
		for _, r := range b.opts.Relays.Snapshot(nil) {
			p.pub(b.base+"/relay/"+r.Name, qos, true, []byte(protocol.StateString(r.On)))
		}
	}
}

// publishSensorStates publishes each sensor's newest sample on its state
// topic: those that changed since, or all that have one (all).
func (b *Bridge) publishSensorStates(p *publisher, all bool) {
	qos := byte(b.cfg.QoS)
	for i := range b.latest {
		b.lmu.Lock()
		l := b.latest[i]
		b.latest[i].dirty = false
		b.lmu.Unlock()
		if l.seq == 0 || !(l.dirty || all) {
			continue
		}
		p.pub(b.sensorT[i], qos, true, protocol.AppendMQTTSensorState(nil, l.value, b.catalog[i].Unit, l.ts, l.seq))
	}
}

// onHAStatus is paho's handler of <discovery_prefix>/status.
func (b *Bridge) onHAStatus(_ paho.Client, m paho.Message) {
	b.received.Add(1)
	if strings.TrimSpace(string(m.Payload())) == "online" {
		select {
		case b.haBirth <- struct{}{}:
		default:
		}
	}
}

// onCommand is paho's handler of <base>/<id>/relay/+/set. It never blocks:
// a command goes to the command goroutine's queue, or is refused.
func (b *Bridge) onCommand(m paho.Message, sess uint64) {
	b.received.Add(1)
	name, ok := strings.CutPrefix(m.Topic(), b.base+"/relay/")
	if ok {
		name, ok = strings.CutSuffix(name, "/set")
	}
	if !ok {
		return
	}
	payload := m.Payload()
	if m.Retained() {
		if len(payload) == 0 {
			return
		}
		// A stale command kept by the broker: never carried out, and
		// cleared so that no later subscription gets it again.
		b.cmdsIgnored.Add(1)
		b.log.Warn("ignoring a retained relay command; clearing it from the broker (publish commands without the retain flag)", "topic", m.Topic(), "payload", shorten(payload))
		b.push(outMsg{topic: m.Topic(), payload: []byte{}, retained: true, qos: byte(b.cfg.QoS)})
		b.pushError(name, protocol.CodeBadRequest, "a retained command is never carried out: publish commands without the retain flag")
		return
	}
	if len(payload) == 0 {
		return // the empty publish that clears a retained command
	}
	select {
	case b.cmds <- command{relay: name, payload: append([]byte(nil), payload...), session: sess}:
	default:
		b.cmdsRefused.Add(1)
		b.pushError(name, protocol.CodeBusy, "too many commands waiting; this one was not carried out")
	}
}

func shorten(p []byte) string {
	if len(p) > 64 {
		return string(p[:64]) + "…"
	}
	return string(p)
}

func (b *Bridge) pushError(relay, code, msg string) {
	b.push(outMsg{topic: b.base + "/events", payload: protocol.AppendMQTTError(nil, relay, code, msg), qos: byte(b.cfg.QoS)})
}

// runCommands carries out the commands, one at a time, like an operator's
// relay-control.v1 requests with source mqtt.
func (b *Bridge) runCommands(ctx context.Context) {
	defer close(b.cmdEnd)
	var out, reqBuf []byte
	ops := relay.Requests{Service: b.opts.Relays, Role: protocol.RoleOperator, Source: protocol.SourceMQTT,
		Reply: func(enc func([]byte) []byte) { out = enc(out[:0]) },
		Who:   "mqtt", Remote: b.shown, Log: b.opts.Logger}
	var req protocol.Request
	for {
		var cmd command
		select {
		case <-ctx.Done():
			return
		case cmd = <-b.cmds:
		}
		if cmd.session != b.session.Load() {
			continue // taken on a connection since lost: never carried out later
		}
		err := protocol.DecodeMQTTCommand(cmd.payload, cmd.relay, &req)
		var id []byte
		if err == nil {
			id = append(id, req.ID...)
		}
		switch {
		case err != nil:
			var re *protocol.RequestError
			errors.As(err, &re)
			b.refuse(cmd.relay, re.ID, re.Code, re.Message)
			continue
		case !b.cfg.Commands:
			b.refuse(cmd.relay, id, protocol.CodeForbidden, "this gateway takes no relay commands over MQTT (mqtt.commands: false)")
			continue
		}
		reqBuf = protocol.AppendCommandRequest(reqBuf[:0], &req)
		out = out[:0]
		ops.Handle(reqBuf)
		if code, msg, failed := protocol.DecodeErrorReply(out); failed {
			b.cmdsRefused.Add(1)
			b.pushError(cmd.relay, code, msg)
		} else {
			b.cmdsDone.Add(1)
		}
		if len(id) > 0 {
			b.push(outMsg{topic: b.base + "/reply", payload: append([]byte(nil), out...), qos: byte(b.cfg.QoS)})
		}
	}
}

// refuse answers a command that is not carried out: an error event, and a
// reply when it carried an id.
func (b *Bridge) refuse(relay string, id []byte, code, msg string) {
	b.cmdsRefused.Add(1)
	b.pushError(relay, code, msg)
	if len(id) > 0 {
		b.push(outMsg{topic: b.base + "/reply", payload: protocol.AppendError(nil, id, code, msg), qos: byte(b.cfg.QoS)})
	}
}
