package firmwaresim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// This file simulates a microcontroller board running the edgegate board
// firmware (docs/serial-board.md) behind a Linux pseudo-terminal. The
// gateway opens the pty's slave through a stable path (a symlink, as udev
// gives /dev/ttyACM0 or /dev/serial/by-id/...) with the very serial code it
// uses on hardware. Faults on demand: unplug (the pty disappears), replug (a
// new pty behind the same path), reboot (a banner in the middle of the
// stream), garbage bytes, slow or missing replies, and a push button.

// simPort is the far end of a simulated serial device: a pseudo-terminal
// reachable at a stable path that can be unplugged and plugged back.
type simPort struct {
	link string // the stable path: a symlink to the current pty slave
	dir  string // a temp dir we made for link, removed by close

	mu      sync.Mutex
	master  *os.File // nil while unplugged
	slave   *os.File // held open so the master never reads as hung up
	ptsPath string
}

// newSimPort prepares a stable path named name in a fresh temporary
// directory.
func newSimPort(name string) (*simPort, error) {
	if name == "" || name == "." || name == "/" {
		name = "tty"
	}
	dir, err := os.MkdirTemp("", "edgegate-serial-")
	if err != nil {
		return nil, fmt.Errorf("simulated serial port: %w", err)
	}
	return &simPort{link: filepath.Join(dir, name), dir: dir}, nil
}

// plug creates a new pty pair, points the stable path at its slave and
// returns the master, which the device firmware reads and writes.
func (p *simPort) plug() (*os.File, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open a pseudo-terminal: %w", err)
	}
	// pty.Open leaves the master in blocking mode, where Close cannot
	// interrupt a Read in progress (and an unplug would not reach the
	// gateway). A non-blocking duplicate goes through Go's poller instead.
	fd, err := unix.Dup(int(m.Fd()))
	m.Close()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("pseudo-terminal: %w", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		s.Close()
		return nil, fmt.Errorf("pseudo-terminal: %w", err)
	}
	master := os.NewFile(uintptr(fd), "/dev/ptmx")
	// Raw mode from the start, as a USB serial port is: no echo, no line
	// editing, no CR/LF translation, even before the gateway configures it.
	if t, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS); err == nil {
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, t)
	}
	tmp := p.link + ".new"
	os.Remove(tmp)
	err = os.Symlink(s.Name(), tmp)
	if err == nil {
		err = os.Rename(tmp, p.link)
	}
	if err != nil {
		master.Close()
		s.Close()
		return nil, fmt.Errorf("link %s to %s: %w", p.link, s.Name(), err)
	}
	p.mu.Lock()
	p.master, p.slave, p.ptsPath = master, s, s.Name()
	p.mu.Unlock()
	return master, nil
}

// unplug removes the pty: the gateway's reads fail, and the stable path
// leads nowhere until the next plug.
func (p *simPort) unplug() {
	p.mu.Lock()
	m, s := p.master, p.slave
	p.master, p.slave, p.ptsPath = nil, nil, ""
	p.mu.Unlock()
	if m == nil {
		return
	}
	os.Remove(p.link)
	m.Close()
	s.Close()
}

func (p *simPort) plugged() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.master != nil
}

func (p *simPort) pts() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ptsPath
}

// write sends b to the gateway. Like a UART with nobody listening, it drops
// what cannot be sent within a short time (the gateway is not reading).
func (p *simPort) write(b []byte) {
	p.mu.Lock()
	m := p.master
	p.mu.Unlock()
	if m == nil {
		return
	}
	m.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	m.Write(b)
}

