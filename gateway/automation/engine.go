// Package automation is edgegate's on-device automation engine: the
// automations section of the configuration (AUTOMATIONS.md) run on the
// gateway itself. It consumes the sensor hub's samples and the relays'
// states and switches relays through the relay service like any client
// (source automation, with the automation's name), so interlocks,
// max_pulse and the relay guards hold for it too.
//
// Everything an automation decides happens on the engine's one goroutine
// (or under its lock, in tests): samples are handed over by the hub's
// Queue without blocking, and a ticker drives for, cooldown, schedules and
// the silence of a thermostat's sensor. Time comes from an injected clock.
package automation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/edgegate/edgegate/gateway/automation/schedule"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/fileutil"
	"github.com/edgegate/edgegate/gateway/relay"
	"github.com/edgegate/edgegate/gateway/sensor"
	"github.com/edgegate/edgegate/protocol"
)

// ErrUnknownAutomation is SetEnabled's error for a name no automation has.
var ErrUnknownAutomation = relay.ErrUnknownAutomation

// Relays is what the engine needs of the relay service (*relay.Service).
type Relays interface {
	SetBy(ctx context.Context, name string, on bool, source, automation string) error
	ToggleBy(ctx context.Context, name, source, automation string) (bool, error)
	PulseBy(ctx context.Context, name string, d time.Duration, source, automation string) error
	FailsafeBy(ctx context.Context, name, automation string) (bool, error)
	Get(name string) (protocol.RelayInfo, error)
}

// Sensors is what the engine needs of the sensor hub (*sensor.Hub).
type Sensors interface {
	Match(patterns []string) ([]*sensor.Sensor, error)
	Subscribe(sub *sensor.Subscription, sensors []*sensor.Sensor, o sensor.Options)
	Remove(sub *sensor.Subscription)
}

// Options configure an Engine.
type Options struct {
	Config  *config.Config
	Relays  Relays
	Sensors Sensors // nil: no sensor conditions may be configured
	// DataDir keeps which automations are disabled (automations.json);
	// "": not kept.
	DataDir string
	Log     *slog.Logger
	// Now is the clock; nil: time.Now. Schedules run in its location.
	Now func() time.Time
	// Tick is how often for, cooldown, schedules and sensor silence are
	// looked at; 0: 100 ms.
	Tick time.Duration
}

// stateFile is where the enabled/disabled choices are kept.
const stateFile = "automations.json"

// Engine runs the automations of a configuration.
type Engine struct {
	log     *slog.Logger
	relays  Relays
	sensors Sensors
	now     func() time.Time
	tick    time.Duration
	path    string // of the state file; "": not kept
	autos   []*auto
	byName  map[string]*auto
	bySens  map[int][]*auto // by catalog index
	watched []*sensor.Sensor
	relayFS map[string]string // relay -> failsafe

	sub   sensor.Subscription
	qmu   sync.Mutex
	q     []queued
	spare []queued
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}

	mu     sync.Mutex // guards the automations' state and subs
	subs   map[*subscriber]struct{}
	evbuf  []byte
	saveMu sync.Mutex // serialises SetEnabled's writes of the state file
}

type subscriber struct{ fn func([]byte) }

type queued struct {
	index int
	value float64
	isErr bool
}

// auto is one automation and its state. Guarded by Engine.mu.
type auto struct {
	cfg     config.Automation
	kind    string
	enabled bool
	err     string
	fired   time.Time // last firing
	next    time.Time // schedules

	// thermostat
	th      *config.Thermostat
	lower   float64
	upper   float64
	zone    int // 0 unknown, -1 below lower, 1 above upper, 2 between
	retry   bool
	last    time.Time // of the last good sample (or the start)
	silence time.Duration
	failed  bool
	fsDone  bool // the failsafe was applied for the current failure

	// when
	w     *config.When
	holds bool
	since time.Time
	done  bool // fired for the current transition
	sched schedule.Schedule
}

