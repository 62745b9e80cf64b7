package gateway

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/wsconn"
	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
)

func startEchoGateway(t *testing.T, yaml string, echo bool) string {
	t.Helper()
	_, addr, _ := startTestGateway(t, yaml, func(o *Options) { o.EchoEndpoint = echo })
	return addr
}

// dialEcho connects a real client (gobwas/ws's Dialer, then this project's
// connection layer on the client side) to /echo, offering
// permessage-deflate when offer is not nil.
func dialEcho(t *testing.T, addr string, offer *httphead.Option) (*wsconn.Conn, *wsconn.Deflate) {
	t.Helper()
	d := ws.Dialer{Timeout: 5 * time.Second}
	if offer != nil {
		d.Extensions = []httphead.Option{*offer}
	}
	nc, br, hs, err := d.Dial(context.Background(), "ws://"+addr+"/echo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if hs.Protocol != "" {
		t.Fatalf("echo chose a subprotocol: %q", hs.Protocol)
	}
	deflate, err := wsconn.DeflateAccepted(hs.Extensions)
	if err != nil {
		t.Fatal(err)
	}
	// br, when not nil, holds bytes the dialer read past the handshake.
	return wsconn.New(nc, br, wsconn.Config{Client: true, MaxMessageBytes: 32 << 20, IdleTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, Deflate: deflate}), deflate
}

func TestEchoEndpoint(t *testing.T) {
	addr := startEchoGateway(t, "relays:\n  - {name: pump, driver: gpio, pin: GPIO17}\n", true)
	offer := wsconn.DeflateOffer(false)
	noTakeover := wsconn.DeflateOffer(true)
	for _, tc := range []struct {
		name  string
		offer *httphead.Option
	}{{"plain", nil}, {"permessage-deflate", &offer}, {"permessage-deflate without context takeover", &noTakeover}} {
		t.Run(tc.name, func(t *testing.T) {
			c, deflate := dialEcho(t, addr, tc.offer)
			if (deflate != nil) != (tc.offer != nil) {
				t.Fatalf("offer %v, negotiated %+v", tc.offer, deflate)
			}
			msgs := []struct {
				op ws.OpCode
				p  []byte
			}{
				{ws.OpText, []byte("hello")},
				{ws.OpBinary, []byte{0, 1, 2, 0xff}},
				{ws.OpText, []byte("")},
				{ws.OpText, []byte(strings.Repeat(`{"sensor":"room.temperature","value":21.37,"unit":"°C"}`, 500))},
				{ws.OpBinary, bytes.Repeat([]byte{7, 0, 7}, 1<<20)}, // 3 MiB: above the gateway's 64 KiB limit, within /echo's
			}
			for _, m := range msgs {
				go c.WriteMessage(m.op, m.p)
				op, p, err := c.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				if op != m.op || !bytes.Equal(p, m.p) {
					t.Fatalf("sent %v %d bytes, got %v %d bytes", m.op, len(m.p), op, len(p))
				}
			}
			// The layer's rules hold on /echo: invalid UTF-8 closes with 1007.
			go c.WriteMessage(ws.OpText, []byte("bad \xff"))
			_, _, err := c.ReadMessage()
			if ce, ok := err.(*wsconn.CloseError); !ok || ce.Code != ws.StatusInvalidFramePayloadData {
				t.Fatalf("invalid UTF-8: %v", err)
			}
		})
	}
}

// Compression off in the config: offers are declined, echo still works.
func TestEchoWithoutCompression(t *testing.T) {
	addr := startEchoGateway(t, "gateway: {compression: false}\nrelays:\n  - {name: pump, driver: gpio, pin: GPIO17}\n", true)
	offer := wsconn.DeflateOffer(false)
	c, deflate := dialEcho(t, addr, &offer)
	if deflate != nil {
		t.Fatalf("negotiated %+v with compression off", deflate)
	}
	go c.WriteMessage(ws.OpText, []byte(strings.Repeat("abc", 100)))
	if _, p, err := c.ReadMessage(); err != nil || string(p) != strings.Repeat("abc", 100) {
		t.Fatalf("%q %v", p, err)
	}
}

func TestEchoOffByDefault(t *testing.T) {
	addr := startEchoGateway(t, "relays:\n  - {name: pump, driver: gpio, pin: GPIO17}\n", false)
	resp, err := http.Get("http://" + addr + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/echo without the option: %s", resp.Status)
	}
}

// The relay and sensor services negotiate compression too, with the
// gateway's own compressor state dropped after each message.
func TestWSCompressionNegotiated(t *testing.T) {
	addr := startEchoGateway(t, "relays:\n  - {name: pump, driver: gpio, pin: GPIO17}\n", false)
	d := ws.Dialer{Timeout: 5 * time.Second, Protocols: []string{"relay-control.v1"}, Extensions: []httphead.Option{wsconn.DeflateOffer(false)}}
	nc, br, hs, err := d.Dial(context.Background(), "ws://"+addr+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	deflate, err := wsconn.DeflateAccepted(hs.Extensions)
	if err != nil || deflate == nil || !deflate.ServerNoContextTakeover || deflate.ClientNoContextTakeover {
		t.Fatalf("negotiated %+v, %v", deflate, err)
	}
	c := wsconn.New(nc, br, wsconn.Config{Client: true, IdleTimeout: 10 * time.Second, Deflate: deflate})
	op, hello, err := c.ReadMessage()
	if err != nil || op != ws.OpText || !bytes.Contains(hello, []byte(`"event":"hello"`)) {
		t.Fatalf("hello: %v %q %v", op, hello, err)
	}
	go c.WriteMessage(ws.OpText, []byte(`{"id":"a-long-enough-request-id-to-be-compressed","op":"get","relay":"pump"}`))
	if _, reply, err := c.ReadMessage(); err != nil || !bytes.Contains(reply, []byte(`"relay":"pump"`)) {
		t.Fatalf("reply %q %v", reply, err)
	}
}
