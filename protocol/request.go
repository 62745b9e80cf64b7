package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Request is one decoded client request. Fields that an op does not use are
// ignored, as are unknown fields.
type Request struct {
	// ID is the raw JSON of the request's id (a number or a string), echoed
	// verbatim in the reply; nil when the request had none. It may use
	// storage of the Request that the next decode into it reuses.
	ID json.RawMessage `json:"id"`
	Op string          `json:"op"`

	// relay-control.v1
	Relay string          `json:"relay"`
	State string          `json:"state"`
	MS    json.RawMessage `json:"ms"`
	// Automation is the name enable and disable take.
	Automation string `json:"automation"`

	// sensor-stream.v1
	Sensors []string        `json:"sensors"`
	MaxHz   json.RawMessage `json:"max_hz"`
	Format  string          `json:"format"`

	// edge-uplink.v1: the seq of an ack (AckSeq).
	Seq json.RawMessage `json:"seq"`

	idBuf []byte // storage for ID reused from one decode to the next (fastdecode.go)
}

// RequestError is a request that cannot be carried out as sent. ID is the
// request's id when it could be read, so that the error reply echoes it.
type RequestError struct {
	ID      json.RawMessage
	Code    string
	Message string
}

func (e *RequestError) Error() string { return e.Code + ": " + e.Message }

// DecodeRequest parses one request message. Any problem with the message
// itself is a *RequestError with code bad_request.
func DecodeRequest(data []byte, req *Request) error {
	prevRelay := req.Relay
	*req = Request{Sensors: req.Sensors[:0], idBuf: req.idBuf}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return &RequestError{Code: CodeBadRequest, Message: "a request is a JSON object, like {\"op\":\"list\"}"}
	}
	// The common requests decode without allocating; the rest (and every
	// malformed one) through encoding/json.
	if !decodeFast(trimmed, req, prevRelay) {
		*req = Request{Sensors: req.Sensors[:0], idBuf: req.idBuf}
		if err := json.Unmarshal(trimmed, req); err != nil {
			e := &RequestError{Code: CodeBadRequest, Message: "invalid JSON: " + jsonProblem(err)}
			// Recover the id when the rest is only mistyped, so the reply can echo it.
			var idOnly struct {
				ID json.RawMessage `json:"id"`
			}
			if json.Unmarshal(trimmed, &idOnly) == nil && validID(idOnly.ID) {
				e.ID = idOnly.ID
			}
			req.ID = e.ID
			return e
		}
	}
	if req.ID != nil && !validID(req.ID) {
		req.ID = nil // not echoed, by this error or by whoever reads req next
		return &RequestError{Code: CodeBadRequest, Message: fmt.Sprintf("id must be a number or a string of at most %d bytes", MaxIDBytes)}
	}
	if req.Op == "" {
		return &RequestError{ID: req.ID, Code: CodeBadRequest, Message: "missing \"op\""}
	}
	return nil
}

// MaxIDBytes bounds a request's id: a string of at most this many bytes
// (once decoded), or a number written in at most this many. Every reply
// echoes the id, so an unbounded one would let a client make the gateway
// queue as much as it sends, once per request.
const MaxIDBytes = 128

func validID(id json.RawMessage) bool {
	if len(id) == 0 {
		return false
	}
	switch c := id[0]; {
	case c == '"':
		if len(id)-2 <= MaxIDBytes {
			return true // escapes only make the raw form longer
		}
		if bytes.IndexByte(id, '\\') < 0 {
			return false
		}
		var s string
		return json.Unmarshal(id, &s) == nil && len(s) <= MaxIDBytes
	case c == '-' || (c >= '0' && c <= '9'):
		return len(id) <= MaxIDBytes
	}
	return false
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("field %q must not be a JSON %s", te.Field, te.Value)
	}
	return err.Error()
}

// PulseMS returns the request's "ms" as a whole number of milliseconds.
func (r *Request) PulseMS() (int64, error) {
	if len(r.MS) == 0 || string(r.MS) == "null" {
		return 0, errors.New("missing \"ms\" (pulse length in milliseconds)")
	}
	v, err := strconv.ParseInt(string(r.MS), 10, 64)
	if err != nil {
		return 0, errors.New("\"ms\" must be a whole number of milliseconds")
	}
	return v, nil
}

// ParseState reads "on"/"off".
func ParseState(s string) (on bool, ok bool) {
	switch s {
	case "on":
		return true, true
	case "off":
		return false, true
	}
	return false, false
}