// New resolves the automations of opts.Config against the hub's sensors
// and loads which are disabled. Nothing runs before Start.
func New(opts Options) (*Engine, error) {
	e := &Engine{log: opts.Log, relays: opts.Relays, sensors: opts.Sensors, now: opts.Now, tick: opts.Tick,
		byName: map[string]*auto{}, bySens: map[int][]*auto{}, relayFS: map[string]string{},
		subs: map[*subscriber]struct{}{}, wake: make(chan struct{}, 1)}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.tick <= 0 {
		e.tick = 100 * time.Millisecond
	}
	if opts.DataDir != "" {
		e.path = filepath.Join(opts.DataDir, stateFile)
	}
	for _, r := range opts.Config.Relays {
		e.relayFS[r.Name] = r.Failsafe
	}
	now := e.now()
	seen := map[int]bool{}
	for _, c := range opts.Config.Automations {
		a := &auto{cfg: c, kind: c.Kind(), enabled: true, last: now}
		name := ""
		switch {
		case c.Thermostat != nil:
			a.th = c.Thermostat
			h := a.th.Hysteresis / 2
			a.lower, a.upper = a.th.Target-h, a.th.Target+h
			name = a.th.Sensor
		case c.When != nil:
			a.w = c.When
			name = a.w.Sensor
		case c.At != "":
			s, err := schedule.ParseAt(c.At)
			if err != nil {
				return nil, fmt.Errorf("automation %q: %w", c.Name, err)
			}
			a.sched = s
		case c.Cron != "":
			s, err := schedule.ParseCron(c.Cron)
			if err != nil {
				return nil, fmt.Errorf("automation %q: %w", c.Name, err)
			}
			a.sched = s
		default:
			a.sched = schedule.Every{D: time.Duration(c.Every), Start: now}
		}
		if name != "" {
			if e.sensors == nil {
				return nil, fmt.Errorf("automation %q: no sensors to read %q from", c.Name, name)
			}
			found, err := e.sensors.Match([]string{name})
			if err != nil || len(found) != 1 {
				return nil, fmt.Errorf("automation %q: unknown sensor %q", c.Name, name)
			}
			info := found[0].Info()
			a.silence = max(3*time.Duration(info.IntervalMS)*time.Millisecond, 10*time.Second)
			e.bySens[info.Index] = append(e.bySens[info.Index], a)
			if !seen[info.Index] {
				seen[info.Index] = true
				e.watched = append(e.watched, found[0])
			}
		}
		if a.sched != nil {
			a.next = a.sched.Next(now)
		}
		e.autos = append(e.autos, a)
		e.byName[c.Name] = a
	}
	e.loadState()
	return e, nil
}

// Start subscribes to the sensors and runs the engine's goroutine until Stop.
func (e *Engine) Start() {
	e.stop, e.done = make(chan struct{}), make(chan struct{})
	now := e.now()
	e.mu.Lock()
	for _, a := range e.autos {
		a.last = now // a thermostat's sensor has from now to send its first sample
	}
	e.mu.Unlock()
	if len(e.watched) > 0 {
		e.sub.Subscriber = (*sampleSink)(e)
		e.sensors.Subscribe(&e.sub, e.watched, sensor.Options{})
	}
	go e.run()
}

// Stop ends the engine's goroutine and its subscription.
func (e *Engine) Stop() {
	if e.stop == nil {
		return
	}
	if len(e.watched) > 0 {
		e.sensors.Remove(&e.sub)
	}
	close(e.stop)
	<-e.done
	e.stop = nil
}

func (e *Engine) run() {
	defer close(e.done)
	t := time.NewTicker(e.tick)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-e.wake:
		case <-t.C:
		}
		e.qmu.Lock()
		q := e.q
		e.q = e.spare[:0]
		e.qmu.Unlock()
		now := e.now()
		e.mu.Lock()
		for _, s := range q {
			e.sampleLocked(s.index, s.value, s.isErr, now)
		}
		e.tickLocked(now)
		e.mu.Unlock()
		e.qmu.Lock()
		e.spare = q[:0]
		e.qmu.Unlock()
	}
}

// maxQueued bounds the samples waiting for the engine's goroutine.
const maxQueued = 4096

// sampleSink is the engine as the hub's subscriber.
type sampleSink Engine

// Queue hands a sample to the engine's goroutine: called under the hub's
// lock, it never blocks and keeps no reference.
func (s *sampleSink) Queue(smp *sensor.Sample, _ bool) bool {
	(*Engine)(s).push(queued{index: smp.Index(), value: smp.Value(), isErr: smp.IsError()})
	smp.Release()
	return false
}

