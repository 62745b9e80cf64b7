package drivers_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/drivers"
	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
)

var quietLog = slog.New(slog.DiscardHandler)

// boardRig is a simulated board on a pty, and a device pool whose relays
// and sensor talk to it through go.bug.st/serial, as on hardware.
type boardRig struct {
	t      *testing.T
	board  *firmwaresim.Board
	pool   *drivers.DevicePool
	relays []drivers.Reporter
	sensor drivers.Sensor
	// The rig plays the gateway's part: per channel a lock held during
	// Set, the view (last state confirmed by Set or by a device report),
	// and reports: every device change it recorded, in order.
	locks   []sync.Mutex
	mu      sync.Mutex
	view    map[int]bool
	reports map[int][]bool
	calls   chan int
}

func newBoardRig(t *testing.T, opts firmwaresim.BoardOptions, channels int) *boardRig {
	t.Helper()
	b, err := firmwaresim.NewBoard(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	dev := drivers.SerialDevice{Name: "board", Driver: drivers.SerialBoardDriver, Port: b.Path(), Baud: 115200}
	pool := drivers.NewDevicePool([]drivers.SerialDevice{dev}, quietLog)
	pool.MaxBackoff = 200 * time.Millisecond
	t.Cleanup(func() { pool.Close() })
	rig := &boardRig{t: t, board: b, pool: pool, locks: make([]sync.Mutex, channels+1),
		view: map[int]bool{}, reports: map[int][]bool{}, calls: make(chan int, 100)}
	env := drivers.Env{Devices: pool}
	for ch := 1; ch <= channels; ch++ {
		r, err := drivers.OpenBoardRelay(drivers.BoardRelayOpts{Name: fmt.Sprintf("r%d", ch), Device: "board", Channel: ch}, env)
		if err != nil {
			t.Fatal(err)
		}
		rep, ok := r.(drivers.Reporter)
		if !ok {
			t.Fatal("a serial-board relay does not report device changes")
		}
		rig.relays = append(rig.relays, rep)
	}
	// Opening the sensor waits until the board identified itself.
	s, err := drivers.OpenBoardSensor(drivers.BoardSensorOpts{Name: "soil", Device: "board", Interval: time.Second}, env)
	if err != nil {
		t.Fatal(err)
	}
	rig.sensor = s
	// Start from the states the board reported on connecting, then listen.
	deadline := time.Now().Add(5 * time.Second)
	for ch, rep := range rig.relays {
		on, known := rep.DeviceState()
		for !known && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			on, known = rep.DeviceState()
		}
		if !known {
			t.Fatalf("channel %d: state not read from the board", ch+1)
		}
		rig.view[ch+1] = on
		rep.OnDeviceChange(func() { rig.deviceChanged(ch+1, rep) })
	}
	return rig
}

// deviceChanged is what the gateway does on a device report: wait for a
// Set in flight, read the state, record it if it differs from the view.
func (r *boardRig) deviceChanged(ch int, rep drivers.Reporter) {
	r.locks[ch].Lock()
	defer r.locks[ch].Unlock()
	on, known := rep.DeviceState()
	if !known {
		r.t.Errorf("channel %d: change reported with no known state", ch)
		return
	}
	r.mu.Lock()
	if r.view[ch] == on {
		r.mu.Unlock()
		return
	}
	r.view[ch] = on
	r.reports[ch] = append(r.reports[ch], on)
	r.mu.Unlock()
	r.calls <- ch
}

func (r *boardRig) set(ch int, on bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.locks[ch].Lock()
	defer r.locks[ch].Unlock()
	err := r.relays[ch-1].Set(ctx, on)
	if err == nil {
		r.mu.Lock()
		r.view[ch] = on
		r.mu.Unlock()
	}
	return err
}

func (r *boardRig) mustSet(ch int, on bool) {
	r.t.Helper()
	if err := r.set(ch, on); err != nil {
		r.t.Fatalf("set channel %d %v: %v", ch, on, err)
	}
}

