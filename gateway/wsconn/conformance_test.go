package wsconn

// A conformance table after the sections of the Autobahn testsuite
// (https://github.com/crossbario/autobahn-testsuite), played by a raw client
// over loopback TCP against an echo server on this package: each case sends
// frames as bytes on the wire (in chops when the case says so) and checks
// every frame the server sends back, up to its close frame and the end of
// the TCP stream. Sections 12 and 13 go through a real handshake with
// permessage-deflate negotiated, and the client compresses and inflates with
// compress/flate on its own.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// want is one frame the server must send.
type want struct {
	op      ws.OpCode
	payload []byte
}

// acase is one conformance case: frames written in one go (or in chops of
// chop bytes), the frames the server must answer with, then its close code
// (0: the connection stays open, and a clean close with 1000 follows).
type acase struct {
	name   string
	frames []frame
	chop   int
	want   []want
	close  ws.StatusCode
	// payloadMax overrides the server's MaxMessageBytes (default 1 MiB).
	max int
}

func pingF(p string) frame { return frame{op: ws.OpPing, fin: true, payload: []byte(p)} }
func pongF(p string) frame { return frame{op: ws.OpPong, fin: true, payload: []byte(p)} }
func binF(p []byte, fin bool) frame {
	return frame{op: ws.OpBinary, fin: fin, payload: p}
}
func closeF(code ws.StatusCode, reason string) frame {
	return frame{op: ws.OpClose, fin: true, payload: closeBody(code, reason)}
}
func wText(s string) want  { return want{ws.OpText, []byte(s)} }
func wBin(p []byte) want   { return want{ws.OpBinary, p} }
func wPong(s string) want  { return want{ws.OpPong, []byte(s)} }
func repeat(n int) []byte  { return bytes.Repeat([]byte("*"), n) }
func repeatS(n int) string { return string(repeat(n)) }
func frameBytes(fs []frame) []byte {
	var b bytes.Buffer
	for _, f := range fs {
		h := ws.Header{Fin: f.fin, Rsv: f.rsv, OpCode: f.op, Length: int64(len(f.payload)), Masked: !f.noMask}
		if f.length != 0 {
			h.Length = f.length
		}
		p := append([]byte(nil), f.payload...)
		if h.Masked {
			h.Mask = ws.NewMask()
			ws.Cipher(p, h.Mask, 0)
		}
		ws.WriteHeader(&b, h)
		b.Write(p)
	}
	return b.Bytes()
}

// play runs one case against a fresh echo server.
func play(t *testing.T, tc acase) {
	t.Helper()
	max := tc.max
	if max == 0 {
		max = 1 << 20
	}
	c, ended := echoServer(t, Config{MaxMessageBytes: max})
	r := bufio.NewReader(c)
	wire := frameBytes(tc.frames)
	writeChopped(t, c, wire, tc.chop)
	expectFrames(t, r, tc.want)
	code := tc.close
	if code == 0 {
		send(t, c, closeF(1000, ""))
		code = 1000
	}
	wantCloseThenEOF(t, r, code)
	if tc.close != 0 {
		// Answer the server's close, as a client would; it must end with
		// the code it sent.
		c.Write(frameBytes([]frame{closeF(tc.close, "")}))
		var ce *CloseError
		if err := <-ended; !errors.As(err, &ce) || ce.Code != tc.close {
			t.Fatalf("server ended with %v, want close %d", err, tc.close)
		}
	}
}

// writeChopped writes wire in writes of chop bytes (all at once if chop is
// 0). It may run on its own goroutine: a failure is reported, not fatal.
func writeChopped(t testing.TB, c net.Conn, wire []byte, chop int) {
	if chop <= 0 {
		chop = len(wire)
	}
	for len(wire) > 0 {
		n := min(chop, len(wire))
		if _, err := c.Write(wire[:n]); err != nil {
			t.Errorf("client write: %v", err)
			return
		}
		wire = wire[n:]
	}
}

// writeAsync is writeChopped in the background (for messages larger than
// the socket buffers, while the test reads the echo); the channel closes
// when the write is done.
func writeAsync(t testing.TB, c net.Conn, wire []byte, chop int) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeChopped(t, c, wire, chop)
	}()
	t.Cleanup(func() { <-done })
	return done
}

// expectFrames reads the server's frames and compares them with ws, in order.
func expectFrames(t *testing.T, r io.Reader, ws_ []want) {
	t.Helper()
	for i, w := range ws_ {
		h, p := recv(t, r)
		if !h.Fin || h.Rsv != 0 {
			t.Fatalf("frame %d: fin %v rsv %d", i, h.Fin, h.Rsv)
		}
		if h.OpCode != w.op || !bytes.Equal(p, w.payload) {
			t.Fatalf("frame %d: got %v %s, want %v %s", i, h.OpCode, short(p), w.op, short(w.payload))
		}
	}
}

func short(p []byte) string {
	if len(p) > 40 {
		return fmt.Sprintf("%q… (%d bytes)", p[:40], len(p))
	}
	return fmt.Sprintf("%q", p)
}

// wantCloseThenEOF reads the next frame, which must be a close with code
// (0: an empty close), then the end of the TCP stream: nothing follows a
// close frame.
func wantCloseThenEOF(t *testing.T, r io.Reader, code ws.StatusCode) {
	t.Helper()
	h, p := recv(t, r)
	if h.OpCode != ws.OpClose {
		t.Fatalf("got %v %s, want a close frame %d", h.OpCode, short(p), code)
	}
	got := ws.StatusCode(0)
	if len(p) >= 2 {
		got = ws.StatusCode(binary.BigEndian.Uint16(p))
	}
	if got != code {
		t.Fatalf("close code %d (%q), want %d", got, p, code)
	}
	// A reset is an end too: the server may close with bytes of ours unread.
	if n, err := io.Copy(io.Discard, r); n != 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after the close frame: %d bytes, %v; want the end of the stream", n, err)
	}
}

