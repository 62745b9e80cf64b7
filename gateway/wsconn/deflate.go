package wsconn

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// permessage-deflate (RFC 7692).
//
// The handshake side uses gobwas/ws/wsflate to parse offers and to encode
// the response. The data side uses compress/flate directly: wsflate's Reader
// takes no dictionary (so it cannot keep the peer's context between
// messages) and reads one frame at a time, while a compressed message here is
// inflated as one stream across its fragments, with control frames handled
// in between, and bounded on its inflated size as it is produced.
//
// Memory: inflating borrows a pooled decompressor (about 50 KB) for the
// length of one message; a peer that keeps its context costs a 32 KiB window
// for the connection's life. A compressor from compress/flate is about 1 MB:
// with server context takeover the connection keeps one for its life, without
// it one is borrowed from a pool for each compressed message. Servers that
// hold many connections on a small board should therefore negotiate
// server_no_context_takeover (DeflateNegotiator.ServerNoContextTakeover).

// Deflate is a negotiated permessage-deflate: the agreed parameters of one
// connection.
type Deflate struct {
	// ServerNoContextTakeover: the server compresses every message with an
	// empty window (and the client inflates it so).
	ServerNoContextTakeover bool
	// ClientNoContextTakeover: the same for what the client sends.
	ClientNoContextTakeover bool
	// MinSize is the smallest message that is sent compressed; shorter ones
	// go out as they are (RSV1 clear), where deflate would save little and
	// cost CPU. 0 means DefaultDeflateMinSize; -1 compresses everything.
	MinSize int
}

// DefaultDeflateMinSize is the default Deflate.MinSize: below it the deflate
// block header and the lost byte alignment eat most of what compression
// would save on short JSON messages.
const DefaultDeflateMinSize = 64

// deflateLevel favours speed: on a Raspberry Pi the CPU is the scarce
// resource, and JSON compresses well even at the fastest level.
const deflateLevel = flate.BestSpeed

// windowSize is the LZ77 window of compress/flate (2^15 bytes): the only
// window it can compress with, which is why offers of server_max_window_bits
// below 15 are declined.
const windowSize = 1 << 15

// rsv1 is the "Per-Message Compressed" bit in ws.Header.Rsv.
const rsv1 = 0x4

// inflateTail completes a message for inflating (RFC 7692 section 7.2.2):
// the 4 bytes the sender stripped (the end of an empty stored block), then an
// empty final stored block so that the decompressor ends with io.EOF.
var inflateTail = [...]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// syncTail ends a sync-flushed deflate stream; the sender strips it.
var syncTail = []byte{0x00, 0x00, 0xff, 0xff}

// DeflateNegotiator answers a client's permessage-deflate offers during a
// server handshake. Its Negotiate method is ws.HTTPUpgrader.Negotiate; after
// the upgrade, Accepted gives the Config.Deflate of the connection. The zero
// value honours what the client asks for. Use one per handshake.
type DeflateNegotiator struct {
	// ServerNoContextTakeover makes the server compress every message with
	// an empty window even when the client did not ask for it (RFC 7692
	// section 7.1.1.1 lets the server decide so): it saves the ~1 MB
	// compressor per connection, at some cost in ratio for small messages.
	ServerNoContextTakeover bool
	// ClientNoContextTakeover asks clients to do the same, which saves the
	// 32 KiB window the server keeps per connection to inflate.
	ClientNoContextTakeover bool
	// MinSize is copied into the accepted Deflate.
	MinSize int

	accepted *Deflate
}

// Negotiate accepts the first offer of permessage-deflate that this side can
// honour and declines the others (returning a zero option): offers with
// unknown, repeated or invalid parameters, and offers of
// server_max_window_bits below 15, which compress/flate cannot compress with.
// It never fails the handshake: a declined offer only means no compression.
// A nil negotiator declines everything (compression off).
func (n *DeflateNegotiator) Negotiate(opt httphead.Option) (httphead.Option, error) {
	if n == nil || n.accepted != nil || !bytes.EqualFold(opt.Name, wsflate.ExtensionNameBytes) {
		return httphead.Option{}, nil
	}
	var offer wsflate.Parameters
	if err := offer.Parse(opt); err != nil {
		return httphead.Option{}, nil
	}
	if offer.ServerMaxWindowBits.Defined() && offer.ServerMaxWindowBits != 15 {
		return httphead.Option{}, nil
	}
	resp := wsflate.Parameters{
		ServerNoContextTakeover: offer.ServerNoContextTakeover || n.ServerNoContextTakeover,
		ClientNoContextTakeover: offer.ClientNoContextTakeover || n.ClientNoContextTakeover,
		// A server that accepts server_max_window_bits must repeat it with
		// the same or a smaller value (section 7.1.2.1): 15 is all we do.
		ServerMaxWindowBits: offer.ServerMaxWindowBits,
		// client_max_window_bits is accepted by ignoring it: inflating with
		// a 32 KiB window reads streams made with any smaller one.
	}
	n.accepted = &Deflate{
		ServerNoContextTakeover: resp.ServerNoContextTakeover,
		ClientNoContextTakeover: resp.ClientNoContextTakeover,
		MinSize:                 n.MinSize,
	}
	return resp.Option(), nil
}