func (p *simPort) close() {
	p.unplug()
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

// boardCRC is the protocol's CRC-8 (polynomial 0x07, initial 0), written
// again here on purpose: the firmware side is an independent implementation
// of docs/serial-board.md, so a misreading on either side shows in tests.
func boardCRC(b []byte) byte {
	crc := byte(0)
	for _, x := range b {
		crc ^= x
		for i := 0; i < 8; i++ {
			if crc&0x80 != 0 {
				crc = crc<<1 ^ 0x07
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func boardLine(body string) []byte {
	return []byte(fmt.Sprintf("%s*%02X\n", body, boardCRC([]byte(body))))
}

// boardLineBody returns the body of a well-formed line, or false.
func boardLineBody(line string) (string, bool) {
	i := strings.LastIndexByte(line, '*')
	if i < 1 || len(line)-i != 3 {
		return "", false
	}
	sum, err := strconv.ParseUint(line[i+1:], 16, 8)
	if err != nil || byte(sum) != boardCRC([]byte(line[:i])) {
		return "", false
	}
	return line[:i], true
}

// BoardQuantity is one value a simulated board measures.
type BoardQuantity struct {
	Name, Unit string
	Value      func(t time.Time) float64
}

// BoardOptions configure a simulated board. Zero values give the demo
// board: 4 relays, temperature and humidity, telemetry every 5 s.
type BoardOptions struct {
	Name       string // for messages
	LinkName   string // base name of the stable path (default "ttyACM0")
	Firmware   string // default "edgeboard/1.3.0"
	Relays     int    // relay channels, default 4
	Quantities []BoardQuantity
	// Telemetry is the period of the unsolicited telemetry line (default
	// 5s; negative: none).
	Telemetry time.Duration
}

// RelayChange is one change of a simulated relay output.
type RelayChange struct {
	Channel int
	On      bool
	Cause   string // "command", "button", "reboot"
}

// Board is a simulated microcontroller board on a pseudo-terminal.
// Its relays are what it physically drives; they survive unplug and replug
// (the board has its own power supply) but not a reboot (all off).
type Board struct {
	opts BoardOptions
	port *simPort

	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	relays   []bool
	history  []RelayChange
	slow     time.Duration
	mute     bool
	boots    int
	commands int
	rejected int // lines dropped for their checksum
	rng      *rand.Rand
	closed   bool
}

// NewBoard powers a board up on a fresh pseudo-terminal; it prints its
// boot banner at once.
func NewBoard(opts BoardOptions) (*Board, error) {
	if opts.LinkName == "" {
		opts.LinkName = "ttyACM0"
	}
	if opts.Firmware == "" {
		opts.Firmware = "edgeboard/1.3.0"
	}
	if opts.Relays <= 0 {
		opts.Relays = 4
	}
	if opts.Relays > 64 {
		return nil, errors.New("a simulated board has at most 64 relays")
	}
	if opts.Quantities == nil {
		opts.Quantities = []BoardQuantity{
			{Name: "temperature", Unit: "°C", Value: func(t time.Time) float64 {
				return 21 + 1.5*math.Sin(2*math.Pi*float64(t.UnixMilli()%600_000)/600_000)
			}},
			{Name: "humidity", Unit: "%", Value: func(t time.Time) float64 {
				return 45 + 5*math.Cos(2*math.Pi*float64(t.UnixMilli()%900_000)/900_000)
			}},
		}
	}
	if opts.Telemetry == 0 {
		opts.Telemetry = 5 * time.Second
	}
	port, err := newSimPort(opts.LinkName)
	if err != nil {
		return nil, err
	}
	b := &Board{opts: opts, port: port, stop: make(chan struct{}), relays: make([]bool, opts.Relays),
		rng: rand.New(rand.NewPCG(1, 2))}
	if err := b.plug(); err != nil {
		port.close()
		return nil, err
	}
	b.mu.Lock()
	b.bootLocked(false)
	b.mu.Unlock()
	if opts.Telemetry > 0 {
		b.wg.Add(1)
		go b.telemetry()
	}
	return b, nil
}

// Path is the stable path to open, like /dev/ttyACM0.
func (b *Board) Path() string { return b.port.link }

// PTY is the current pseudo-terminal behind Path ("" while unplugged).
func (b *Board) PTY() string { return b.port.pts() }

// Plugged reports whether the board is plugged in.
func (b *Board) Plugged() bool { return b.port.plugged() }

func (b *Board) plug() error {
	master, err := b.port.plug()
	if err != nil {
		return err
	}
	b.wg.Add(1)
	go b.serve(master)
	return nil
}

// Close unplugs the board for good and stops its goroutines.
func (b *Board) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	close(b.stop)
	b.mu.Unlock()
	b.port.close()
	b.wg.Wait()
}

// Unplug pulls the USB cable: the pty vanishes. The board keeps running
// on its own supply (a button still works).
func (b *Board) Unplug() { b.port.unplug() }

// Replug plugs the cable back: a new pty behind the same path.
func (b *Board) Replug() error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return errors.New("the board is closed")
	}
	if b.port.plugged() {
		return nil
	}
	return b.plug()
}

// Reboot resets the board: its relays drop to off, and its banner appears
// in the middle of whatever it was sending.
func (b *Board) Reboot() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bootLocked(true)
}

// SetSlow delays every reply by d (0: answer at once). The board works
// through its commands in order, so later ones wait too.
func (b *Board) SetSlow(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.slow = d
}

// SetMute makes the firmware hang: it reads but neither acts nor answers.
func (b *Board) SetMute(mute bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mute = mute
}

// Press presses the push button of relay channel ch: the board toggles
// the relay and reports it.
func (b *Board) Press(ch int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ch < 1 || ch > len(b.relays) {
		return fmt.Errorf("no relay channel %d on this board (it has %d)", ch, len(b.relays))
	}
	on := !b.relays[ch-1]
	b.setLocked(ch, on, "button")
	if !b.mute {
		b.port.write(boardLine(fmt.Sprintf("! RELAY %d %s button", ch, bit(on))))
	}
	return nil
}

// Garbage sends a burst of noise: random bytes, lines with wrong
// checksums that look like replies and events, an over-long line. The
// burst ends with a newline, as a glitch between two lines would.
func (b *Board) Garbage() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.port.write(b.garbageLocked())
}