func TestAutobahnFraming(t *testing.T) { // sections 1 and 2
	var cases []acase
	for _, n := range []int{0, 125, 126, 127, 128, 65535, 65536} {
		cases = append(cases,
			acase{name: fmt.Sprintf("1.1 text %d", n), frames: []frame{txt(repeatS(n), true)}, want: []want{wText(repeatS(n))}},
			acase{name: fmt.Sprintf("1.2 binary %d", n), frames: []frame{binF(repeat(n), true)}, want: []want{wBin(repeat(n))}},
		)
	}
	bin := []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}
	cases = append(cases,
		acase{name: "1.1.7 text 65536 in chops of 997", frames: []frame{txt(repeatS(65536), true)}, chop: 997, want: []want{wText(repeatS(65536))}},
		acase{name: "1.2.8 binary 65536 in chops of 997", frames: []frame{binF(repeat(65536), true)}, chop: 997, want: []want{wBin(repeat(65536))}},
		acase{name: "2.1 ping without payload", frames: []frame{pingF("")}, want: []want{wPong("")}},
		acase{name: "2.2 ping with text payload", frames: []frame{pingF("Hello, world!")}, want: []want{wPong("Hello, world!")}},
		acase{name: "2.3 ping with binary payload", frames: []frame{{op: ws.OpPing, fin: true, payload: bin}}, want: []want{{ws.OpPong, bin}}},
		acase{name: "2.4 ping with 125 bytes", frames: []frame{pingF(repeatS(125))}, want: []want{wPong(repeatS(125))}},
		acase{name: "2.5 ping with 126 bytes", frames: []frame{pingF(repeatS(126))}, close: ws.StatusProtocolError},
		acase{name: "2.6 ping with 125 bytes in chops of 1", frames: []frame{pingF(repeatS(125))}, chop: 1, want: []want{wPong(repeatS(125))}},
		acase{name: "2.7 unsolicited pong", frames: []frame{pongF("")}},
		acase{name: "2.8 unsolicited pong with payload", frames: []frame{pongF("unsolicited pong payload")}},
		acase{name: "2.9 unsolicited pong then ping", frames: []frame{pongF("unsolicited pong payload"), pingF("ping payload")}, want: []want{wPong("ping payload")}},
	)
	var pings []frame
	var pongs []want
	for i := range 10 {
		pings = append(pings, pingF(fmt.Sprintf("payload-%d", i)))
		pongs = append(pongs, wPong(fmt.Sprintf("payload-%d", i)))
	}
	cases = append(cases,
		acase{name: "2.10 ten pings", frames: pings, want: pongs},
		acase{name: "2.11 ten pings in chops of 1", frames: pings, chop: 1, want: pongs},
	)
	runCases(t, cases)
}

func runCases(t *testing.T, cases []acase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { play(t, tc) })
	}
}

func TestAutobahnReservedBitsAndOpcodes(t *testing.T) { // sections 3 and 4
	hello := wText("Hello, world!")
	pre := txt("Hello, world!", true)
	withRsv := func(f frame, rsv byte) frame { f.rsv = rsv; return f }
	cases := []acase{
		{name: "3.1 RSV1 on text", frames: []frame{withRsv(txt("Hello, world!", true), 4)}, close: ws.StatusProtocolError},
		{name: "3.2 RSV2 after an echo", frames: []frame{pre, withRsv(pre, 2), pingF("")}, want: []want{hello}, close: ws.StatusProtocolError},
		{name: "3.3 RSV1+RSV2 after an echo, frame by frame", frames: []frame{pre, withRsv(pre, 6), pingF("")}, chop: 19, want: []want{hello}, close: ws.StatusProtocolError},
		{name: "3.4 RSV3 after an echo, in chops of 1", frames: []frame{pre, withRsv(pre, 1), pingF("")}, chop: 1, want: []want{hello}, close: ws.StatusProtocolError},
		{name: "3.5 RSV1+RSV3 on binary", frames: []frame{withRsv(binF([]byte{0, 1, 2}, true), 5)}, close: ws.StatusProtocolError},
		{name: "3.6 RSV2+RSV3 on ping", frames: []frame{withRsv(pingF("x"), 3)}, close: ws.StatusProtocolError},
		{name: "3.7 all RSV on close", frames: []frame{withRsv(closeF(1000, ""), 7)}, close: ws.StatusProtocolError},
	}
	for _, op := range []ws.OpCode{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		cases = append(cases,
			acase{name: fmt.Sprintf("4 opcode %d", op), frames: []frame{{op: op, fin: true}}, close: ws.StatusProtocolError},
			acase{name: fmt.Sprintf("4 opcode %d with payload after an echo", op), frames: []frame{pre, {op: op, fin: true, payload: []byte("reserved")}, pingF("")}, want: []want{hello}, close: ws.StatusProtocolError},
		)
	}
	runCases(t, cases)
}