// push queues a sample for the engine's goroutine and wakes it.
func (e *Engine) push(q queued) {
	e.qmu.Lock()
	if len(e.q) < maxQueued {
		e.q = append(e.q, q)
	}
	e.qmu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Deliver and Purge are never called: Queue keeps nothing.
func (s *sampleSink) Deliver(bool)                      {}
func (s *sampleSink) Purge(func(s *sensor.Sample) bool) {}

// sampleLocked feeds one sample (or sensor error) to the automations that
// read its sensor.
func (e *Engine) sampleLocked(index int, v float64, isErr bool, now time.Time) {
	for _, a := range e.bySens[index] {
		if !a.enabled {
			continue
		}
		if a.th != nil {
			e.thermostatLocked(a, v, isErr, now)
			continue
		}
		if isErr {
			continue // an error tells nothing of the condition: it stays as it was
		}
		var holds bool
		switch a.w.Op {
		case "below":
			holds = v < a.w.Below
		case "above":
			holds = v > a.w.Above
		default:
			holds = math.Abs(v-a.w.Equals) < 1e-9
		}
		e.conditionLocked(a, holds, now)
	}
}

// thermostatLocked is a thermostat's reaction to one sample.
func (e *Engine) thermostatLocked(a *auto, v float64, isErr bool, now time.Time) {
	if isErr {
		e.failLocked(a, fmt.Sprintf("sensor %s reports an error", a.th.Sensor), now)
		return
	}
	a.last = now
	if a.failed {
		a.failed, a.fsDone, a.err, a.zone = false, false, "", 0
		e.log.Info("automation: sensor is back; thermostat resumes", "automation", a.cfg.Name, "sensor", a.th.Sensor)
		e.publishLocked(a, now)
	}
	zone := 2
	switch {
	case v < a.lower:
		zone = -1
	case v > a.upper:
		zone = 1
	}
	if zone == a.zone && !a.retry {
		return
	}
	a.zone, a.retry = zone, false
	if zone == 2 {
		return // between the bounds the relay stays as it is
	}
	on := (zone == -1) == (a.th.Mode != "cool")
	info, err := e.relays.Get(a.th.Relay)
	if err == nil && info.On == on {
		return
	}
	act := config.Action{Set: a.th.Relay, State: protocol.StateString(on)}
	if err := e.doLocked(a, &act); err != nil {
		a.retry = true // tried again with the next sample
		first := a.err == ""
		a.err = err.Error()
		if first { // one event for a run of refusals (a too_soon says how long to wait)
			e.publishLocked(a, now)
		}
		return
	}
	a.err = ""
	a.fired = now
	e.publishLocked(a, now)
}

// failLocked applies the sensor-failure rule: the thermostat's relay goes
// to its failsafe state, and the thermostat waits for a good sample.
func (e *Engine) failLocked(a *auto, why string, now time.Time) {
	if !a.failed {
		a.failed, a.fsDone, a.zone, a.retry = true, false, 0, false
		a.err = why
		e.log.Warn("automation: thermostat's sensor failed; its relay goes to its failsafe state", "automation", a.cfg.Name, "why", why, "relay", a.th.Relay, "failsafe", e.relayFS[a.th.Relay])
	}
	if a.fsDone {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	driven, err := e.relays.FailsafeBy(ctx, a.th.Relay, a.cfg.Name)
	e.audit(a, "failsafe", a.th.Relay, "", err)
	if err != nil {
		a.err = why + "; failsafe failed: " + err.Error() // tried again at the next tick
	} else {
		a.fsDone = true
		if driven {
			a.fired = now
		}
	}
	e.publishLocked(a, now)
}

// conditionLocked updates a when's condition and fires it when due.
func (e *Engine) conditionLocked(a *auto, holds bool, now time.Time) {
	if holds && !a.holds {
		a.holds, a.since, a.done = true, now, false
		e.publishLocked(a, now) // it became active
	} else if !holds && a.holds {
		a.holds, a.done = false, false
		e.publishLocked(a, now)
	}
	e.dueLocked(a, now)
}

// dueLocked fires a when whose condition has held for its for, once per
// transition; a transition within the cooldown fires once the cooldown is
// over, if the condition still holds.
func (e *Engine) dueLocked(a *auto, now time.Time) {
	if !a.holds || a.done || now.Sub(a.since) < time.Duration(a.w.For) {
		return
	}
	if !a.fired.IsZero() && now.Sub(a.fired) < time.Duration(a.cfg.Cooldown) {
		return
	}
	a.done = true
	e.fireLocked(a, now)
}

// tickLocked looks at what time alone makes due.
func (e *Engine) tickLocked(now time.Time) {
	for _, a := range e.autos {
		if !a.enabled {
			continue
		}
		switch {
		case a.th != nil:
			if a.failed && !a.fsDone {
				e.failLocked(a, a.err, now)
			} else if !a.failed && now.Sub(a.last) > a.silence {
				e.failLocked(a, fmt.Sprintf("sensor %s sent nothing for %v", a.th.Sensor, now.Sub(a.last).Round(time.Second)), now)
			}
		case a.w != nil && a.w.Relay != "":
			info, err := e.relays.Get(a.w.Relay)
			if err == nil {
				e.conditionLocked(a, info.On == (a.w.Is == "on"), now)
			}
		case a.w != nil:
			e.dueLocked(a, now)
		case a.sched != nil:
			if a.next.IsZero() || now.Before(a.next) {
				continue
			}
			a.next = a.sched.Next(now)
			if !a.fired.IsZero() && now.Sub(a.fired) < time.Duration(a.cfg.Cooldown) {
				e.publishLocked(a, now)
				continue
			}
			e.fireLocked(a, now)
		}
	}
}

// fireLocked carries out an automation's actions in order; a failed action
// is reported and stops the rest.
func (e *Engine) fireLocked(a *auto, now time.Time) {
	a.fired, a.err = now, ""
	for i := range a.cfg.Do {
		if err := e.doLocked(a, &a.cfg.Do[i]); err != nil {
			a.err = err.Error()
			e.log.Warn("automation: action failed; the rest are not carried out", "automation", a.cfg.Name, "action", i, "err", err)
			break
		}
	}
	e.publishLocked(a, now)
}

// doLocked carries out one action, with an audit line.
func (e *Engine) doLocked(a *auto, act *config.Action) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	var op, state string
	switch {
	case act.Set != "":
		op, state = protocol.OpSet, act.State
		err = e.relays.SetBy(ctx, act.Set, act.State == "on", protocol.SourceAutomation, a.cfg.Name)
	case act.Toggle != "":
		op = protocol.OpToggle
		var on bool
		on, err = e.relays.ToggleBy(ctx, act.Toggle, protocol.SourceAutomation, a.cfg.Name)
		state = protocol.StateString(on)
	default:
		op, state = protocol.OpPulse, "on"
		err = e.relays.PulseBy(ctx, act.Pulse, time.Duration(act.For), protocol.SourceAutomation, a.cfg.Name)
	}
	e.audit(a, op, act.Relay(), state, err)
	return err
}

// audit logs one line per change an automation asks for, as Requests does
// for clients.
func (e *Engine) audit(a *auto, op, relayName, state string, err error) {
	result := "ok"
	if err != nil {
		result = errorCode(err)
	}
	attrs := []any{"op", op, "relay", relayName, "source", protocol.SourceAutomation, "automation", a.cfg.Name, "result", result}
	if state != "" {
		attrs = append(attrs, "state", state)
	}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	e.log.Info("audit", attrs...)
}

func errorCode(err error) string {
	var te *relay.TooSoonError
	var de *relay.DeviceError
	var pe *relay.PulseLengthError
	switch {
	case errors.As(err, &te):
		return protocol.CodeTooSoon
	case errors.As(err, &de):
		return protocol.CodeDeviceError
	case errors.As(err, &pe):
		return protocol.CodeBadRequest
	case errors.Is(err, relay.ErrUnknownRelay):
		return protocol.CodeUnknownRelay
	}
	return protocol.CodeBusy
}

// infoLocked is an automation as the wire shows it.
func (e *Engine) infoLocked(a *auto) protocol.AutomationInfo {
	info := protocol.AutomationInfo{Name: a.cfg.Name, Kind: a.kind, Enabled: a.enabled, Error: a.err}
	if !a.fired.IsZero() {
		info.LastFired = a.fired.UnixMilli()
	}
	if a.sched != nil && a.enabled && !a.next.IsZero() {
		info.Next = a.next.UnixMilli()
	}
	switch {
	case a.th != nil:
		if r, err := e.relays.Get(a.th.Relay); err == nil && a.enabled && !a.failed {
			info.Active = r.On
		}
	case a.w != nil:
		info.Active = a.enabled && a.holds
	}
	return info
}

// List appends every automation, in config order, to dst.
func (e *Engine) List(dst []protocol.AutomationInfo) []protocol.AutomationInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range e.autos {
		dst = append(dst, e.infoLocked(a))
	}
	return dst
}

