package mockpush

import (
	"strings"
	"unsafe"
)

// This file holds the fast path of FCM body parsing: a scanner for the common shape of a
// messages:send body (plain ASCII keys and strings, each known field once) that decides
// only bodies it fully understands and would accept. Anything else (escapes, non-ASCII
// strings, null or mistyped known fields, keys that differ from a known field only in
// case, repeated fields, deep nesting, any rejection) is left to parseFCMSendJSON, the
// encoding/json reference, so both always give the same answer (FuzzFCMScanAgrees).

// fcmScanMaxDepth bounds the nesting the scanner follows inside skipped values; deeper
// bodies go to the reference decoder.
const fcmScanMaxDepth = 32

// fcmScanMaxData bounds the data entries the scanner checks for repeated keys; bodies with
// more go to the reference decoder.
const fcmScanMaxData = 32

// fcmScan is the state of one fast parse.
type fcmScan struct {
	b    []byte
	i    int
	fail bool
}

// fcmScanned is what the fast parse read, before the checks parseFCMSend applies.
type fcmScanned struct {
	fcmMessage
	tokenAt    int // where the token's characters start in the body
	hasMessage bool
	size       int // data keys and values plus notification bytes
	campaignID string
	hasCampID  bool
}

// parseFCMSendFast parses body and reports ok only when it is certain that the reference
// decoder would accept it with the same message.
func parseFCMSendFast(body []byte) (fcmMessage, bool) {
	m, _, ok := scanFCMSend(body)
	return m, ok
}

// scanFCMSend is parseFCMSendFast that also returns where the token's characters start in
// body (when the message has a token).
func scanFCMSend(body []byte) (fcmMessage, int, bool) {
	s := fcmScan{b: body}
	var out fcmScanned
	s.ws()
	s.topObject(&out)
	s.ws()
	if s.fail || s.i != len(s.b) || !out.hasMessage {
		return fcmMessage{}, 0, false
	}
	m := out.fcmMessage
	targets := 0
	for _, t := range [...]string{m.token, m.topic, m.condition} {
		if t != "" {
			targets++
		}
	}
	if targets != 1 || out.size > fcmMaxPayload || m.token != "" && !validFCMToken(m.token) {
		return fcmMessage{}, 0, false
	}
	if m.campaign == "" && out.hasCampID {
		m.campaign = out.campaignID
	}
	return m, out.tokenAt, true
}

// ws skips JSON whitespace.
func (s *fcmScan) ws() {
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c after whitespace, or fails.
func (s *fcmScan) byte(c byte) bool {
	s.ws()
	if s.fail || s.i >= len(s.b) || s.b[s.i] != c {
		s.fail = true
		return false
	}
	s.i++
	return true
}

// object runs field for each member of an object (after whitespace); field reads the value.
func (s *fcmScan) object(field func(key string)) {
	if !s.byte('{') {
		return
	}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return
	}
	for !s.fail {
		s.ws()
		key, ok := s.plainString()
		if !ok || !s.byte(':') {
			s.fail = true
			return
		}
		s.ws()
		field(key)
		s.ws()
		if s.fail || s.i >= len(s.b) {
			s.fail = true
			return
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return
		default:
			s.fail = true
			return
		}
	}
}

// plainString reads a string of printable ASCII without escapes and returns its content,
// which aliases the body: it is valid while the body is (one request).
func (s *fcmScan) plainString() (string, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", false
	}
	start := s.i + 1
	j := start
	for j < len(s.b) && plainByte(s.b[j]) {
		j++
	}
	if j >= len(s.b) || s.b[j] != '"' {
		return "", false
	}
	s.i = j + 1
	return unsafe.String(unsafe.SliceData(s.b[start:j]), j-start), true
}

// plainByte reports whether c may appear in a plain string: printable ASCII but '"' and
// '\\'.
func plainByte(c byte) bool {
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'
}

// stringField reads a plain string value into dst.
func (s *fcmScan) stringField(dst *string) {
	v, ok := s.plainString()
	if !ok {
		s.fail = true
		return
	}
	*dst = v
}

// once marks bit in seen and fails when it was already set (repeated fields merge in the
// reference decoder).
func (s *fcmScan) once(seen *uint8, bit uint8) {
	if *seen&bit != 0 {
		s.fail = true
	}
	*seen |= bit
}

// unknown skips the value of a key the reference decoder ignores; a key that matches a
// known field only when case is ignored goes to the reference decoder.
func (s *fcmScan) unknown(key string, known ...string) {
	for _, k := range known {
		if strings.EqualFold(key, k) {
			s.fail = true
			return
		}
	}
	s.skip(0)
}

