package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/edgegate/edgegate/drivers"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/hardware"
	"github.com/edgegate/edgegate/protocol"
)

// Errors of relay operations, mapped to protocol error codes by the sessions.
var (
	errUnknownRelay = errors.New("unknown relay")
	errBusy         = errors.New("busy")
	errShutdown     = errors.New("the gateway is shutting down")
)

// deviceError is a driver failure; the relay keeps its last confirmed state.
type deviceError struct {
	relay string
	err   error
}

func (e *deviceError) Error() string { return fmt.Sprintf("relay %q: %v", e.relay, e.err) }
func (e *deviceError) Unwrap() error { return e.err }

// eventSink receives every encoded state event, in the order of the changes.
// It must not block. The event is valid during the call; a sink that keeps
// it past the call takes a reference (ev.retain) and releases it once done.
type eventSink interface {
	relayEvent(ev sharedEvent)
}

// sharedEvent is one encoded state event, shared by every sink that keeps
// it. Its bytes are cut from a chunk (nil for an event too large for one)
// that is reused once the service and every sink have released it, so
// that a steady stream of changes allocates nothing.
type sharedEvent struct {
	data  []byte
	chunk *eventChunk
}

// retain takes a reference for a sink that keeps the event past the call
// (to relayEvent, while the service's own reference holds the chunk).
func (e sharedEvent) retain() {
	if e.chunk != nil {
		e.chunk.refs.Add(1)
	}
}

// eventChunkSize is the size of the chunks that events are cut from.
const eventChunkSize = 16 << 10

// eventChunk is a buffer that events are cut from, one after another.
// refs counts the events cut from it still kept by a sink, plus one while
// the service cuts from it; at zero it goes back to freeEventChunks.
type eventChunk struct {
	buf  []byte
	refs atomic.Int32
}

// freeEventChunks holds released chunks for reuse. In steady state two
// circulate (the one being cut and the one whose last events are being
// written); a few more absorb a burst, and beyond that they go to the GC.
var freeEventChunks = make(chan *eventChunk, 4)

func newEventChunk() *eventChunk {
	var c *eventChunk
	select {
	case c = <-freeEventChunks:
	default:
		c = &eventChunk{buf: make([]byte, 0, eventChunkSize)}
	}
	c.refs.Store(1)
	return c
}

// release drops one reference; the last one recycles the chunk.
func (c *eventChunk) release() {
	if c != nil && c.refs.Add(-1) == 0 {
		c.buf = c.buf[:0]
		select {
		case freeEventChunks <- c:
		default:
		}
	}
}

type relayEntry struct {
	cfg config.Relay
	drv drivers.Relay
	// lock serialises driver access for the relay's whole interlock group
	// (or the relay alone), so that a group's members never overlap.
	lock  *sync.Mutex
	group []*relayEntry // the other members of its interlock group

	// Guarded by lock.
	pulse    *time.Timer
	pulseGen uint64

	// Guarded by relayService.mu.
	on        bool
	known     bool // a state has been confirmed since start
	changedAt int64
	lastErr   string
	// counters of changes by source, made on first use (nil: not counted)
	changeCounters map[string]*metrics.Counter
}

// changes is the counter of the relay's changes from source. Call with
// relayService.mu held.
func (e *relayEntry) changes(m *gatewayMetrics, source string) *metrics.Counter {
	c, ok := e.changeCounters[source]
	if !ok {
		c = m.relayChanges(e.cfg.Name, source)
		if e.changeCounters == nil {
			e.changeCounters = map[string]*metrics.Counter{}
		}
		e.changeCounters[source] = c
	}
	return c
}

// relayService owns the relays: it carries out changes through the drivers,
// keeps their confirmed state, runs pulse timers and interlocks, and hands
// every change to the event sinks as one encoded state event.
type relayService struct {
	log    *slog.Logger
	relays []*relayEntry
	byName map[string]*relayEntry

	metrics *gatewayMetrics // nil: not counted

	mu      sync.Mutex
	sinks   map[eventSink]struct{}
	closed  bool
	started bool // every relay has been driven to its initial state
	evbuf   []byte
	evchunk *eventChunk // the chunk events are cut from now (copyEvent)
}

