package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/edgegate/edgegate/protocol"
)

// The relay guards of AUTOMATIONS.md. min_on and min_off are checked on
// the changes someone asks for (Set, Toggle, Pulse, whatever the source);
// failsafe, shutdown, interlock partners going off, a pulse's own end and
// max_on are never refused. max_on switches a relay off (source guard)
// once it has been on that long, whoever switched it on, a device button
// included where the driver reports it. Periods are measured from the
// last confirmed change; the initial state driven at start begins none,
// so a gateway that restarts does not lock its relays.

// TooSoonError is a change refused by min_on or min_off.
type TooSoonError struct {
	Relay string
	Guard string        // "min_on" or "min_off"
	Min   time.Duration // the guard's length
	Wait  time.Duration // how long until the change would be accepted
}

func (e *TooSoonError) Error() string {
	state := "on"
	if e.Guard == "min_off" {
		state = "off"
	}
	return fmt.Sprintf("relay %q must stay %s for at least %v (%s); try again in %v", e.Relay, state, e.Min, e.Guard, e.Wait.Round(time.Millisecond))
}

// checkGuards refuses with a *TooSoonError a change to on that would end
// a period shorter than its guard. Call with e.lock held.
func (s *Service) checkGuards(e *entry, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !e.known || e.on == on || e.since.IsZero() {
		return nil
	}
	guard, min := "min_off", time.Duration(e.cfg.MinOff)
	if e.on {
		guard, min = "min_on", time.Duration(e.cfg.MinOn)
	}
	if min <= 0 {
		return nil
	}
	if held := time.Since(e.since); held < min {
		return &TooSoonError{Relay: e.cfg.Name, Guard: guard, Min: min, Wait: min - held}
	}
	return nil
}

// guardChangedLocked notes a confirmed change for the guards and arms or
// stops max_on. Call with s.mu held.
func (s *Service) guardChangedLocked(e *entry, on bool, source string, t time.Time) {
	if source == protocol.SourceStartup {
		e.since = time.Time{}
	} else {
		e.since = t
	}
	d := time.Duration(e.cfg.MaxOn)
	if d <= 0 {
		return
	}
	if !on {
		if e.maxOn != nil {
			e.maxOn.Stop()
		}
		return
	}
	e.onAt = t
	if e.maxOn == nil {
		e.maxOn = time.AfterFunc(d, func() { s.maxOnExpired(e) })
	} else {
		e.maxOn.Reset(d)
	}
}

// maxOnExpired switches a relay off that has been on for max_on. A timer
// left over from an earlier on period finds the relay on for less and
// does nothing: the timer was armed again for the current one.
func (s *Service) maxOnExpired(e *entry) {
	e.lock.Lock()
	defer e.lock.Unlock()
	s.mu.Lock()
	d := time.Duration(e.cfg.MaxOn)
	due := !s.closed && e.known && e.on && time.Since(e.onAt) >= d-time.Millisecond
	s.mu.Unlock()
	if !due {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.cancelPulseLocked(e)
	if err := s.drive(ctx, e, false, protocol.SourceGuard, ""); err != nil {
		s.log.Error("max_on could not switch the relay off; trying again in 5s", "relay", e.cfg.Name, "err", err)
		s.mu.Lock()
		if !s.closed {
			e.maxOn.Reset(5 * time.Second)
		}
		s.mu.Unlock()
		return
	}
	s.log.Warn("relay switched off by its max_on guard", "relay", e.cfg.Name, "max_on", d)
}

// stopMaxOn stops a relay's max_on timer (shutdown).
func (s *Service) stopMaxOn(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.maxOn != nil {
		e.maxOn.Stop()
	}
}

// FailsafeBy puts one relay into its failsafe state (hold: unchanged) on
// behalf of the automation named, as the sensor-failure rule of a
// thermostat does: like every failsafe, min_on and min_off never refuse it.
// It reports whether the relay was driven (false for hold).
func (s *Service) FailsafeBy(ctx context.Context, name, automation string) (bool, error) {
	e, err := s.lookup(name)
	if err != nil {
		return false, err
	}
	var on bool
	switch e.cfg.Failsafe {
	case "hold":
		return false, nil
	case "on":
		on = true
	}
	e.lock.Lock()
	defer e.lock.Unlock()
	if s.isClosed() {
		return false, ErrShutdown
	}
	return true, s.setLocked(ctx, e, on, protocol.SourceAutomation, automation)
}
