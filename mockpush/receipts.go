package mockpush

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// Stats are the mock's own counts, the body of GET /stats.
type Stats struct {
	APNs    PlatformStats `json:"apns"`
	FCM     PlatformStats `json:"fcm"`
	Process *ProcessStats `json:"process,omitempty"`
}

// PlatformStats counts what one mock received. Received = Accepted + the sum of Rejected;
// Accepted = Unique + Duplicates.
type PlatformStats struct {
	// Received counts every push request the mock handled.
	Received int64 `json:"received"`
	// Accepted counts requests answered with success (200).
	Accepted int64 `json:"accepted"`
	// Unique counts accepted requests whose (device token, campaign) pair was new.
	Unique int64 `json:"unique"`
	// Duplicates counts accepted requests whose (device token, campaign) pair had already
	// been accepted since the last reset.
	Duplicates int64 `json:"duplicates"`
	// Rejected counts the other requests by reason (APNs reason or FCM error code, plus
	// "Unauthenticated" for FCM 401 and "ConnectionReset" for injected resets).
	Rejected map[string]int64 `json:"rejected"`
	// ValidateOnly counts FCM requests with validate_only that passed every check: answered
	// 200 as Google does for a dry run, neither delivered nor counted in Received.
	ValidateOnly int64 `json:"validate_only"`
}

// ProcessStats is the mock process's own resource use (getrusage of the whole process).
type ProcessStats struct {
	CPUSeconds  float64 `json:"cpu_seconds"`
	MaxRSSBytes int64   `json:"max_rss_bytes"`
}

// ReadProcessStats returns the calling process's CPU time and peak resident size
// (getrusage), or nil where that is not available.
func ReadProcessStats() *ProcessStats { return processStats() }

// ledger counts one platform's requests and keeps its receipts: a set of 64-bit hashes of
// (token, campaign) for uniqueness and the arrival time of every accepted request as
// microseconds since the epoch. A receipt costs 4 bytes of arrival time plus 8-16 bytes of
// set slot.
type ledger struct {
	mu       sync.Mutex
	seed     maphash.Seed
	h        maphash.Hash
	epoch    time.Time
	received int64
	accepted int64
	dups     int64
	validate int64
	rejected map[string]int64
	seen     hashSet
	arrivals []uint32
}

func newLedger(epoch time.Time) *ledger {
	l := &ledger{seed: maphash.MakeSeed(), rejected: map[string]int64{}, epoch: epoch}
	l.h.SetSeed(l.seed)
	return l
}

// reset clears counts and receipts and starts a new epoch.
func (l *ledger) reset(epoch time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.epoch = epoch
	l.received, l.accepted, l.dups, l.validate = 0, 0, 0, 0
	l.rejected = map[string]int64{}
	l.seen = hashSet{}
	l.arrivals = nil
}

// accept records an accepted request at time at.
func (l *ledger) accept(token, campaign string, at time.Time) {
	l.mu.Lock()
	l.h.Reset()
	l.h.WriteString(token)
	l.h.WriteByte(0)
	l.h.WriteString(campaign)
	sum := l.h.Sum64()
	l.received++
	l.accepted++
	if !l.seen.add(sum) {
		l.dups++
	}
	l.arrivals = append(l.arrivals, offsetMicros(l.epoch, at))
	l.mu.Unlock()
}

// validated records a validate_only request that passed.
func (l *ledger) validated() {
	l.mu.Lock()
	l.validate++
	l.mu.Unlock()
}

// reject records a rejected request.
func (l *ledger) reject(reason string) {
	l.mu.Lock()
	l.received++
	l.rejected[reason]++
	l.mu.Unlock()
}

func (l *ledger) stats() PlatformStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := PlatformStats{Received: l.received, Accepted: l.accepted, Duplicates: l.dups,
		Unique: l.accepted - l.dups, Rejected: make(map[string]int64, len(l.rejected)), ValidateOnly: l.validate}
	for k, v := range l.rejected {
		s.Rejected[k] = v
	}
	return s
}

func (l *ledger) receipts() Receipts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Receipts{Epoch: l.epoch, Offsets: append([]uint32(nil), l.arrivals...)}
}

// offsetMicros is at - epoch in microseconds, clamped to 0..MaxUint32 (about 71 minutes).
func offsetMicros(epoch, at time.Time) uint32 {
	d := at.Sub(epoch).Microseconds()
	if d < 0 {
		return 0
	}
	if d > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(d)
}

// hashSet is an open-addressing set of non-zero 64-bit hashes with linear probing, kept at
// most 3/4 full. 0 marks an empty slot, so a hash of 0 is stored as 1.
type hashSet struct {
	slots []uint64
	n     int
}

// add inserts h and reports whether it was new.
func (s *hashSet) add(h uint64) bool {
	if h == 0 {
		h = 1
	}
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return false
		case 0:
			s.slots[i] = h
			s.n++
			return true
		}
	}
}

// has reports whether h is in the set.
func (s *hashSet) has(h uint64) bool {
	if h == 0 {
		h = 1
	}
	if len(s.slots) == 0 {
		return false
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	size := max(1024, 2*len(old))
	s.slots = make([]uint64, size)
	mask := uint64(size - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := h & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = h
	}
}

// Receipts are the arrival times of one platform's accepted requests since the last reset,
// in the order the mock accepted them (an injected latency can put a later arrival before an
// earlier one).
type Receipts struct {
	// Epoch is the start of the receipts clock: the server's start or last reset.
	Epoch time.Time
	// Offsets are arrival times in microseconds since Epoch (saturating at about 71 min).
	Offsets []uint32
}

// Since returns each arrival time relative to press (negative for arrivals before it).
func (r Receipts) Since(press time.Time) []time.Duration {
	base := r.Epoch.Sub(press)
	out := make([]time.Duration, len(r.Offsets))
	for i, o := range r.Offsets {
		out[i] = base + time.Duration(o)*time.Microsecond
	}
	return out
}

// receiptsMagic starts the binary receipts format.
const receiptsMagic = "SLVR"

// MarshalBinary encodes r in the format of GET /receipts: "SLVR", a version byte (1), three
// zero bytes, the epoch as int64 Unix nanoseconds, the count as uint64, then each offset as
// uint32; all little-endian.
func (r Receipts) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 24+4*len(r.Offsets))
	b = append(b, receiptsMagic...)
	b = append(b, 1, 0, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Epoch.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(r.Offsets)))
	for _, o := range r.Offsets {
		b = binary.LittleEndian.AppendUint32(b, o)
	}
	return b, nil
}

// UnmarshalBinary decodes the format written by MarshalBinary.
func (r *Receipts) UnmarshalBinary(b []byte) error {
	if len(b) < 24 || string(b[:4]) != receiptsMagic {
		return errors.New("receipts: not a receipts body")
	}
	if b[4] != 1 {
		return fmt.Errorf("receipts: unknown version %d", b[4])
	}
	epoch := int64(binary.LittleEndian.Uint64(b[8:]))
	n := binary.LittleEndian.Uint64(b[16:])
	rest := b[24:]
	if uint64(len(rest)) != 4*n {
		return fmt.Errorf("receipts: %d bytes for %d offsets", len(rest), n)
	}
	r.Epoch = time.Unix(0, epoch)
	r.Offsets = make([]uint32, n)
	for i := range r.Offsets {
		r.Offsets[i] = binary.LittleEndian.Uint32(rest[4*i:])
	}
	return nil
}
