package drivers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The serial-board driver talks to a microcontroller board running the
// edgegate board firmware over a serial line, with the line protocol of
// docs/serial-board.md: checksummed text lines, requests carrying an id that
// the reply echoes, and unsolicited lines for what happens on the board (a
// boot, a push button, telemetry). One board serves several relay channels
// and one sensor block; the DevicePool opens it once for all of them.

// SerialBoardDriver is the name of the serial board driver, for its relays,
// its sensor block and its device.
const SerialBoardDriver = "serial-board"

// SerialBoardBaud is a serial board's usual baud rate.
const SerialBoardBaud = 115200

// BoardRelayOpts describe one relay channel of a serial board of the pool.
type BoardRelayOpts struct {
	Name    string
	Device  string // a serial-board device of the pool
	Channel int    // from 1
}

// Validate checks the options.
func (o BoardRelayOpts) Validate() error {
	var dev *FieldError
	if strings.TrimSpace(o.Device) == "" {
		dev = fieldError("device", "a serial-board relay needs the name of its board in devices, e.g. device: board")
	}
	return joinFields(dev, checkChannel(o.Channel))
}

// BoardSensorOpts describe the sensor block of a serial board of the pool:
// every quantity the board announces.
type BoardSensorOpts struct {
	Name     string
	Device   string        // a serial-board device of the pool
	Interval time.Duration // 0: 1s
}

// Validate checks the options.
func (o BoardSensorOpts) Validate() error {
	if strings.TrimSpace(o.Device) == "" {
		return fieldError("device", "a serial-board sensor needs the name of its board in devices, e.g. device: board")
	}
	return nil
}

// maxBoardLine is the longest line either side sends, checksum included.
// Anything longer is noise: it is dropped up to the next newline.
const maxBoardLine = 200

// boardCRC is CRC-8 with polynomial x^8+x^2+x+1 (0x07), initial value 0, no
// reflection (CRC-8/SMBUS): a few lines of code on any microcontroller.
func boardCRC(b []byte) byte {
	var c byte
	for _, x := range b {
		c ^= x
		for range 8 {
			if c&0x80 != 0 {
				c = c<<1 ^ 0x07
			} else {
				c <<= 1
			}
		}
	}
	return c
}

// boardFrame returns body as one line on the wire: body*HH\n.
func boardFrame(body string) []byte {
	b := make([]byte, 0, len(body)+4)
	b = append(b, body...)
	return fmt.Appendf(b, "*%02X\n", boardCRC([]byte(body)))
}

// boardBody checks a received line (without its newline) and returns its
// body, or false when it is malformed or its checksum does not match.
func boardBody(line []byte) (string, bool) {
	star := -1
	for i := len(line) - 1; i >= 0; i-- {
		if line[i] == '*' {
			star = i
			break
		}
	}
	if star < 1 || len(line)-star != 3 {
		return "", false
	}
	sum, err := strconv.ParseUint(string(line[star+1:]), 16, 8)
	if err != nil || byte(sum) != boardCRC(line[:star]) {
		return "", false
	}
	return string(line[:star]), true
}

// boardInfo is what a board says about itself in its banner and INFO reply.
type boardInfo struct {
	firmware   string
	relays     int
	quantities []Quantity
}

func parseBoardInfo(fields []string) (*boardInfo, error) {
	info := &boardInfo{relays: -1}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "fw":
			info.firmware = v
		case "relays":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 64 {
				return nil, fmt.Errorf("bad relay count %q", v)
			}
			info.relays = n
		case "sensors":
			if v == "" || v == "-" {
				continue
			}
			for _, q := range strings.Split(v, ",") {
				name, unit, _ := strings.Cut(q, ":")
				if !validQuantity(name) {
					return nil, fmt.Errorf("bad sensor quantity name %q", name)
				}
				if unit == "-" {
					unit = ""
				}
				info.quantities = append(info.quantities, Quantity{Name: name, Unit: unit})
			}
		}
	}
	if info.relays < 0 {
		return nil, errors.New("no relay count")
	}
	return info, nil
}

