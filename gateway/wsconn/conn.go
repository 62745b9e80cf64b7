// Package wsconn is edgegate's RFC 6455 connection layer over gobwas/ws's
// frame-level API: it reads whole messages (fragments joined, UTF-8 of text
// checked as bytes arrive, size bounded), answers pings, runs the closing
// handshake, and writes frames under one lock so that a pong sent by the
// reader never interleaves a frame of the writer.
//
// With permessage-deflate negotiated (Config.Deflate, see deflate.go),
// compressed messages are inflated as they arrive, bounded on their inflated
// size, and messages of at least Deflate.MinSize bytes are sent compressed.
//
// One goroutine at a time reads (ReadMessage, or Next and Await); any
// goroutine may write. Buffers are reused, so the steady state allocates
// nothing (for uncompressed traffic; compress/flate allocates a little per
// message). A server that reads with Next and Await (await.go) lets a quiet
// connection's read buffers go back to a pool, and need not keep a
// goroutine's deep stack for it.
//
// A server connection's writes have one owner, its Writer (writer.go): it
// queues control frames and samples, batches them (writer_batch.go) and
// decides which goroutine writes them. The samples it queues are the small
// Sample interface (two encodings, a timestamp, Release) rather than a
// type of the sensor hub, so that wsconn imports no producer of samples:
// the hub's samples satisfy it, and the hub in turn knows no connection.
package wsconn

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Config bounds a connection. Zero values mean: no limit / no deadline.
type Config struct {
	// MaxMessageBytes is the largest message (all fragments together) that
	// ReadMessage accepts; a larger one closes the connection with 1009.
	MaxMessageBytes int
	// IdleTimeout drops a peer that sends nothing (no frame, no pong) for
	// this long.
	IdleTimeout time.Duration
	// WriteTimeout bounds every write.
	WriteTimeout time.Duration
	// Client makes this the client side: frames written are masked and
	// frames read must not be.
	Client bool
	// Deflate, when not nil, is the permessage-deflate negotiated in the
	// handshake (DeflateNegotiator.Accepted on a server). Without it a
	// frame with RSV1 set is a protocol violation.
	Deflate *Deflate
}

// closeLinger is how long a closing connection waits for the peer's close
// frame before it drops the TCP connection.
const closeLinger = 2 * time.Second

// smallWrite is the size of a pooled write buffer, and of the chunks in
// which a client masks a large payload.
const smallWrite = 4096

// maxBatch is the size up to which frames are copied into one buffer and
// written with one syscall; a larger payload is written on its own, after
// its header.
const maxBatch = 64 << 10

// ErrClosed is returned by writes after the closing handshake started.
var ErrClosed = errors.New("wsconn: connection closed")

// CloseError ends a connection: Code and Reason are those of the close frame
// (sent by us or by the peer, as Remote says).
type CloseError struct {
	Code   ws.StatusCode
	Reason string
	Remote bool
}

func (e *CloseError) Error() string {
	by := "local"
	if e.Remote {
		by = "peer"
	}
	return fmt.Sprintf("websocket closed by %s: %d %s", by, e.Code, e.Reason)
}

// Conn is one WebSocket connection.
type Conn struct {
	nc  net.Conn
	br  *bufio.Reader
	cfg Config

	// Read side, owned by the reading goroutine.
	hdr      [ws.MaxHeaderSize]byte
	ctl      [125]byte
	msg      []byte
	utf8Done int // bytes of msg known to be valid UTF-8

	// z is the permessage-deflate state; nil when not negotiated.
	z *deflateState

	// For Next and Await (await.go): br and msg come from bufs, a pooled
	// pair given back while the connection is quiet (br nil then). raw
	// polls the socket (nil: it cannot be awaited), with poll (c.readable,
	// made once) and peek. quiet is Next's argument (quietArmed: its wait
	// set the read deadline; woken: Await has seen bytes arrive); idleBy is
	// when the heartbeat timeout of the current wait runs out.
	bufs       *readBufs
	raw        syscall.RawConn
	poll       func(fd uintptr) bool
	peek       [1]byte
	quiet      time.Duration
	quietArmed bool
	woken      bool
	idleBy     time.Time

	// closing is set once our close frame is sent (or being sent); from
	// then on the reader discards data and waits until lingerUntil (Unix
	// nanoseconds) for the peer's close frame.
	closing     atomic.Bool
	lingerUntil atomic.Int64

	// Write side.
	wmu      sync.Mutex
	sentCode ws.StatusCode
	sentWhy  string
	closed   bool // TCP closed

	// TryWriteMessages': the end of a frame the socket did not take (in
	// backlogBuf, pooled).
	backlog    []byte
	backlogBuf *[]byte
}

