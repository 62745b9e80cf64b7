// Package relay is edgegate's relay service: it carries out changes
// through the drivers, keeps the relays' confirmed states, and owns every
// rule on them — interlock groups, pulses and max_pulse, the initial state
// and its restore, failsafe states and the watchdog, and changes reported
// by the devices themselves. Every change reaches the subscribers
// (Subscribe) as one encoded state event; Requests carries out the
// relay-control.v1 requests of a connection.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/edgegate/edgegate/drivers"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/hardware"
	"github.com/edgegate/edgegate/protocol"
)

// Errors of relay operations; Requests maps them to protocol error codes.
var (
	ErrUnknownRelay = errors.New("unknown relay")
	ErrBusy         = errors.New("busy")
	ErrShutdown     = errors.New("the gateway is shutting down")
)

// DeviceError is a driver failure; the relay keeps its last confirmed state.
type DeviceError struct {
	Relay string
	Err   error
}

func (e *DeviceError) Error() string { return fmt.Sprintf("relay %q: %v", e.Relay, e.Err) }
func (e *DeviceError) Unwrap() error { return e.Err }

// PulseLengthError is a pulse shorter than 1 ms or longer than the relay's
// max_pulse: refused whoever asks, before the relay is touched.
type PulseLengthError struct {
	Relay string
	Max   time.Duration // the relay's max_pulse
}

func (e *PulseLengthError) Error() string {
	return fmt.Sprintf("relay %q takes pulses of 1 ms to %v (max_pulse)", e.Relay, e.Max)
}

// Counter is a metric counter, such as a *metrics.Counter.
type Counter interface{ Inc() }

// Metrics is what the service counts, for /metrics. The counter of a relay
// and a source is asked for once and kept, so that counting a change
// allocates nothing.
type Metrics interface {
	// RelayChanges is the counter of a relay's changes from one source
	// (nil: not counted).
	RelayChanges(relay, source string) Counter
	// RelayWriteFailed counts a failed driver write.
	RelayWriteFailed(relay string)
}

// Options configure a Service beyond its relays.
type Options struct {
	// Initial tells the state each relay starts in (LoadInitial); nil:
	// initial: on starts on, anything else off, and nothing is saved.
	Initial *Initial
	// Metrics counts changes and failed writes; nil: not counted.
	Metrics Metrics
	// Watchdog, when positive, puts the relays into their failsafe states
	// once no operator connection (OperatorUp) has been alive for it.
	Watchdog time.Duration
}

type entry struct {
	cfg config.Relay
	drv drivers.Relay
	// lock serialises driver access for the relay's whole interlock group
	// (or the relay alone), so that a group's members never overlap.
	lock  *sync.Mutex
	group []*entry // the other members of its interlock group

	// Guarded by lock.
	pulse    *time.Timer
	pulseGen uint64

	// Guarded by Service.mu.
	on        bool
	known     bool // a state has been confirmed since start
	changedAt int64
	lastErr   string
	// The last change's source when an automation or a guard made it, and
	// the automation's name (the dashboard shows them).
	changedBy, automation string
	// Guards (guard.go): since is when the current on or off period began
	// (zero: at startup, which starts no period); onAt when the relay last
	// went on, for max_on; maxOn its timer, made on first use.
	since time.Time
	onAt  time.Time
	maxOn *time.Timer
	// counters of changes by source, made on first use (nil: not counted)
	changeCounters map[string]Counter
}

// changes is the counter of the relay's changes from source (nil: not
// counted). Call with Service.mu held.
func (e *entry) changes(m Metrics, source string) Counter {
	c, ok := e.changeCounters[source]
	if !ok && m != nil {
		c = m.RelayChanges(e.cfg.Name, source)
		if e.changeCounters == nil {
			e.changeCounters = map[string]Counter{}
		}
		e.changeCounters[source] = c
	}
	return c
}

// Service owns the relays: it carries out changes through the drivers,
// keeps their confirmed state, runs pulse timers and interlocks, and hands
// every change to the subscribers as one encoded state event.
type Service struct {
	log     *slog.Logger
	relays  []*entry
	byName  map[string]*entry
	initial *Initial
	metrics Metrics // nil: not counted
	dog     *watchdog
	dogTime time.Duration
	store   *stateStore // nil: no relay with initial: restore

	mu      sync.Mutex
	subs    map[Subscriber]struct{}
	closed  bool
	started bool // every relay has been driven to its initial state
	evbuf   []byte
	evchunk *eventChunk // the chunk events are cut from now (copyEvent)
}

