package mockpush

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// FCM limits, as Google documents them.
const (
	fcmMaxPayload     = 4096
	fcmMinToken       = 20
	fcmMaxToken       = 4096
	fcmTokenLifetime  = time.Hour
	fcmAssertionMaxTT = time.Hour
	fcmSendPrefix     = "/v1/projects/"
	fcmSendSuffix     = "/messages:send"
	fcmTokenPath      = "/token"
	jwtBearerGrant    = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	fcmErrorType      = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
)

// fcmCodes maps each FCM error code to its HTTP status, Google status and message.
var fcmCodes = map[string]struct {
	status        int
	google, human string
}{
	"UNREGISTERED":       {404, "NOT_FOUND", "Requested entity was not found."},
	"INVALID_ARGUMENT":   {400, "INVALID_ARGUMENT", "Request contains an invalid argument."},
	"SENDER_ID_MISMATCH": {403, "PERMISSION_DENIED", "SenderId mismatch"},
	"QUOTA_EXCEEDED":     {429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' of service 'fcm.googleapis.com'."},
	"UNAVAILABLE":        {503, "UNAVAILABLE", "The service is currently unavailable."},
	"INTERNAL":           {500, "INTERNAL", "Internal error encountered."},
}

// fcmHandler plays FCM HTTP v1 and Google's OAuth2 token endpoint.
type fcmHandler struct {
	s      *Server
	tokens tokenStore
	quota  quotaWindow
	msgSeq atomic.Uint64
	msgTag string
}

// serve adapts the HTTP/2 core to handle.
func (h *fcmHandler) serve(c *h2conn, r *request, w *response) {
	h.handle(&c.peer, r, w)
}

// handle answers one FCM or OAuth request; p is the connection's state.
func (h *fcmHandler) handle(p *peerState, r *request, w *response) {
	s := h.s
	if r.path == fcmTokenPath {
		h.token(r, w)
		return
	}
	project, ok := strings.CutPrefix(r.path, fcmSendPrefix)
	if ok {
		project, ok = strings.CutSuffix(project, fcmSendSuffix)
	}
	if !ok || r.method != "POST" || project == "" || strings.Contains(project, "/") {
		googleError(w, 404, "NOT_FOUND", "The requested URL was not found on this server.", "", "")
		return
	}
	p.requests++
	if n := s.fcmInj.resetN.Load(); n > 0 && int64(p.requests) > n {
		s.fcm.reject("ConnectionReset")
		w.action = actionReset
		return
	}
	if n := s.fcmInj.goAwayN.Load(); n > 0 && int64(p.requests) == n {
		w.action = actionGoAway
	}
	fd := s.fcmInj.decide(r.at)
	w.delay = fd.delay
	if fd.reason != "" {
		if fd.retryAfter > 0 {
			w.set("retry-after", strconv.Itoa(fd.retryAfter))
		}
		h.fail(w, fd.reason, "")
		return
	}
	if !h.authorized(p, r) {
		s.fcm.reject("UNAUTHENTICATED")
		w.set("www-authenticate", `Bearer realm="https://accounts.google.com/"`)
		googleError(w, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", "", "")
		return
	}
	if project != s.cfg.FCMProject {
		h.fail(w, "SENDER_ID_MISMATCH", "")
		return
	}
	m, msg := p.fcmShape.parse(r.body, r.bodyLen)
	if msg != "" {
		h.fail(w, "INVALID_ARGUMENT", msg)
		return
	}
	if ok, retry := h.quota.allow(r.at, s.cfg.FCMQuotaPerMinute); !ok {
		w.set("retry-after", strconv.Itoa(retry))
		h.fail(w, "QUOTA_EXCEEDED", "")
		return
	}
	target := m.token
	if target == "" {
		target = "/topics/" + m.topic + m.condition
	}
	if m.token != "" && IsUnregistered(m.token) {
		h.fail(w, "UNREGISTERED", "")
		return
	}
	w.status = 200
	w.set("content-type", "application/json; charset=UTF-8")
	w.body = append(w.body, `{"name":"projects/`...)
	w.body = append(w.body, project...)
	w.body = append(w.body, "/messages/"...)
	if m.validateOnly {
		// A dry run is validated and answered but neither delivered nor counted as received.
		s.fcm.validated()
		w.body = append(w.body, `fake_message_id"}`...)
		return
	}
	p.accept(s.fcm, target, m.campaign, arrival(r.at, w.delay))
	w.body = append(w.body, "0:"...)
	w.body = strconv.AppendUint(w.body, h.msgSeq.Add(1), 10)
	w.body = append(w.body, '%')
	w.body = append(w.body, h.msgTag...)
	w.body = append(w.body, `"}`...)
}

// fail answers with an FCM error code and counts the rejection.
func (h *fcmHandler) fail(w *response, code, message string) {
	h.s.fcm.reject(code)
	e := fcmCodes[code]
	if message == "" {
		message = e.human
	}
	googleError(w, e.status, e.google, message, code, "")
}

// googleError writes Google's JSON error format; fcmCode, when set, adds the FcmError detail.
func googleError(w *response, status int, google, message, fcmCode, field string) {
	type detail struct {
		Type      string `json:"@type"`
		ErrorCode string `json:"errorCode,omitempty"`
	}
	body := struct {
		Error struct {
			Code    int      `json:"code"`
			Message string   `json:"message"`
			Status  string   `json:"status"`
			Details []detail `json:"details,omitempty"`
		} `json:"error"`
	}{}
	body.Error.Code, body.Error.Message, body.Error.Status = status, message, google
	if fcmCode != "" {
		body.Error.Details = []detail{{Type: fcmErrorType, ErrorCode: fcmCode}}
	}
	b, _ := json.Marshal(body)
	w.status = status
	w.set("content-type", "application/json; charset=UTF-8")
	w.body = append(w.body, b...)
}

// authorized checks the bearer access token, caching the answer on the connection.
func (h *fcmHandler) authorized(p *peerState, r *request) bool {
	v, n := r.header(hnAuthorization)
	tok, ok := bearerToken(v)
	if n != 1 || !ok {
		return false
	}
	if tok == p.bearer && r.at.Unix() < p.authIat {
		return true
	}
	exp, ok := h.tokens.lookup(tok)
	if !ok && strings.Count(tok, ".") == 2 {
		exp, ok = h.selfSigned(tok, r.at)
	}
	if !ok || !r.at.Before(exp) {
		return false
	}
	// The request's strings are only valid while it is handled.
	p.bearer, p.authIat = strings.Clone(tok), exp.Unix()
	return true
}

// selfSigned accepts a JWT signed by the service account itself as an access token, as
// Google does for self-signed JWT credentials.
func (h *fcmHandler) selfSigned(tok string, now time.Time) (time.Time, bool) {
	j, err := parseJWT(tok)
	if err != nil || j.claims.Iss != h.s.creds.saEmail || j.verifyRS256(&h.s.creds.saKey.PublicKey) != nil {
		return time.Time{}, false
	}
	exp := time.Unix(j.claims.Exp, 0)
	if !now.Before(exp) {
		return time.Time{}, false
	}
	h.tokens.add(strings.Clone(tok), exp)
	return exp, true
}

// token is the OAuth2 token endpoint: it exchanges a JWT-bearer assertion signed by the
// generated service account for an access token valid for one hour.
func (h *fcmHandler) token(r *request, w *response) {
	oauthErr := func(status int, code, desc string) {
		b, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
		w.status = status
		w.set("content-type", "application/json; charset=utf-8")
		w.body = append(w.body, b...)
	}
	if r.method != "POST" {
		oauthErr(405, "invalid_request", "Use POST.")
		return
	}
	form, err := url.ParseQuery(string(r.body))
	if err != nil {
		oauthErr(400, "invalid_request", "Malformed form body.")
		return
	}
	if form.Get("grant_type") != jwtBearerGrant {
		oauthErr(400, "unsupported_grant_type", "Invalid grant_type: "+form.Get("grant_type"))
		return
	}
	if reason := h.checkAssertion(form.Get("assertion"), r.at); reason != "" {
		oauthErr(400, "invalid_grant", reason)
		return
	}
	var raw [24]byte
	for i := range raw {
		raw[i] = byte(rand.Uint32())
	}
	access := "ya29.mock." + hex.EncodeToString(raw[:])
	h.tokens.add(access, r.at.Add(fcmTokenLifetime))
	b, _ := json.Marshal(map[string]any{"access_token": access, "expires_in": int(fcmTokenLifetime/time.Second) - 1, "token_type": "Bearer"})
	w.status = 200
	w.set("content-type", "application/json; charset=utf-8")
	w.body = append(w.body, b...)
}

// checkAssertion verifies a JWT-bearer assertion and returns Google's error description, or
// "" when it is valid.
func (h *fcmHandler) checkAssertion(assertion string, now time.Time) string {
	j, err := parseJWT(assertion)
	if err != nil {
		return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
	}
	c := h.s.creds
	if j.verifyRS256(&c.saKey.PublicKey) != nil || (j.header.Kid != "" && j.header.Kid != c.saKeyID) {
		return "Invalid JWT Signature."
	}
	if j.claims.Iss != c.saEmail {
		return "Invalid JWT: iss is not the service account."
	}
	if !j.claims.Aud.has(h.s.ready.OAuthTokenURL) {
		return "Invalid JWT: aud is not the token endpoint."
	}
	iat, exp := time.Unix(j.claims.Iat, 0), time.Unix(j.claims.Exp, 0)
	if !now.Before(exp) || iat.After(now.Add(time.Minute)) || exp.Sub(iat) > fcmAssertionMaxTT {
		return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	}
	return ""
}

// fcmMessage is what the mock reads of an FCM v1 send request.
type fcmMessage struct {
	token, topic, condition string
	campaign                string
	validateOnly            bool
}

// fcmSendBody is the JSON body of messages:send.
type fcmSendBody struct {
	ValidateOnly bool `json:"validate_only"`
	Message      *struct {
		Token        string                     `json:"token"`
		Topic        string                     `json:"topic"`
		Condition    string                     `json:"condition"`
		Data         map[string]json.RawMessage `json:"data"`
		Notification json.RawMessage            `json:"notification"`
		Android      *struct {
			CollapseKey  string                     `json:"collapse_key"`
			Data         map[string]json.RawMessage `json:"data"`
			Notification json.RawMessage            `json:"notification"`
		} `json:"android"`
	} `json:"message"`
}

// parseFCMSend decodes and validates a messages:send body; it returns the INVALID_ARGUMENT
// message for a bad body, or "". The strings of an accepted message may alias body. The
// common, accepted shape is read by parseFCMSendFast; every other body by the encoding/json
// reference, parseFCMSendJSON, which always gives the same answer.
func parseFCMSend(body []byte, bodyLen int) (fcmMessage, string) {
	if bodyLen > len(body) {
		return fcmMessage{}, "Request payload size exceeds the limit."
	}
	if m, ok := parseFCMSendFast(body); ok {
		return m, ""
	}
	return parseFCMSendJSON(body)
}

// fcmShape is the last body with a token that the fast parser accepted on a connection, cut
// around the token's characters. A campaign sends bodies that differ only in the token, and
// a body that is the same but for a token of registration-token characters (no quote, no
// backslash, so the string ends where it did) parses the same but for the token: parse then
// only checks the token (FuzzFCMShapeAgrees holds it to the reference parser).
type fcmShape struct {
	prefix, suffix []byte
	msg            fcmMessage // with the token left out and the campaign copied
}

// parse is parseFCMSend with the shape of the last body tried first.
func (sh *fcmShape) parse(body []byte, bodyLen int) (fcmMessage, string) {
	if m, ok := sh.match(body, bodyLen); ok {
		return m, ""
	}
	if bodyLen == len(body) {
		if m, at, ok := scanFCMSend(body); ok {
			if m.token != "" {
				sh.prefix = append(sh.prefix[:0], body[:at]...)
				sh.suffix = append(sh.suffix[:0], body[at+len(m.token):]...)
				sh.msg = fcmMessage{validateOnly: m.validateOnly, campaign: strings.Clone(m.campaign)}
			}
			return m, ""
		}
	}
	return parseFCMSend(body, bodyLen)
}

// match reports whether body has the shape, and its message if so.
func (sh *fcmShape) match(body []byte, bodyLen int) (fcmMessage, bool) {
	n := len(body) - len(sh.prefix) - len(sh.suffix)
	if len(sh.prefix) == 0 || bodyLen != len(body) || n <= 0 ||
		!bytes.Equal(body[:len(sh.prefix)], sh.prefix) || !bytes.Equal(body[len(body)-len(sh.suffix):], sh.suffix) {
		return fcmMessage{}, false
	}
	tok := body[len(sh.prefix) : len(sh.prefix)+n]
	token := unsafe.String(&tok[0], n)
	if !validFCMToken(token) {
		return fcmMessage{}, false
	}
	m := sh.msg
	m.token = token
	return m, true
}

// parseFCMSendJSON is the reference parser of a messages:send body, on encoding/json.
func parseFCMSendJSON(body []byte) (fcmMessage, string) {
	var b fcmSendBody
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&b); err != nil {
		return fcmMessage{}, "Invalid JSON payload received."
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fcmMessage{}, "Invalid JSON payload received."
	}
	m := b.Message
	if m == nil {
		return fcmMessage{}, "Request contains an invalid argument."
	}
	targets := 0
	for _, t := range []string{m.Token, m.Topic, m.Condition} {
		if t != "" {
			targets++
		}
	}
	if targets != 1 {
		return fcmMessage{}, "Exactly one of message.token, message.topic or message.condition must be set."
	}
	size := len(m.Notification)
	checkData := func(d map[string]json.RawMessage, field string) string {
		for k, v := range d {
			var s string
			if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
				return "Invalid value at '" + field + "' (type.googleapis.com/google.firebase.fcm.v1.Message.DataEntry), " + strconv.Quote(k) + " is not a string."
			}
			size += len(k) + len(s)
		}
		return ""
	}
	if msg := checkData(m.Data, "message.data"); msg != "" {
		return fcmMessage{}, msg
	}
	out := fcmMessage{token: m.Token, topic: m.Topic, condition: m.Condition, validateOnly: b.ValidateOnly}
	if a := m.Android; a != nil {
		if msg := checkData(a.Data, "message.android.data"); msg != "" {
			return fcmMessage{}, msg
		}
		size += len(a.Notification)
		out.campaign = a.CollapseKey
	}
	if size > fcmMaxPayload {
		return fcmMessage{}, "Message is too big. The maximum payload is 4096 bytes."
	}
	if m.Token != "" && !validFCMToken(m.Token) {
		return fcmMessage{}, "The registration token is not a valid FCM registration token"
	}
	if out.campaign == "" {
		if v, ok := m.Data["campaign_id"]; ok {
			json.Unmarshal(v, &out.campaign)
		}
	}
	return out, ""
}