// New wraps a connection whose handshake is done. br, when not nil, holds
// bytes already read from nc (the HTTP server's reader).
func New(nc net.Conn, br *bufio.Reader, cfg Config) *Conn {
	c := &Conn{nc: nc, br: br, cfg: cfg} // without br, the first read takes one from the pool
	if !cfg.Client {
		if c.raw = rawOf(nc); c.raw != nil {
			c.poll = c.readable
		}
	}
	if cfg.IdleTimeout > 0 {
		c.idleBy = time.Now().Add(cfg.IdleTimeout)
	}
	if cfg.Deflate != nil {
		c.z = newDeflateState(cfg.Deflate, cfg.Client)
	}
	return c
}

// NetConn is the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// ReadMessage returns the next data message. The payload is valid until the
// next call. Pings are answered and pongs absorbed on the way. Any error
// ends the connection: a *CloseError when a close frame was exchanged (the
// peer's, or ours after a protocol violation), else the I/O error; the TCP
// connection is closed by then.
func (c *Conn) ReadMessage() (ws.OpCode, []byte, error) {
	op, p, err := c.readMessage()
	if err != nil {
		c.CloseNow()
	}
	return op, p, err
}

func (c *Conn) readMessage() (ws.OpCode, []byte, error) {
	var op ws.OpCode // of the message being assembled; 0: none yet
	if c.br == nil {
		c.acquire()
	}
	c.msg = c.msg[:0]
	c.utf8Done = 0
	woken := c.woken // Await saw bytes come: no need to wait for them
	c.woken = false
	for {
		if op == 0 && c.quiet > 0 && !woken && c.br.Buffered() == 0 && !c.closing.Load() {
			if err := c.awaitQuiet(); err != nil {
				return 0, nil, err
			}
		}
		woken = false
		h, err := c.readHeader()
		if err != nil {
			return 0, nil, err
		}
		if code, why := c.checkHeader(h, op); code != 0 {
			return 0, nil, c.failSkipping(code, why, h.Length)
		}
		if h.OpCode.IsControl() {
			if err := c.control(h); err != nil {
				return 0, nil, err
			}
			if op == 0 && c.quiet > 0 && c.br.Buffered() == 0 && !c.closing.Load() {
				// A pong (or ping) alone: the peer is alive, not busy.
				return 0, nil, errQuiet
			}
			continue
		}
		if h.OpCode != ws.OpContinuation {
			op = h.OpCode
		}
		if c.closing.Load() {
			// After our close frame, data is discarded until the peer's.
			if err := c.skip(h.Length); err != nil {
				return 0, nil, c.readErr(err)
			}
			c.msg, c.utf8Done = c.msg[:0], 0
			if h.Fin {
				op = 0
			}
			continue
		}
		if h.Rsv&rsv1 != 0 {
			// checkHeader let it through: permessage-deflate is on and
			// this is the first frame of a message.
			p, err := c.readCompressed(h, op)
			if err != nil {
				return 0, nil, err
			}
			if c.closing.Load() {
				c.msg, c.utf8Done, op = c.msg[:0], 0, 0
				continue
			}
			return op, p, nil
		}
		if max := c.cfg.MaxMessageBytes; max > 0 && int64(len(c.msg))+h.Length > int64(max) {
			return 0, nil, c.failSkipping(ws.StatusMessageTooBig, fmt.Sprintf("message over %d bytes", max), h.Length)
		}
		if err := c.readPayload(h, op == ws.OpText); err != nil {
			return 0, nil, err
		}
		if h.Fin {
			if op == ws.OpText && !c.checkUTF8(true) {
				return 0, nil, c.fail(ws.StatusInvalidFramePayloadData, "invalid UTF-8 in a text message")
			}
			return op, c.msg, nil
		}
	}
}

