package mockpush

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
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
// microseconds since the epoch. A receipt costs 4 bytes of arrival time plus 10-20 bytes of
// set. A reset keeps the memory for the next run: memory a process touches for the first
// time costs far more than reusing it (about 20 µs per 4 KiB page on the machine of
// docs/mockpush.md).
type ledger struct {
	// seed keys the pair hashes; it never changes.
	seed maphash.Seed
	// gen counts resets; a batch made before the last one is dropped.
	gen atomic.Uint64

	mu       sync.Mutex
	key      []byte // scratch for accept
	epoch    time.Time
	received int64
	accepted int64
	dups     int64
	validate int64
	rejected map[string]int64
	seen     hashSet
	arrivals arrivalLog
	// kept, when not nil, lists the tokens accepted per campaign (Config.KeepAccepted).
	kept *acceptedLog
}

func newLedger(epoch time.Time) *ledger {
	return &ledger{seed: maphash.MakeSeed(), rejected: map[string]int64{}, epoch: epoch}
}

// reset clears counts and receipts and starts a new epoch.
func (l *ledger) reset(epoch time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen.Add(1)
	l.epoch = epoch
	l.received, l.accepted, l.dups, l.validate = 0, 0, 0, 0
	l.rejected = map[string]int64{}
	l.seen.reset()
	l.arrivals.reset()
	if l.kept != nil {
		l.kept.reset()
	}
}

// pairHash hashes (token, campaign) with the ledger's seed; key is scratch space.
func (l *ledger) pairHash(key *[]byte, token, campaign string) uint64 {
	b := append((*key)[:0], token...)
	b = append(b, 0)
	b = append(b, campaign...)
	*key = b
	return maphash.Bytes(l.seed, b)
}

// accept records an accepted request at time at.
func (l *ledger) accept(token, campaign string, at time.Time) {
	l.mu.Lock()
	rec := [1]acceptRec{{hash: l.pairHash(&l.key, token, campaign), at: at}}
	l.count(rec[:])
	if l.kept != nil {
		l.kept.add([]byte(campaign), []byte(token))
	}
	l.mu.Unlock()
}

// validated records a validate_only request that passed.
func (l *ledger) validated() {
	l.mu.Lock()
	l.validate++
	l.mu.Unlock()
}

// commit counts a batch of accepted requests made in reset generation gen, and keeps their
// (campaign, token) pairs when l keeps them; a batch from before the last reset is dropped,
// as the reset cleared what it would have counted.
func (l *ledger) commit(gen uint64, recs []acceptRec, pairs []byte) {
	l.mu.Lock()
	if gen == l.gen.Load() {
		l.count(recs)
		if l.kept != nil {
			l.kept.addPairs(pairs)
		}
	}
	l.mu.Unlock()
}

// count records accepted requests; l.mu is held.
func (l *ledger) count(recs []acceptRec) {
	l.received += int64(len(recs))
	l.accepted += int64(len(recs))
	for _, r := range recs {
		l.arrivals.add(offsetMicros(l.epoch, r.at))
	}
	var group [16]uint64
	for len(recs) > 0 {
		n := min(len(recs), len(group))
		for i := range n {
			group[i] = recs[i].hash
		}
		l.dups += int64(n - l.seen.addGroup(group[:n]))
		recs = recs[n:]
	}
}

// acceptRec is one accepted request waiting in a batch.
type acceptRec struct {
	hash uint64
	at   time.Time
}

// acceptBatch collects the accepted requests of one connection so that a ledger counts them
// under one lock acquisition. The connection commits it before it writes any answer, so a
// client never sees an answer that the counts do not hold yet.
type acceptBatch struct {
	l     *ledger
	gen   uint64
	recs  []acceptRec
	pairs []byte // the recs' (campaign, token) pairs when l keeps them (appendPair)
	key   []byte
}

// maxAcceptBatch bounds a batch; a full one is committed at once.
const maxAcceptBatch = 512

// add records an accepted request for l.
func (b *acceptBatch) add(l *ledger, token, campaign string, at time.Time) {
	gen := l.gen.Load()
	if len(b.recs) > 0 && (b.l != l || b.gen != gen) {
		b.commit()
	}
	b.l, b.gen = l, gen
	b.recs = append(b.recs, acceptRec{hash: l.pairHash(&b.key, token, campaign), at: at})
	if l.kept != nil {
		b.pairs = appendPair(b.pairs, campaign, token)
	}
	if len(b.recs) >= maxAcceptBatch {
		b.commit()
	}
}

// commit has the ledger count the batch and empties it.
func (b *acceptBatch) commit() {
	if len(b.recs) == 0 {
		return
	}
	b.l.commit(b.gen, b.recs, b.pairs)
	b.recs, b.pairs = b.recs[:0], b.pairs[:0]
}

// arrival is the time a receipt records for a request that arrived at and was answered after
// delay (a latency fault): the arrival as the client sees it.
func arrival(at time.Time, delay time.Duration) time.Time {
	if delay == 0 {
		return at
	}
	return at.Add(delay)
}

// accept records an accepted request for l: in the connection's batch, or at once.
func (p *peerState) accept(l *ledger, token, campaign string, at time.Time) {
	if p.batch == nil {
		l.accept(token, campaign, at)
		return
	}
	p.batch.add(l, token, campaign, at)
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
	return Receipts{Epoch: l.epoch, Offsets: l.arrivals.appendTo(make([]uint32, 0, l.arrivals.n))}
}

// arrivalLog is an append-only list of arrival offsets in chunks of 1<<16, so that growing
// never copies it; a reset keeps the chunks.
type arrivalLog struct {
	chunks [][]uint32
	n      int
}

const arrivalChunk = 1 << 16

func (a *arrivalLog) add(v uint32) {
	c := a.n / arrivalChunk
	if c == len(a.chunks) {
		a.chunks = append(a.chunks, make([]uint32, arrivalChunk))
	}
	a.chunks[c][a.n%arrivalChunk] = v
	a.n++
}

// reset empties the log and keeps its chunks.
func (a *arrivalLog) reset() { a.n = 0 }

// appendTo appends the offsets in order to dst.
func (a *arrivalLog) appendTo(dst []uint32) []uint32 {
	for c := 0; c*arrivalChunk < a.n; c++ {
		dst = append(dst, a.chunks[c][:min(arrivalChunk, a.n-c*arrivalChunk)]...)
	}
	return dst
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
