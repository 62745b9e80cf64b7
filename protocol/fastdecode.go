package protocol

// A decoder for the requests that clients send most (list, get, set,
// toggle: string fields and an id), which fills a reused Request without
// allocating. Anything outside that subset (other fields, escapes,
// non-ASCII, null, arrays, numbers other than the id) is left to
// encoding/json, which also writes the error messages; whatever the fast
// path accepts, encoding/json decodes to the same Request
// (FuzzDecodeFastMatchesJSON).

// decodeFast decodes data (already trimmed) into req, which DecodeRequest
// has reset; prevRelay is the relay of the request decoded before into the
// same Request, reused when equal. It returns false, leaving req in any
// state, when data is outside the subset.
func decodeFast(data []byte, req *Request, prevRelay string) bool {
	i := skipWS(data, 1) // data[0] is '{'
	if i < len(data) && data[i] == '}' {
		return i == len(data)-1
	}
	for {
		key, j, ok := scanString(data, i)
		if !ok {
			return false
		}
		i = skipWS(data, j)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipWS(data, i+1)
		if i >= len(data) {
			return false
		}
		if string(key) == "id" {
			end, ok := scanID(data, i)
			if !ok {
				return false
			}
			req.idBuf = append(req.idBuf[:0], data[i:end]...)
			req.ID = req.idBuf
			i = end
		} else {
			val, end, ok := scanString(data, i)
			if !ok {
				return false
			}
			switch string(key) {
			case "op":
				req.Op = internOp(val)
			case "relay":
				if string(val) == prevRelay {
					req.Relay = prevRelay
				} else {
					req.Relay = string(val)
				}
			case "state":
				req.State = intern(val, "on", "off")
			case "format":
				req.Format = intern(val, FormatJSON, FormatBinary)
			default:
				return false
			}
			i = end
		}
		i = skipWS(data, i)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipWS(data, i+1)
		case '}':
			return i == len(data)-1
		default:
			return false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads a string of printable ASCII without escapes starting at
// b[i] (its opening quote): its contents and the index after it.
func scanString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// scanID reads an id (a string as scanString takes it, or a JSON number)
// starting at b[i] and returns the index after it.
func scanID(b []byte, i int) (int, bool) {
	if b[i] == '"' {
		_, end, ok := scanString(b, i)
		return end, ok
	}
	return scanNumber(b, i)
}

// scanNumber reads a JSON number starting at b[i] and returns the index
// after it.
func scanNumber(b []byte, i int) (int, bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		j = digits(b, j)
	default:
		return 0, false
	}
	if j < len(b) && b[j] == '.' {
		k := digits(b, j+1)
		if k == j+1 {
			return 0, false
		}
		j = k
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := digits(b, j)
		if k == j {
			return 0, false
		}
		j = k
	}
	return j, true
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// internOp returns the op as one of the constant strings when it is a
// known op (no allocation), else a copy.
func internOp(b []byte) string {
	switch string(b) {
	case OpList:
		return OpList
	case OpGet:
		return OpGet
	case OpSet:
		return OpSet
	case OpToggle:
		return OpToggle
	case OpPulse:
		return OpPulse
	case OpSubscribe:
		return OpSubscribe
	case OpUnsubscribe:
		return OpUnsubscribe
	}
	return string(b)
}

func intern(b []byte, a, c string) string {
	switch string(b) {
	case a:
		return a
	case c:
		return c
	}
	return string(b)
}