// readHeader reads the next frame header, giving the peer IdleTimeout (or,
// once closing, until the linger deadline) to send it.
func (c *Conn) readHeader() (ws.Header, error) {
	if !c.frameBuffered() {
		if err := c.armReadDeadline(); err != nil {
			return ws.Header{}, err
		}
	}
	h, err := ws.ReadHeaderBuffer(c.br, c.hdr[:2])
	if err != nil {
		if errors.Is(err, ws.ErrHeaderLengthMSB) || errors.Is(err, ws.ErrHeaderLengthUnexpected) {
			return h, c.fail(ws.StatusProtocolError, "bad frame length")
		}
		return h, c.readErr(err)
	}
	return h, nil
}

// frameBuffered reports whether the whole next frame, header and payload,
// is in c.br: reading it cannot block, so its deadline need not be set (a
// system call and a timer update saved on most frames of a busy
// connection, whose frames arrive whole).
func (c *Conn) frameBuffered() bool {
	n := c.br.Buffered()
	if n < 2 {
		return false
	}
	b, _ := c.br.Peek(min(n, ws.MaxHeaderSize)) // buffered: no read
	hl := 2
	if b[1]&0x80 != 0 {
		hl += 4 // mask
	}
	var pl uint64
	switch l := b[1] & 0x7f; l {
	case 126:
		if n < 4 {
			return false
		}
		hl += 2
		pl = uint64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		if n < 10 {
			return false
		}
		hl += 8
		pl = binary.BigEndian.Uint64(b[2:10])
	default:
		pl = uint64(l)
	}
	return n >= hl && uint64(n-hl) >= pl
}

// skip discards n payload bytes.
func (c *Conn) skip(n int64) error {
	for n > 0 {
		d, err := c.br.Discard(int(min(n, 1<<30)))
		n -= int64(d)
		if err != nil {
			return err
		}
	}
	return nil
}

// checkHeader returns the close code for a frame that breaks RFC 6455
// (0: fine). inMessage is the opcode of the fragmented message under way.
func (c *Conn) checkHeader(h ws.Header, inMessage ws.OpCode) (ws.StatusCode, string) {
	switch {
	case h.Rsv&rsv1 != 0 && c.z != nil:
		// permessage-deflate's "Per-Message Compressed" bit: only on the
		// first frame of a data message (RFC 7692 section 6).
		if !h.OpCode.IsData() || h.OpCode == ws.OpContinuation {
			return ws.StatusProtocolError, "the compression bit (RSV1) is set on a control or continuation frame"
		}
		if h.Rsv&^rsv1 != 0 {
			return ws.StatusProtocolError, "reserved bits set without a negotiated extension"
		}
		return c.checkHeader(ws.Header{Fin: h.Fin, OpCode: h.OpCode, Masked: h.Masked, Length: h.Length}, inMessage)
	case h.Rsv != 0:
		return ws.StatusProtocolError, "reserved bits set without a negotiated extension"
	case h.OpCode.IsReserved():
		return ws.StatusProtocolError, fmt.Sprintf("reserved opcode %d", h.OpCode)
	case !h.Masked && !c.cfg.Client:
		return ws.StatusProtocolError, "client frames must be masked"
	case h.Masked && c.cfg.Client:
		return ws.StatusProtocolError, "server frames must not be masked"
	case h.OpCode.IsControl() && (h.Length > 125 || !h.Fin):
		return ws.StatusProtocolError, "control frames must be unfragmented and at most 125 bytes"
	case h.OpCode == ws.OpContinuation && inMessage == 0:
		return ws.StatusProtocolError, "continuation frame without a message to continue"
	case h.OpCode.IsData() && h.OpCode != ws.OpContinuation && inMessage != 0:
		return ws.StatusProtocolError, "new message before the previous one was finished"
	}
	return 0, ""
}