func newRelayService(cfg *config.Config, env hardware.Env) (*relayService, error) {
	s := &relayService{log: env.Logger, byName: map[string]*relayEntry{}, sinks: map[eventSink]struct{}{}}
	groups := map[string][]*relayEntry{}
	for _, rc := range cfg.Relays {
		drv, err := hardware.OpenRelay(rc, env)
		if err != nil {
			s.closeDrivers()
			return nil, err
		}
		e := &relayEntry{cfg: rc, drv: drv, lock: new(sync.Mutex)}
		if rc.Interlock != "" {
			if members := groups[rc.Interlock]; len(members) > 0 {
				e.lock = members[0].lock
			}
			groups[rc.Interlock] = append(groups[rc.Interlock], e)
		}
		s.relays = append(s.relays, e)
		s.byName[rc.Name] = e
	}
	for _, members := range groups {
		for _, e := range members {
			for _, m := range members {
				if m != e {
					e.group = append(e.group, m)
				}
			}
		}
	}
	return s, nil
}

// start drives every relay to its initial state: the first level its output
// ever sees. Interlock partners are driven in config order, and a member that
// starts on first turns its partners off, so at most one of a group is on.
func (s *relayService) start(ctx context.Context, initial func(config.Relay) bool) {
	for _, e := range s.relays {
		on := initial(e.cfg)
		e.lock.Lock()
		if on {
			// Interlock partners first go off, so two members are never on at once.
			for _, m := range e.group {
				if m.known && m.on {
					s.drive(ctx, m, false, protocol.SourceInterlock)
				}
			}
		}
		if err := s.drive(ctx, e, on, protocol.SourceStartup); err != nil {
			s.log.Error("relay did not take its initial state", "relay", e.cfg.Name, "state", protocol.StateString(on), "err", err)
		}
		e.lock.Unlock()
	}
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
}

func (s *relayService) closeDrivers() {
	for _, e := range s.relays {
		e.drv.Close()
	}
}

func (s *relayService) lookup(name string) (*relayEntry, error) {
	e, ok := s.byName[name]
	if !ok {
		return nil, errUnknownRelay
	}
	return e, nil
}

// drive writes one relay and, once the driver confirmed, records the state
// and publishes an event if it changed. Call with e.lock held.
func (s *relayService) drive(ctx context.Context, e *relayEntry, on bool, source string) error {
	err := e.drv.Set(ctx, on)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		e.lastErr = err.Error()
		s.metrics.relayWriteFailed(e.cfg.Name)
		s.log.Warn("relay write failed", "relay", e.cfg.Name, "state", protocol.StateString(on), "source", source, "err", err)
		return &deviceError{relay: e.cfg.Name, err: err}
	}
	e.lastErr = ""
	s.recordLocked(e, on, source)
	return nil
}

// recordLocked records a confirmed state and, if it changed, publishes one
// state event to every sink. Call with s.mu held.
func (s *relayService) recordLocked(e *relayEntry, on bool, source string) {
	if e.known && e.on == on {
		return
	}
	now := time.Now().UnixMilli()
	e.on, e.known, e.changedAt = on, true, now
	if c := e.changes(s.metrics, source); c != nil {
		c.Inc()
	}
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		s.log.Info("relay changed", "relay", e.cfg.Name, "state", protocol.StateString(on), "source", source)
	}
	s.evbuf = protocol.AppendStateEvent(s.evbuf[:0], e.cfg.Name, on, source, now)
	if len(s.sinks) > 0 {
		ev := s.copyEvent(s.evbuf) // one copy shared by every sink
		for sink := range s.sinks {
			sink.relayEvent(ev)
		}
	}
}