// SetEnabled enables or disables an automation, keeps the choice in the
// data directory and pushes the change to the subscribers. A disabled
// automation does nothing; enabled again, it starts afresh (a thermostat
// acts on its next sample, a when waits for its next transition).
func (e *Engine) SetEnabled(name string, enabled bool) error {
	e.saveMu.Lock() // the file is written in the order of the changes
	defer e.saveMu.Unlock()
	e.mu.Lock()
	a, ok := e.byName[name]
	if !ok {
		e.mu.Unlock()
		return ErrUnknownAutomation
	}
	now := e.now()
	changed := a.enabled != enabled
	if changed {
		a.enabled = enabled
		a.zone, a.retry, a.failed, a.fsDone, a.err = 0, false, false, false, ""
		a.holds, a.done, a.last = false, false, now
		if a.sched != nil {
			a.next = a.sched.Next(now)
		}
		e.log.Info("automation "+map[bool]string{true: "enabled", false: "disabled"}[enabled], "automation", name)
		e.publishLocked(a, now)
	}
	disabled := e.disabledLocked()
	e.mu.Unlock()
	if changed {
		return e.saveState(disabled)
	}
	return nil
}

// Subscribe calls fn with every automation event (encoded), from the
// engine's goroutine or from SetEnabled's caller, with the engine's lock
// held: fn must not block nor call into the Engine, and must copy the
// bytes to keep them.
func (e *Engine) Subscribe(fn func(ev []byte)) (unsubscribe func()) {
	s := &subscriber{fn: fn}
	e.mu.Lock()
	e.subs[s] = struct{}{}
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		delete(e.subs, s)
		e.mu.Unlock()
	}
}

