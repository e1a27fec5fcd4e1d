package mockpush

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParseJWT: whatever parses is three parts whose signing input is the token up to its
// second dot, with the header and claims the parts hold; and a signature checks out with the
// key only for the exact header and claims it was made over (a seed is such a token, others
// change its claims, its header or its signature).
func FuzzParseJWT(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	enc := base64.RawURLEncoding
	signedInput := enc.EncodeToString([]byte(`{"alg":"ES256","kid":"ABC1234567"}`)) + "." +
		enc.EncodeToString([]byte(`{"iss":"DEF1234567","iat":1700000000}`))
	sum := sha256.Sum256([]byte(signedInput))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		f.Fatal(err)
	}
	sig := enc.EncodeToString(append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...))
	f.Add(signedInput + "." + sig)
	f.Add(enc.EncodeToString([]byte(`{"alg":"ES256","kid":"ABC1234567"}`)) + "." +
		enc.EncodeToString([]byte(`{"iss":"DEF1234567","iat":1700000001}`)) + "." + sig) // claims changed
	f.Add(enc.EncodeToString([]byte(`{"alg":"ES256","kid":"XYZ1234567"}`)) + "." +
		enc.EncodeToString([]byte(`{"iss":"DEF1234567","iat":1700000000}`)) + "." + sig) // header changed
	f.Add(signedInput + "." + enc.EncodeToString(make([]byte, 64))) // signature changed
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6IkFCQzEyMzQ1NjcifQ.eyJpc3MiOiJERUYxMjM0NTY3IiwiaWF0IjoxNzAwMDAwMDAwfQ.c2ln")
	f.Add("a.b.c")
	f.Add("...")
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOlsieCJdLCJleHAiOjF9.")
	f.Fuzz(func(t *testing.T, tok string) {
		j, err := parseJWT(tok)
		if err != nil {
			return
		}
		parts := strings.Split(tok, ".")
		if len(parts) != 3 || len(tok) > maxJWTLen || j.signed != parts[0]+"."+parts[1] {
			t.Fatalf("parsed %q: signing input %q", tok, j.signed)
		}
		var h jwtHeader
		var c jwtClaims
		hb, _ := enc.DecodeString(parts[0])
		cb, _ := enc.DecodeString(parts[1])
		if json.Unmarshal(hb, &h) != nil || json.Unmarshal(cb, &c) != nil || h != j.header || !reflect.DeepEqual(c, j.claims) {
			t.Fatalf("parsed %q: header %+v claims %+v, the parts hold %+v %+v", tok, j.header, j.claims, h, c)
		}
		if sb, _ := enc.DecodeString(parts[2]); !bytes.Equal(sb, j.sig) {
			t.Fatalf("parsed %q: signature %x, the part holds %x", tok, j.sig, sb)
		}
		if err := j.verifyES256(&key.PublicKey); err == nil && j.signed != signedInput {
			t.Fatalf("%q verifies, but the key signed %q", tok, signedInput)
		} else if err != nil && tok == signedInput+"."+sig {
			t.Fatalf("the token the key signed does not verify: %v", err)
		}
	})
}

