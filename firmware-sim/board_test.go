package firmwaresim

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"
)

// testPort opens a simulated device's stable path the way the gateway does,
// with go.bug.st/serial, and reads lines with a deadline.
type testPort struct {
	t     *testing.T
	p     serial.Port
	lines chan string
	done  chan error
}

func openTestPort(t *testing.T, path string) *testPort {
	t.Helper()
	p, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	tp := &testPort{t: t, p: p, lines: make(chan string, 100), done: make(chan error, 1)}
	go func() {
		r := bufio.NewReader(p)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				tp.done <- err
				close(tp.lines)
				return
			}
			tp.lines <- strings.TrimSuffix(l, "\n")
		}
	}()
	t.Cleanup(func() { p.Close() })
	return tp
}

func (tp *testPort) send(body string) {
	tp.t.Helper()
	if _, err := tp.p.Write(boardLine(body)); err != nil {
		tp.t.Fatal(err)
	}
}

// next returns the body of the next line with a valid checksum, failing on
// a timeout.
func (tp *testPort) next() string {
	tp.t.Helper()
	for {
		select {
		case l, ok := <-tp.lines:
			if !ok {
				tp.t.Fatalf("port closed: %v", <-tp.done)
			}
			if body, ok := boardLineBody(l); ok {
				return body
			}
		case <-time.After(3 * time.Second):
			tp.t.Fatal("no line within 3s")
		}
	}
}

func TestBoardCRCCheckValue(t *testing.T) {
	// CRC-8/SMBUS, as docs/serial-board.md specifies.
	if got := boardCRC([]byte("123456789")); got != 0xF4 {
		t.Fatalf("crc8(123456789) = %#x, want 0xf4", got)
	}
	if got := string(boardLine("! RELAY 2 1 button")); !strings.HasSuffix(got, "\n") || strings.Count(got, "*") != 1 {
		t.Fatalf("line %q", got)
	}
}

