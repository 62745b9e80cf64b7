package wsconn

import (
	"bytes"
	"compress/flate"
	"net"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// fuzzConn is a net.Conn whose peer sent exactly the fuzzer's bytes; what
// the connection writes is counted and dropped.
type fuzzConn struct {
	r       *bytes.Reader
	written int
}

func (f *fuzzConn) Read(p []byte) (int, error)       { return f.r.Read(p) }
func (f *fuzzConn) Write(p []byte) (int, error)      { f.written += len(p); return len(p), nil }
func (f *fuzzConn) Close() error                     { return nil }
func (f *fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (f *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (f *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (f *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

const fuzzMax = 4096

// FuzzReadMessage feeds arbitrary bytes to the server side as the client's
// stream. The first byte picks the setup: bit 0 negotiates permessage-deflate,
// bit 1 client_no_context_takeover, bit 2 server_no_context_takeover, bit 3
// echoes every message (so the writer and its compressor run too). Whatever
// the bytes, ReadMessage must not panic or hang, must return messages within
// the limit (text ones valid UTF-8), and must never size its buffer beyond
// the limit, whatever lengths the frames declare or inflate to.
func FuzzReadMessage(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mode := data[0]
		fc := &fuzzConn{r: bytes.NewReader(data[1:])}
		cfg := Config{MaxMessageBytes: fuzzMax}
		if mode&1 != 0 {
			cfg.Deflate = &Deflate{ClientNoContextTakeover: mode&2 != 0, ServerNoContextTakeover: mode&4 != 0}
		}
		c := New(fc, nil, cfg)
		for range 1000 {
			op, p, err := c.ReadMessage()
			if cap(c.msg) > fuzzMax+1 {
				t.Fatalf("message buffer grew to %d bytes (limit %d)", cap(c.msg), fuzzMax)
			}
			if err != nil {
				return
			}
			if len(p) > fuzzMax {
				t.Fatalf("message of %d bytes over the limit", len(p))
			}
			switch op {
			case ws.OpText:
				if !utf8.Valid(p) {
					t.Fatalf("invalid UTF-8 returned: %q", p)
				}
			case ws.OpBinary:
			default:
				t.Fatalf("ReadMessage returned opcode %v", op)
			}
			if mode&8 != 0 {
				if err := c.WriteMessage(op, p); err != nil && err != ErrClosed {
					t.Fatal(err)
				}
			}
		}
	})
}

// fuzzSeeds are client streams that reach every path: plain, fragmented and
// compressed messages, control frames between fragments, violations.
func fuzzSeeds(t testing.TB) [][]byte {
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, 6)
	fw.Write([]byte(`{"op":"subscribe","sensors":["room.*"]} κόσμε`))
	fw.Flush()
	comp := bytes.TrimSuffix(z.Bytes(), []byte{0, 0, 0xff, 0xff})
	z.Reset()
	fw.Reset(&z)
	fw.Write(make([]byte, 1<<20))
	fw.Flush()
	bomb := bytes.TrimSuffix(z.Bytes(), []byte{0, 0, 0xff, 0xff})
	with := func(mode byte, fs ...frame) []byte { return append([]byte{mode}, frameBytes(fs)...) }
	return [][]byte{
		with(0, txt("hello", true), binF([]byte{0, 1, 2}, true), closeF(1000, "bye")),
		with(8, txt("frag", false), pingF("p"), cont("men", false), cont("ted", true)),
		with(0, txt("caf\xc3", false), cont("\xa9", true)),
		with(0, txt("bad \xff", true)),
		with(0, frame{op: ws.OpBinary, fin: true, length: 1 << 62}),
		with(0, frame{op: 3, fin: true}, frame{op: ws.OpPing, payload: []byte("x")}),
		with(0, frame{op: ws.OpClose, fin: true, payload: []byte{3}}),
		with(9, frame{op: ws.OpText, fin: true, rsv: 4, payload: comp}, frame{op: ws.OpText, fin: true, rsv: 4, payload: comp}),
		with(11, frame{op: ws.OpText, rsv: 4, payload: comp[:5]}, pingF("between"), frame{op: ws.OpContinuation, fin: true, payload: comp[5:]}),
		with(13, frame{op: ws.OpBinary, fin: true, rsv: 4, payload: bomb}),
		with(1, frame{op: ws.OpText, fin: true, rsv: 4}, frame{op: ws.OpPing, fin: true, rsv: 4}),
		with(1, frame{op: ws.OpText, fin: true, rsv: 4, payload: []byte{0xff, 0xfe}}),
	}
}