// copyEvent returns a copy of an encoded event for the sinks to keep, cut
// from the current chunk. Call with s.mu held.
func (s *relayService) copyEvent(b []byte) sharedEvent {
	if len(b) > eventChunkSize/8 {
		return sharedEvent{data: append([]byte(nil), b...)} // rare: left to the GC
	}
	c := s.evchunk
	if c == nil || cap(c.buf)-len(c.buf) < len(b) {
		c.release() // the service's own reference; sinks may still hold theirs
		c = newEventChunk()
		s.evchunk = c
	}
	start := len(c.buf)
	c.buf = append(c.buf, b...)
	return sharedEvent{data: c.buf[start:len(c.buf):len(c.buf)], chunk: c} // capped: an append cannot reach the next
}

// setLocked turns e on or off, first turning its interlock partners off.
// Call with e.lock held.
func (s *relayService) setLocked(ctx context.Context, e *relayEntry, on bool, source string) error {
	s.cancelPulseLocked(e)
	if on {
		for _, m := range e.group {
			s.cancelPulseLocked(m)
			if err := s.drive(ctx, m, false, protocol.SourceInterlock); err != nil {
				return err // never turn e on while a partner may still be on
			}
		}
	}
	return s.drive(ctx, e, on, source)
}

func (s *relayService) cancelPulseLocked(e *relayEntry) {
	if e.pulse != nil {
		e.pulse.Stop()
		e.pulse = nil
		e.pulseGen++
	}
}

func (s *relayService) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Set turns a relay on or off.
func (s *relayService) Set(ctx context.Context, name string, on bool, source string) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	e.lock.Lock()
	defer e.lock.Unlock()
	if s.isClosed() {
		return errShutdown
	}
	return s.setLocked(ctx, e, on, source)
}

// Toggle flips a relay and returns its new state.
func (s *relayService) Toggle(ctx context.Context, name string, source string) (bool, error) {
	e, err := s.lookup(name)
	if err != nil {
		return false, err
	}
	e.lock.Lock()
	defer e.lock.Unlock()
	if s.isClosed() {
		return false, errShutdown
	}
	s.mu.Lock()
	on := !e.on
	s.mu.Unlock()
	return on, s.setLocked(ctx, e, on, source)
}

// Pulse turns a relay on and back off after d. A relay already pulsing is busy.
func (s *relayService) Pulse(ctx context.Context, name string, d time.Duration, source string) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	e.lock.Lock()
	defer e.lock.Unlock()
	if s.isClosed() {
		return errShutdown
	}
	if e.pulse != nil {
		return errBusy
	}
	if err := s.setLocked(ctx, e, true, source); err != nil {
		return err
	}
	gen := e.pulseGen
	e.pulse = time.AfterFunc(d, func() { s.endPulse(e, gen) })
	return nil
}

func (s *relayService) endPulse(e *relayEntry, gen uint64) {
	e.lock.Lock()
	defer e.lock.Unlock()
	if e.pulseGen != gen || s.isClosed() {
		return // cancelled by a later change, or shutdown took over
	}
	e.pulse = nil
	e.pulseGen++
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.drive(ctx, e, false, protocol.SourcePulse); err != nil {
		s.log.Error("pulse could not turn the relay back off", "relay", e.cfg.Name, "err", err)
	}
}

// Failsafe puts every relay into its failsafe state (hold: unchanged); the
// watchdog calls it when no operator is connected any more.
func (s *relayService) Failsafe(ctx context.Context) {
	if !s.isClosed() {
		s.applyFailsafe(ctx)
	}
}

func (s *relayService) applyFailsafe(ctx context.Context) {
	for _, e := range s.relays {
		var on bool
		switch e.cfg.Failsafe {
		case "hold":
			continue
		case "on":
			on = true
		}
		e.lock.Lock()
		if err := s.setLocked(ctx, e, on, protocol.SourceFailsafe); err != nil {
			s.log.Error("relay did not take its failsafe state", "relay", e.cfg.Name, "err", err)
		}
		e.lock.Unlock()
	}
}