// waitReport waits for the change callback of channel ch and returns the
// state it read.
func (r *boardRig) waitReport(ch int) bool {
	r.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-r.calls:
			if got != ch {
				continue
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			rs := r.reports[ch]
			return rs[len(rs)-1]
		case <-deadline:
			r.t.Fatalf("no change reported for channel %d", ch)
		}
	}
}

func (r *boardRig) noReport(d time.Duration) {
	r.t.Helper()
	select {
	case ch := <-r.calls:
		r.mu.Lock()
		defer r.mu.Unlock()
		r.t.Fatalf("unexpected change report on channel %d: %v", ch, r.reports[ch])
	case <-time.After(d):
	}
}

// waitState polls the pool's status of the board until it is state.
func (r *boardRig) waitState(state string) drivers.DeviceStatus {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := r.pool.Status()
		if len(st) == 1 && st[0].State == state {
			return st[0]
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("board state %+v, want %s", st, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkTruth fails if any channel's reported states are not the states the
// board went through, in order, or if the last one is not what it drives.
func (r *boardRig) checkTruth() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	hist := map[int][]bool{}
	for _, c := range r.board.History() {
		hist[c.Channel] = append(hist[c.Channel], c.On)
	}
	for ch, reps := range r.reports {
		// every report must match a state of the board's history, in order
		h := append([]bool{false}, hist[ch]...)
		i := 0
		for _, on := range reps {
			for i < len(h) && h[i] != on {
				i++
			}
			if i == len(h) {
				r.t.Fatalf("channel %d: reported %v, but the board went through %v", ch, reps, h)
			}
		}
	}
}

// waitView waits until the rig's view of every channel is what the board
// drives (reports are asynchronous).
func (r *boardRig) waitView() {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		truth := r.board.Relays()
		r.mu.Lock()
		same := true
		for ch := range r.relays {
			same = same && r.view[ch+1] == truth[ch]
		}
		view := fmt.Sprint(r.view)
		r.mu.Unlock()
		if same {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("view %s, board drives %v", view, truth)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSerialBoardRelaysAndSensor(t *testing.T) {
	rig := newBoardRig(t, firmwaresim.BoardOptions{Relays: 2, Telemetry: -1}, 2)
	if got := rig.sensor.Quantities(); fmt.Sprint(got) != "[{temperature °C} {humidity %}]" {
		t.Fatalf("quantities %v", got)
	}
	for _, step := range []struct {
		ch   int
		on   bool
		want string
	}{{1, true, "[true false]"}, {2, true, "[true true]"}, {1, false, "[false true]"}, {1, false, "[false true]"}} {
		rig.mustSet(step.ch, step.on)
		if got := fmt.Sprint(rig.board.Relays()); got != step.want {
			t.Fatalf("after set %d %v: board drives %s, want %s", step.ch, step.on, got, step.want)
		}
		if on, known := rig.relays[step.ch-1].DeviceState(); !known || on != step.on {
			t.Fatalf("DeviceState %v %v", on, known)
		}
	}
	vals := make([]float64, 2)
	if err := rig.sensor.Read(context.Background(), vals); err != nil {
		t.Fatal(err)
	}
	if vals[0] < 15 || vals[0] > 30 || vals[1] < 30 || vals[1] > 60 {
		t.Fatalf("values %v", vals)
	}
	// A channel the board does not have is refused with the reason.
	r3, err := drivers.OpenBoardRelay(drivers.BoardRelayOpts{Name: "r3", Device: "board", Channel: 3}, drivers.Env{Devices: rig.pool})
	if err != nil {
		t.Fatal(err)
	}
	if err := r3.Set(context.Background(), true); err == nil || !strings.Contains(err.Error(), "has 2 relay channels") {
		t.Fatalf("set on a missing channel: %v", err)
	}
	if st := rig.pool.Status(); len(st) != 1 || !st[0].OK || st[0].State != drivers.StateConnected {
		t.Fatalf("status %+v", st)
	}
	// Sets made by the gateway are not reported back as device changes.
	rig.noReport(100 * time.Millisecond)
}

func TestSerialBoardButtonReportsOneChange(t *testing.T) {
	rig := newBoardRig(t, firmwaresim.BoardOptions{Relays: 2, Telemetry: 50 * time.Millisecond}, 2)
	rig.mustSet(1, false)
	if err := rig.board.Press(2); err != nil {
		t.Fatal(err)
	}
	if on := rig.waitReport(2); !on {
		t.Fatal("button press reported as off")
	}
	// Telemetry keeps confirming the state: no second report.
	rig.noReport(300 * time.Millisecond)
	if on, _ := rig.relays[1].DeviceState(); !on {
		t.Fatal("DeviceState after the press is off")
	}
	rig.checkTruth()
}

func TestSerialBoardUnplugReplug(t *testing.T) {
	base := runtime.NumGoroutine()
	rig := newBoardRig(t, firmwaresim.BoardOptions{Relays: 2, Telemetry: -1}, 2)
	rig.mustSet(1, true)
	connected := settledGoroutines(t, -1)

	for cycle := 0; cycle < 3; cycle++ {
		rig.board.Unplug()
		st := rig.waitState(drivers.StateReconnecting)
		if st.OK || st.Error == "" {
			t.Fatalf("status while unplugged %+v", st)
		}
		start := time.Now()
		err := rig.set(2, true)
		if err == nil || time.Since(start) > 1200*time.Millisecond {
			t.Fatalf("set while unplugged: %v after %v", err, time.Since(start))
		}
		if !strings.Contains(err.Error(), "disconnected") {
			t.Fatalf("error does not say what happened: %v", err)
		}
		if err := rig.sensor.Read(context.Background(), make([]float64, 2)); err == nil {
			t.Fatal("sensor read while unplugged succeeded")
		}
		// The button still works on the board's own supply: channel 1 goes
		// off while the gateway cannot hear it.
		rig.board.Press(1)
		if err := rig.board.Replug(); err != nil {
			t.Fatal(err)
		}
		rig.waitState(drivers.StateConnected)
		// The state is read back from the board and the change reported.
		if on := rig.waitReport(1); on {
			t.Fatalf("cycle %d: channel 1 reported on after replug; the board has it off", cycle)
		}
		rig.mustSet(1, true)
	}
	if st := rig.waitState(drivers.StateConnected); !st.OK {
		t.Fatalf("status after replug %+v", st)
	}
	rig.checkTruth()
	// No goroutine left behind by the cycles, and none after closing.
	settledGoroutines(t, connected)
	rig.pool.Close()
	rig.board.Close()
	settledGoroutines(t, base)
}

// settledGoroutines waits until the goroutine count is want (or, with
// want < 0, stable) and returns it.
func settledGoroutines(t *testing.T, want int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	prev := -1
	for {
		n := runtime.NumGoroutine()
		if want >= 0 && n <= want {
			return n
		}
		if want < 0 && n == prev {
			return n
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want %d:\n%s", n, want, buf[:runtime.Stack(buf, true)])
		}
		prev = n
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSerialBoardGarbageAndReboot(t *testing.T) {
	rig := newBoardRig(t, firmwaresim.BoardOptions{Relays: 2, Telemetry: 20 * time.Millisecond}, 2)
	rig.mustSet(1, true)
	for i := 0; i < 5; i++ {
		rig.board.Garbage()
		rig.mustSet(2, i%2 == 0)
		if got := rig.board.Relays(); !got[0] || got[1] != (i%2 == 0) {
			t.Fatalf("board drives %v", got)
		}
	}
	// Garbage in the middle of a request: its reply may be lost to the
	// noise; the request is resent and succeeds.
	go rig.board.Garbage()
	rig.mustSet(2, false)
	rig.checkTruth()

	// A reboot: the board drops every relay; the gateway hears the banner
	// and reports the truth (off), never the old state.
	rig.board.Reboot()
	if on := rig.waitReport(1); on {
		t.Fatal("channel 1 reported on after a reboot")
	}
	rig.mustSet(2, true)
	if got := fmt.Sprint(rig.board.Relays()); got != "[false true]" {
		t.Fatalf("board drives %s after reboot and set", got)
	}
	// A reboot while the board sends telemetry and answers requests.
	for i := 0; i < 5; i++ {
		go rig.board.Reboot()
		rig.set(1, true) // may fail with "rebooted": that is the truth
	}
	rig.waitView()
	rig.checkTruth()
}

func TestSerialBoardMuteAndSlow(t *testing.T) {
	rig := newBoardRig(t, firmwaresim.BoardOptions{Relays: 2, Telemetry: -1}, 2)
	rig.mustSet(1, false)

	rig.board.SetMute(true)
	start := time.Now()
	err := rig.set(1, true)
	if err == nil || !strings.Contains(err.Error(), "no reply") {
		t.Fatalf("set on a mute board: %v", err)
	}
	if d := time.Since(start); d > 1300*time.Millisecond {
		t.Fatalf("set on a mute board took %v", d)
	}
	if st := rig.pool.Status()[0]; st.OK || !strings.Contains(st.Error, "no reply") {
		t.Fatalf("status of a mute board %+v", st)
	}
	rig.board.SetMute(false)
	rig.mustSet(1, false)
	deadline := time.Now().Add(5 * time.Second)
	for st := rig.pool.Status()[0]; !st.OK; st = rig.pool.Status()[0] {
		if time.Now().After(deadline) {
			t.Fatalf("status after recovery %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Slow: the reply comes after the timeout; the request fails, but the
	// board did switch, and its late word is reported as the truth.
	rig.board.SetSlow(1500 * time.Millisecond)
	if err := rig.set(2, true); err == nil {
		t.Fatal("a reply after the timeout was taken")
	}
	if on := rig.waitReport(2); !on {
		t.Fatal("late reply not reported")
	}
	rig.board.SetSlow(0)
	rig.checkTruth()
}

// A board's sensor remembers what the board announced, so that a gateway
// restarted while the board is unplugged still starts; its reads fail
// until the board is back.
func TestSerialBoardSensorStartsWhileUnplugged(t *testing.T) {
	state := memState{}
	b, err := firmwaresim.NewBoard(firmwaresim.BoardOptions{Relays: 2, Telemetry: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	o := drivers.BoardSensorOpts{Name: "soil", Device: "board", Interval: time.Second}
	open := func() (drivers.Sensor, *drivers.DevicePool, error) {
		pool := drivers.NewDevicePool([]drivers.SerialDevice{{Name: "board", Driver: drivers.SerialBoardDriver, Port: b.Path(), Baud: 115200}}, quietLog)
		pool.MaxBackoff = 200 * time.Millisecond
		t.Cleanup(func() { pool.Close() })
		s, err := drivers.OpenBoardSensor(o, drivers.Env{Devices: pool, State: state, Logger: quietLog})
		return s, pool, err
	}
	// Without a data dir's memory, an unplugged board cannot name its sensors.
	// (That pool is closed before the replug: two pools on one port would
	// take each other's bytes, which the gateway never does.)
	b.Unplug()
	_, failed, err := open()
	if err == nil || !strings.Contains(err.Error(), "first time") {
		t.Fatalf("first start with the board unplugged: %v", err)
	}
	failed.Close()
	if err := b.Replug(); err != nil {
		t.Fatal(err)
	}
	s, pool, err := open()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(s.Quantities())
	pool.Close()

	// Restarted while unplugged: the same quantities, reads fail, then the
	// board comes back and reads work again.
	b.Unplug()
	s, _, err = open()
	if err != nil {
		t.Fatalf("restart with the board unplugged: %v", err)
	}
	if got := fmt.Sprint(s.Quantities()); got != want {
		t.Fatalf("remembered quantities %s, want %s", got, want)
	}
	vals := make([]float64, len(s.Quantities()))
	if err := s.Read(context.Background(), vals); err == nil {
		t.Fatal("a read from the unplugged board succeeded")
	}
	if err := b.Replug(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.Read(context.Background(), vals)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reads did not recover after replug: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// memState is a drivers.StateStore in memory, kept for a test's life as a
// data dir is for the gateway's.
type memState map[string][]byte

func (m memState) Load(name string) ([]byte, error) {
	b, ok := m[name]
	if !ok {
		return nil, os.ErrNotExist
	}
	return b, nil
}

func (m memState) Save(name string, data []byte) error {
	m[name] = append([]byte(nil), data...)
	return nil
}
