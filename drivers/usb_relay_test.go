package drivers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/edgegate/edgegate/drivers"
	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
)

func TestLCUSFrame(t *testing.T) {
	for _, c := range []struct {
		ch   int
		on   bool
		want [4]byte
	}{
		{1, true, [4]byte{0xA0, 0x01, 0x01, 0xA2}},
		{1, false, [4]byte{0xA0, 0x01, 0x00, 0xA1}},
		{2, true, [4]byte{0xA0, 0x02, 0x01, 0xA3}},
		{8, false, [4]byte{0xA0, 0x08, 0x00, 0xA8}},
	} {
		if got := drivers.LCUSFrame(c.ch, c.on); got != c.want {
			t.Errorf("frame(%d, %v) = % X, want % X", c.ch, c.on, got, c.want)
		}
	}
}

// waitFrames waits until the module received n frames and returns them.
func waitFrames(t *testing.T, m *firmwaresim.LCUS, n int) [][4]byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f := m.Frames()
		if len(f) >= n {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("module got %d frames (% X), want %d", len(f), f, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestUSBRelayAgainstSimulatedModule(t *testing.T) {
	m, err := firmwaresim.NewLCUS(firmwaresim.LCUSOptions{Channels: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pool := drivers.NewDevicePool(nil, quietLog)
	pool.MaxBackoff = 100 * time.Millisecond
	defer pool.Close()
	env := drivers.Env{Devices: pool}
	var relays []drivers.Relay
	for ch := 1; ch <= 2; ch++ {
		r, err := drivers.OpenUSBRelay(drivers.USBRelayOpts{Name: fmt.Sprintf("lamp%d", ch), Port: m.Path(), Channel: ch}, env)
		if err != nil {
			t.Fatal(err)
		}
		relays = append(relays, r)
	}
	if _, err := drivers.OpenUSBRelay(drivers.USBRelayOpts{Name: "x", Port: m.Path(), Channel: 9}, env); err == nil {
		t.Fatal("channel 9 accepted")
	}
	ctx := context.Background()
	steps := []struct {
		ch int
		on bool
	}{{1, true}, {2, true}, {1, false}, {2, false}}
	for _, s := range steps {
		if err := relays[s.ch-1].Set(ctx, s.on); err != nil {
			t.Fatal(err)
		}
	}
	want := [][4]byte{{0xA0, 1, 1, 0xA2}, {0xA0, 2, 1, 0xA3}, {0xA0, 1, 0, 0xA1}, {0xA0, 2, 0, 0xA2}}
	if got := waitFrames(t, m, 4); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("frames % X, want % X", got, want)
	}
	if st := pool.Status(); len(st) != 1 || !st[0].OK || st[0].State != drivers.StateConnected {
		t.Fatalf("status %+v", st)
	}

	// Unplugged: a set fails at once and says why.
	relays[0].Set(ctx, true)
	waitFrames(t, m, 5)
	rep := relays[0].(drivers.Reporter)
	changed := make(chan bool, 10)
	rep.OnDeviceChange(func() { on, _ := rep.DeviceState(); changed <- on })
	m.Unplug()
	deadline := time.Now().Add(5 * time.Second)
	for pool.Status()[0].State != drivers.StateReconnecting {
		if time.Now().After(deadline) {
			t.Fatalf("status after unplug %+v", pool.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if err := relays[1].Set(ctx, true); err == nil || time.Since(start) > time.Second {
		t.Fatalf("set while unplugged: %v after %v", err, time.Since(start))
	}
	// Replugged: the module lost power; the driver makes every channel in
	// use off for certain and reports channel 1, which was on, as off.
	if err := m.Replug(); err != nil {
		t.Fatal(err)
	}
	select {
	case on := <-changed:
		if on {
			t.Fatal("channel 1 reported on after the module lost power")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported after replug")
	}
	got := waitFrames(t, m, 7)[5:]
	if fmt.Sprint(got) != fmt.Sprint([][4]byte{{0xA0, 1, 0, 0xA1}, {0xA0, 2, 0, 0xA2}}) &&
		fmt.Sprint(got) != fmt.Sprint([][4]byte{{0xA0, 2, 0, 0xA2}, {0xA0, 1, 0, 0xA1}}) {
		t.Fatalf("frames after replug % X", got)
	}
	if err := relays[1].Set(ctx, true); err != nil {
		t.Fatal(err)
	}
	waitFrames(t, m, 8)
	if got := fmt.Sprint(m.Relays()); got != "[false true false false]" {
		t.Fatalf("module drives %s", got)
	}
}