func TestAutobahnFragmentation(t *testing.T) { // section 5
	frag := func(op ws.OpCode, s string, fin bool) frame { return frame{op: op, fin: fin, payload: []byte(s)} }
	cases := []acase{
		{name: "5.1 ping in 2 fragments", frames: []frame{frag(ws.OpPing, "frag1", false), cont("frag2", true)}, close: ws.StatusProtocolError},
		{name: "5.2 pong in 2 fragments", frames: []frame{frag(ws.OpPong, "frag1", false), cont("frag2", true)}, close: ws.StatusProtocolError},
		{name: "5.3 text in 2 fragments", frames: []frame{txt("frag1", false), cont("frag2", true)}, want: []want{wText("frag1frag2")}},
		{name: "5.4 text in 2 fragments, frame by frame", frames: []frame{txt("frag1", false), cont("frag2", true)}, chop: 11, want: []want{wText("frag1frag2")}},
		{name: "5.5 text in 2 fragments in chops of 1", frames: []frame{txt("frag1", false), cont("frag2", true)}, chop: 1, want: []want{wText("frag1frag2")}},
		{name: "5.6 ping between fragments", frames: []frame{txt("frag1", false), pingF("pongme!"), cont("frag2", true)}, want: []want{wPong("pongme!"), wText("frag1frag2")}},
		{name: "5.8 ping between fragments in chops of 1", frames: []frame{txt("frag1", false), pingF("pongme!"), cont("frag2", true)}, chop: 1, want: []want{wPong("pongme!"), wText("frag1frag2")}},
		{name: "5.9 continuation fin=1 with nothing to continue", frames: []frame{cont("non-continuation payload", true), txt("Hello, world!", true)}, close: ws.StatusProtocolError},
		{name: "5.10 same in chops of 1", frames: []frame{cont("non-continuation payload", true), txt("Hello, world!", true)}, chop: 1, close: ws.StatusProtocolError},
		{name: "5.12 continuation fin=0 with nothing to continue", frames: []frame{cont("non-continuation payload", false), txt("Hello, world!", true)}, close: ws.StatusProtocolError},
		{name: "5.15 a message, then a continuation with nothing to continue", frames: []frame{txt("fragment1", false), cont("fragment2", true), cont("fragment3", false), txt("fragment4", true)}, want: []want{wText("fragment1fragment2")}, close: ws.StatusProtocolError},
		{name: "5.16 repeated continuations with nothing to continue", frames: []frame{cont("fragment1", false), txt("fragment2", false), cont("fragment3", true)}, close: ws.StatusProtocolError},
		{name: "5.18 text fragments both with opcode text", frames: []frame{txt("fragment1", false), txt("fragment2", true)}, close: ws.StatusProtocolError},
		{name: "5.19 pings between 5 fragments", frames: []frame{txt("fragment1", false), cont("fragment2", false), pingF("pongme 1!"), cont("fragment3", false), cont("fragment4", false), pingF("pongme 2!"), cont("fragment5", true)},
			want: []want{wPong("pongme 1!"), wPong("pongme 2!"), wText("fragment1fragment2fragment3fragment4fragment5")}},
		{name: "5.20 the same frame by frame", frames: []frame{txt("fragment1", false), cont("fragment2", false), pingF("pongme 1!"), cont("fragment3", false), cont("fragment4", false), pingF("pongme 2!"), cont("fragment5", true)},
			chop: 3, want: []want{wPong("pongme 1!"), wPong("pongme 2!"), wText("fragment1fragment2fragment3fragment4fragment5")}},
		{name: "binary in 3 fragments", frames: []frame{binF([]byte{1}, false), cont("", false), {op: ws.OpContinuation, fin: true, payload: []byte{2, 3}}}, want: []want{wBin([]byte{1, 2, 3})}},
		{name: "close between fragments", frames: []frame{txt("frag1", false), closeF(1000, "")}, close: 1000},
	}
	runCases(t, cases)
}

// utf8Cases follow Markus Kuhn's UTF-8 decoder test, as section 6 does.
var utf8Valid = []string{
	"", "Hello-µ@ßöäüàá-UTF-8!!", "κόσμε", "\x00", "\u0080", "\u0800", "\U00010000",
	"\u007f", "\u07ff", "\uffff", "\U0010ffff", "\ud7ff", "\ue000", "\ufffd",
	"\U0010fffe", "\ufffe", "\ufdd0", "\U0001f4a9 water 🚰", "\xf0\x9d\x84\x9e",
}

var utf8Invalid = []string{
	"\x80", "\xbf", "\x80\xbf", "\x80\xbf\x80", "\xc0", "\xc0 ", "\xdf", "\xe0\x80", "\xef\xbf", "\xf0\x80\x80",
	"\xf7\xbf\xbf", "\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80", "\xfe", "\xff", "\xfe\xfe\xff\xff",
	"\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf",
	"\xed\xa0\x80", "\xed\xbf\xbf", "\xed\xa0\x80\xed\xb0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
	"κόσμε\xed\xa0\x80edited", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
	"ok\xc3", "ok\xe2\x82",
}