// validFCMToken reports whether token has the length and alphabet of a registration token.
func validFCMToken(token string) bool {
	if len(token) < fcmMinToken || len(token) > fcmMaxToken {
		return false
	}
	return allOf(token, classFCMToken)
}

// tokenStore holds the access tokens the token endpoint issued, with their expiry.
type tokenStore struct {
	mu   sync.RWMutex
	m    map[string]time.Time
	adds int
}

func (t *tokenStore) add(tok string, exp time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]time.Time{}
	}
	t.adds++
	if t.adds%1024 == 0 {
		now := time.Now()
		for k, e := range t.m {
			if e.Before(now.Add(-time.Hour)) {
				delete(t.m, k)
			}
		}
	}
	t.m[tok] = exp
}

func (t *tokenStore) lookup(tok string) (time.Time, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.m[tok]
	return e, ok
}

// quotaWindow counts send requests over a sliding one-minute window in one-second buckets.
// The window's sum for the last second seen is cached, so only the first request of a
// second (or of a bucket reuse) adds up the buckets.
type quotaWindow struct {
	mu     sync.Mutex
	counts [60]int64
	secs   [60]int64
	// cached: total and oldest are the window's sum and oldest counted second for cacheSec.
	cached   bool
	cacheSec int64
	total    int64
	oldest   int64
}