// Accepted is the negotiated extension, or nil when the client offered none
// that was accepted (or the handshake has not run, or n is nil).
func (n *DeflateNegotiator) Accepted() *Deflate {
	if n == nil {
		return nil
	}
	return n.accepted
}

// DeflateOffer is a client's offer of permessage-deflate (for
// ws.Dialer.Extensions): both sides keep their context unless noTakeover.
func DeflateOffer(noTakeover bool) httphead.Option {
	p := wsflate.Parameters{ClientMaxWindowBits: 1} // 1: "client_max_window_bits" without a value
	if noTakeover {
		p.ServerNoContextTakeover, p.ClientNoContextTakeover = true, true
	}
	return p.Option()
}

// DeflateAccepted reads a server's handshake response (ws.Handshake's
// Extensions) on the client side: the negotiated Deflate, or nil when the
// server declined compression.
func DeflateAccepted(exts []httphead.Option) (*Deflate, error) {
	for _, opt := range exts {
		if !bytes.EqualFold(opt.Name, wsflate.ExtensionNameBytes) {
			continue
		}
		var p wsflate.Parameters
		if err := p.Parse(opt); err != nil {
			return nil, fmt.Errorf("server's permessage-deflate response: %w", err)
		}
		// Any server_max_window_bits is fine: inflating with a 32 KiB
		// window reads streams made with smaller ones.
		if p.ClientMaxWindowBits.Defined() && p.ClientMaxWindowBits != 1 && p.ClientMaxWindowBits != 15 {
			return nil, fmt.Errorf("server asked for client_max_window_bits=%d; compress/flate can only use 15", p.ClientMaxWindowBits)
		}
		return &Deflate{ServerNoContextTakeover: p.ServerNoContextTakeover, ClientNoContextTakeover: p.ClientNoContextTakeover}, nil
	}
	return nil, nil
}

// deflateState is a connection's compression state.
type deflateState struct {
	minSize     int
	outTakeover bool // our compressor keeps its window between messages
	inTakeover  bool // the peer's does, so our inflating needs its window

	// Write side, under the write lock.
	fw   *flate.Writer // kept for the connection's life when outTakeover
	zout growBuf

	// Read side, owned by the reading goroutine.
	window []byte // the last windowSize bytes inflated, when inTakeover
	src    inflateSource
}

func newDeflateState(d *Deflate, client bool) *deflateState {
	s := &deflateState{minSize: d.MinSize}
	if s.minSize == 0 {
		s.minSize = DefaultDeflateMinSize
	}
	if client {
		s.outTakeover, s.inTakeover = !d.ClientNoContextTakeover, !d.ServerNoContextTakeover
	} else {
		s.outTakeover, s.inTakeover = !d.ServerNoContextTakeover, !d.ClientNoContextTakeover
	}
	return s
}

// growBuf is an io.Writer appending to a slice the connection keeps.
type growBuf struct{ b []byte }

func (g *growBuf) Write(p []byte) (int, error) {
	g.b = append(g.b, p...)
	return len(p), nil
}

var (
	deflaters = sync.Pool{New: func() any {
		w, _ := flate.NewWriter(io.Discard, deflateLevel) // the level is valid: no error
		return w
	}}
	inflaters = sync.Pool{New: func() any { return flate.NewReader(emptySource) }}
	// emptySource is what pooled decompressors are reset to, so that they
	// do not keep a connection alive. It is never read.
	emptySource = bytes.NewReader(nil)
)

