package mockpush

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// APNs limits and timings, as Apple documents them.
const (
	apnsMaxPayload      = 4096
	apnsMaxVoIPPayload  = 5120
	apnsMaxCollapseID   = 64
	apnsMinTokenHex     = 64
	apnsMaxTokenHex     = 200
	apnsTokenMaxAge     = time.Hour
	apnsTokenMinRefresh = 20 * time.Minute
	apnsDevicePrefix    = "/3/device/"
)

// apnsTopicSuffix returns the suffix the apns-topic of a push type must carry, and whether
// the push type is one APNs knows.
func apnsTopicSuffix(pushType string) (string, bool) {
	switch pushType {
	case "alert", "background", "mdm":
		return "", true
	case "widgets":
		return ".push-type.widgets", true
	case "location":
		return ".location-query", true
	case "voip":
		return ".voip", true
	case "complication":
		return ".complication", true
	case "fileprovider":
		return ".pushkit.fileprovider", true
	case "liveactivity":
		return ".push-type.liveactivity", true
	case "pushtotalk":
		return ".voip-ptt", true
	}
	return "", false
}

// apnsKeyEntry is one trusted provider-token key.
type apnsKeyEntry struct {
	teamID string
	pub    *ecdsa.PublicKey
}

// apnsHandler plays APNs.
type apnsHandler struct {
	s    *Server
	keys map[string]apnsKeyEntry // by key ID
}

// apnsHeaders are the request headers APNs reads, gathered in one pass.
type apnsHeaders struct {
	authorization, topic, pushType, priority, expiration, collapseID, apnsID string
	duplicate                                                                bool
}

func (h *apnsHeaders) gather(r *request) {
	dst := [...]*string{hnAuthorization: &h.authorization, hnAPNsTopic: &h.topic, hnAPNsPushType: &h.pushType,
		hnAPNsPriority: &h.priority, hnAPNsExpiration: &h.expiration, hnAPNsCollapseID: &h.collapseID, hnAPNsID: &h.apnsID}
	var seen uint8
	for i := range r.fields {
		f := &r.fields[i]
		if int(f.code) >= len(dst) || dst[f.code] == nil {
			continue
		}
		bit := uint8(1) << f.code
		if seen&bit != 0 {
			h.duplicate = true
		}
		seen |= bit
		*dst[f.code] = f.value
	}
}

// serve answers one APNs request.
func (h *apnsHandler) serve(c *h2conn, r *request, w *response) {
	s := h.s
	p := &c.peer
	p.requests++
	if n := s.apnsInj.resetN.Load(); n > 0 && int64(p.requests) > n {
		s.apns.reject("ConnectionReset")
		w.action = actionReset
		return
	}
	if n := s.apnsInj.goAwayN.Load(); n > 0 && int64(p.requests) == n {
		w.action = actionGoAway
	}
	var hd apnsHeaders
	hd.gather(r)
	apnsID := hd.apnsID
	if apnsID == "" || !isUUID(apnsID) {
		apnsID = c.newAPNsID()
	}
	w.set("apns-id", apnsID)

	fd := s.apnsInj.decide(r.at)
	w.delay = fd.delay
	reason, status := h.check(c, r, &hd)
	if fd.reason != "" {
		reason, status = fd.reason, fd.status
		if fd.retryAfter > 0 {
			w.set("retry-after", strconv.Itoa(fd.retryAfter))
		}
	}
	token := ""
	if strings.HasPrefix(r.path, apnsDevicePrefix) {
		token = r.path[len(apnsDevicePrefix):]
	}
	if reason == "" && IsUnregistered(token) {
		reason, status = "Unregistered", 410
	}
	if reason != "" {
		s.apns.reject(reason)
		w.status = status
		w.set("content-type", "application/json")
		w.body = append(w.body, `{"reason":"`...)
		w.body = append(w.body, reason...)
		w.body = append(w.body, '"')
		if status == 410 {
			w.body = append(w.body, `,"timestamp":`...)
			w.body = strconv.AppendInt(w.body, r.at.Add(-24*time.Hour).UnixMilli(), 10)
		}
		w.body = append(w.body, '}')
		if s.apnsInj.dropOnRej.Load() && !p.dropped {
			p.dropped = true
			c.adjustStreams(1)
		}
		return
	}
	p.accept(s.apns, token, hd.collapseID, arrival(r.at, w.delay))
	w.status = 200
	if !p.hasAccepted || p.dropped {
		p.hasAccepted, p.dropped = true, false
		c.adjustStreams(c.srv.maxStreams)
	}
}