func TestAutobahnUTF8(t *testing.T) { // section 6
	t.Run("6.1 empty frames", func(t *testing.T) {
		runCases(t, []acase{
			{name: "6.1.1", frames: []frame{txt("", true)}, want: []want{wText("")}},
			{name: "6.1.2", frames: []frame{txt("", false), cont("", false), cont("", true)}, want: []want{wText("")}},
			{name: "6.1.3", frames: []frame{txt("", false), cont("middle frame payload", false), cont("", true)}, want: []want{wText("middle frame payload")}},
		})
	})
	// Valid text: whole, split at every byte, and in 1-byte fragments.
	t.Run("valid", func(t *testing.T) {
		c, _ := echoServer(t, Config{})
		r := bufio.NewReader(c)
		for _, s := range utf8Valid {
			for i := 0; i <= len(s); i++ {
				send(t, c, txt(s[:i], false), cont(s[i:], true))
				expectFrames(t, r, []want{wText(s)})
			}
			var fs []frame
			for i := range len(s) {
				fs = append(fs, frame{op: ws.OpContinuation, payload: []byte{s[i]}})
			}
			fs = append([]frame{txt("", false)}, fs...)
			fs = append(fs, cont("", true))
			writeChopped(t, c, frameBytes(fs), 1)
			expectFrames(t, r, []want{wText(s)})
		}
	})
	// Invalid text: whole, and split at every byte; 1007 each time.
	t.Run("invalid", func(t *testing.T) {
		for _, s := range utf8Invalid {
			for i := -1; i <= len(s); i++ {
				fs := []frame{txt(s, true)}
				if i >= 0 {
					fs = []frame{txt(s[:i], false), cont(s[i:], true)}
				}
				t.Run(fmt.Sprintf("%q split %d", s, i), func(t *testing.T) {
					play(t, acase{frames: fs, close: ws.StatusInvalidFramePayloadData})
				})
			}
		}
	})
	// Fail fast: the server closes at the fragment (6.4.1, 6.4.2) or at the
	// bytes within a frame (6.4.3, 6.4.4) that make the text invalid, while
	// the rest of the message has not been sent. A server that waited for
	// the end of the message would never answer, and the test would time out.
	t.Run("6.4 fail fast", func(t *testing.T) {
		p1, p2 := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", "\xf4\x90\x80\x80"
		t.Run("6.4.1 invalid second fragment, third not sent", func(t *testing.T) {
			c, _ := echoServer(t, Config{})
			send(t, c, txt(p1, false), cont(p2, false))
			wantCloseThenEOF(t, bufio.NewReader(c), ws.StatusInvalidFramePayloadData)
		})
		t.Run("6.4.2 invalid first byte in a second fragment", func(t *testing.T) {
			c, _ := echoServer(t, Config{})
			send(t, c, txt(p1+"\xf4", false), cont("\x90", false))
			wantCloseThenEOF(t, bufio.NewReader(c), ws.StatusInvalidFramePayloadData)
		})
		for _, name := range []string{"6.4.3 within one frame", "6.4.4 within one frame, one byte at a time"} {
			t.Run(name, func(t *testing.T) {
				c, _ := echoServer(t, Config{})
				whole := frameBytes([]frame{txt(p1+p2+"edited", true)})
				// Header + the valid part + the first 2 bytes of the invalid
				// sequence; the rest of the frame is never sent.
				cut := len(whole) - len("edited") - 2
				chop := len(whole)
				if strings.Contains(name, "one byte") {
					chop = 1
				}
				writeChopped(t, c, whole[:cut], chop)
				wantCloseThenEOF(t, bufio.NewReader(c), ws.StatusInvalidFramePayloadData)
			})
		}
	})
}

func TestAutobahnClose(t *testing.T) { // section 7
	cases := []acase{
		{name: "7.1.1 echo then close", frames: []frame{txt("Hello World!", true), closeF(1000, "")}, want: []want{wText("Hello World!")}, close: 1000},
		{name: "7.1.2 close twice", frames: []frame{closeF(1000, ""), closeF(1000, "")}, close: 1000},
		{name: "7.1.3 ping after close", frames: []frame{closeF(1000, ""), pingF("Hello World!")}, close: 1000},
		{name: "7.1.4 text after close", frames: []frame{closeF(1000, ""), txt("Hello World!", true)}, close: 1000},
		{name: "7.1.5 close between fragments", frames: []frame{txt("fragment1", false), closeF(1000, ""), cont("fragment2", true)}, close: 1000},
		{name: "7.1.6 256K message, close, ping", frames: []frame{binF(repeat(256<<10), true), closeF(1000, ""), pingF("Hello World!")}, want: []want{wBin(repeat(256 << 10))}, close: 1000},
		{name: "7.3.1 empty close", frames: []frame{{op: ws.OpClose, fin: true}}, close: 0},
		{name: "7.3.2 1-byte close payload", frames: []frame{{op: ws.OpClose, fin: true, payload: []byte{0x03}}}, close: ws.StatusProtocolError},
		{name: "7.3.3 close 1000", frames: []frame{closeF(1000, "")}, close: 1000},
		{name: "7.3.4 close 1000 with a reason", frames: []frame{closeF(1000, "Hello World!")}, close: 1000},
		{name: "7.3.5 close 1000 with a 123-byte reason", frames: []frame{closeF(1000, repeatS(123))}, close: 1000},
		{name: "7.3.6 close 1000 with a 124-byte reason", frames: []frame{{op: ws.OpClose, fin: true, payload: append([]byte{0x03, 0xe8}, repeat(124)...)}}, close: ws.StatusProtocolError},
		{name: "7.5.1 close reason not UTF-8", frames: []frame{closeF(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64")}, close: ws.StatusInvalidFramePayloadData},
	}
	for _, code := range []ws.StatusCode{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		cases = append(cases, acase{name: fmt.Sprintf("7.7 valid code %d echoed", code), frames: []frame{closeF(code, "")}, close: code})
	}
	for _, code := range []ws.StatusCode{0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, acase{name: fmt.Sprintf("7.9 invalid code %d", code), frames: []frame{closeF(code, "")}, close: ws.StatusProtocolError})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.close != 0 || strings.HasPrefix(tc.name, "7.3.1") {
				playClose(t, tc)
				return
			}
			play(t, tc)
		})
	}
}

// playClose is play for cases that end with the peer's close: the server
// answers (echoing the code, or with its own on an error) and closes the
// TCP connection; nothing that the client sent after its close is echoed.
func playClose(t *testing.T, tc acase) {
	c, ended := echoServer(t, Config{MaxMessageBytes: 1 << 20})
	r := bufio.NewReader(c)
	writeChopped(t, c, frameBytes(tc.frames), tc.chop)
	expectFrames(t, r, tc.want)
	wantCloseThenEOF(t, r, tc.close)
	c.Write(frameBytes([]frame{closeF(1000, "")})) // answers a close of the server's
	err := <-ended
	var ce *CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("server ended with %v", err)
	}
}