// compress deflates one message into the connection's output buffer and
// returns it without the trailing 00 00 ff ff (RFC 7692 section 7.2.1).
// Call with the write lock held.
func (z *deflateState) compress(p []byte) ([]byte, error) {
	fw := z.fw
	if fw == nil {
		if z.outTakeover {
			w, err := flate.NewWriter(&z.zout, deflateLevel)
			if err != nil {
				return nil, fmt.Errorf("wsconn: deflate: %w", err)
			}
			z.fw, fw = w, w
		} else {
			fw = deflaters.Get().(*flate.Writer)
			fw.Reset(&z.zout) // an empty window for every message
			defer func() {
				fw.Reset(io.Discard)
				deflaters.Put(fw)
			}()
		}
	}
	z.zout.b = z.zout.b[:0]
	if _, err := fw.Write(p); err != nil {
		return nil, fmt.Errorf("wsconn: deflate: %w", err)
	}
	if err := fw.Flush(); err != nil {
		return nil, fmt.Errorf("wsconn: deflate: %w", err)
	}
	b := z.zout.b
	if !bytes.HasSuffix(b, syncTail) {
		return nil, errors.New("wsconn: deflate: the compressor did not end with a sync flush")
	}
	return b[:len(b)-len(syncTail)], nil
}

// remember appends an inflated message to the window the next compressed
// message of the peer may refer to.
func (z *deflateState) remember(p []byte) {
	if z.window == nil {
		z.window = make([]byte, 0, windowSize)
	}
	if len(p) >= windowSize {
		z.window = append(z.window[:0], p[len(p)-windowSize:]...)
		return
	}
	if keep := windowSize - len(p); len(z.window) > keep {
		z.window = z.window[:copy(z.window, z.window[len(z.window)-keep:])]
	}
	z.window = append(z.window, p...)
}

// inflateSource is what the decompressor reads: the payload of a compressed
// message, unmasked, across its fragments (reading the next frame header
// when one ends, and handling control frames between fragments), then
// inflateTail, then io.EOF. An error of the connection (a close frame, a
// protocol violation, an I/O error) is kept in err and ends the message.
type inflateSource struct {
	c      *Conn
	op     ws.OpCode // of the message
	left   int64     // payload bytes left in the current frame
	mask   [4]byte
	masked bool
	pos    int   // offset in the current frame's payload, for the mask
	fin    bool  // the current frame is the last of the message
	wire   int64 // compressed bytes of the message so far
	tail   int   // bytes of inflateTail served
	err    error
}

func (s *inflateSource) begin(c *Conn, h ws.Header, op ws.OpCode) {
	*s = inflateSource{c: c, op: op}
	s.frame(h)
}

func (s *inflateSource) frame(h ws.Header) {
	s.left, s.mask, s.masked, s.pos, s.fin = h.Length, h.Mask, h.Masked, 0, h.Fin
	s.wire += h.Length
}

// wireLimit bounds the compressed size of a message: deflate may expand data
// a little (stored blocks: 5 bytes per 64 KiB; a poor Huffman code: a few
// bits per byte), never to twice its size, so a peer that sends more is not
// sending a message within MaxMessageBytes (or is feeding empty blocks).
func wireLimit(max int) int64 {
	if max <= 0 {
		return 1<<63 - 1
	}
	return 2*int64(max) + 1024
}

// next reads the header of the message's next frame, handling the control
// frames that come first.
func (s *inflateSource) next() error {
	c := s.c
	for {
		h, err := c.readHeader()
		if err != nil {
			s.err = err
			return err
		}
		if code, why := c.checkHeader(h, s.op); code != 0 {
			s.err = c.failSkipping(code, why, h.Length)
			return s.err
		}
		if h.OpCode.IsControl() {
			if err := c.control(h); err != nil {
				s.err = err
				return err
			}
			continue
		}
		s.frame(h)
		if lim := c.cfg.MaxMessageBytes; s.wire > wireLimit(lim) {
			s.err = c.failSkipping(ws.StatusMessageTooBig, fmt.Sprintf("compressed message over %d bytes", wireLimit(lim)), h.Length)
			return s.err
		}
		return nil
	}
}