// New opens the driver of every relay in cfg. env.Relays and env.Initial
// are set from cfg and opts.Initial (so that a driver whose channels share
// a chip first writes each one's initial level). Nothing is driven before
// Start.
func New(cfg *config.Config, env hardware.Env, opts Options) (*Service, error) {
	s := &Service{log: env.Logger, byName: map[string]*entry{}, subs: map[Subscriber]struct{}{},
		initial: opts.Initial, metrics: opts.Metrics, dogTime: opts.Watchdog}
	if s.log == nil {
		s.log = slog.Default()
	}
	env.Relays, env.Initial = cfg.Relays, s.initial.On
	groups := map[string][]*entry{}
	for _, rc := range cfg.Relays {
		drv, err := hardware.OpenRelay(rc, env)
		if err != nil {
			s.closeDrivers()
			return nil, err
		}
		e := &entry{cfg: rc, drv: drv, lock: new(sync.Mutex)}
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
	s.watchDevices()
	return s, nil
}

// Start drives every relay to its initial state: the first level its output
// ever sees. Interlock partners are driven in config order, and a member that
// starts on first turns its partners off, so at most one of a group is on.
// Then it starts saving the states of relays with initial: restore, and
// arms the watchdog.
func (s *Service) Start(ctx context.Context) {
	for _, e := range s.relays {
		on := s.initial.On(e.cfg)
		e.lock.Lock()
		if on {
			// Interlock partners first go off, so two members are never on at once.
			for _, m := range e.group {
				if m.known && m.on {
					s.drive(ctx, m, false, protocol.SourceInterlock, "")
				}
			}
		}
		if err := s.drive(ctx, e, on, protocol.SourceStartup, ""); err != nil {
			s.log.Error("relay did not take its initial state", "relay", e.cfg.Name, "state", protocol.StateString(on), "err", err)
		}
		e.lock.Unlock()
	}
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	if s.initial.restores() {
		s.store = startStateStore(s, s.initial, s.log)
	}
	if d := s.dogTime; d > 0 {
		s.dog = newWatchdog(d, func() {
			s.log.Warn("watchdog: no operator connected; relays go to their failsafe states", "after", d)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s.failsafe(ctx)
		})
	}
}

// OperatorUp counts an operator connection in: while one is alive the
// watchdog does not fire. Each call is matched by one OperatorDown.
func (s *Service) OperatorUp() {
	if s.dog != nil {
		s.dog.operatorUp()
	}
}

// OperatorDown counts an operator connection out; the last one out arms
// the watchdog.
func (s *Service) OperatorDown() {
	if s.dog != nil {
		s.dog.operatorDown()
	}
}

func (s *Service) closeDrivers() {
	for _, e := range s.relays {
		e.drv.Close()
	}
}

func (s *Service) lookup(name string) (*entry, error) {
	e, ok := s.byName[name]
	if !ok {
		return nil, ErrUnknownRelay
	}
	return e, nil
}

// drive writes one relay and, once the driver confirmed, records the state
// and publishes an event if it changed. Call with e.lock held.
func (s *Service) drive(ctx context.Context, e *entry, on bool, source, automation string) error {
	err := e.drv.Set(ctx, on)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		e.lastErr = err.Error()
		if s.metrics != nil {
			s.metrics.RelayWriteFailed(e.cfg.Name)
		}
		s.log.Warn("relay write failed", "relay", e.cfg.Name, "state", protocol.StateString(on), "source", source, "err", err)
		return &DeviceError{Relay: e.cfg.Name, Err: err}
	}
	e.lastErr = ""
	s.recordLocked(e, on, source, automation)
	return nil
}