func (s *fcmScan) topObject(out *fcmScanned) {
	var seen uint8
	s.object(func(key string) {
		switch key {
		case "validate_only":
			s.once(&seen, 1)
			if s.i < len(s.b) && s.b[s.i] == 't' {
				out.validateOnly = true
				s.literal("true")
			} else {
				s.literal("false")
			}
		case "message":
			s.once(&seen, 2)
			out.hasMessage = true
			s.message(out)
		default:
			s.unknown(key, "validate_only", "message")
		}
	})
}

func (s *fcmScan) message(out *fcmScanned) {
	var seen uint8
	s.object(func(key string) {
		switch key {
		case "token":
			s.once(&seen, 1)
			out.tokenAt = s.i + 1
			s.stringField(&out.token)
		case "topic":
			s.once(&seen, 2)
			s.stringField(&out.topic)
		case "condition":
			s.once(&seen, 4)
			s.stringField(&out.condition)
		case "data":
			s.once(&seen, 8)
			s.data(out, true)
		case "notification":
			s.once(&seen, 16)
			s.notification(out)
		case "android":
			s.once(&seen, 32)
			s.android(out)
		default:
			s.unknown(key, "token", "topic", "condition", "data", "notification", "android")
		}
	})
}

func (s *fcmScan) android(out *fcmScanned) {
	var seen uint8
	s.object(func(key string) {
		switch key {
		case "collapse_key":
			s.once(&seen, 1)
			s.stringField(&out.campaign)
		case "data":
			s.once(&seen, 2)
			s.data(out, false)
		case "notification":
			s.once(&seen, 4)
			s.notification(out)
		default:
			s.unknown(key, "collapse_key", "data", "notification")
		}
	})
}

// notification counts the raw bytes of any JSON value, as the reference's RawMessage does;
// null goes to the reference decoder.
func (s *fcmScan) notification(out *fcmScanned) {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == 'n' {
		s.fail = true
		return
	}
	s.skip(0)
	out.size += s.i - start
}

// data reads an object of plain strings, counting keys and values; message-level data also
// yields campaign_id.
func (s *fcmScan) data(out *fcmScanned, top bool) {
	var keys [fcmScanMaxData]string
	n := 0
	s.object(func(key string) {
		v, ok := s.plainString()
		if !ok || n == len(keys) {
			s.fail = true
			return
		}
		for _, k := range keys[:n] {
			if k == key {
				s.fail = true
				return
			}
		}
		keys[n] = key
		n++
		out.size += len(key) + len(v)
		if top && key == "campaign_id" {
			out.campaignID, out.hasCampID = v, true
		}
	})
}

// skip passes over one JSON value, checking its syntax; strings with escapes fail (to the
// reference decoder), other bytes of 0x20 and above are allowed in strings, as in JSON.
func (s *fcmScan) skip(depth int) {
	if depth > fcmScanMaxDepth || s.i >= len(s.b) {
		s.fail = true
		return
	}
	switch c := s.b[s.i]; {
	case c == '"':
		for j := s.i + 1; j < len(s.b); j++ {
			switch c := s.b[j]; {
			case c == '"':
				s.i = j + 1
				return
			case c < 0x20 || c == '\\':
				s.fail = true
				return
			}
		}
		s.fail = true
	case c == '{':
		s.object(func(string) { s.skip(depth + 1) })
	case c == '[':
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return
		}
		for !s.fail {
			s.ws()
			s.skip(depth + 1)
			s.ws()
			if s.fail || s.i >= len(s.b) {
				s.fail = true
				return
			}
			switch s.b[s.i] {
			case ',':
				s.i++
			case ']':
				s.i++
				return
			default:
				s.fail = true
			}
		}
	case c == 't':
		s.literal("true")
	case c == 'f':
		s.literal("false")
	case c == 'n':
		s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		s.number()
	default:
		s.fail = true
	}
}

func (s *fcmScan) literal(lit string) {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		s.fail = true
		return
	}
	s.i += len(lit)
}

// number passes over a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *fcmScan) number() {
	b := s.b
	digits := func() int {
		n := 0
		for s.i < len(b) && '0' <= b[s.i] && b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(b) && b[s.i] == '0':
		s.i++
	case digits() == 0:
		s.fail = true
		return
	}
	if s.i < len(b) && b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			s.fail = true
			return
		}
	}
	if s.i < len(b) && (b[s.i] == 'e' || b[s.i] == 'E') {
		s.i++
		if s.i < len(b) && (b[s.i] == '+' || b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			s.fail = true
		}
	}
}