func validQuantity(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// chanState is the last state a device reported for one relay channel.
type chanState struct {
	on, known bool
}

// boardReply is the outcome of one request.
type boardReply struct {
	fields []string // after "OK": the command word and its payload
	err    error
}

// boardPending is the one request in flight.
type boardPending struct {
	id      uint16
	reply   chan boardReply // buffered 1
	corrupt chan struct{}   // buffered 1: a line was lost while waiting
}

var errBoardRebooted = errors.New("the board rebooted while the request was in flight")

// board is one serial board shared by its relays and its sensor.
type board struct {
	serialDevice
	timeout time.Duration
	log     *slog.Logger

	resync chan struct{} // asks the connection goroutine to re-read the board

	// Reader state: used by the reader goroutine only.
	line     []byte
	overflow bool

	mu        sync.Mutex
	nextID    uint16
	pending   map[uint16]*boardPending // requests sent and not answered yet
	info      *boardInfo
	infoReady chan struct{} // closed at the first info
	states    []chanState   // by channel-1
	reqErr    error         // the last request's failure; nil after a success
	stale     bool          // a request went unanswered: re-read the board
	dropped   int           // lines dropped for a bad checksum or length
}

// board checks the options o of a serial-board relay or sensor and returns
// the board named device of env's pool.
func (e Env) board(o validator, device string) (*board, error) {
	pool, err := e.pool(o, SerialBoardDriver)
	if err != nil {
		return nil, err
	}
	return pool.board(device)
}

// board returns the serial board named name, opening it on first use.
func (p *DevicePool) board(name string) (*board, error) {
	dev, err := p.device(name, SerialBoardDriver)
	if err != nil {
		return nil, err
	}
	d, err := p.get(name, func() pooledDevice { return p.newBoard(dev) })
	if err != nil {
		return nil, err
	}
	return d.(*board), nil
}

func (p *DevicePool) newBoard(dev SerialDevice) *board {
	b := &board{
		timeout: p.timeout(), log: p.Logger,
		pending: map[uint16]*boardPending{}, resync: make(chan struct{}, 1), infoReady: make(chan struct{}),
	}
	baud := dev.Baud
	if baud <= 0 {
		baud = SerialBoardBaud
	}
	b.start(p, dev.Name, fmt.Sprintf("board %q", dev.Name), dev.Port, baud, b.onUp, b.onData, b.onDown)
	return b
}

func (b *board) status() DeviceStatus {
	b.mu.Lock()
	reqErr := b.reqErr
	b.mu.Unlock()
	return b.statusWith(reqErr)
}

// onUp re-reads the board on every (re)connection, after a reboot, and
// after a request that went unanswered, until the connection ends.
func (b *board) onUp(ctx context.Context) {
	// End any half line a previous process left in the board's buffer.
	b.link.write([]byte("\n"))
	b.mu.Lock()
	b.stale = true
	b.mu.Unlock()
	for {
		b.mu.Lock()
		stale := b.stale
		b.mu.Unlock()
		var retry <-chan time.Time
		if stale {
			if err := b.sync(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				// Retry when it answers again (a request succeeds, telemetry
				// arrives) or after a while, without flooding a hung board.
				b.log.Warn("serial board did not answer its resync; retrying", "device", b.name, "err", err)
				retry = time.After(resyncRetry)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-b.resync:
			b.mu.Lock()
			b.stale = true
			b.mu.Unlock()
		case <-retry:
		}
	}
}

// resyncRetry is how often a board that does not answer its resync is
// asked again, if nothing else shows it is back.
const resyncRetry = 5 * time.Second

// sync reads the board's info and every relay channel, reporting channels
// whose state differs from the last one known.
func (b *board) sync(ctx context.Context) error {
	f, err := b.exchange(ctx, "INFO", false)
	if err != nil {
		return err
	}
	if err := b.setInfo(f[1:]); err != nil {
		return err
	}
	f, err = b.exchange(ctx, "GET", false)
	if err != nil {
		return err
	}
	if len(f) != 2 || !validBits(f[1]) { // the reader recorded them, in line order
		return fmt.Errorf("board %q: malformed GET reply %q", b.name, strings.Join(f, " "))
	}
	b.mu.Lock()
	b.stale = false
	b.mu.Unlock()
	return nil
}

func (b *board) setInfo(fields []string) error {
	info, err := parseBoardInfo(fields)
	if err != nil {
		return fmt.Errorf("board %q: its info line is not understood (%v): is it running the edgegate board firmware?", b.name, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.info
	b.info = info
	if old == nil {
		close(b.infoReady)
		b.log.Info("serial board identified", "device", b.name, "firmware", info.firmware, "relays", info.relays, "sensors", len(info.quantities))
	} else if old.firmware != info.firmware || old.relays != info.relays {
		b.log.Warn("serial board changed", "device", b.name, "firmware", info.firmware, "relays", info.relays)
	}
	return nil
}

func (b *board) onDown(err error) {
	// The reader has ended: a half line from this connection must not
	// prefix the next one's first line.
	b.line, b.overflow = b.line[:0], false
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failAllLocked(err)
}

func (b *board) requestResync() {
	select {
	case b.resync <- struct{}{}:
	default:
	}
}

// observe records a state the board reported for a channel; when notify is
// set and it differs from the last one known, the relay's change callback
// runs. Call with b.mu held.
func (b *board) observeLocked(ch int, on, notify bool) {
	if ch < 1 || ch > 64 {
		return
	}
	for len(b.states) < ch {
		b.states = append(b.states, chanState{})
	}
	s := &b.states[ch-1]
	changed := !s.known || s.on != on
	s.on, s.known = on, true
	if changed && notify {
		b.notify.mark(ch)
	}
}

// applyBits records a relay bitmap ("0110": channel 1 first).
func (b *board) applyBits(bits string, notify bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.applyBitsLocked(bits, notify)
}

func validBits(bits string) bool {
	if len(bits) > 64 {
		return false
	}
	for _, c := range bits {
		if c != '0' && c != '1' {
			return false
		}
	}
	return true
}

func (b *board) applyBitsLocked(bits string, notify bool) bool {
	if !validBits(bits) {
		return false
	}
	for i, c := range bits {
		b.observeLocked(i+1, c == '1', notify)
	}
	return true
}

func (b *board) deviceState(ch int) (on, known bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ch < 1 || ch > len(b.states) {
		return false, false
	}
	s := b.states[ch-1]
	return s.on, s.known
}

// onData splits what the reader got into lines. A line longer than
// maxBoardLine is dropped up to its newline: that is how the driver resyncs
// after noise.
func (b *board) onData(p []byte) {
	for _, c := range p {
		if c != '\n' {
			if len(b.line) >= maxBoardLine {
				b.overflow = true
				b.line = b.line[:0]
			}
			b.line = append(b.line, c)
			continue
		}
		line := b.line
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if b.overflow {
			b.overflow = false
			b.lost("over-long line")
		} else if len(line) > 0 {
			b.handleLine(line)
		}
		b.line = b.line[:0]
	}
}

// lost counts a dropped line and, when a request waits, tells it to resend
// (its reply may be what was lost).
func (b *board) lost(why string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropped++
	b.log.Debug("serial board: line dropped", "device", b.name, "why", why, "dropped_total", b.dropped)
	for _, p := range b.pending {
		select {
		case p.corrupt <- struct{}{}:
		default:
		}
	}
}

func (b *board) handleLine(line []byte) {
	body, ok := boardBody(line)
	if !ok {
		b.lost("bad checksum or framing")
		return
	}
	f := strings.Fields(body)
	if len(f) < 2 {
		b.lost("too short")
		return
	}
	if f[0] == "!" {
		b.handleEvent(f[1], f[2:])
		return
	}
	id, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil || (f[1] != "OK" && f[1] != "ERR") || len(f) < 3 {
		b.lost("not a reply")
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	p, mine := b.pending[uint16(id)]
	if f[1] == "ERR" {
		if mine {
			delete(b.pending, p.id)
			p.reply <- boardReply{err: fmt.Errorf("board %q refused the request: %s", b.name, strings.Join(f[2:], " "))}
		}
		return
	}
	payload := f[2:]
	// Replies that carry relay states are the board's word on them, whether
	// a request still waits for them or not (a late reply after a timeout).
	switch {
	case payload[0] == "SET" && len(payload) == 3:
		ch, err1 := strconv.Atoi(payload[1])
		if err1 == nil && (payload[2] == "0" || payload[2] == "1") {
			b.observeLocked(ch, payload[2] == "1", !mine)
		}
	case payload[0] == "GET" && len(payload) == 2:
		b.applyBitsLocked(payload[1], true)
	}
	if mine {
		delete(b.pending, p.id)
		p.reply <- boardReply{fields: payload}
	} else {
		b.log.Debug("serial board: late or unexpected reply", "device", b.name, "line", body)
	}
}

func (b *board) handleEvent(kind string, args []string) {
	switch kind {
	case "BOOT":
		b.log.Warn("serial board rebooted; its relays are back to off, re-reading it", "device", b.name, "banner", strings.Join(args, " "))
		if err := b.setInfo(args); err != nil {
			b.log.Warn("serial board banner not understood", "device", b.name, "err", err)
		}
		b.mu.Lock()
		// The firmware starts with every relay off (docs/serial-board.md).
		for ch := 1; ch <= len(b.states); ch++ {
			b.observeLocked(ch, false, true)
		}
		if b.info != nil {
			for ch := len(b.states) + 1; ch <= b.info.relays; ch++ {
				b.observeLocked(ch, false, true)
			}
		}
		b.failAllLocked(fmt.Errorf("board %q: %w; try again", b.name, errBoardRebooted))
		b.mu.Unlock()
		b.requestResync()
	case "RELAY":
		if len(args) < 2 || (args[1] != "0" && args[1] != "1") {
			b.lost("malformed RELAY event")
			return
		}
		ch, err := strconv.Atoi(args[0])
		if err != nil {
			b.lost("malformed RELAY event")
			return
		}
		b.log.Info("serial board relay changed on the board", "device", b.name, "channel", ch, "on", args[1] == "1", "cause", strings.Join(args[2:], " "))
		b.mu.Lock()
		b.observeLocked(ch, args[1] == "1", true)
		b.mu.Unlock()
	case "TELEMETRY":
		b.mu.Lock()
		stale := b.stale
		b.mu.Unlock()
		if stale {
			b.requestResync()
		}
		for _, a := range args {
			if bits, ok := strings.CutPrefix(a, "relays="); ok {
				b.applyBits(bits, true)
			}
		}
	default:
		b.log.Debug("serial board: unknown event ignored", "device", b.name, "event", kind)
	}
}

// maxBoardPending bounds the requests in flight to one board: the firmware
// works through its input in order, and its receive buffer is small.
const maxBoardPending = 4

// request sends one command and waits for its reply, at most the request
// timeout (or ctx). Requests from several goroutines are in flight
// together (pipelined), each matched to its reply by id, so a request never
// waits behind another one that gets no answer. It returns the reply's
// fields after OK (the command word first).
func (b *board) request(ctx context.Context, cmd string) ([]string, error) {
	return b.exchange(ctx, cmd, true)
}

// exchange is request; resync tells whether an unanswered request asks for
// the board to be re-read (not for the re-reading requests themselves).
func (b *board) exchange(ctx context.Context, cmd string, resync bool) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	b.link.waitFirst(ctx)
	b.mu.Lock()
	if len(b.pending) >= maxBoardPending {
		b.mu.Unlock()
		return nil, b.noReply(cmd, fmt.Sprintf("%d earlier requests are still unanswered", maxBoardPending))
	}
	for {
		b.nextID++
		if _, taken := b.pending[b.nextID]; b.nextID != 0 && !taken {
			break
		}
	}
	p := &boardPending{id: b.nextID, reply: make(chan boardReply, 1), corrupt: make(chan struct{}, 1)}
	b.pending[p.id] = p
	b.mu.Unlock()
	line := boardFrame(strconv.Itoa(int(p.id)) + " " + cmd)
	if err := b.link.write(line); err != nil {
		b.drop(p)
		return nil, err
	}
	for resends := 0; ; {
		select {
		case r := <-p.reply:
			b.mu.Lock()
			stale := b.stale
			if r.err == nil || !errors.Is(r.err, errBoardRebooted) {
				b.reqErr = nil
			}
			b.mu.Unlock()
			if resync && stale && r.err == nil {
				b.requestResync() // it answers again: re-read it now
			}
			return r.fields, r.err
		case <-p.corrupt:
			// Its reply may have been the line that was lost: the commands
			// are idempotent (SET gives an absolute state), so ask again,
			// with the same id so that only one reply is taken.
			if resends < 2 {
				resends++
				b.link.write(line)
			}
		case <-ctx.Done():
			b.drop(p)
			err := b.noReply(cmd, "")
			b.mu.Lock()
			b.reqErr = err
			b.stale = true
			b.mu.Unlock()
			if resync {
				b.requestResync()
			}
			return nil, err
		}
	}
}

func (b *board) drop(p *boardPending) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending[p.id] == p {
		delete(b.pending, p.id)
	}
}

// failAllLocked ends every request in flight with err.
func (b *board) failAllLocked(err error) {
	for id, p := range b.pending {
		delete(b.pending, id)
		p.reply <- boardReply{err: err}
	}
}

func (b *board) noReply(cmd, why string) error {
	if state, lerr := b.link.connState(); state != StateConnected {
		return b.link.downError(state, lerr)
	}
	verb, _, _ := strings.Cut(cmd, " ")
	if why != "" {
		return fmt.Errorf("board %q on %s: no reply to %s within %v (%s)", b.name, b.link.path, verb, b.timeout, why)
	}
	return fmt.Errorf("board %q on %s: no reply to %s within %v: the board is busy or hung, or not running the edgegate board firmware; check it, or reset it", b.name, b.link.path, verb, b.timeout)
}

// waitInfo waits until the board identified itself.
func (b *board) waitInfo(ctx context.Context) (*boardInfo, error) {
	select {
	case <-b.infoReady:
	case <-ctx.Done():
		state, lerr := b.link.connState()
		if state != StateConnected {
			return nil, b.link.downError(state, lerr)
		}
		return nil, fmt.Errorf("board %q on %s did not identify itself", b.name, b.link.path)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.info, nil
}

func (b *board) channels() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.info == nil {
		return -1
	}
	return b.info.relays
}

// boardRelay is one relay channel of a board.
type boardRelay struct {
	serialChannel
	b *board
}

var _ Reporter = (*boardRelay)(nil)

// OpenBoardRelay opens a relay channel of a serial board, opening the board
// on first use.
func OpenBoardRelay(o BoardRelayOpts, env Env) (Relay, error) {
	b, err := env.board(o, o.Device)
	if err != nil {
		return nil, err
	}
	return &boardRelay{serialChannel: serialChannel{name: o.Name, ch: o.Channel, dev: &b.serialDevice}, b: b}, nil
}

func (r *boardRelay) Driver() string                { return SerialBoardDriver }
func (r *boardRelay) DeviceState() (on, known bool) { return r.b.deviceState(r.ch) }

// Set asks the board to drive the channel and returns once the board
// replied with the state it now drives.
func (r *boardRelay) Set(ctx context.Context, on bool) error {
	if n := r.b.channels(); n >= 0 && r.ch > n {
		return fmt.Errorf("board %q has %d relay channels, there is no channel %d: fix channel: in the configuration", r.b.name, n, r.ch)
	}
	bit := "0"
	if on {
		bit = "1"
	}
	f, err := r.b.request(ctx, "SET "+strconv.Itoa(r.ch)+" "+bit)
	if err != nil {
		return err
	}
	if len(f) != 3 || f[0] != "SET" || f[1] != strconv.Itoa(r.ch) || (f[2] != "0" && f[2] != "1") {
		return fmt.Errorf("board %q: malformed reply %q to SET", r.b.name, strings.Join(f, " "))
	}
	if f[2] != bit {
		r.b.notify.mark(r.ch) // the gateway records what the board does drive
		return fmt.Errorf("board %q kept channel %d %s when asked to switch it: the firmware refused (interlock or local override on the board?)", r.b.name, r.ch, map[string]string{"0": "off", "1": "on"}[f[2]])
	}
	return nil
}

// boardSensor is the sensor block of a board: every quantity it announces.
type boardSensor struct {
	name       string
	b          *board
	interval   time.Duration
	quantities []Quantity
}

// boardIdentifyWait bounds how long opening a board's sensor waits for the
// board to say which quantities it measures.
const boardIdentifyWait = 3 * time.Second

// OpenBoardSensor opens the sensor block of a serial board, opening the
// board on first use. It waits (up to a few seconds) for the board to
// announce its quantities, or uses what it announced before (kept in
// env.State).
func OpenBoardSensor(o BoardSensorOpts, env Env) (Sensor, error) {
	b, err := env.board(o, o.Device)
	if err != nil {
		return nil, err
	}
	interval := o.Interval
	if interval <= 0 {
		interval = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), boardIdentifyWait)
	defer cancel()
	info, err := b.waitInfo(ctx)
	if err != nil {
		// Its sensors are named by what the board announces: without an
		// answer, use what it announced last time, if it ever did; reads
		// fail (sensor_error) until it is back.
		if qs := loadBoardQuantities(env.State, o.Device); len(qs) > 0 {
			env.logger().Warn("serial board not answering at start; its sensor uses the quantities it announced before", "device", o.Device, "err", err)
			return &boardSensor{name: o.Name, b: b, interval: interval, quantities: qs}, nil
		}
		return nil, fmt.Errorf("%w; its sensors are named by what the board announces, so it must answer the first time the gateway starts with it (afterwards the gateway remembers them in its data dir)", err)
	}
	if len(info.quantities) == 0 {
		return nil, fmt.Errorf("board %q (%s) announces no sensors; remove the sensor entry or update the firmware", b.name, info.firmware)
	}
	if err := saveBoardQuantities(env.State, o.Device, info.quantities); err != nil {
		env.logger().Warn("cannot remember a serial board's sensors in the data dir", "device", o.Device, "err", err)
	}
	return &boardSensor{name: o.Name, b: b, interval: interval, quantities: info.quantities}, nil
}

// boardQuantitiesRecord is the name a board's announced quantities are
// kept under.
func boardQuantitiesRecord(device string) string { return "serial-board-" + device + ".json" }

func saveBoardQuantities(st StateStore, device string, qs []Quantity) error {
	if st == nil {
		return nil
	}
	b, err := json.Marshal(qs)
	if err != nil {
		return err
	}
	return st.Save(boardQuantitiesRecord(device), b)
}

func loadBoardQuantities(st StateStore, device string) []Quantity {
	if st == nil {
		return nil
	}
	b, err := st.Load(boardQuantitiesRecord(device))
	if err != nil {
		return nil
	}
	var qs []Quantity
	if json.Unmarshal(b, &qs) != nil {
		return nil
	}
	return qs
}

func (s *boardSensor) Name() string            { return s.name }
func (s *boardSensor) Driver() string          { return SerialBoardDriver }
func (s *boardSensor) Quantities() []Quantity  { return s.quantities }
func (s *boardSensor) Interval() time.Duration { return s.interval }
func (s *boardSensor) Close() error            { return nil }

// Read asks the board for all its values (READ).
func (s *boardSensor) Read(ctx context.Context, dst []float64) error {
	f, err := s.b.request(ctx, "READ")
	if err != nil {
		return err
	}
	if len(f) == 0 || f[0] != "READ" {
		return fmt.Errorf("board %q: malformed reply %q to READ", s.b.name, strings.Join(f, " "))
	}
	for i, q := range s.quantities {
		found := false
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k != q.Name {
				continue
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("board %q: %s=%q is not a number", s.b.name, k, v)
			}
			dst[i], found = x, true
			break
		}
		if !found {
			return fmt.Errorf("board %q no longer reports %s (new firmware?); restart the gateway to pick up its sensors", s.b.name, q.Name)
		}
	}
	return nil
}