// control handles a ping, pong or close frame.
func (c *Conn) control(h ws.Header) error {
	p := c.ctl[:h.Length]
	if _, err := io.ReadFull(c.br, p); err != nil {
		return c.readErr(err)
	}
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	switch h.OpCode {
	case ws.OpPing:
		if err := c.WriteMessage(ws.OpPong, p); err != nil && err != ErrClosed {
			return err
		}
		return nil
	case ws.OpPong:
		return nil
	}
	// Close.
	code, reason := ws.StatusNoStatusRcvd, ""
	switch {
	case len(p) == 1:
		return c.fail(ws.StatusProtocolError, "close frame with a 1-byte payload")
	case len(p) >= 2:
		code, _ = ws.ParseCloseFrameDataUnsafe(p)
		if !validCloseCode(code) {
			return c.fail(ws.StatusProtocolError, fmt.Sprintf("invalid close code %d", code))
		}
		if !utf8.Valid(p[2:]) {
			return c.fail(ws.StatusInvalidFramePayloadData, "close reason is not UTF-8")
		}
		reason = string(p[2:])
	}
	c.mu()
	defer c.unmu()
	if c.closing.Load() {
		// The peer answered our close: the handshake is complete.
		return &CloseError{Code: c.sentCode, Reason: c.sentWhy}
	}
	echo := code
	if code == ws.StatusNoStatusRcvd {
		echo = 0 // an empty close is answered with an empty close
	}
	c.sendCloseLocked(echo, "")
	return &CloseError{Code: code, Reason: reason, Remote: true}
}

// validCloseCode reports whether a peer may send code in a close frame.
func validCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// readPayload appends the payload of the frame h to c.msg, growing it as
// bytes arrive rather than by the length the peer declared, unmasking and
// (for text) checking UTF-8 as they come, so that an invalid sequence fails
// the connection at once even in the middle of a frame.
func (c *Conn) readPayload(h ws.Header, text bool) error {
	n := h.Length
	for off := 0; n > 0; {
		if len(c.msg) == cap(c.msg) {
			// Doubling, so that a message of many small fragments is
			// not copied once per fragment; no further than the last
			// frame's end or the size limit.
			grow := max(cap(c.msg), 1024)
			if h.Fin && int64(grow) > n {
				grow = int(n)
			}
			if limit := c.cfg.MaxMessageBytes; limit > 0 {
				grow = min(grow, limit-len(c.msg))
			}
			c.growMsg(grow)
		}
		if off > 0 {
			// A frame that takes long to arrive is still traffic.
			if err := c.armReadDeadline(); err != nil {
				return err
			}
		}
		start := len(c.msg)
		got, err := c.br.Read(c.msg[start : start+int(min(int64(cap(c.msg)-start), n))])
		c.msg = c.msg[:start+got]
		if h.Masked {
			ws.Cipher(c.msg[start:], h.Mask, off)
		}
		off += got
		n -= int64(got)
		if text && !c.checkUTF8(false) {
			return c.failSkipping(ws.StatusInvalidFramePayloadData, "invalid UTF-8 in a text message", n)
		}
		if err != nil {
			return c.readErr(err)
		}
	}
	return nil
}

// growMsg adds exactly n bytes of capacity to c.msg.
func (c *Conn) growMsg(n int) {
	b := make([]byte, len(c.msg), cap(c.msg)+n)
	copy(b, c.msg)
	c.msg = b
}

// checkUTF8 validates the text received so far: every complete sequence must
// be valid, and a sequence cut at the end must be a valid beginning (so an
// invalid message fails at its first bad byte). At the end of the message
// (fin) nothing may be left incomplete.
func (c *Conn) checkUTF8(fin bool) bool {
	b := c.msg[c.utf8Done:]
	// cut is where a sequence that needs more bytes starts, if any: it
	// begins at most 3 bytes before the end.
	cut := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		if x := b[i]; x >= 0xC0 {
			if need := seqLen(x); need > len(b)-i {
				cut = i
			}
			break
		} else if x < 0x80 {
			break
		}
	}
	if !utf8.Valid(b[:cut]) {
		return false
	}
	c.utf8Done += cut
	if cut == len(b) {
		return true
	}
	return !fin && validPrefix(b[cut:])
}