func (b *Board) garbageLocked() []byte {
	var out []byte
	noise := func(n int) {
		for range n {
			c := byte(b.rng.IntN(256))
			if c == '\n' || c == '*' { // keep noise from ending a line or faking a checksum
				c = '#'
			}
			out = append(out, c)
		}
	}
	wrongSum := func(body string) {
		good := boardCRC([]byte(body))
		out = fmt.Appendf(out, "%s*%02X\n", body, good^0x5A)
	}
	noise(17)
	out = append(out, '\n')
	wrongSum("1 OK SET 1 1")
	wrongSum("! RELAY 2 1 button")
	wrongSum("! TELEMETRY relays=1111")
	out = append(out, "3 OK GET 1111\n"...) // no checksum at all
	out = append(out, strings.Repeat("x", 300)...)
	out = append(out, '\n')
	noise(40)
	out = append(out, '\n')
	return out
}

// Relays returns what the board drives now, channel 1 first.
func (b *Board) Relays() []bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bool(nil), b.relays...)
}

// History returns every change of the relay outputs, in order.
func (b *Board) History() []RelayChange {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]RelayChange(nil), b.history...)
}

// Boots counts boots (1 after power-up).
func (b *Board) Boots() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.boots
}

func (b *Board) setLocked(ch int, on bool, cause string) {
	if b.relays[ch-1] == on {
		return
	}
	b.relays[ch-1] = on
	b.history = append(b.history, RelayChange{Channel: ch, On: on, Cause: cause})
}

func (b *Board) infoLocked() string {
	var qs []string
	for _, q := range b.opts.Quantities {
		unit := q.Unit
		if unit == "" {
			unit = "-"
		}
		qs = append(qs, q.Name+":"+unit)
	}
	s := "-"
	if len(qs) > 0 {
		s = strings.Join(qs, ",")
	}
	return fmt.Sprintf("fw=%s relays=%d sensors=%s", b.opts.Firmware, len(b.relays), s)
}

func (b *Board) bitsLocked() string {
	var s strings.Builder
	for _, on := range b.relays {
		s.WriteString(bit(on))
	}
	return s.String()
}

func (b *Board) valuesLocked() string {
	now := time.Now()
	var vs []string
	for _, q := range b.opts.Quantities {
		vs = append(vs, fmt.Sprintf("%s=%.2f", q.Name, q.Value(now)))
	}
	return strings.Join(vs, " ")
}

// bootLocked starts the firmware: every relay off, then the banner. A
// reboot cuts off the line the board was sending; the banner starts with a
// newline so that the cut line ends there (and fails its checksum).
func (b *Board) bootLocked(midStream bool) {
	for ch := range b.relays {
		b.setLocked(ch+1, false, "reboot")
	}
	b.boots++
	b.mute, b.slow = false, 0
	var out []byte
	if midStream {
		out = append(out, "7 OK READ temperature=2"...)
	}
	out = append(out, '\n')
	out = append(out, boardLine("! BOOT "+b.infoLocked())...)
	b.port.write(out)
}

func bit(on bool) string {
	if on {
		return "1"
	}
	return "0"
}

// serve runs the firmware's command loop on one plug-in, until the pty is
// closed.
func (b *Board) serve(master *os.File) {
	defer b.wg.Done()
	var line []byte
	buf := make([]byte, 256)
	for {
		n, err := master.Read(buf)
		for _, c := range buf[:n] {
			switch {
			case c == '\n':
				l := strings.TrimSuffix(string(line), "\r")
				line = line[:0]
				if l != "" && !b.handle(l) {
					return
				}
			case len(line) < 256:
				line = append(line, c)
			}
		}
		if err != nil {
			return
		}
	}
}