func (e *Engine) publishLocked(a *auto, now time.Time) {
	if len(e.subs) == 0 {
		return
	}
	info := e.infoLocked(a)
	e.evbuf = protocol.AppendAutomationEvent(e.evbuf[:0], &info, now.UnixMilli())
	for s := range e.subs {
		s.fn(e.evbuf)
	}
}

type savedState struct {
	Disabled []string `json:"disabled"`
}

func (e *Engine) disabledLocked() []string {
	var names []string
	for _, a := range e.autos {
		if !a.enabled {
			names = append(names, a.cfg.Name)
		}
	}
	return names
}

func (e *Engine) loadState() {
	if e.path == "" {
		return
	}
	b, err := os.ReadFile(e.path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			e.log.Warn("automations: cannot read which are disabled; all start enabled", "file", e.path, "err", err)
		}
		return
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		e.log.Warn("automations: cannot read which are disabled; all start enabled", "file", e.path, "err", err)
		return
	}
	for _, a := range e.autos {
		if slices.Contains(st.Disabled, a.cfg.Name) {
			a.enabled = false
			a.next = time.Time{}
		}
	}
}

func (e *Engine) saveState(disabled []string) error {
	if e.path == "" {
		return nil
	}
	if disabled == nil {
		disabled = []string{}
	}
	b, _ := json.Marshal(savedState{Disabled: disabled})
	if err := fileutil.WriteAtomic(e.path, append(b, '\n'), true); err != nil {
		e.log.Error("automations: cannot keep which are disabled", "file", e.path, "err", err)
		return fmt.Errorf("the choice holds until a restart but could not be saved: %w", err)
	}
	return nil
}