func TestAutobahnLimits(t *testing.T) { // section 9, and beyond the limit
	const max = 16 << 20
	c, ended := echoServer(t, Config{MaxMessageBytes: max})
	c.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReaderSize(c, 64<<10)
	rnd := rand.New(rand.NewPCG(9, 9))
	big := func(n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte('a' + rnd.IntN(26))
		}
		return p
	}
	for _, n := range []int{64 << 10, 256 << 10, 1 << 20, 4 << 20, max} {
		p := big(n)
		// 9.1 text and 9.2 binary, in one frame.
		writeAsync(t, c, frameBytes([]frame{txt(string(p), true), binF(p, true)}), 0)
		expectFrames(t, r, []want{{ws.OpText, p}, wBin(p)})
	}
	// 9.3 and 9.4: 4 MiB in fragments of 64 bytes to 4 MiB.
	p := big(4 << 20)
	for _, fragSize := range []int{64, 4096, 65536, 1 << 20, 4 << 20} {
		var fs []frame
		for off := 0; off < len(p); off += fragSize {
			op := ws.OpContinuation
			if off == 0 {
				op = ws.OpText
			}
			fs = append(fs, frame{op: op, fin: off+fragSize >= len(p), payload: p[off:min(off+fragSize, len(p))]})
		}
		writeAsync(t, c, frameBytes(fs), 0)
		expectFrames(t, r, []want{{ws.OpText, p}})
	}
	// 9.5 and 9.6: 1 MiB in chops of 64 to 4096 bytes.
	p = p[:1<<20]
	for _, chop := range []int{64, 4096} {
		writeAsync(t, c, frameBytes([]frame{binF(p, true)}), chop)
		expectFrames(t, r, []want{wBin(p)})
	}
	// 9.7 and 9.8: many small messages, round trip one by one.
	for i := range 1000 {
		msg := fmt.Sprintf("message %d", i)
		send(t, c, txt(msg, true))
		expectFrames(t, r, []want{wText(msg)})
	}
	// Exactly the limit passes (above); one byte more is refused.
	done := writeAsync(t, c, frameBytes([]frame{binF(make([]byte, max+1), true)}), 0)
	wantCloseThenEOF(t, r, ws.StatusMessageTooBig)
	<-done
	send(t, c, closeF(ws.StatusMessageTooBig, ""))
	var ce *CloseError
	if err := <-ended; !errors.As(err, &ce) || ce.Code != ws.StatusMessageTooBig {
		t.Fatalf("server ended with %v", err)
	}
}

// The limit holds across fragments and against declared lengths, which the
// server never allocates.
func TestLimitBeforeAllocation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frames []frame
	}{
		{"declared 2^62 bytes", []frame{{op: ws.OpBinary, fin: true, length: 1 << 62}}},
		{"declared 1 GiB in a continuation", []frame{binF(repeat(100), false), {op: ws.OpContinuation, fin: true, length: 1 << 30}}},
		{"fragments over the limit", []frame{txt(repeatS(600), false), cont(repeatS(600), true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, client, ended := startRaw(t, Config{MaxMessageBytes: 1000})
			send(t, client, tc.frames...)
			wantClose(t, bufio.NewReader(client), ws.StatusMessageTooBig)
			client.Close()
			<-ended
			if c := cap(srv.msg); c > 1000 {
				t.Fatalf("the server's message buffer grew to %d bytes", c)
			}
		})
	}
}

// startRaw is echoServer that also returns the server's Conn (to inspect
// after its read loop has ended).
func startRaw(t *testing.T, cfg Config) (*Conn, net.Conn, <-chan error) {
	t.Helper()
	a, b := tcpPair(t)
	srv := New(a, nil, cfg)
	ended := make(chan error, 1)
	go func() {
		defer close(ended)
		for {
			op, p, err := srv.ReadMessage()
			if err == nil {
				err = srv.WriteMessage(op, p)
			}
			if err != nil {
				ended <- err
				return
			}
		}
	}()
	t.Cleanup(func() { b.Close(); srv.CloseNow(); <-ended })
	b.SetDeadline(time.Now().Add(10 * time.Second))
	return srv, b, ended
}

// --- sections 12 and 13: permessage-deflate ---

// deflateClient is the client's half of permessage-deflate, written
// independently of the server's: a compressor that keeps its window unless
// told not to, and an inflater that passes the history of the server's
// messages as the dictionary.
type deflateClient struct {
	outTakeover, inTakeover bool
	fw                      *flate.Writer
	buf                     bytes.Buffer
	history                 []byte
}

func (d *deflateClient) compress(t testing.TB, p []byte) []byte {
	if d.fw == nil || !d.outTakeover {
		d.buf.Reset()
		d.fw, _ = flate.NewWriter(&d.buf, flate.DefaultCompression)
	}
	d.buf.Reset()
	d.fw.Write(p)
	d.fw.Flush()
	b := d.buf.Bytes()
	if !bytes.HasSuffix(b, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("flate did not end with a sync flush: % x", b)
	}
	return append([]byte(nil), b[:len(b)-4]...)
}

func (d *deflateClient) inflate(t testing.TB, p []byte) []byte {
	var dict []byte
	if d.inTakeover {
		dict = d.history
	}
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}))
	out, err := io.ReadAll(flate.NewReaderDict(src, dict))
	if err != nil {
		t.Fatalf("inflating the server's message: %v", err)
	}
	if d.inTakeover {
		d.history = append(d.history, out...)
		if len(d.history) > 1<<15 {
			d.history = append([]byte(nil), d.history[len(d.history)-1<<15:]...)
		}
	}
	return out
}

