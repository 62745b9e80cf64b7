package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gobwas/ws"
)

// wsClient is a minimal WebSocket client for load generation: one
// goroutine reads and writes, buffers are reused, so a steady stream of
// messages costs the client no allocations and its own overhead stays out
// of the server's numbers. It answers pings and joins fragments; it is not
// a general-purpose client (no extensions, no close handshake on errors).
type wsClient struct {
	nc   net.Conn
	br   *bufio.Reader
	hdr  [ws.MaxHeaderSize]byte
	msg  []byte
	wbuf []byte
	mask uint32 // xorshift state for frame masks
}

// dialWS opens a WebSocket connection offering proto and checks that the
// server chose it.
func dialWS(ctx context.Context, url, proto string, readBuf int) (*wsClient, error) {
	return dialWSWith(ctx, nil, url, proto, readBuf)
}

// dialWSWith is dialWS over connections that netDial opens (nil: plain
// TCP), e.g. with a small receive buffer.
func dialWSWith(ctx context.Context, netDial func(ctx context.Context, network, addr string) (net.Conn, error), url, proto string, readBuf int) (*wsClient, error) {
	d := ws.Dialer{Protocols: []string{proto}, Timeout: 10 * time.Second, NetDial: netDial}
	nc, br, hs, err := d.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("dial %s (%s): %w", url, proto, err)
	}
	if hs.Protocol != proto {
		nc.Close()
		return nil, fmt.Errorf("dial %s: server chose subprotocol %q, want %q", url, hs.Protocol, proto)
	}
	if br == nil {
		br = bufio.NewReaderSize(nc, readBuf)
	}
	seed := uint32(time.Now().UnixNano()) | 1
	return &wsClient{nc: nc, br: br, mask: seed}, nil
}

// Close drops the TCP connection.
func (c *wsClient) Close() error { return c.nc.Close() }

// ReadMessage returns the next data message; its payload is valid until
// the next call. Pings are answered, pongs skipped; a close frame ends the
// connection with an error that carries its code.
func (c *wsClient) ReadMessage() (ws.OpCode, []byte, error) {
	c.msg = c.msg[:0]
	var op ws.OpCode
	for {
		h, err := ws.ReadHeaderBuffer(c.br, c.hdr[:2])
		if err != nil {
			return 0, nil, err
		}
		if h.Length > 16<<20 {
			return 0, nil, fmt.Errorf("frame of %d bytes: more than a benchmark expects", h.Length)
		}
		start := len(c.msg)
		if need := start + int(h.Length); need > cap(c.msg) {
			grown := make([]byte, start, need+need/2)
			copy(grown, c.msg)
			c.msg = grown
		}
		c.msg = c.msg[:start+int(h.Length)]
		if _, err := io.ReadFull(c.br, c.msg[start:]); err != nil {
			return 0, nil, err
		}
		if h.Masked {
			ws.Cipher(c.msg[start:], h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpPing:
			p := append([]byte(nil), c.msg[start:]...)
			c.msg = c.msg[:start]
			if err := c.write(ws.OpPong, p); err != nil {
				return 0, nil, err
			}
			continue
		case ws.OpPong:
			c.msg = c.msg[:start]
			continue
		case ws.OpClose:
			code, reason := ws.StatusNoStatusRcvd, ""
			if h.Length >= 2 {
				code, reason = ws.ParseCloseFrameData(c.msg[start:])
			}
			return 0, nil, &closeError{code: code, reason: reason}
		case ws.OpContinuation:
		default:
			op = h.OpCode
		}
		if h.Fin {
			return op, c.msg, nil
		}
	}
}

// closeError is the end of a connection by the server's close frame.
type closeError struct {
	code   ws.StatusCode
	reason string
}

func (e *closeError) Error() string {
	return fmt.Sprintf("server closed the connection: %d %s", e.code, e.reason)
}

// WriteText sends one masked text frame.
func (c *wsClient) WriteText(p []byte) error { return c.write(ws.OpText, p) }

func (c *wsClient) write(op ws.OpCode, p []byte) error {
	// xorshift32: masks need not be secret against a benchmark server.
	c.mask ^= c.mask << 13
	c.mask ^= c.mask >> 17
	c.mask ^= c.mask << 5
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], c.mask)
	need := ws.MaxHeaderSize + len(p)
	if cap(c.wbuf) < need {
		c.wbuf = make([]byte, 0, max(need, 512))
	}
	b := c.wbuf[:ws.MaxHeaderSize]
	b[0] = 0x80 | byte(op)
	n := 2
	switch l := len(p); {
	case l < 126:
		b[1] = byte(l)
	case l <= 0xFFFF:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(l))
		n = 4
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(l))
		n = 10
	}
	b[1] |= 0x80
	n += copy(b[n:], mask[:])
	b = append(b[:n], p...)
	ws.Cipher(b[n:], mask, 0)
	_, err := c.nc.Write(b)
	return err
}