// recordLocked records a confirmed state and, if it changed, publishes one
// state event to every subscriber. Call with s.mu held.
func (s *Service) recordLocked(e *entry, on bool, source, automation string) {
	if e.known && e.on == on {
		return
	}
	t := time.Now()
	now := t.UnixMilli()
	e.on, e.known, e.changedAt = on, true, now
	e.changedBy, e.automation = "", ""
	if source == protocol.SourceAutomation || source == protocol.SourceGuard {
		e.changedBy, e.automation = source, automation
	}
	s.guardChangedLocked(e, on, source, t)
	if c := e.changes(s.metrics, source); c != nil {
		c.Inc()
	}
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		s.log.Info("relay changed", "relay", e.cfg.Name, "state", protocol.StateString(on), "source", source)
	}
	s.evbuf = protocol.AppendStateEventBy(s.evbuf[:0], e.cfg.Name, on, source, automation, now)
	if len(s.subs) > 0 {
		ev := s.copyEvent(s.evbuf) // one copy shared by every subscriber
		for sub := range s.subs {
			sub.RelayEvent(ev)
		}
	}
}

// setLocked turns e on or off, first turning its interlock partners off.
// Call with e.lock held.
func (s *Service) setLocked(ctx context.Context, e *entry, on bool, source, automation string) error {
	s.cancelPulseLocked(e)
	if on {
		for _, m := range e.group {
			s.cancelPulseLocked(m)
			if err := s.drive(ctx, m, false, protocol.SourceInterlock, ""); err != nil {
				return err // never turn e on while a partner may still be on
			}
		}
	}
	return s.drive(ctx, e, on, source, automation)
}

func (s *Service) cancelPulseLocked(e *entry) {
	if e.pulse != nil {
		e.pulse.Stop()
		e.pulse = nil
		e.pulseGen++
	}
}

func (s *Service) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Set turns a relay on or off (its interlock partners off first), and
// returns once the driver confirmed. It ends a pulse in progress. A change
// that min_on or min_off refuses is a *TooSoonError.
func (s *Service) Set(ctx context.Context, name string, on bool, source string) error {
	return s.SetBy(ctx, name, on, source, "")
}

// SetBy is Set on behalf of the automation named (source automation):
// the state event names it.
func (s *Service) SetBy(ctx context.Context, name string, on bool, source, automation string) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	e.lock.Lock()
	defer e.lock.Unlock()
	if s.isClosed() {
		return ErrShutdown
	}
	if err := s.checkGuards(e, on); err != nil {
		return err
	}
	return s.setLocked(ctx, e, on, source, automation)
}

// Toggle flips a relay and returns its new state.
func (s *Service) Toggle(ctx context.Context, name string, source string) (bool, error) {
	return s.ToggleBy(ctx, name, source, "")
}

// ToggleBy is Toggle on behalf of the automation named.
func (s *Service) ToggleBy(ctx context.Context, name string, source, automation string) (bool, error) {
	e, err := s.lookup(name)
	if err != nil {
		return false, err
	}
	e.lock.Lock()
	defer e.lock.Unlock()
	if s.isClosed() {
		return false, ErrShutdown
	}
	s.mu.Lock()
	on := !e.on
	s.mu.Unlock()
	if err := s.checkGuards(e, on); err != nil {
		return !on, err
	}
	return on, s.setLocked(ctx, e, on, source, automation)
}

// Pulse turns a relay on and back off after d, which must be between 1 ms
// and the relay's max_pulse (a *PulseLengthError otherwise). A relay
// already pulsing is busy (ErrBusy).
func (s *Service) Pulse(ctx context.Context, name string, d time.Duration, source string) error {
	return s.PulseBy(ctx, name, d, source, "")
}

// PulseBy is Pulse on behalf of the automation named. The pulse's own
// end is never refused by min_on: its length was accepted with it.
func (s *Service) PulseBy(ctx context.Context, name string, d time.Duration, source, automation string) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	if max := time.Duration(e.cfg.MaxPulse); d < time.Millisecond || d > max {
		return &PulseLengthError{Relay: name, Max: max}
	}
	e.lock.Lock()
	defer e.lock.Unlock()
	if s.isClosed() {
		return ErrShutdown
	}
	if e.pulse != nil {
		return ErrBusy
	}
	if err := s.checkGuards(e, true); err != nil {
		return err
	}
	if err := s.setLocked(ctx, e, true, source, automation); err != nil {
		return err
	}
	gen := e.pulseGen
	e.pulse = time.AfterFunc(d, func() { s.endPulse(e, gen) })
	return nil
}