// seqLen is the length of the UTF-8 sequence that lead byte x starts (1 for
// bytes that cannot start one, which utf8.Valid then refuses).
func seqLen(x byte) int {
	switch {
	case x >= 0xF0:
		return 4
	case x >= 0xE0:
		return 3
	case x >= 0xC0:
		return 2
	}
	return 1
}

// validPrefix reports whether b (shorter than its sequence) can begin a
// valid UTF-8 sequence.
func validPrefix(b []byte) bool {
	lo, hi := byte(0x80), byte(0xBF)
	switch b0 := b[0]; {
	case b0 >= 0xC2 && b0 <= 0xDF:
	case b0 == 0xE0:
		lo = 0xA0
	case b0 == 0xED:
		hi = 0x9F
	case b0 >= 0xE1 && b0 <= 0xEF:
	case b0 == 0xF0:
		lo = 0x90
	case b0 >= 0xF1 && b0 <= 0xF3:
	case b0 == 0xF4:
		hi = 0x8F
	default:
		return false
	}
	for i, x := range b[1:] {
		if i == 0 && (x < lo || x > hi) || i > 0 && (x < 0x80 || x > 0xBF) {
			return false
		}
	}
	return true
}

// armReadDeadline gives the peer IdleTimeout to send its next frame, or,
// once closing, until the linger deadline.
func (c *Conn) armReadDeadline() error {
	switch {
	case c.closing.Load():
		return c.setReadDeadline(time.Time{}) // keeps the linger deadline
	case c.cfg.IdleTimeout > 0:
		c.idleBy = time.Now().Add(c.cfg.IdleTimeout)
		return c.setReadDeadline(c.idleBy)
	case c.quietArmed:
		// Next's wait left its deadline; there is none otherwise.
		c.quietArmed = false
		return c.setReadDeadline(time.Time{})
	}
	return nil
}

// readErr turns a read failure into the connection's end.
func (c *Conn) readErr(err error) error {
	if c.closing.Load() {
		c.mu()
		code, why := c.sentCode, c.sentWhy
		c.unmu()
		// We had closed; the peer went away without answering.
		return &CloseError{Code: code, Reason: why}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// Idle past the heartbeat timeout: say why, briefly, then drop.
		c.mu()
		c.sendCloseWithin(ws.StatusGoingAway, "heartbeat timeout: nothing received", time.Second)
		c.unmu()
		return fmt.Errorf("peer idle for %v: %w", c.cfg.IdleTimeout, err)
	}
	return err
}

// fail answers a protocol violation: it sends a close frame with code, then
// waits a little for the peer's close frame (discarding anything else), so
// that the peer can read ours before the TCP connection goes away.
func (c *Conn) fail(code ws.StatusCode, reason string) error {
	return c.failSkipping(code, reason, 0)
}

// failSkipping is fail for a frame refused on its header alone: the unread
// payload of skip bytes comes before the next frame.
func (c *Conn) failSkipping(code ws.StatusCode, reason string, skip int64) error {
	c.Close(code, reason)
	c.drain(skip)
	return &CloseError{Code: code, Reason: reason}
}

// drain discards skip bytes, then frames until the peer's close frame
// arrives, the peer goes away, or the linger deadline passes.
func (c *Conn) drain(skip int64) {
	if err := c.skip(skip); err != nil {
		return
	}
	for {
		h, err := ws.ReadHeaderBuffer(c.br, c.hdr[:2])
		if err != nil || h.OpCode == ws.OpClose {
			return
		}
		if err := c.skip(h.Length); err != nil {
			return
		}
	}
}

// Close starts the closing handshake: it sends a close frame with code and
// reason (once), stops further writes, and gives the peer closeLinger to
// answer; the reading goroutine then ends with a *CloseError and closes the
// TCP connection. On a nil Conn (a session not yet upgraded) it does nothing.
func (c *Conn) Close(code ws.StatusCode, reason string) error {
	if c == nil {
		return nil
	}
	c.mu()
	defer c.unmu()
	return c.sendCloseLocked(code, reason)
}

