package burst

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"
)

// FuzzResponseParser feeds arbitrary header blocks, frames and error bodies to the response
// parser: it must never panic, it must refuse exactly the header blocks the standard decoder
// refuses, and decode every other one to the same fields.
func FuzzResponseParser(f *testing.F) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	enc.WriteField(hpack.HeaderField{Name: ":status", Value: "429"})
	enc.WriteField(hpack.HeaderField{Name: "retry-after", Value: "7"})
	enc.WriteField(hpack.HeaderField{Name: "apns-id", Value: "8E2DB5B4-2A0E-4C8D-9C6E-0D5B0F1E6A11"})
	f.Add(buf.Bytes(), []byte(`{"error":{"status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`))
	f.Add([]byte{0x88}, []byte(`{"reason":"BadDeviceToken"}`))
	f.Add([]byte{0x3f, 0xe1, 0x1f, 0x88}, []byte{})
	f.Fuzz(func(t *testing.T, block, body []byte) {
		var got []string
		d := newRespDecoder(tableSize)
		err := d.decode(block, func(n, v []byte) { got = append(got, string(n)+"="+string(v)) })
		var want []string
		ref := hpack.NewDecoder(tableSize, func(hf hpack.HeaderField) { want = append(want, hf.Name+"="+hf.Value) })
		_, refErr := ref.Write(block)
		if refErr == nil {
			refErr = ref.Close()
		}
		// Both decoders take the block or both refuse it, and what they take they decode to
		// the same fields, none dropped, none added.
		if (err == nil) != (refErr == nil) {
			t.Fatalf("decode error %v, standard decoder's %v (fields %q, standard %q)", err, refErr, got, want)
		}
		if err == nil && !slices.Equal(got, want) {
			t.Fatalf("fields %q, standard decoder %q", got, want)
		}
		fr := frameReader{r: bytes.NewReader(append(block, body...))}
		for range 4 {
			if _, _, err := fr.next(); err != nil {
				break
			}
		}
		for _, st := range []int{200, 400, 404, 429, 500, 503, 0} {
			fcmProvider{}.result(st, body, block, time.Unix(0, 0))
			apnsProvider{signer: &jwtSigner{}}.result(st, body, block, time.Unix(0, 0))
		}
	})
}

// BenchmarkDecodeAccepted decodes the mock's accepted answer; it must not allocate.
func BenchmarkDecodeAccepted(b *testing.B) {
	blk := []byte{0x88}
	blk = append(blk, 0x00, 7)
	blk = append(blk, "apns-id"...)
	blk = append(blk, 36)
	blk = append(blk, "8E2DB5B4-2A0E-4C8D-9C6E-0D5B0F1E6A11"...)
	d := newRespDecoder(tableSize)
	status := 0
	emit := func(n, v []byte) {
		if string(n) == ":status" {
			status = atoi3(v)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := d.decode(blk, emit); err != nil || status != 200 {
			b.Fatal(err)
		}
	}
}