// handshake runs an upgrade with the given extension offer against a server
// that negotiates with neg and echoes; it returns the client's connection
// and reader and the server's Sec-WebSocket-Extensions answer.
func handshake(t *testing.T, neg DeflateNegotiator, cfg Config, offer string) (net.Conn, *bufio.Reader, string, <-chan error) {
	t.Helper()
	a, b := tcpPair(t)
	ended := make(chan error, 1)
	go func() {
		defer close(ended)
		n := neg
		u := ws.Upgrader{Negotiate: n.Negotiate}
		if _, err := u.Upgrade(a); err != nil {
			ended <- err
			return
		}
		cfg := cfg
		cfg.Deflate = n.Accepted()
		srv := New(a, nil, cfg)
		defer srv.CloseNow()
		for {
			op, p, err := srv.ReadMessage()
			if err == nil {
				err = srv.WriteMessage(op, p)
			}
			if err != nil {
				ended <- err
				return
			}
		}
	}()
	t.Cleanup(func() { b.Close(); a.Close(); <-ended })
	b.SetDeadline(time.Now().Add(20 * time.Second))
	req := "GET /echo HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	if offer != "" {
		req += "Sec-WebSocket-Extensions: " + offer + "\r\n"
	}
	if _, err := io.WriteString(b, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(b)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	return b, r, resp.Header.Get("Sec-WebSocket-Extensions"), ended
}

// params splits an extension header into its sorted parameter list (with
// the extension name first), to compare without regard to order or spaces.
func params(h string) string {
	if h == "" {
		return ""
	}
	parts := strings.Split(h, ";")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	sort.Strings(parts[1:])
	return strings.Join(parts, "; ")
}

func TestDeflateNegotiation(t *testing.T) {
	cases := []struct {
		name  string
		neg   DeflateNegotiator
		offer string
		want  string // the response's parameters, sorted; "" for declined
	}{
		{"no offer", DeflateNegotiator{}, "", ""},
		{"plain", DeflateNegotiator{}, "permessage-deflate", "permessage-deflate"},
		{"browser offer", DeflateNegotiator{}, "permessage-deflate; client_max_window_bits", "permessage-deflate"},
		{"client_max_window_bits=10", DeflateNegotiator{}, "permessage-deflate; client_max_window_bits=10", "permessage-deflate"},
		{"server_no_context_takeover honoured", DeflateNegotiator{}, "permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"},
		{"client_no_context_takeover echoed", DeflateNegotiator{}, "permessage-deflate; client_no_context_takeover; client_max_window_bits", "permessage-deflate; client_no_context_takeover"},
		{"both", DeflateNegotiator{}, "permessage-deflate; client_no_context_takeover; server_no_context_takeover", "permessage-deflate; client_no_context_takeover; server_no_context_takeover"},
		{"server_max_window_bits=15 accepted", DeflateNegotiator{}, "permessage-deflate; server_max_window_bits=15", "permessage-deflate; server_max_window_bits=15"},
		{"server_max_window_bits=8 declined", DeflateNegotiator{}, "permessage-deflate; server_max_window_bits=8", ""},
		{"13.7: declined offer, then accepted one", DeflateNegotiator{}, "permessage-deflate; server_no_context_takeover; server_max_window_bits=8, permessage-deflate; server_no_context_takeover, permessage-deflate", "permessage-deflate; server_no_context_takeover"},
		{"unknown parameter declined", DeflateNegotiator{}, "permessage-deflate; foo=1, permessage-deflate; client_no_context_takeover", "permessage-deflate; client_no_context_takeover"},
		{"invalid window bits declined", DeflateNegotiator{}, "permessage-deflate; client_max_window_bits=7", ""},
		{"repeated parameter declined", DeflateNegotiator{}, "permessage-deflate; server_no_context_takeover; server_no_context_takeover", ""},
		{"other extensions ignored", DeflateNegotiator{}, "x-webkit-deflate-frame, permessage-deflate", "permessage-deflate"},
		{"server insists on no context takeover", DeflateNegotiator{ServerNoContextTakeover: true}, "permessage-deflate; client_max_window_bits", "permessage-deflate; server_no_context_takeover"},
		{"server asks clients for no context takeover", DeflateNegotiator{ClientNoContextTakeover: true}, "permessage-deflate", "permessage-deflate; client_no_context_takeover"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, r, got, _ := handshake(t, tc.neg, Config{}, tc.offer)
			if params(got) != tc.want {
				t.Fatalf("offer %q: response %q, want %q", tc.offer, got, tc.want)
			}
			// The connection works either way, compressed or not.
			d := deflateClient{outTakeover: true, inTakeover: !strings.Contains(got, "server_no_context_takeover")}
			msg := []byte(strings.Repeat(`{"sensor":"room.temperature","value":21.5}`, 10))
			f := frame{op: ws.OpText, fin: true, payload: msg}
			if got != "" {
				f.payload, f.rsv = d.compress(t, msg), 4
			}
			send(t, c, f)
			h, p := recv(t, r)
			if got != "" {
				if h.Rsv != 4 {
					t.Fatalf("the echo is not compressed (rsv %d)", h.Rsv)
				}
				p = d.inflate(t, p)
			} else if h.Rsv != 0 {
				t.Fatalf("rsv %d without compression negotiated", h.Rsv)
			}
			if !bytes.Equal(p, msg) {
				t.Fatalf("echo %s", short(p))
			}
		})
	}
}

