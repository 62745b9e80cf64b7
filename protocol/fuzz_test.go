package protocol

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzDecodeRequest: DecodeRequest never panics; a request it accepts has
// an op and an id that is a JSON number or string (or none); anything else
// is a *RequestError with code bad_request whose id, if any, is valid JSON.
// Decoding into a Request that held an earlier request gives the same
// result as decoding into a fresh one (the reused Sensors slice leaks
// nothing).
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":7,"op":"set","relay":"pump","state":"on"}`,
		`{"id":"abc","op":"pulse","relay":"door","ms":1500}`,
		`{"op":"subscribe","sensors":["room.*","*"],"max_hz":2.5,"format":"binary"}`,
		`{"op":"unsubscribe","sensors":[]}`,
		`{"id":null,"op":"list"}`,
		`{"id":{"x":1},"op":"list"}`,
		`{"id":3,"op":7}`,
		`{"id":-1e3,"op":"get","relay":"pump","unknown":[1,2,{"a":null}]}`,
		`  {"op":"list"}  `,
		`[1,2]`,
		`{"op":"list"`,
		`{"op":"\ud800"}`,
		`{"sensors":"room"}`,
		``,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fresh Request
		err := DecodeRequest(data, &fresh)
		reused := Request{Op: "old", Relay: "old", Sensors: []string{"a", "b", "c", "d"}}
		err2 := DecodeRequest(data, &reused)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("fresh: %v, reused: %v", err, err2)
		}
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Code != CodeBadRequest || re.Message == "" {
				t.Fatalf("error %T %v, want a bad_request RequestError", err, err)
			}
			if re.ID != nil && !validID(re.ID) {
				t.Fatalf("error carries id %q", re.ID)
			}
			return
		}
		if fresh.Op == "" {
			t.Fatal("accepted a request without op")
		}
		if fresh.ID != nil && (!validID(fresh.ID) || !json.Valid(fresh.ID)) {
			t.Fatalf("accepted id %q", fresh.ID)
		}
		if len(fresh.Sensors) == 0 && len(reused.Sensors) == 0 {
			fresh.Sensors, reused.Sensors = nil, nil
		}
		if !reflect.DeepEqual(fresh, reused) {
			t.Fatalf("fresh %+v, reused %+v", fresh, reused)
		}
	})
}

// fuzzDecoded fuzzes check with every message DecodeRequest accepts,
// starting from seeds; check gets the message and its decoded Request.
func fuzzDecoded(f *testing.F, seeds []string, check func(t *testing.T, data []byte, r *Request)) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Request
		if DecodeRequest(data, &r) != nil {
			return
		}
		check(t, data, &r)
	})
}
