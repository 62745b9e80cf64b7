package firmwaresim

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"
)

// The slaves are checked against frames written out by hand from the
// specification, not against the gateway's driver.

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestModbusRTUFrames(t *testing.T) {
	d, err := NewModbusRTU("bus", "ttyUSB0", []int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p, err := serial.Open(d.Path(), &serial.Mode{BaudRate: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetReadTimeout(300 * time.Millisecond)
	ask := func(req string) []byte {
		t.Helper()
		if _, err := p.Write(unhex(t, req)); err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, 64)
		for {
			n, _ := p.Read(buf)
			if n == 0 {
				return got
			}
			got = append(got, buf[:n]...)
		}
	}
	want := func(req, resp string) {
		t.Helper()
		if got := ask(req); !bytes.Equal(got, unhex(t, resp)) {
			t.Fatalf("request %s: got % x, want %s", req, got, resp)
		}
	}
	// read holding register 0 of unit 1: 0
	want("01 03 0000 0001 840a", "01 03 02 0000 b844")
	// write coil 0 of unit 1 on: echoed; read it back
	want("01 05 0000 ff00 8c3a", "01 05 0000 ff00 8c3a")
	if !d.Unit(1).Coil(0) || d.Unit(2).Coil(0) {
		t.Fatal("coil 0 of unit 1 not on, or unit 2 changed")
	}
	want("01 01 0000 0001 fdca", "01 01 01 01 9048")
	// a bad CRC, and a unit nobody has, get no answer
	want("01 03 0000 0001 840b", "")
	want("07 03 0000 0001 846c", "")
	// faults: exception 2 (illegal data address), silence
	d.Unit(1).SetFault("exception", 2)
	want("01 03 0000 0001 840a", "01 83 02 c0f1")
	d.Unit(1).SetFault("silent", 0)
	want("01 03 0000 0001 840a", "")
	d.Unit(1).SetFault("crc", 0)
	if got := ask("01 03 0000 0001 840a"); len(got) != 7 || binary.LittleEndian.Uint16(got[5:]) == rtuCRC(got[:5]) {
		t.Fatalf("crc fault: % x", got)
	}
	d.Unit(1).SetFault("none", 0)
	// an address past the table: exception 2
	want("01 04 0400 0001 "+crcHex(unhex(t, "01 04 0400 0001")), "01 84 02 c2c1")
}

func crcHex(b []byte) string {
	return hex.EncodeToString(binary.LittleEndian.AppendUint16(nil, rtuCRC(b)))
}

func TestModbusTCPFrames(t *testing.T) {
	d, err := NewModbusTCP("plc", []int{1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.Unit(1).SetInput(1, 215)
	c, err := net.Dial("tcp", d.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// transaction 7, protocol 0, length 6, unit 1, read input register 1
	c.Write(unhex(t, "0007 0000 0006 01 04 0001 0001"))
	got := make([]byte, 11)
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, unhex(t, "0007 0000 0005 01 04 02 00d7")) {
		t.Fatalf("got % x, %v", got, err)
	}
}

func TestModbusControl(t *testing.T) {
	hw := NewHardware(nil)
	defer hw.Close()
	if err := hw.Populate(Devices{Modbus: []ModbusBus{{Kind: KindModbusTCP, Name: "plc", Address: "10.0.0.1:502", Units: []int{3}}}}); err != nil {
		t.Fatal(err)
	}
	if a, ok := hw.ModbusTCPAddress("10.0.0.1:502"); !ok || !strings.HasPrefix(a, "127.0.0.1:") {
		t.Fatalf("address %q", a)
	}
	srv := httptest.NewServer(Handler(hw))
	defer srv.Close()
	for q, code := range map[string]int{
		"/sim/modbus/plc/3?input=1&value=215":      200,
		"/sim/modbus/plc/3?holding=2&value=65535":  200,
		"/sim/modbus/plc/3?input=1&value=65536":    400,
		"/sim/modbus/plc/3?fault=exception&code=2": 200,
		"/sim/modbus/plc/3?fault=exception":        400,
		"/sim/modbus/plc/3?fault=melt":             400,
		"/sim/modbus/plc/4?fault=none":             404,
		"/sim/modbus/nope/3?fault=none":            404,
		"/sim/modbus/plc/3":                        400,
		"/sim/modbus/plc/3?input=2000&value=1":     400,
	} {
		resp, err := http.Post(srv.URL+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("%s: %d, want %d", q, resp.StatusCode, code)
		}
	}
	resp, err := http.Get(srv.URL + "/sim/modbus")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if s := string(body); !strings.Contains(s, `"input":{"1":215}`) || !strings.Contains(s, `"holding":{"2":65535}`) || !strings.Contains(s, `"fault":"exception","code":2`) {
		t.Fatalf("GET /sim/modbus: %s", s)
	}
}

func TestW1TreeAndADS1115(t *testing.T) {
	w, err := NewW1Tree()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	id := "28-0316a2795eff"
	w.Add(id)
	w.Set(id, 21.5)
	b, _ := os.ReadFile(w.Root() + "/" + id + "/w1_slave")
	// 21.5 °C = 0x0158 sixteenths; the scratchpad's 9th byte is its CRC
	if !strings.HasPrefix(string(b), "58 01 4b 46 7f ff 0c 10 ") || !strings.Contains(string(b), " YES\n") || !strings.HasSuffix(string(b), " t=21500\n") {
		t.Fatalf("w1_slave %q", b)
	}
	pad := unhex(t, string(b[:26]))
	if dallasCRC(pad[:8]) != pad[8] || dallasCRC(pad) != 0 {
		t.Fatalf("CRC of % x", pad)
	}
	w.SetFault(id, "missing")
	if _, err := os.Stat(w.Root() + "/" + id); !os.IsNotExist(err) {
		t.Fatal("missing probe still listed")
	}

	a := NewADS1115()
	a.SetInput(2, 1.0)
	// config: OS=1, MUX=110 (AIN2), PGA=010 (2.048 V), single shot, 128 SPS
	if err := a.Tx([]byte{1, 0xe5, 0x83}, nil); err != nil {
		t.Fatal(err)
	}
	r := make([]byte, 2)
	a.Tx([]byte{0}, r)
	if v := int16(binary.BigEndian.Uint16(r)); v != 16000 {
		t.Fatalf("1.0 V at 2.048 V full scale: %d, want 16000", v)
	}
	a.Tx([]byte{1}, r)
	if r[0]&0x80 == 0 {
		t.Fatalf("OS bit not set after the conversion: % x", r)
	}
}