// Sections 12 and 13: compressed messages of many sizes, whole and
// fragmented, text and binary, compressible and not, round-trip under each
// combination of context takeover.
func TestAutobahnCompression(t *testing.T) {
	offers := []struct {
		offer                    string
		clientTakeover, srvTakes bool
	}{
		{"permessage-deflate; client_max_window_bits", true, true},
		{"permessage-deflate; server_no_context_takeover", true, false},
		{"permessage-deflate; client_no_context_takeover", false, true},
		{"permessage-deflate; client_no_context_takeover; server_no_context_takeover", false, false},
		{"permessage-deflate; server_max_window_bits=15; client_max_window_bits=9", true, true},
	}
	sizes := []int{0, 1, 16, 64, 125, 126, 256, 1024, 4096, 8192, 16384, 32768, 65535, 65536, 131072}
	rnd := rand.New(rand.NewPCG(12, 13))
	words := strings.Fields("relay pump valve door heater sensor room temperature humidity 21.37 °C on off κόσμε 日本 🚰")
	text := func(n int) []byte {
		var b []byte
		for len(b) < n {
			b = append(b, words[rnd.IntN(len(words))]...)
			b = append(b, ' ')
		}
		b = b[:n]
		for !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
		for len(b) < n {
			b = append(b, '.')
		}
		return b
	}
	noise := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	for _, o := range offers {
		t.Run(o.offer, func(t *testing.T) {
			c, r, got, _ := handshake(t, DeflateNegotiator{MinSize: -1}, Config{MaxMessageBytes: 1 << 20}, o.offer)
			if got == "" {
				t.Fatal("compression declined")
			}
			d := deflateClient{outTakeover: o.clientTakeover, inTakeover: o.srvTakes}
			for _, n := range sizes {
				for _, fragSize := range []int{0, 256, 4096} { // 0: unfragmented
					for rep := range 3 { // repeated: context takeover pays
						op, p := ws.OpText, text(n)
						if rep == 2 {
							op, p = ws.OpBinary, noise(n)
						}
						z := d.compress(t, p)
						var fs []frame
						if fragSize == 0 || len(z) <= fragSize {
							fs = []frame{{op: op, fin: true, rsv: 4, payload: z}}
						} else {
							for off := 0; off < len(z); off += fragSize {
								f := frame{op: ws.OpContinuation, fin: off+fragSize >= len(z), payload: z[off:min(off+fragSize, len(z))]}
								if off == 0 {
									f.op, f.rsv = op, 4
								}
								fs = append(fs, f)
								if off == 0 {
									fs = append(fs, pingF("between")) // control frames between compressed fragments
								}
							}
						}
						writeAsync(t, c, frameBytes(fs), 0)
						h, e := recv(t, r)
						if h.OpCode == ws.OpPong {
							h, e = recv(t, r)
						}
						if h.OpCode != op || h.Rsv != 4 || !h.Fin {
							t.Fatalf("size %d: echo %v rsv %d fin %v", n, h.OpCode, h.Rsv, h.Fin)
						}
						if out := d.inflate(t, e); !bytes.Equal(out, p) {
							t.Fatalf("size %d frag %d: echo differs: %s", n, fragSize, short(out))
						}
					}
				}
			}
			send(t, c, closeF(1000, ""))
			wantCloseThenEOF(t, r, 1000)
		})
	}
}

// Messages under MinSize go out uncompressed, and an uncompressed message
// from the client is fine where compression was negotiated.
func TestDeflateMinSizeAndPlainMessages(t *testing.T) {
	c, r, _, _ := handshake(t, DeflateNegotiator{}, Config{}, "permessage-deflate")
	send(t, c, txt("short", true))
	if h, p := recv(t, r); h.Rsv != 0 || string(p) != "short" {
		t.Fatalf("short message: rsv %d %q", h.Rsv, p)
	}
	long := repeatS(DefaultDeflateMinSize)
	send(t, c, txt(long, true))
	d := deflateClient{inTakeover: true}
	if h, p := recv(t, r); h.Rsv != 4 || string(d.inflate(t, p)) != long {
		t.Fatalf("long message: rsv %d", h.Rsv)
	}
}

