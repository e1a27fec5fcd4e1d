package memledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/salvopush/salvo/sender"
)

// The journal file: the magic, then frames. A frame is
//
//	length   uint32, little endian: bytes of payload (1..maxPayload)
//	checksum uint32, little endian: CRC-32C of the payload
//	payload  kind byte, campaign (uvarint length, bytes), then by kind:
//	         kindFinish:  state byte, then runs until the payload ends; a run is
//	                      varint(start - end of the previous run, 0 at first), uvarint(n - 1)
//	         kindRedrive: uvarint start, uvarint n
//	         kindForget:  nothing
const (
	magic          = "salvoLJ1"
	frameHeader    = 8
	maxPayload     = 64 << 10
	maxCampaignLen = 1024

	kindFinish  = 1
	kindRedrive = 2
	kindForget  = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Reasons a frame is refused.
var (
	errTorn     = errors.New("frame cut short")
	errLength   = errors.New("frame length out of bounds")
	errChecksum = errors.New("checksum mismatch")
)

// beginFrame appends a frame header to be filled by sealFrame, and the payload's kind and
// campaign; it returns the buffer and the frame's offset in it.
func beginFrame(dst []byte, kind byte, campaign string) ([]byte, int) {
	at := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	dst = append(dst, kind)
	dst = binary.AppendUvarint(dst, uint64(len(campaign)))
	return append(dst, campaign...), at
}

// sealFrame writes the length and checksum of the frame at offset at, which ends the buffer.
func sealFrame(buf []byte, at int) {
	payload := buf[at+frameHeader:]
	binary.LittleEndian.PutUint32(buf[at:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[at+4:], crc32.Checksum(payload, castagnoli))
}

// finishFrames appends Finish records of recipients in state, as few frames as maxPayload
// allows, and calls apply for each run as it is encoded.
type finishFrames struct {
	buf      []byte
	campaign string
	state    sender.RecipientState
	at       int   // offset of the open frame, -1 when none
	prevEnd  int64 // end of the previous run in the open frame
	finished bool
}

func (ff *finishFrames) run(start, n uint32) {
	if ff.at >= 0 && len(ff.buf)-ff.at-frameHeader > maxPayload-2*binary.MaxVarintLen64 {
		sealFrame(ff.buf, ff.at)
		ff.at = -1
	}
	if ff.at < 0 {
		ff.buf, ff.at = beginFrame(ff.buf, kindFinish, ff.campaign)
		ff.buf = append(ff.buf, byte(ff.state))
		ff.prevEnd = 0
	}
	ff.buf = binary.AppendVarint(ff.buf, int64(start)-ff.prevEnd)
	ff.buf = binary.AppendUvarint(ff.buf, uint64(n-1))
	ff.prevEnd = int64(start) + int64(n)
}

func (ff *finishFrames) close() []byte {
	if ff.at >= 0 {
		sealFrame(ff.buf, ff.at)
	}
	return ff.buf
}

// appendRedrive appends a Redrive record.
func appendRedrive(dst []byte, campaign string, start, n uint32) []byte {
	dst, at := beginFrame(dst, kindRedrive, campaign)
	dst = binary.AppendUvarint(dst, uint64(start))
	dst = binary.AppendUvarint(dst, uint64(n))
	sealFrame(dst, at)
	return dst
}

// appendForget appends a Forget record.
func appendForget(dst []byte, campaign string) []byte {
	dst, at := beginFrame(dst, kindForget, campaign)
	sealFrame(dst, at)
	return dst
}

// nextFrame returns the payload of the frame at the start of b and the frame's size, or an
// error saying why b does not start with a whole, intact frame.
func nextFrame(b []byte) (payload []byte, size int, err error) {
	if len(b) < frameHeader {
		return nil, 0, errTorn
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxPayload {
		return nil, 0, fmt.Errorf("%w: %d", errLength, n)
	}
	if uint64(len(b)) < frameHeader+uint64(n) {
		return nil, 0, errTorn
	}
	payload = b[frameHeader : frameHeader+n]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, errChecksum
	}
	return payload, frameHeader + int(n), nil
}

// record is a decoded journal record; campaign and runs point into the payload.
type record struct {
	kind     byte
	campaign []byte
	state    sender.RecipientState // kindFinish
	runs     []byte                // kindFinish: the encoded runs, checked
	start, n uint32                // kindRedrive
}

// parseRecord decodes and checks a payload; a record it returns applies without error.
func parseRecord(p []byte) (record, error) {
	var r record
	if len(p) == 0 {
		return r, errors.New("empty record")
	}
	r.kind, p = p[0], p[1:]
	cl, k := binary.Uvarint(p)
	if k <= 0 || cl > maxCampaignLen || cl > uint64(len(p)-k) {
		return r, errors.New("bad campaign length")
	}
	r.campaign, p = p[k:k+int(cl)], p[k+int(cl):]
	switch r.kind {
	case kindFinish:
		if len(p) == 0 {
			return r, errors.New("finish record without state")
		}
		r.state, r.runs = sender.RecipientState(p[0]), p[1:]
		if r.state < sender.RecipientAccepted || r.state > sender.RecipientFailed {
			return r, fmt.Errorf("finish record with state %d", p[0])
		}
		if len(r.runs) == 0 {
			return r, errors.New("finish record without recipients")
		}
		if err := eachRun(r.runs, nil); err != nil {
			return r, err
		}
	case kindRedrive:
		start, k1 := binary.Uvarint(p)
		if k1 <= 0 {
			return r, errors.New("redrive record: bad start")
		}
		n, k2 := binary.Uvarint(p[k1:])
		if k2 <= 0 || len(p) != k1+k2 || start+n > maxCount || n > maxCount {
			return r, errors.New("redrive record: bad range")
		}
		r.start, r.n = uint32(start), uint32(n)
	case kindForget:
		if len(p) != 0 {
			return r, errors.New("forget record with trailing bytes")
		}
	default:
		return r, fmt.Errorf("unknown record kind %d", r.kind)
	}
	return r, nil
}

// eachRun decodes encoded runs, calling f (if not nil) for each; it fails on a run outside
// the recipient indices or a truncated one.
func eachRun(runs []byte, f func(start, n uint32)) error {
	var end int64
	for len(runs) > 0 {
		d, k1 := binary.Varint(runs)
		if k1 <= 0 {
			return errors.New("finish record: bad run start")
		}
		m, k2 := binary.Uvarint(runs[k1:])
		if k2 <= 0 || m >= maxCount {
			return errors.New("finish record: bad run length")
		}
		if d > maxCount || d < -maxCount {
			return errors.New("finish record: run outside the recipient indices")
		}
		start := end + d
		if start < 0 || start+int64(m)+1 > maxCount {
			return errors.New("finish record: run outside the recipient indices")
		}
		if f != nil {
			f(uint32(start), uint32(m+1))
		}
		end = start + int64(m) + 1
		runs = runs[k1+k2:]
	}
	return nil
}