func FuzzParseFCMSend(f *testing.F) {
	f.Add([]byte(`{"message":{"token":"abcdefghijklmnopqrstuvwxyz","data":{"k":"v"},"android":{"collapse_key":"c"}}}`))
	f.Add([]byte(`{"validate_only":true,"message":{"topic":"t"}}`))
	f.Add([]byte(`{"message":{"token":"x","data":{"k":1}}}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, msg := parseFCMSend(body, len(body))
		if msg != "" {
			return
		}
		targets := 0
		for _, s := range []string{m.token, m.topic, m.condition} {
			if s != "" {
				targets++
			}
		}
		if targets != 1 {
			t.Fatalf("accepted a body with %d targets", targets)
		}
		if m.token != "" && !validFCMToken(m.token) {
			t.Fatalf("accepted token %q", m.token)
		}
	})
}

func FuzzParseFaults(f *testing.F) {
	f.Add([]byte(`{"seed":1,"apns":{"errors":[{"reason":"Shutdown","rate":0.5}],"latency":{"fixed_ms":1,"distribution":"normal","mean_ms":2,"stddev_ms":1}}}`))
	f.Add([]byte(`{"fcm":{"outage":{"duration_ms":100}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := ParseFaults(data)
		if err != nil {
			return
		}
		// Whatever parses drives an injector without panicking.
		in := newInjector(apnsInjectable, "ServiceUnavailable")
		t0 := time.Unix(0, 0)
		in.set(fl.APNs, fl.Seed, 1, t0)
		d := in.decide(t0)
		if d.delay < 0 {
			t.Fatalf("negative delay %v", d.delay)
		}
	})
}

func FuzzReceiptsUnmarshal(f *testing.F) {
	good, _ := Receipts{Epoch: time.Unix(1, 0), Offsets: []uint32{1, 2}}.MarshalBinary()
	f.Add(good)
	f.Add([]byte("SLVR"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Receipts
		if r.UnmarshalBinary(b) != nil {
			return
		}
		back, _ := r.MarshalBinary()
		if len(back) != len(b) {
			t.Fatalf("round trip changed the length: %d -> %d", len(b), len(back))
		}
	})
}

// fcmScanSeeds are bodies around the edges of the fast FCM parser.
var fcmScanSeeds = []string{
	`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001","data":{"campaign_id":"c"},"android":{"collapse_key":"k","priority":"high"}}}`,
	`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001","data":{"campaign_id":"c"}}}`,
	`{"validate_only":true,"message":{"topic":"t","notification":{"title":"x","n":[1,-2.5e3,true,false,null,{}]}}}`,
	` { "validate_only" : false , "message" : { "condition" : "'a' in topics" , "android" : { } } } `,
	`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001","Token":"x"}}`,
	`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001"},"message":{"topic":"t"}}`,
	`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u0030000001"}}`,
	`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001","data":{"a":"1","a":"2"}}}`,
	`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001","data":{"a":null}}}`,
	`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001","notification":null}}`,
	`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001","extra":{"deep":[[[["é"]]]]},"android":null}}`,
	`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001"}} {}`,
	`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001","x":01}}`,
	`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001","x":-}}`,
	`{"MESSAGE":{"topic":"t"}}`,
	`{"validate_only":"true","message":{"topic":"t"}}`,
	`{"message":{"topic":"t","android":{"collapse_key":"","data":{"campaign_id":"z"}},"data":{"campaign_id":"y"}}}`,
	`null`,
	``,
}

// FuzzFCMScanAgrees checks the fast FCM parser against the encoding/json reference: when the
// fast one decides, the reference accepts the same body with the same message.
func FuzzFCMScanAgrees(f *testing.F) {
	for _, s := range fcmScanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := parseFCMSendFast(body)
		if !ok {
			return
		}
		ref, msg := parseFCMSendJSON(body)
		if msg != "" {
			t.Fatalf("fast parser accepted %q, reference rejects it: %s", body, msg)
		}
		if fast != ref {
			t.Fatalf("body %q: fast %+v, reference %+v", body, fast, ref)
		}
	})
}

// FuzzFCMShapeAgrees parses body a, which sets the connection's body shape, then body b with
// that shape: the answer must be parseFCMSend's (the reference's whenever the shape decides).
func FuzzFCMShapeAgrees(f *testing.F) {
	tmpl := `{"message":{"token":"%s","data":{"campaign_id":"c"},"android":{"collapse_key":"k","priority":"high"}}}`
	tok := "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001"
	for _, b := range []string{
		strings.Replace(tmpl, "%s", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb00000002", 1),
		strings.Replace(tmpl, "%s", "short", 1),
		strings.Replace(tmpl, "%s", `aaaaaaaaaaaaaaaaaaaaaaaa","x":"aaaaaaaaaaaaaaa`, 1),
		strings.Replace(tmpl, "%s", `aaaaaaaaaaaaaaaaaaaaaaaa\"aaaaaaaaaaaaaaa`, 1),
		`{"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001"}}`,
		`{"validate_only":true,"message":{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000001"}}`,
	} {
		f.Add([]byte(strings.Replace(tmpl, "%s", tok, 1)), []byte(b))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var sh fcmShape
		sh.parse(a, len(a))
		got, gotMsg := sh.parse(b, len(b))
		want, wantMsg := parseFCMSend(b, len(b))
		if got != want || gotMsg != wantMsg {
			t.Fatalf("after %q, body %q: %+v %q, parseFCMSend %+v %q", a, b, got, gotMsg, want, wantMsg)
		}
		if gotMsg == "" {
			if ref, msg := parseFCMSendJSON(b); msg != "" || ref != got {
				t.Fatalf("after %q, body %q: %+v, reference %+v %q", a, b, got, ref, msg)
			}
		}
	})
}