// Violations specific to permessage-deflate, and the bound on the inflated
// size.
func TestDeflateViolations(t *testing.T) {
	var d deflateClient
	ok := d.compress(t, []byte("Hello, world! Hello, world!"))
	bomb := d.compress(t, make([]byte, 20<<20)) // 20 MiB of zeros: ~20 KB
	var finalBlock bytes.Buffer                 // a stream ended with BFINAL, as section 7.2.3.4 allows
	fw, _ := flate.NewWriter(&finalBlock, 5)
	fw.Write([]byte("Hello, final block"))
	fw.Close()
	cases := []struct {
		name   string
		frames []frame
		code   ws.StatusCode
		want   string // echoed text when code is 0
	}{
		{"RSV1 on a continuation", []frame{{op: ws.OpText, fin: false, rsv: 4, payload: ok[:3]}, {op: ws.OpContinuation, fin: true, rsv: 4, payload: ok[3:]}}, ws.StatusProtocolError, ""},
		{"RSV1 on a ping", []frame{{op: ws.OpPing, fin: true, rsv: 4}}, ws.StatusProtocolError, ""},
		{"RSV1 on a close", []frame{{op: ws.OpClose, fin: true, rsv: 4, payload: closeBody(1000, "")}}, ws.StatusProtocolError, ""},
		{"RSV1 on an uncompressed continuation", []frame{txt("abc", false), {op: ws.OpContinuation, fin: true, rsv: 4, payload: []byte("def")}}, ws.StatusProtocolError, ""},
		{"RSV2 with RSV1", []frame{{op: ws.OpText, fin: true, rsv: 6, payload: ok}}, ws.StatusProtocolError, ""},
		{"zip bomb", []frame{{op: ws.OpBinary, fin: true, rsv: 4, payload: bomb}}, ws.StatusMessageTooBig, ""},
		{"zip bomb in fragments", []frame{{op: ws.OpBinary, rsv: 4, payload: bomb[:100]}, cont(string(bomb[100:]), true)}, ws.StatusMessageTooBig, ""},
		{"compressed invalid UTF-8", []frame{{op: ws.OpText, fin: true, rsv: 4, payload: d.compress(t, []byte("ok \xed\xa0\x80"))}}, ws.StatusInvalidFramePayloadData, ""},
		{"corrupt deflate data", []frame{{op: ws.OpText, fin: true, rsv: 4, payload: []byte{0xff, 0xff, 0xff, 0xff}}}, ws.StatusInvalidFramePayloadData, ""},
		{"data after a final block", []frame{{op: ws.OpText, fin: true, rsv: 4, payload: append(finalBlock.Bytes(), "junk"...)}}, ws.StatusInvalidFramePayloadData, ""},
		{"a final block is accepted", []frame{{op: ws.OpText, fin: true, rsv: 4, payload: finalBlock.Bytes()}}, 0, "Hello, final block"},
		{"empty compressed message", []frame{{op: ws.OpText, fin: true, rsv: 4}}, 0, ""},
		{"declared length over the wire limit", []frame{{op: ws.OpBinary, fin: true, rsv: 4, length: 1 << 40}}, ws.StatusMessageTooBig, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, r, _, ended := handshake(t, DeflateNegotiator{}, Config{MaxMessageBytes: 1 << 20}, "permessage-deflate; client_no_context_takeover")
			writeAsync(t, c, frameBytes(tc.frames), 0)
			if tc.code == 0 {
				h, p := recv(t, r)
				if h.OpCode != ws.OpText || string(p) != tc.want {
					t.Fatalf("got %v %s", h.OpCode, short(p))
				}
				return
			}
			wantClose(t, r, tc.code)
			c.Close()
			if err := <-ended; err == nil {
				t.Fatal("server read loop ended without error")
			}
		})
	}
	// Without negotiation, RSV1 is a violation like any reserved bit.
	c, r, _, _ := handshake(t, DeflateNegotiator{}, Config{}, "")
	send(t, c, frame{op: ws.OpText, fin: true, rsv: 4, payload: ok})
	wantClose(t, r, ws.StatusProtocolError)
}

// The zip bomb is refused without being inflated into memory: the server's
// buffer stays at the limit.
func TestDeflateBombBounded(t *testing.T) {
	const limit = 64 << 10
	a, b := tcpPair(t)
	srv := New(a, nil, Config{MaxMessageBytes: limit, Deflate: &Deflate{ClientNoContextTakeover: true}})
	var d deflateClient
	bomb := d.compress(t, make([]byte, 50<<20))
	writeAsync(t, b, frameBytes([]frame{{op: ws.OpBinary, fin: true, rsv: 4, payload: bomb}, closeF(1000, "")}), 0)
	go io.Copy(io.Discard, b)
	_, _, err := srv.ReadMessage()
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != ws.StatusMessageTooBig {
		t.Fatalf("got %v, want close 1009", err)
	}
	if c := cap(srv.msg); c > limit+1 {
		t.Fatalf("the server's buffer grew to %d bytes for a limit of %d", c, limit)
	}
}

// Both sides of this package, client and server, talk compressed with each
// context takeover combination, with messages above and below MinSize.
func TestDeflateClientServer(t *testing.T) {
	for _, p := range []Deflate{{}, {ServerNoContextTakeover: true}, {ClientNoContextTakeover: true}, {ServerNoContextTakeover: true, ClientNoContextTakeover: true}} {
		t.Run(fmt.Sprintf("%+v", p), func(t *testing.T) {
			a, b := tcpPair(t)
			srv := New(a, nil, Config{MaxMessageBytes: 1 << 20, Deflate: &p})
			cli := New(b, nil, Config{Client: true, MaxMessageBytes: 1 << 20, Deflate: &p})
			for i := range 200 {
				msg := []byte(fmt.Sprintf(`{"sensor":"room.temperature","value":%d.5,"unit":"°C","seq":%d}`, i, i) + strings.Repeat(" ", i*37%300))
				go cli.WriteMessage(ws.OpText, msg)
				op, got, err := srv.ReadMessage()
				if err != nil || op != ws.OpText || !bytes.Equal(got, msg) {
					t.Fatalf("server read %d: %v %s %v", i, op, short(got), err)
				}
				go srv.WriteMessage(ws.OpBinary, msg)
				op, got, err = cli.ReadMessage()
				if err != nil || op != ws.OpBinary || !bytes.Equal(got, msg) {
					t.Fatalf("client read %d: %v %s %v", i, op, short(got), err)
				}
			}
		})
	}
}

// BenchmarkReadWriteDeflate is BenchmarkReadWrite with permessage-deflate
// and context takeover on both sides, with a message above MinSize.
func BenchmarkReadWriteDeflate(b *testing.B) {
	for _, p := range []Deflate{{}, {ServerNoContextTakeover: true, ClientNoContextTakeover: true}} {
		b.Run(fmt.Sprintf("noTakeover=%v", p.ServerNoContextTakeover), func(b *testing.B) {
			x, y := tcpPair(b)
			srv := New(x, nil, Config{MaxMessageBytes: 65536, IdleTimeout: time.Minute, WriteTimeout: time.Minute, Deflate: &p})
			cli := New(y, nil, Config{Client: true, MaxMessageBytes: 65536, Deflate: &p})
			req := []byte(`{"id":7,"op":"subscribe","sensors":["room.*","door_contact.*"],"max_hz":10,"format":"json"}`)
			reply := []byte(`{"id":7,"ok":true,"sensors":["room.temperature","room.humidity","room.pressure","door_contact.open"]}`)
			benchRoundTrips(b, srv, cli, req, reply)
		})
	}
}