func TestBoardProtocol(t *testing.T) {
	b, err := NewBoard(BoardOptions{Relays: 2, Telemetry: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tp := openTestPort(t, b.Path())
	if got := tp.next(); got != "! BOOT fw=edgeboard/1.3.0 relays=2 sensors=temperature:°C,humidity:%" {
		t.Fatalf("banner %q", got)
	}
	cases := []struct{ send, want string }{
		{"1 INFO", "1 OK INFO fw=edgeboard/1.3.0 relays=2 sensors=temperature:°C,humidity:%"},
		{"2 GET", "2 OK GET 00"},
		{"3 SET 2 1", "3 OK SET 2 1"},
		{"4 GET", "4 OK GET 01"},
		{"5 SET 3 1", "5 ERR channel no relay channel 3 (this board has 2)"},
		{"6 SET 1", "6 ERR syntax usage: SET <channel> <0|1>"},
		{"7 FOO", "7 ERR syntax unknown command FOO"},
	}
	for _, c := range cases {
		tp.send(c.send)
		if got := tp.next(); got != c.want {
			t.Fatalf("%q: got %q, want %q", c.send, got, c.want)
		}
	}
	// A line with a wrong checksum is ignored: the next request's reply
	// comes first.
	tp.p.Write([]byte("8 SET 1 1*00\n"))
	tp.send("9 GET")
	if got := tp.next(); got != "9 OK GET 01" {
		t.Fatalf("after a bad line: %q", got)
	}
	tp.send("10 READ")
	if got := tp.next(); !strings.HasPrefix(got, "10 OK READ temperature=") || !strings.Contains(got, " humidity=") {
		t.Fatalf("READ: %q", got)
	}
	// The button toggles the relay and says so.
	if err := b.Press(1); err != nil {
		t.Fatal(err)
	}
	if got := tp.next(); got != "! RELAY 1 1 button" {
		t.Fatalf("press: %q", got)
	}
	if got := b.Relays(); !got[0] || !got[1] {
		t.Fatalf("relays %v", got)
	}
	// A reboot: every relay off, banner mid-stream after a cut line.
	b.Reboot()
	if got := tp.next(); !strings.HasPrefix(got, "! BOOT ") {
		t.Fatalf("reboot: %q", got)
	}
	if got := b.Relays(); got[0] || got[1] {
		t.Fatalf("relays after reboot %v", got)
	}
	want := []RelayChange{{2, true, "command"}, {1, true, "button"}, {1, false, "reboot"}, {2, false, "reboot"}}
	if got := b.History(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("history %v, want %v", got, want)
	}
}

func TestBoardGarbageNeverPassesChecksum(t *testing.T) {
	b, err := NewBoard(BoardOptions{Telemetry: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for range 200 {
		b.mu.Lock()
		g := b.garbageLocked()
		b.mu.Unlock()
		for _, l := range strings.Split(string(g), "\n") {
			if body, ok := boardLineBody(l); ok {
				t.Fatalf("garbage line %q passes the checksum (%q)", l, body)
			}
		}
	}
}

func TestBoardFaults(t *testing.T) {
	b, err := NewBoard(BoardOptions{Telemetry: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tp := openTestPort(t, b.Path())
	tp.next() // banner
	tp.send("1 SET 1 1")
	tp.next()

	// unplug: the open port fails, the path leads nowhere
	b.Unplug()
	select {
	case <-tp.done:
	case <-time.After(3 * time.Second):
		t.Fatal("reading an unplugged board did not fail")
	}
	if _, err := os.Stat(b.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat after unplug: %v", err)
	}
	b.Press(2) // still powered: the button works, nobody hears it

	// replug: same path, new pty; the board kept its relays
	if err := b.Replug(); err != nil {
		t.Fatal(err)
	}
	tp = openTestPort(t, b.Path())
	tp.send("2 GET")
	if got := tp.next(); got != "2 OK GET 1100" {
		t.Fatalf("after replug: %q", got)
	}

	// slow: the reply comes after the delay
	b.SetSlow(300 * time.Millisecond)
	start := time.Now()
	tp.send("3 GET")
	tp.next()
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("slow reply after %v", d)
	}
	b.SetSlow(0)

	// mute: no reply, and the command is not carried out
	b.SetMute(true)
	tp.send("4 SET 3 1")
	select {
	case l := <-tp.lines:
		t.Fatalf("a mute board answered %q", l)
	case <-time.After(200 * time.Millisecond):
	}
	b.SetMute(false)
	tp.send("5 GET")
	if got := tp.next(); got != "5 OK GET 1100" {
		t.Fatalf("after mute: %q", got)
	}
}

func TestLCUSFrames(t *testing.T) {
	m, err := NewLCUS(LCUSOptions{Channels: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p, err := serial.Open(m.Path(), &serial.Mode{BaudRate: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// noise, a frame with a bad checksum, then valid frames
	p.Write([]byte{0x55, 0xA0, 0x01, 0x01, 0x00})
	p.Write([]byte{0xA0, 0x01, 0x01, 0xA2, 0xA0, 0x03, 0x01, 0xA4, 0xA0, 0x01, 0x00, 0xA1})
	deadline := time.Now().Add(3 * time.Second)
	for len(m.Frames()) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	want := [][4]byte{{0xA0, 1, 1, 0xA2}, {0xA0, 3, 1, 0xA4}, {0xA0, 1, 0, 0xA1}}
	if got := m.Frames(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("frames %X, want %X", got, want)
	}
	if got := m.Relays(); fmt.Sprint(got) != "[false false true false]" {
		t.Fatalf("relays %v", got)
	}
	if m.Rejected() == 0 {
		t.Fatal("the noise was not skipped")
	}
}

func TestPopulateSerialDevices(t *testing.T) {
	devs := Devices{Serial: []SerialDevice{
		{Kind: KindSerialBoard, Name: "board", Port: "/dev/ttyACM0"},
		{Kind: KindUSBRelay, Name: "ttyUSB0", Port: "/dev/ttyUSB0"},
	}}
	h := NewHardware(nil)
	if err := h.Populate(devs); err != nil {
		t.Fatal(err)
	}
	b, m := h.SerialBoard("board"), h.SerialLCUS("ttyUSB0")
	if b == nil || m == nil {
		t.Fatal("devices not registered")
	}
	bp, _ := h.SerialPath("/dev/ttyACM0")
	mp, _ := h.SerialPath("/dev/ttyUSB0")
	if bp != b.Path() || !strings.HasSuffix(b.Path(), "/ttyACM0") || mp != m.Path() {
		t.Fatalf("ports not resolved: %q %q", bp, mp)
	}
	if err := h.Populate(devs); err != nil || h.SerialBoard("board") != b {
		t.Fatalf("populating again attached another board (%v)", err)
	}
	if _, err := os.Stat(b.Path()); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if _, err := os.Stat(b.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the board outlived Close: %v", err)
	}
}
