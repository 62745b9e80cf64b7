package protocol

import (
	"encoding/json"
	"reflect"
	"testing"
)

var fastSeeds = []string{
	`{"id":7,"op":"set","relay":"pump","state":"on"}`,
	`{"id":"abc","op":"get","relay":"door"}`,
	`{"op":"list"}`,
	`{ "id" : -0.5e+3 , "op" : "toggle" , "relay" : "r1" }`,
	`{"op":"subscribe","format":"binary"}`,
	`{"id":1,"id":"two","op":"set","op":"get"}`,
	`{}`,
	`{"id":01,"op":"list"}`,
	`{"id":1.,"op":"list"}`,
	`{"id":1e,"op":"list"}`,
	`{"ID":1,"op":"list"}`,
	`{"op":"caf\u00e9"}`,
	`{"op":"list",}`,
	`{"op":"list"}x`,
	`{"op":"list" "relay":"a"}`,
	`{"id":null,"op":"list"}`,
	`{"op":"pulse","relay":"door","ms":1500}`,
}

// FuzzDecodeFastMatchesJSON: whatever the fast path accepts, encoding/json
// accepts too and decodes to the same Request, also into a Request reused
// from an earlier decode.
func FuzzDecodeFastMatchesJSON(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || data[0] != '{' {
			return
		}
		var fast Request
		if !decodeFast(data, &fast, "") {
			return
		}
		var slow Request
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", data, err)
		}
		slow.idBuf = fast.idBuf
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", data, fast, slow)
		}
		reused := Request{Relay: fast.Relay, idBuf: make([]byte, 0, 64)}
		if !decodeFast(data, &reused, reused.Relay) || reused.Relay != fast.Relay || string(reused.ID) != string(fast.ID) || reused.Op != fast.Op {
			t.Fatalf("%q: reused %+v, fresh %+v", data, reused, fast)
		}
	})
}

// The fast path takes the common requests and leaves the rest.
func TestDecodeFastSubset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		fast bool
	}{
		{`{"id":7,"op":"set","relay":"pump","state":"on"}`, true},
		{`{"id":"abc","op":"get","relay":"door"}`, true},
		{`{ "id" : -0.5e+3 , "op" : "toggle" , "relay" : "r1" }`, true},
		{`{}`, true},
		{`{"id":01,"op":"list"}`, false}, // invalid JSON: encoding/json says why
		{`{"ID":1,"op":"list"}`, false},  // case-insensitive keys
		{`{"id":null,"op":"list"}`, false},
		{`{"op":"pulse","relay":"door","ms":1500}`, false},
		{`{"op":"caf\u00e9"}`, false},
		{`{"op":"list",}`, false},
		{`{"op":"list"}x`, false},
	} {
		var r Request
		if got := decodeFast([]byte(tc.in), &r, ""); got != tc.fast {
			t.Errorf("decodeFast(%s) = %v, want %v", tc.in, got, tc.fast)
		}
	}
}

// BenchmarkDecodeRequest decodes a set request into a reused Request: no
// allocations in the steady state.
func BenchmarkDecodeRequest(b *testing.B) {
	reqs := [][]byte{
		[]byte(`{"id":7,"op":"set","relay":"pump","state":"on"}`),
		[]byte(`{"id":8,"op":"set","relay":"pump","state":"off"}`),
	}
	var r Request
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := DecodeRequest(reqs[i&1], &r); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