// sendCloseLocked writes a close frame (code 0: no payload) and arms the
// closing deadline. Call with the write lock held.
func (c *Conn) sendCloseLocked(code ws.StatusCode, reason string) error {
	return c.sendCloseWithin(code, reason, 0)
}

// sendCloseWithin is sendCloseLocked giving the close frame's write d
// (0: the write timeout), for a peer that may no longer read.
func (c *Conn) sendCloseWithin(code ws.StatusCode, reason string, d time.Duration) error {
	if c.closing.Load() || c.closed {
		return nil
	}
	var body [125]byte
	n := 0
	if code != 0 {
		if len(reason) > 123 {
			reason = truncateUTF8(reason, 123)
		}
		ws.PutCloseFrameBody(body[:], code, reason)
		n = 2 + len(reason)
	}
	c.sentCode, c.sentWhy = code, reason
	c.lingerUntil.Store(time.Now().Add(closeLinger).UnixNano())
	c.closing.Store(true)
	var err error
	if d > 0 {
		if err = c.nc.SetWriteDeadline(time.Now().Add(d)); err == nil {
			err = c.writeFrameArmed(ws.OpClose, 0, body[:n])
		}
	} else {
		err = c.writeFrameRaw(ws.OpClose, 0, body[:n])
	}
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok && err == nil && !c.cfg.Client {
		tc.CloseWrite() // nothing follows our close frame
	}
	c.nc.SetReadDeadline(time.Unix(0, c.lingerUntil.Load()))
	return err
}

func truncateUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// CloseNow closes the TCP connection at once, without a close frame.
func (c *Conn) CloseNow() error {
	if c == nil {
		return nil
	}
	c.mu()
	defer c.unmu()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.nc.Close()
}

// WriteMessage writes one whole message as a single frame, compressed when
// permessage-deflate is on and p has at least Deflate.MinSize bytes.
func (c *Conn) WriteMessage(op ws.OpCode, p []byte) error {
	c.mu()
	defer c.unmu()
	return c.writeFrameLocked(op, p)
}

// Ping sends a ping with payload p (at most 125 bytes).
func (c *Conn) Ping(p []byte) error {
	if len(p) > 125 {
		return errors.New("wsconn: ping payload over 125 bytes")
	}
	return c.WriteMessage(ws.OpPing, p)
}

func (c *Conn) writeFrameLocked(op ws.OpCode, p []byte) error {
	if c.closing.Load() || c.closed {
		return ErrClosed
	}
	if c.z != nil && op.IsData() && op != ws.OpContinuation && len(p) >= c.z.minSize {
		z, err := c.z.compress(p)
		if err != nil {
			return err
		}
		return c.writeFrameRaw(op, rsv1, z)
	}
	return c.writeFrameRaw(op, 0, p)
}

// writeFrameRaw writes one final frame with reserved bits rsv (as in
// ws.Header.Rsv). Call with the write lock held.
func (c *Conn) writeFrameRaw(op ws.OpCode, rsv byte, p []byte) error {
	if err := c.armWriteDeadline(); err != nil {
		return err
	}
	return c.writeFrameArmed(op, rsv, p)
}

// writeFrameArmed is writeFrameRaw under the write deadline the caller set.
func (c *Conn) writeFrameArmed(op ws.OpCode, rsv byte, p []byte) error {
	if err := c.flushBacklogLocked(); err != nil {
		return err
	}
	bp := getWriteBuf()
	defer putWriteBuf(bp)
	var err error
	*bp, err = c.appendFrame((*bp)[:0], op, rsv, p)
	if err == nil && len(*bp) > 0 {
		_, err = c.nc.Write(*bp)
	}
	return err
}

// Message is one whole message for WriteMessages.
type Message struct {
	Op   ws.OpCode
	Data []byte
}