func (s *Service) endPulse(e *entry, gen uint64) {
	e.lock.Lock()
	defer e.lock.Unlock()
	if e.pulseGen != gen || s.isClosed() {
		return // cancelled by a later change, or shutdown took over
	}
	e.pulse = nil
	e.pulseGen++
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.drive(ctx, e, false, protocol.SourcePulse, ""); err != nil {
		s.log.Error("pulse could not turn the relay back off", "relay", e.cfg.Name, "err", err)
	}
}

// failsafe puts every relay into its failsafe state (hold: unchanged); the
// watchdog calls it when no operator is connected any more.
func (s *Service) failsafe(ctx context.Context) {
	if !s.isClosed() {
		s.applyFailsafe(ctx)
	}
}

func (s *Service) applyFailsafe(ctx context.Context) {
	for _, e := range s.relays {
		var on bool
		switch e.cfg.Failsafe {
		case "hold":
			continue
		case "on":
			on = true
		}
		e.lock.Lock()
		if err := s.setLocked(ctx, e, on, protocol.SourceFailsafe, ""); err != nil {
			s.log.Error("relay did not take its failsafe state", "relay", e.cfg.Name, "err", err)
		}
		e.lock.Unlock()
	}
}

// Shutdown stops the watchdog, saves the states to restore (the failsafe
// states that follow are deliberately not saved: restore brings back the
// state the relays had in operation), stops pulses, applies the failsafe
// states and closes the drivers. No operation is carried out after it,
// and calling it again does nothing.
func (s *Service) Shutdown(ctx context.Context) {
	if s.dog != nil {
		s.dog.stop()
	}
	if s.store != nil {
		s.store.close()
	}
	s.mu.Lock()
	again := s.closed
	s.closed = true
	s.mu.Unlock()
	if again {
		return
	}
	// Operations check closed under their relay's lock: once each lock has
	// been taken here, none is in flight and no pulse timer is left.
	for _, e := range s.relays {
		e.lock.Lock()
		s.cancelPulseLocked(e)
		s.stopMaxOn(e)
		e.lock.Unlock()
	}
	s.applyFailsafe(ctx)
	s.closeDrivers()
}

// Snapshot returns every relay's confirmed state, in config order, in dst.
func (s *Service) Snapshot(dst []protocol.RelayInfo) []protocol.RelayInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked(dst)
}

func (s *Service) snapshotLocked(dst []protocol.RelayInfo) []protocol.RelayInfo {
	dst = dst[:0]
	for _, e := range s.relays {
		dst = append(dst, protocol.RelayInfo{
			Name: e.cfg.Name, On: e.on, Driver: e.drv.Driver(), ChangedAt: e.changedAt,
			Interlock: e.cfg.Interlock, MaxPulse: e.configuredMaxPulse(),
			ChangedBy: e.changedBy, Automation: e.automation,
		})
	}
	return dst
}

// Get returns one relay's confirmed state.
func (s *Service) Get(name string) (protocol.RelayInfo, error) {
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
func (e *entry) configuredMaxPulse() int64 {
	if !e.cfg.MaxPulseSet {
		return 0
	}
	return time.Duration(e.cfg.MaxPulse).Milliseconds()
}

// Health is one relay's health: whether its last driver write succeeded.
type Health struct {
	Name  string
	OK    bool
	Error string // the last write's error, if it failed
}

// Health appends every relay's health to dst, in config order.
func (s *Service) Health(dst []Health) []Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.relays {
		dst = append(dst, Health{Name: e.cfg.Name, OK: e.lastErr == "", Error: e.lastErr})
	}
	return dst
}

// watchDevices registers, for every relay whose driver reports changes made
// on the device itself (drivers.Reporter), the hook that records them.
func (s *Service) watchDevices() {
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
func (s *Service) deviceChanged(e *entry, rep drivers.Reporter) {
	e.lock.Lock()
	defer e.lock.Unlock()
	on, known := rep.DeviceState()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.started || !known {
		return // before start, the initial state is about to be driven anyway
	}
	s.recordLocked(e, on, protocol.SourceDevice, "")
}