// ReadByte makes the source a flate.Reader, so that the decompressor reads
// from it directly (no bufio.Reader of its own).
func (s *inflateSource) ReadByte() (byte, error) {
	for s.left == 0 {
		if s.fin {
			s.startTail()
			if s.tail == len(inflateTail) {
				return 0, io.EOF
			}
			s.tail++
			return inflateTail[s.tail-1], nil
		}
		if err := s.next(); err != nil {
			return 0, err
		}
	}
	b, err := s.c.br.ReadByte()
	if err != nil {
		s.err = s.c.readErr(err)
		return 0, s.err
	}
	if s.masked {
		b ^= s.mask[s.pos&3]
	}
	s.pos++
	s.left--
	return b, nil
}

func (s *inflateSource) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for s.left == 0 {
		if s.fin {
			s.startTail()
			if s.tail == len(inflateTail) {
				return 0, io.EOF
			}
			n := copy(p, inflateTail[s.tail:])
			s.tail += n
			return n, nil
		}
		if err := s.next(); err != nil {
			return 0, err
		}
	}
	n, err := s.c.br.Read(p[:min(int64(len(p)), s.left)])
	if s.masked {
		ws.Cipher(p[:n], s.mask, s.pos)
	}
	s.pos += n
	s.left -= int64(n)
	if err != nil {
		s.err = s.c.readErr(err)
		return n, s.err
	}
	return n, nil
}

// startTail is called when the peer's bytes are all read. A message with
// no payload at all is taken as an empty message (a compressor would have
// sent a single 0x00; some senders send nothing): only the final empty block
// is served, as the stripped 4 bytes alone are not a valid stream.
func (s *inflateSource) startTail() {
	if s.tail == 0 && s.wire == 0 {
		s.tail = 4
	}
}

// finish checks that the deflate stream, which has ended, was the whole
// message: if the peer ended it with a final block of its own, only empty
// fragments may follow.
func (s *inflateSource) finish() error {
	for s.tail == 0 { // the peer's bytes were not all read
		if s.left > 0 {
			return s.c.failSkipping(ws.StatusInvalidFramePayloadData, "data after the end of the compressed message", s.left)
		}
		if s.fin {
			return nil
		}
		if err := s.next(); err != nil {
			return err
		}
	}
	return nil
}

// readCompressed inflates a message whose first frame is h into c.msg,
// checking its inflated size and, for text, its UTF-8 as it grows.
func (c *Conn) readCompressed(h ws.Header, op ws.OpCode) ([]byte, error) {
	z := c.z
	s := &z.src
	s.begin(c, h, op)
	limit := c.cfg.MaxMessageBytes
	if s.wire > wireLimit(limit) {
		return nil, c.failSkipping(ws.StatusMessageTooBig, fmt.Sprintf("compressed message over %d bytes", wireLimit(limit)), h.Length)
	}
	fr := inflaters.Get().(io.ReadCloser)
	defer func() {
		fr.(flate.Resetter).Reset(emptySource, nil)
		inflaters.Put(fr)
	}()
	var dict []byte
	if z.inTakeover {
		dict = z.window
	}
	if err := fr.(flate.Resetter).Reset(s, dict); err != nil {
		return nil, c.fail(ws.StatusInternalServerError, "inflate: "+err.Error())
	}
	text := op == ws.OpText
	for {
		if len(c.msg) == cap(c.msg) {
			grow := max(cap(c.msg), 1024)
			if limit > 0 {
				// At most one byte over the limit: enough to know it is
				// exceeded, and a zip bomb never inflates further.
				grow = max(min(grow, limit+1-cap(c.msg)), 1)
			}
			c.growMsg(grow)
		}
		start := len(c.msg)
		n, err := fr.Read(c.msg[start:cap(c.msg)])
		c.msg = c.msg[:start+n]
		if s.err != nil {
			return nil, s.err
		}
		if limit > 0 && len(c.msg) > limit {
			return nil, c.failSkipping(ws.StatusMessageTooBig, fmt.Sprintf("message over %d bytes once inflated", limit), s.left)
		}
		if text && !c.checkUTF8(false) {
			return nil, c.failSkipping(ws.StatusInvalidFramePayloadData, "invalid UTF-8 in a text message", s.left)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, c.failSkipping(ws.StatusInvalidFramePayloadData, "invalid compressed data: "+err.Error(), s.left)
		}
	}
	if err := s.finish(); err != nil {
		return nil, err
	}
	if text && !c.checkUTF8(true) {
		return nil, c.fail(ws.StatusInvalidFramePayloadData, "invalid UTF-8 in a text message")
	}
	if z.inTakeover {
		z.remember(c.msg)
	}
	return c.msg, nil
}