// WriteMessages writes msgs in order, each as the single frame that
// WriteMessage would write for it (compressed under the same rule), but
// framed into one buffer and sent with one write (more only when the batch
// is over maxBatch bytes, or a message is larger than that). Either every
// frame is written or an error is returned; the caller's slices are not
// kept.
func (c *Conn) WriteMessages(msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	c.mu()
	defer c.unmu()
	if c.closing.Load() || c.closed {
		return ErrClosed
	}
	if err := c.armWriteDeadline(); err != nil {
		return err
	}
	if err := c.flushBacklogLocked(); err != nil {
		return err
	}
	bp := getWriteBuf()
	defer putWriteBuf(bp)
	buf := (*bp)[:0]
	var err error
	for _, m := range msgs {
		p, rsv := m.Data, byte(0)
		if c.z != nil && m.Op.IsData() && m.Op != ws.OpContinuation && len(p) >= c.z.minSize {
			if p, err = c.z.compress(p); err != nil {
				break
			}
			rsv = rsv1
		}
		// A frame that fits a buffer of its own, but not after what is
		// there, starts a new one (a larger one is written by appendFrame
		// right after what is there).
		if fits := ws.MaxHeaderSize+len(p) <= maxBatch; fits && len(buf)+ws.MaxHeaderSize+len(p) > maxBatch {
			if _, err = c.nc.Write(buf); err != nil {
				break
			}
			buf = buf[:0]
		}
		if buf, err = c.appendFrame(buf, m.Op, rsv, p); err != nil {
			break
		}
	}
	if err == nil && len(buf) > 0 {
		_, err = c.nc.Write(buf)
	}
	*bp = buf
	return err
}

// appendFrame appends one final frame with payload p to buf. A frame that
// would make buf larger than maxBatch is not appended: what buf held and the
// frame's header are written, then the payload (masked in chunks on a
// client), and buf comes back empty.
func (c *Conn) appendFrame(buf []byte, op ws.OpCode, rsv byte, p []byte) ([]byte, error) {
	var mask [4]byte
	if c.cfg.Client {
		mask = ws.NewMask()
	}
	var hdr [ws.MaxHeaderSize]byte
	hn := putHeader(hdr[:], op, rsv, len(p), c.cfg.Client, mask)
	buf = append(buf, hdr[:hn]...)
	if len(buf)+len(p) <= maxBatch {
		start := len(buf)
		buf = append(buf, p...)
		if c.cfg.Client {
			ws.Cipher(buf[start:], mask, 0)
		}
		return buf, nil
	}
	if _, err := c.nc.Write(buf); err != nil {
		return buf[:0], err
	}
	buf = buf[:0]
	if !c.cfg.Client {
		_, err := c.nc.Write(p)
		return buf, err
	}
	for off := 0; off < len(p); off += smallWrite {
		chunk := append(buf[:0], p[off:min(off+smallWrite, len(p))]...)
		ws.Cipher(chunk, mask, off)
		if _, err := c.nc.Write(chunk); err != nil {
			return buf[:0], err
		}
		buf = chunk[:0]
	}
	return buf, nil
}

func (c *Conn) armWriteDeadline() error {
	if c.cfg.WriteTimeout > 0 {
		return c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	}
	return nil
}

// Write buffers are pooled: a connection takes one for a write and gives
// it back, so that an idle connection holds none.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, smallWrite); return &b }}

func getWriteBuf() *[]byte { return writeBufs.Get().(*[]byte) }

func putWriteBuf(bp *[]byte) {
	if cap(*bp) <= maxBatch {
		*bp = (*bp)[:0]
		writeBufs.Put(bp)
	}
}

// putHeader encodes the header of a final frame into b (at least 14 bytes)
// and returns its length (RFC 6455 section 5.2).
func putHeader(b []byte, op ws.OpCode, rsv byte, n int, masked bool, mask [4]byte) int {
	b[0] = 0x80 | rsv<<4 | byte(op)
	i := 2
	switch {
	case n < 126:
		b[1] = byte(n)
	case n <= 0xFFFF:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		i = 4
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
		i = 10
	}
	if masked {
		b[1] |= 0x80
		i += copy(b[i:], mask[:])
	}
	return i
}

func (c *Conn) mu()   { c.wmu.Lock() }
func (c *Conn) unmu() { c.wmu.Unlock() }