// check validates a request in the order the mock applies APNs's rules and returns the
// rejection reason and status, or "" when the request is acceptable.
func (h *apnsHandler) check(c *h2conn, r *request, hd *apnsHeaders) (string, int) {
	if r.method != "POST" {
		return "MethodNotAllowed", 405
	}
	if !strings.HasPrefix(r.path, apnsDevicePrefix) {
		return "BadPath", 404
	}
	token := r.path[len(apnsDevicePrefix):]
	if hd.duplicate {
		return "DuplicateHeaders", 400
	}
	if !h.s.cfg.Permissive {
		if reason := h.auth(c, r, hd.authorization); reason != "" {
			if reason == "TooManyProviderTokenUpdates" {
				return reason, 429
			}
			return reason, 403
		}
	}
	suffix, knownType := apnsTopicSuffix(hd.pushType)
	topic := h.s.cfg.APNsTopic
	switch {
	case hd.pushType != "" && !knownType:
		return "InvalidPushType", 400
	case hd.topic == "":
		return "MissingTopic", 400
	case len(hd.topic) != len(topic)+len(suffix) || hd.topic[:len(topic)] != topic || hd.topic[len(topic):] != suffix:
		return "DeviceTokenNotForTopic", 400
	}
	switch hd.priority {
	case "", "10", "5", "1":
	default:
		return "BadPriority", 400
	}
	if hd.pushType == "background" && hd.priority != "5" {
		return "BadPriority", 400
	}
	if hd.expiration != "" {
		if n, err := strconv.ParseInt(hd.expiration, 10, 64); err != nil || n < 0 {
			return "BadExpirationDate", 400
		}
	}
	if len(hd.collapseID) > apnsMaxCollapseID {
		return "BadCollapseId", 400
	}
	if hd.apnsID != "" && !isUUID(hd.apnsID) {
		return "BadMessageId", 400
	}
	if token == "" {
		return "MissingDeviceToken", 400
	}
	if !validAPNsToken(token) {
		return "BadDeviceToken", 400
	}
	limit := apnsMaxPayload
	if hd.pushType == "voip" {
		limit = apnsMaxVoIPPayload
	}
	switch {
	case r.bodyLen == 0:
		return "PayloadEmpty", 400
	case r.bodyLen > limit:
		return "PayloadTooLarge", 413
	case !c.payloadOK(r.body):
		// Apple documents no reason for a body that is not a JSON dictionary; the mock
		// answers 400 PayloadEmpty, the closest documented one.
		return "PayloadEmpty", 400
	}
	return "", 0
}

// auth checks the provider token, verifying each new token once per connection.
func (h *apnsHandler) auth(c *h2conn, r *request, authorization string) string {
	p := &c.peer
	if authorization == "" {
		return "MissingProviderToken"
	}
	tok, ok := bearerToken(authorization)
	if !ok {
		return "InvalidProviderToken"
	}
	now := r.at
	if tok != p.bearer {
		iat, reason := h.verify(tok)
		if reason != "" {
			return reason
		}
		if !p.tokenSince.IsZero() && now.Sub(p.tokenSince) < apnsTokenMinRefresh {
			return "TooManyProviderTokenUpdates"
		}
		// The request's strings are only valid while it is handled.
		p.bearer, p.tokenSince = strings.Clone(tok), now
		p.authUntil = time.Unix(iat, 0).Add(apnsTokenMaxAge)
	}
	if now.After(p.authUntil) {
		return "ExpiredProviderToken"
	}
	return ""
}

// bearerToken returns the credentials of an authorization value "Bearer <token>" (the scheme
// in any case) and whether it is one.
func bearerToken(v string) (string, bool) {
	if len(v) > 7 && (v[:7] == "bearer " || v[:7] == "Bearer ") {
		return v[7:], true
	}
	scheme, tok, ok := strings.Cut(v, " ")
	return tok, ok && strings.EqualFold(scheme, "bearer") && tok != ""
}

// verify checks a provider token's signature, key ID and team; it returns the token's iat.
func (h *apnsHandler) verify(tok string) (int64, string) {
	j, err := parseJWT(tok)
	if err != nil {
		return 0, "InvalidProviderToken"
	}
	k, ok := h.keys[j.header.Kid]
	if !ok || j.claims.Iss != k.teamID || j.claims.Iat == 0 {
		return 0, "InvalidProviderToken"
	}
	if err := j.verifyES256(k.pub); err != nil {
		return 0, "InvalidProviderToken"
	}
	return j.claims.Iat, ""
}

// validAPNsToken reports whether token is even-length hex of an accepted length.
func validAPNsToken(token string) bool {
	if len(token) < apnsMinTokenHex || len(token) > apnsMaxTokenHex || len(token)%2 != 0 {
		return false
	}
	return allOf(token, classHex)
}

// isUUID reports whether s has the canonical 8-4-4-4-12 hexadecimal form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !classHex.has(s[i]) {
				return false
			}
		}
	}
	return true
}

// newUUID returns a random (version 4) upper-case UUID, as APNs writes them.
func newUUID(rng *rand.Rand) string {
	const hexDigits = "0123456789ABCDEF"
	var b [36]byte
	hi, lo := rng.Uint64(), rng.Uint64()
	hi = hi&^(0xf<<12) | 4<<12
	lo = lo&^(0x3<<62) | 0x2<<62
	j := 0
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			b[i] = '-'
			continue
		}
		var nib uint64
		if j < 16 {
			nib = hi >> (60 - 4*j) & 0xf
		} else {
			nib = lo >> (60 - 4*(j-16)) & 0xf
		}
		b[i] = hexDigits[nib]
		j++
	}
	return string(b[:])
}

// payloadOK reports whether body is a JSON object, remembering the last good payload of the
// connection.
func (c *h2conn) payloadOK(body []byte) bool {
	if len(c.lastPayload) > 0 && bytes.Equal(body, c.lastPayload) {
		return true
	}
	if !jsonObject(body) {
		return false
	}
	c.lastPayload = append(c.lastPayload[:0], body...)
	return true
}

// newAPNsID returns a version-4-shaped upper-case UUID: a random prefix per connection and a
// per-connection counter in the last 12 digits. The string lives in the connection's buffer
// and is valid until the next call (a delayed answer copies it).
func (c *h2conn) newAPNsID() string {
	if c.idPrefix == "" {
		c.idPrefix = newUUID(c.rng())[:24]
		copy(c.idBuf[:], c.idPrefix)
	}
	c.idSeq++
	const hexDigits = "0123456789ABCDEF"
	v := c.idSeq
	for i := 35; i >= 24; i-- {
		c.idBuf[i] = hexDigits[v&0xf]
		v >>= 4
	}
	return unsafe.String(&c.idBuf[0], len(c.idBuf))
}

// jsonObject reports whether b is one valid JSON object.
func jsonObject(b []byte) bool {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i < len(b) && b[i] == '{' && json.Valid(b)
}
