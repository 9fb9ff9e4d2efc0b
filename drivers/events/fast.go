package events

// A fast path for the payload almost every device sends: one flat object
// whose keys are exactly wireEvent's, with plain ASCII strings and integer
// numbers. encoding/json's reflection cost about 3 µs of the agent's CPU
// per event, as much as inserting the event into SQLite. Anything else
// (escapes, non-ASCII, nested values, null, other keys, another key case,
// malformed input) makes scanObject give up, and encoding/json decides, so
// results and error messages are exactly encoding/json's either way. The
// fuzz test holds the two to the same answer on every input scanObject
// accepts.

// scanObject decodes p into w when p is a flat object it knows fully; ok false means "ask encoding/json" (w is then unspecified).
func scanObject(p []byte, w *wireEvent) (ok bool) {
	s := scanner{p: p}
	s.space()
	if !s.byte('{') {
		return false
	}
	s.space()
	if s.byte('}') {
		return s.end()
	}
	for {
		key, ok := s.str()
		if !ok {
			return false
		}
		s.space()
		if !s.byte(':') {
			return false
		}
		s.space()
		if !s.value(key, w) {
			return false
		}
		s.space()
		if s.byte(',') {
			s.space()
			continue
		}
		if s.byte('}') {
			return s.end()
		}
		return false
	}
}

// scanner walks a payload.
type scanner struct {
	p []byte
	i int
}

// space skips JSON whitespace.
func (s *scanner) space() {
	for s.i < len(s.p) {
		switch s.p[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c if it is next.
func (s *scanner) byte(c byte) bool {
	if s.i < len(s.p) && s.p[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only whitespace remains.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.p)
}

// str consumes a string of printable ASCII without escapes and returns its
// contents (sharing p's memory; callers copy what they keep).
func (s *scanner) str() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.p) {
		c := s.p[s.i]
		switch {
		case c == '"':
			s.i++
			return s.p[start : s.i-1], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false // escapes, control bytes and UTF-8: encoding/json's rules
		}
		s.i++
	}
	return nil, false
}

// integer consumes a JSON integer (no fraction or exponent, no leading
// zero) and returns its text.
func (s *scanner) integer() ([]byte, bool) {
	start := s.i
	s.byte('-')
	digits := s.i
	for s.i < len(s.p) && s.p[s.i] >= '0' && s.p[s.i] <= '9' {
		s.i++
	}
	n := s.i - digits
	if n == 0 || (n > 1 && s.p[digits] == '0') {
		return nil, false
	}
	if s.i < len(s.p) {
		switch s.p[s.i] {
		case '.', 'e', 'E':
			return nil, false // a float: encoding/json keeps it raw, toEvent rejects it
		}
	}
	return s.p[start:s.i], true
}

// value consumes key's value into w.
func (s *scanner) value(key []byte, w *wireEvent) bool {
	var dst *string
	switch string(key) { // no allocation: the compiler matches the bytes
	case "qty":
		v, ok := s.integer()
		w.Qty = v
		return ok
	case "seq":
		v, ok := s.integer()
		w.Seq = v
		return ok
	case "id":
		dst = &w.ID
	case "device":
		dst = &w.Device
	case "type":
		dst = &w.Type
	case "sku":
		dst = &w.SKU
	case "barcode":
		dst = &w.Barcode
	case "location":
		dst = &w.Location
	case "to_location":
		dst = &w.ToLocation
	case "ts":
		dst = &w.TS
	case "channel":
		dst = &w.Channel
	case "voids":
		dst = &w.Voids
	default:
		return false // encoding/json matches keys case-insensitively and skips unknown ones
	}
	v, ok := s.str()
	if ok {
		*dst = string(v)
	}
	return ok
}