// handle carries out one received line; false when the board is closing.
func (b *Board) handle(l string) bool {
	b.mu.Lock()
	slow, mute := b.slow, b.mute
	b.mu.Unlock()
	if mute {
		return true
	}
	if slow > 0 {
		select {
		case <-b.stop:
			return false
		case <-time.After(slow):
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mute {
		return true
	}
	body, ok := boardLineBody(l)
	if !ok {
		b.rejected++ // the real firmware drops it: the gateway resends
		return true
	}
	f := strings.Fields(body)
	if len(f) < 2 {
		return true
	}
	id := f[0]
	if n, err := strconv.ParseUint(id, 10, 16); err != nil || n == 0 {
		return true
	}
	b.commands++
	reply := func(s string) { b.port.write(boardLine(id + " " + s)) }
	switch f[1] {
	case "INFO":
		reply("OK INFO " + b.infoLocked())
	case "GET":
		reply("OK GET " + b.bitsLocked())
	case "READ":
		reply("OK READ " + b.valuesLocked())
	case "SET":
		if len(f) != 4 || (f[3] != "0" && f[3] != "1") {
			reply("ERR syntax usage: SET <channel> <0|1>")
			break
		}
		ch, err := strconv.Atoi(f[2])
		if err != nil || ch < 1 || ch > len(b.relays) {
			reply(fmt.Sprintf("ERR channel no relay channel %s (this board has %d)", f[2], len(b.relays)))
			break
		}
		b.setLocked(ch, f[3] == "1", "command")
		reply(fmt.Sprintf("OK SET %d %s", ch, bit(b.relays[ch-1])))
	default:
		reply("ERR syntax unknown command " + f[1])
	}
	return true
}

func (b *Board) telemetry() {
	defer b.wg.Done()
	t := time.NewTicker(b.opts.Telemetry)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		b.mu.Lock()
		if !b.mute {
			b.port.write(boardLine("! TELEMETRY relays=" + b.bitsLocked() + " " + b.valuesLocked()))
		}
		b.mu.Unlock()
	}
}

// serialSim is a simulated serial device, as the control API sees it.
type serialSim interface {
	Path() string
	fault(kind string, slow time.Duration) error
	press(ch int) error
	view() serialView
}

// serialView is one device in GET /sim/serial.
type serialView struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"` // "serial-board" or "usb-relay"
	Path     string   `json:"path"`
	PTY      string   `json:"pty"`
	Plugged  bool     `json:"plugged"`
	Relays   []bool   `json:"relays"`
	Boots    int      `json:"boots,omitempty"`
	Commands int      `json:"commands,omitempty"`
	Slow     string   `json:"slow,omitempty"`
	Mute     bool     `json:"mute,omitempty"`
	Frames   []string `json:"frames,omitempty"` // usb-relay: every frame received, hex
}

func (b *Board) view() serialView {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := serialView{Kind: KindSerialBoard, Path: b.port.link, PTY: b.port.pts(), Plugged: b.port.plugged(),
		Relays: append([]bool(nil), b.relays...), Boots: b.boots, Commands: b.commands, Mute: b.mute}
	if b.slow > 0 {
		v.Slow = b.slow.String()
	}
	return v
}

func (b *Board) press(ch int) error { return b.Press(ch) }

func (b *Board) fault(kind string, slow time.Duration) error {
	switch kind {
	case "unplug":
		b.Unplug()
	case "replug":
		return b.Replug()
	case "reboot":
		b.Reboot()
	case "garbage":
		b.Garbage()
	case "slow":
		b.SetSlow(slow)
	case "mute":
		b.SetMute(true)
	case "none":
		b.SetSlow(0)
		b.SetMute(false)
	default:
		return fmt.Errorf("unknown fault %q: want unplug, replug, reboot, garbage, slow, mute or none", kind)
	}
	return nil
}

// serialRegistry is the serial devices simulated for one Hardware.
type serialRegistry struct {
	mu    sync.Mutex
	devs  map[string]serialSim
	order []string
	paths map[string]string // port stood in for → path of its simulated device
}

var serialRegistries sync.Map // *Hardware → *serialRegistry

func serialsOf(h *Hardware) *serialRegistry {
	r, loaded := serialRegistries.LoadOrStore(h, &serialRegistry{devs: map[string]serialSim{}})
	if !loaded {
		h.OnClose(func() { serialRegistries.Delete(h) })
	}
	return r.(*serialRegistry)
}

func (r *serialRegistry) add(name string, d serialSim) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.devs[name]; !dup {
		r.order = append(r.order, name)
	}
	r.devs[name] = d
}

func (r *serialRegistry) setPath(port, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paths == nil {
		r.paths = map[string]string{}
	}
	r.paths[port] = path
}

func (r *serialRegistry) path(port string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.paths[port]
	return p, ok
}

func (r *serialRegistry) get(name string) serialSim {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.devs[name]
}

func (r *serialRegistry) all() []serialView {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]serialView, 0, len(r.order))
	for _, n := range r.order {
		v := r.devs[n].view()
		v.Name = n
		out = append(out, v)
	}
	return out
}

// SerialBoard returns the simulated board of the device named name, or nil.
func (h *Hardware) SerialBoard(name string) *Board {
	b, _ := serialsOf(h).get(name).(*Board)
	return b
}