// allow counts one request at now if the window has room for it; otherwise it returns the
// seconds until it will.
func (q *quotaWindow) allow(now time.Time, limit int) (bool, int) {
	sec := now.Unix()
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.cached || q.cacheSec != sec {
		q.sum(sec)
	}
	if q.total >= int64(limit) {
		return false, int(max(1, q.oldest+60-sec))
	}
	i := sec % 60
	if q.secs[i] != sec {
		q.secs[i], q.counts[i] = sec, 0
		q.cached = false // the bucket's old count may have been in the window
	}
	q.counts[i]++
	if q.cached {
		q.total++
		if q.oldest < 0 || sec < q.oldest {
			q.oldest = sec
		}
	}
	return true, 0
}

// sum adds up the buckets inside the window that ends at sec.
func (q *quotaWindow) sum(sec int64) {
	var total int64
	oldest := int64(-1)
	for i := range q.counts {
		if q.secs[i] > sec-60 && q.counts[i] > 0 {
			total += q.counts[i]
			if oldest < 0 || q.secs[i] < oldest {
				oldest = q.secs[i]
			}
		}
	}
	q.cached, q.cacheSec, q.total, q.oldest = true, sec, total, oldest
}

func (q *quotaWindow) reset() {
	q.mu.Lock()
	q.counts, q.secs = [60]int64{}, [60]int64{}
	q.cached = false
	q.mu.Unlock()
}
