package wsconn

import (
	"bytes"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/internal/wstest"
	"github.com/gobwas/ws"
)

// WriteMessages puts on the wire exactly the frames that one WriteMessage
// per message would, in order, in one Write when they fit in maxBatch.
func TestWriteMessagesFramesLikeWriteMessage(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), maxBatch/16+100) // over maxBatch
	cases := []struct {
		name       string
		cfg        Config
		msgs       []Message
		wantWrites int
	}{
		{"control then samples", Config{}, []Message{
			{ws.OpText, []byte(`{"id":1,"ok":true}`)},
			{ws.OpText, []byte(`{"event":"state","relay":"r1","state":"on"}`)},
			{ws.OpText, []byte(`{"dropped":3}`)},
			{ws.OpBinary, bytes.Repeat([]byte{7}, 40*32)},
			{ws.OpText, []byte{}},
			{ws.OpText, bytes.Repeat([]byte("x"), 300)},
		}, 1},
		{"deflate with context takeover", Config{Deflate: &Deflate{MinSize: 16}}, []Message{
			{ws.OpText, []byte(`{"id":1,"ok":true,"relay":"pump","state":"on"}`)},
			{ws.OpText, []byte(`short`)},
			{ws.OpText, []byte(`{"id":2,"ok":true,"relay":"pump","state":"off"}`)},
			{ws.OpBinary, bytes.Repeat([]byte("abc"), 1000)},
		}, 1},
		{"deflate without context takeover", Config{Deflate: &Deflate{ServerNoContextTakeover: true, MinSize: -1}}, []Message{
			{ws.OpText, []byte(`{"id":1,"ok":true,"relay":"pump","state":"on"}`)},
			{ws.OpText, []byte(`{"id":2,"ok":true,"relay":"pump","state":"on"}`)},
		}, 1},
		{"a message over maxBatch", Config{}, []Message{
			{ws.OpText, []byte(`before`)},
			{ws.OpBinary, big},
			{ws.OpText, []byte(`after`)},
		}, 3}, // what came before with the big header, the payload, the rest
		{"batch over maxBatch in total", Config{}, []Message{
			{ws.OpBinary, big[:maxBatch-100]},
			{ws.OpBinary, big[:200]},
		}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			one := &wstest.RecordConn{}
			c1 := New(one, nil, tc.cfg)
			for _, m := range tc.msgs {
				if err := c1.WriteMessage(m.Op, m.Data); err != nil {
					t.Fatal(err)
				}
			}
			batch := &wstest.RecordConn{}
			c2 := New(batch, nil, tc.cfg)
			if err := c2.WriteMessages(tc.msgs); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(one.Buf.Bytes(), batch.Buf.Bytes()) {
				t.Fatalf("batch wrote %d bytes unlike %d messages written one by one (%d bytes)", batch.Buf.Len(), len(tc.msgs), one.Buf.Len())
			}
			if batch.Writes != tc.wantWrites {
				t.Fatalf("batch took %d writes, want %d", batch.Writes, tc.wantWrites)
			}
		})
	}
}

// A client's batch is masked frame by frame and reads back on a server.
func TestWriteMessagesClientToServer(t *testing.T) {
	x, y := tcpPair(t)
	srv := New(x, nil, Config{MaxMessageBytes: 1 << 20})
	cli := New(y, nil, Config{Client: true})
	big := bytes.Repeat([]byte("m"), maxBatch+3*smallWrite+7)
	msgs := []Message{{ws.OpText, []byte("one")}, {ws.OpBinary, big}, {ws.OpText, []byte("three")}}
	errc := make(chan error, 1)
	go func() { errc <- cli.WriteMessages(msgs) }()
	for i, m := range msgs {
		op, p, err := srv.ReadMessage()
		if err != nil || op != m.Op || !bytes.Equal(p, m.Data) {
			t.Fatalf("message %d: %v %d bytes %v", i, op, len(p), err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// After the closing handshake began, a batch is refused whole.
func TestWriteMessagesAfterClose(t *testing.T) {
	rc := &wstest.RecordConn{}
	c := New(rc, nil, Config{Client: true}) // a client: no CloseWrite needed
	c.Close(ws.StatusNormalClosure, "")
	n := rc.Buf.Len()
	if err := c.WriteMessages([]Message{{ws.OpText, []byte("late")}}); err != ErrClosed {
		t.Fatalf("got %v, want ErrClosed", err)
	}
	if rc.Buf.Len() != n {
		t.Fatal("bytes written after the close frame")
	}
}

// BenchmarkWriteMessages is a flush of 4 control messages and a binary
// batch: no allocations in the steady state.
func BenchmarkWriteMessages(b *testing.B) {
	x, y := tcpPair(b)
	srv := New(x, nil, Config{WriteTimeout: time.Minute})
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := y.Read(buf); err != nil {
				return
			}
		}
	}()
	msgs := []Message{
		{ws.OpText, []byte(`{"id":7,"ok":true,"relay":"pump","state":"on"}`)},
		{ws.OpText, []byte(`{"event":"state","relay":"pump","state":"on","source":"client","ts":1}`)},
		{ws.OpText, []byte(`{"event":"state","relay":"fan","state":"off","source":"client","ts":2}`)},
		{ws.OpText, []byte(`{"dropped":3}`)},
		{ws.OpBinary, make([]byte, 8*32)},
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := srv.WriteMessages(msgs); err != nil {
			b.Fatal(err)
		}
	}
}