// Shutdown stops pulses, applies the failsafe states and closes the drivers.
// No operation is carried out after it.
func (s *relayService) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	// Operations check closed under their relay's lock: once each lock has
	// been taken here, none is in flight and no pulse timer is left.
	for _, e := range s.relays {
		e.lock.Lock()
		s.cancelPulseLocked(e)
		e.lock.Unlock()
	}
	s.applyFailsafe(ctx)
	s.closeDrivers()
}

// subscribe adds a sink and returns the relays' state at that instant: the
// sink gets every change after it and none before.
func (s *relayService) subscribe(sink eventSink) []protocol.RelayInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sinks[sink] = struct{}{}
	return s.snapshotLocked(nil)
}

func (s *relayService) unsubscribe(sink eventSink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sinks, sink)
}

// Snapshot returns every relay's confirmed state, in config order.
func (s *relayService) Snapshot(dst []protocol.RelayInfo) []protocol.RelayInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked(dst)
}

func (s *relayService) snapshotLocked(dst []protocol.RelayInfo) []protocol.RelayInfo {
	dst = dst[:0]
	for _, e := range s.relays {
		dst = append(dst, protocol.RelayInfo{
			Name: e.cfg.Name, On: e.on, Driver: e.drv.Driver(), ChangedAt: e.changedAt,
			Interlock: e.cfg.Interlock, MaxPulse: e.configuredMaxPulse(),
		})
	}
	return dst
}

// Get returns one relay's confirmed state.
func (s *relayService) Get(name string) (protocol.RelayInfo, error) {
	e, err := s.lookup(name)
	if err != nil {
		return protocol.RelayInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return protocol.RelayInfo{Name: name, On: e.on, Driver: e.drv.Driver(), ChangedAt: e.changedAt, Interlock: e.cfg.Interlock}, nil
}

// configuredMaxPulse is max_pulse_ms as hello and list show it: only for a
// relay whose max_pulse is configured (0: left out; pulse still takes up
// to the 60 s default).
func (e *relayEntry) configuredMaxPulse() int64 {
	if !e.cfg.MaxPulseSet {
		return 0
	}
	return time.Duration(e.cfg.MaxPulse).Milliseconds()
}

// maxPulse is the longest pulse a relay accepts.
func (s *relayService) maxPulse(name string) time.Duration {
	if e, ok := s.byName[name]; ok {
		return time.Duration(e.cfg.MaxPulse)
	}
	return 0
}

type deviceHealth struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	// State is a serial device's connection: connected, connecting,
	// reconnecting or closed (absent for relays and sensors).
	State string `json:"state,omitempty"`
}

func (s *relayService) health(dst []deviceHealth) []deviceHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.relays {
		dst = append(dst, deviceHealth{Name: e.cfg.Name, OK: e.lastErr == "", Error: e.lastErr})
	}
	return dst
}

// watchDevices registers, for every relay whose driver reports changes made
// on the device itself (drivers.Reporter), the hook that records them.
func (s *relayService) watchDevices() {
	for _, e := range s.relays {
		if rep, ok := e.drv.(drivers.Reporter); ok {
			rep.OnDeviceChange(func() { s.deviceChanged(e, rep) })
		}
	}
}

// deviceChanged records the state the device reports for a relay after a
// change made on the device (a button, a reboot, a state read back after a
// reconnect) and publishes one state event with source device, only if it
// differs from the state the gateway holds. It waits for any operation in
// flight on the relay and reads the device's state only then, so the
// gateway's view follows the order in which the device reported changes.
func (s *relayService) deviceChanged(e *relayEntry, rep drivers.Reporter) {
	e.lock.Lock()
	defer e.lock.Unlock()
	on, known := rep.DeviceState()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.started || !known {
		return // before start, the initial state is about to be driven anyway
	}
	s.recordLocked(e, on, protocol.SourceDevice)
}
