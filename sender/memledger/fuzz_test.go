package memledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/salvopush/salvo/sender"
)

// FuzzParseRecord feeds arbitrary payloads to the record decoder: it never panics, and a
// payload it accepts re-encodes into one it decodes to the same record.
func FuzzParseRecord(f *testing.F) {
	ff := finishFrames{campaign: "c1", state: sender.RecipientRejected, at: -1}
	ff.run(0, 50)
	ff.run(100, 1)
	ff.run(7, 3)
	for _, frame := range [][]byte{ff.close(), appendRedrive(nil, "c1", 10, 500), appendForget(nil, "c1")} {
		f.Add(frame[frameHeader:])
	}
	f.Add([]byte{kindFinish, 1, 'c', byte(sender.RecipientAccepted), 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := parseRecord(p)
		if err != nil {
			return
		}
		var again []byte
		switch r.kind {
		case kindFinish:
			ff := finishFrames{campaign: string(r.campaign), state: r.state, at: -1}
			if err := eachRun(r.runs, ff.run); err != nil {
				t.Fatalf("runs accepted by parseRecord fail to decode: %v", err)
			}
			again = ff.close()
		case kindRedrive:
			again = appendRedrive(nil, string(r.campaign), r.start, r.n)
		case kindForget:
			again = appendForget(nil, string(r.campaign))
		}
		p2, _, err := nextFrame(again)
		if err != nil {
			t.Fatalf("re-encoded frame: %v", err)
		}
		r2, err := parseRecord(p2)
		if err != nil {
			t.Fatalf("re-encoded record: %v", err)
		}
		var runs1, runs2 [][2]uint32
		_ = eachRun(r.runs, func(s, n uint32) { runs1 = append(runs1, [2]uint32{s, n}) })
		_ = eachRun(r2.runs, func(s, n uint32) { runs2 = append(runs2, [2]uint32{s, n}) })
		if r.kind != r2.kind || !bytes.Equal(r.campaign, r2.campaign) || r.state != r2.state ||
			r.start != r2.start || r.n != r2.n || len(runs1) != len(runs2) {
			t.Fatalf("record %+v re-decoded as %+v", r, r2)
		}
		for i := range runs1 {
			if runs1[i] != runs2[i] {
				t.Fatalf("run %d: %v re-decoded as %v", i, runs1[i], runs2[i])
			}
		}
	})
}

// FuzzOpen opens arbitrary bytes after the journal header as a journal file: Open never
// fails nor panics on them, it keeps a prefix of whole records, and the file it leaves
// opens again with nothing dropped and the same counts.
func FuzzOpen(f *testing.F) {
	ff := finishFrames{campaign: "c", state: sender.RecipientAccepted, at: -1}
	ff.run(0, 10)
	good := appendRedrive(ff.close(), "c", 0, 5)
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Add(append(bytes.Clone(good), 0, 0, 0, 0))
	f.Add(binary.LittleEndian.AppendUint32(nil, maxPayload+1))
	f.Fuzz(func(t *testing.T, body []byte) {
		path := filepath.Join(t.TempDir(), "j")
		if err := os.WriteFile(path, append([]byte(magic), body...), 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		rec := l.Recovery()
		if rec.Kept+rec.Dropped+rec.Zeros != int64(len(magic)+len(body)) || rec.Dropped > 0 && rec.Zeros > 0 {
			t.Fatalf("Recovery %+v does not account for %d bytes", rec, len(magic)+len(body))
		}
		want, _ := l.Counts(context.Background(), "c")
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err = Open(path)
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		defer l.Close()
		if got, _ := l.Counts(context.Background(), "c"); got != want || l.Recovery().Dropped != 0 || l.Recovery().Records != rec.Records {
			t.Fatalf("second Open: %+v, %+v; first %+v, %+v", got, l.Recovery(), want, rec)
		}
	})
}
