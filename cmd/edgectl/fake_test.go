package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// fakeSensorGateway is a sensor-stream.v1 server that answers one
// subscribe with a scripted sequence of messages, for the events that the
// real gateway produces only under load (dropped). It serves one connection.
func fakeSensorGateway(t *testing.T, script []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		u := ws.Upgrader{Protocol: func(p []byte) bool { return string(p) == "sensor-stream.v1" }}
		if _, err := u.Upgrade(c); err != nil {
			return
		}
		send := func(s string) { wsutil.WriteServerText(c, []byte(s)) }
		send(`{"event":"hello","gateway":"fake","version":"t","role":"viewer","sensors":[{"name":"room.temperature","unit":"°C","index":0,"interval_ms":1000}]}`)
		msg, err := wsutil.ReadClientText(c)
		if err != nil {
			return
		}
		var req struct {
			ID int    `json:"id"`
			Op string `json:"op"`
		}
		json.Unmarshal(msg, &req)
		if req.Op != "subscribe" {
			return
		}
		send(`{"id":` + itoa(req.ID) + `,"ok":true,"sensors":["room.temperature"]}`)
		for _, s := range script {
			send(s)
		}
		// Wait for the client's close, and answer it.
		for {
			if _, err := wsutil.ReadClientText(c); err != nil {
				return
			}
		}
	}()
	return "ws://" + ln.Addr().String() + "/ws"
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestWatchEvents: dropped and sensor_error events are reported (in the
// stream with --json, on stderr for the table) and do not count as samples.
func TestWatchEvents(t *testing.T) {
	script := []string{
		`{"sensor":"room.temperature","value":21.5,"unit":"°C","ts":1732450000123,"seq":1}`,
		`{"event":"dropped","count":17}`,
		`{"event":"sensor_error","sensor":"room.temperature","message":"i2c: no ACK","ts":1732450001123}`,
		`{"sensor":"room.temperature","value":21.75,"unit":"°C","ts":1732450002123,"seq":19}`,
	}
	t.Run("json", func(t *testing.T) {
		r := edgectl(t, map[string]string{"EDGEGATE_URL": fakeSensorGateway(t, script)}, "watch", "--json", "--count", "2")
		if r.code != 0 {
			t.Fatalf("%v", r)
		}
		if got := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(script, "\n") {
			t.Fatalf("want the samples and events as sent:\n%v", r)
		}
	})
	t.Run("table", func(t *testing.T) {
		r := edgectl(t, map[string]string{"EDGEGATE_URL": fakeSensorGateway(t, script)}, "watch", "--count", "2")
		if r.code != 0 || strings.Count(r.stdout, "room.temperature") != 2 || !strings.Contains(r.stdout, "21.75") {
			t.Fatalf("%v", r)
		}
		mustContain(t, r, "stderr", "dropped 17 samples")
		mustContain(t, r, "stderr", "room.temperature: read failed: i2c: no ACK")
	})
}
