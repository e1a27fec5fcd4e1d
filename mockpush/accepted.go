package mockpush

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrNotKept is returned by Server.Accepted (and answered 409 by GET /accepted) when the
// server was started without Config.KeepAccepted.
var ErrNotKept = errors.New("mockpush: accepted pushes are not kept (start with KeepAccepted, flag --keep-accepted)")

// Accepted lists the device tokens a mock accepted for one campaign since the last reset,
// per platform, in the order it accepted them: a token accepted twice (a duplicate) is
// listed twice. It is what GET /accepted?campaign=ID answers.
type Accepted struct {
	// IOS are the tokens the mock APNs accepted; Android those the mock FCM accepted (topic
	// and condition messages as "/topics/<topic>", as the counts name them).
	IOS, Android []string
}

// Len is the number of accepted requests listed.
func (a Accepted) Len() int { return len(a.IOS) + len(a.Android) }

// WriteTo writes a in the format of GET /accepted: one `platform,token` line per accepted
// request, platform "ios" or "android" (the format of a gameday tokens file), the iOS ones
// first.
func (a Accepted) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	for _, p := range []struct {
		name   string
		tokens []string
	}{{"ios,", a.IOS}, {"android,", a.Android}} {
		for _, t := range p.tokens {
			k, _ := bw.WriteString(p.name)
			n += int64(k)
			k, _ = bw.WriteString(t)
			n += int64(k)
			if err := bw.WriteByte('\n'); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, bw.Flush()
}

// maxAcceptedLine bounds one line of GET /accepted (a 4096-character FCM token and more).
const maxAcceptedLine = 8 << 10

// ParseAccepted reads the format WriteTo writes. Blank lines are skipped; any other line
// that is not `ios,<token>` or `android,<token>`, with a token free of control characters,
// is an error naming its line.
func ParseAccepted(r io.Reader) (Accepted, error) {
	var a Accepted
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxAcceptedLine)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		platform, token, ok := bytes.Cut(b, []byte{','})
		if !ok || len(token) == 0 || hasControl(token) {
			return Accepted{}, fmt.Errorf("mockpush: accepted line %d: want platform,token", line)
		}
		switch string(platform) {
		case "ios":
			a.IOS = append(a.IOS, string(token))
		case "android":
			a.Android = append(a.Android, string(token))
		default:
			return Accepted{}, fmt.Errorf("mockpush: accepted line %d: platform %q is not ios or android", line, platform)
		}
	}
	if err := sc.Err(); err != nil {
		return Accepted{}, fmt.Errorf("mockpush: accepted: %w", err)
	}
	return a, nil
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// Accepted returns the tokens the mocks accepted for campaign since the last reset, or
// ErrNotKept when the server does not keep them.
func (s *Server) Accepted(campaign string) (Accepted, error) {
	if s.apns.kept == nil {
		return Accepted{}, ErrNotKept
	}
	return Accepted{IOS: s.apns.acceptedTokens(campaign), Android: s.fcm.acceptedTokens(campaign)}, nil
}

// acceptedLog keeps, per campaign, the device token of every request a ledger accepted, as
// "token\n" lines (control characters, which only an FCM condition may hold, as spaces) in
// chunks that never move once written, so that a reader may take the written part of a
// chunk while accepts go on. It costs the token's bytes plus one per
// accepted request (about 65 bytes for an APNs token, 150-170 for an FCM one), which is why
// it is kept only on request. Guarded by its ledger's mu.
type acceptedLog struct {
	campaigns map[string]*tokenLines
	last      *tokenLines // the campaign of the last add, to skip the map lookup
	lastName  string
}

// tokenLines are one campaign's accepted tokens.
type tokenLines struct {
	chunks [][]byte
}

// acceptedChunk is the size of a chunk of token lines.
const acceptedChunk = 1 << 20

func newAcceptedLog() *acceptedLog { return &acceptedLog{campaigns: map[string]*tokenLines{}} }

// reset forgets every token; the chunks are dropped, not reused, so that a reader still
// holding some never sees them change.
func (k *acceptedLog) reset() { *k = acceptedLog{campaigns: map[string]*tokenLines{}} }

// add records one accepted request.
func (k *acceptedLog) add(campaign, token []byte) {
	if k.last == nil || k.lastName != string(campaign) {
		tl := k.campaigns[string(campaign)]
		if tl == nil {
			tl = &tokenLines{}
			k.campaigns[string(campaign)] = tl
		}
		k.last, k.lastName = tl, string(campaign)
	}
	tl := k.last
	need := len(token) + 1
	if n := len(tl.chunks); n == 0 || cap(tl.chunks[n-1])-len(tl.chunks[n-1]) < need {
		tl.chunks = append(tl.chunks, make([]byte, 0, max(acceptedChunk, need)))
	}
	c := &tl.chunks[len(tl.chunks)-1]
	at := len(*c)
	*c = append(append(*c, token...), '\n')
	if hasControl(token) { // only an FCM condition can hold one: keep one line per request
		for i, ch := range (*c)[at : len(*c)-1] {
			if ch < ' ' || ch == 0x7f {
				(*c)[at+i] = ' '
			}
		}
	}
}

// addPairs records the pairs of a batch (see appendPair).
func (k *acceptedLog) addPairs(pairs []byte) {
	for len(pairs) > 0 {
		var campaign, token []byte
		campaign, pairs = readField(pairs)
		token, pairs = readField(pairs)
		k.add(campaign, token)
	}
}

// appendPair appends (campaign, token) to a batch's pairs: each as a uvarint length and its
// bytes.
func appendPair(dst []byte, campaign, token string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(campaign)))
	dst = append(dst, campaign...)
	dst = binary.AppendUvarint(dst, uint64(len(token)))
	return append(dst, token...)
}

// readField reads one field appendPair wrote.
func readField(b []byte) (field, rest []byte) {
	n, k := binary.Uvarint(b)
	return b[k : k+int(n)], b[k+int(n):]
}

// keepAccepted makes l keep the tokens it accepts from now on. It must be called before l
// accepts anything: l.kept is read without the lock on the accepted path.
func (l *ledger) keepAccepted() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kept = newAcceptedLog()
}

// acceptedTokens returns the tokens l accepted for campaign since the last reset, in order.
func (l *ledger) acceptedTokens(campaign string) []string {
	l.mu.Lock()
	var chunks [][]byte
	if tl := l.kept.campaigns[campaign]; tl != nil {
		chunks = make([][]byte, len(tl.chunks))
		copy(chunks, tl.chunks) // their written parts never change; later appends go past them
	}
	l.mu.Unlock()
	var out []string
	for _, c := range chunks {
		for _, line := range strings.Split(strings.TrimSuffix(string(c), "\n"), "\n") {
			if line != "" {
				out = append(out, line)
			}
		}
	}
	return out
}
