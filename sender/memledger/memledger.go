package memledger

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/salvopush/salvo/sender"
)

// A claim word packs the claimed bits of wordBits consecutive recipients (low bits) with the
// lease deadline of the word (high bits) so that one CAS claims, extends and expires.
const (
	wordBits  = 24
	wordMask  = 1<<wordBits - 1
	tickBits  = 64 - wordBits // deadline in milliseconds since the ledger began: 34 years
	maxTick   = 1<<tickBits - 1
	tickUnit  = time.Millisecond
	chunkLen  = 4096 // words per chunk
	chunkSize = chunkLen * wordBits
	maxCount  = 1 << 32 // recipients are uint32 indices
	maxChunks = (maxCount + chunkSize - 1) / chunkSize
)

var _ sender.Ledger = (*Ledger)(nil)

// Ledger is an in-process sender.Ledger. Each campaign has a claimed and a done bit per
// recipient, in chunks of 98,304 recipients (48 KiB) allocated when first touched; claims,
// Done and Release are lock-free (one atomic CAS per 24 recipients). It is safe for concurrent use and owns no
// goroutines; there is nothing to close.
//
// Leases are kept per word of 24 consecutive recipients: the word's deadline is the latest
// lease of the claims in it, kept while any claim bit of the word is set. A claim thus never
// ends early, but an expired claim that shares a word with a later one becomes claimable
// again only when the later lease also runs out, or when every other claim of the word is
// finished or released. Deadlines have millisecond resolution, rounded up.
type Ledger struct {
	now  func() time.Time
	base time.Time

	campaigns sync.Map // campaign ID -> *campaign
}

type campaign struct {
	grow sync.Mutex                              // serialises chunk installs and directory growth
	dir  atomic.Pointer[[]atomic.Pointer[chunk]] // replaced on growth; chunks never move
}

type chunk struct {
	claims [chunkLen]atomic.Uint64 // claimed bits | deadline tick << wordBits
	done   [chunkLen]atomic.Uint32 // done bits (low wordBits)
}

// New returns an empty ledger on the system clock.
func New() *Ledger { return NewWithClock(nil) }

// NewWithClock returns an empty ledger whose leases follow clock (time.Now if nil); tests
// use it to expire leases without waiting.
func NewWithClock(clock func() time.Time) *Ledger {
	if clock == nil {
		clock = time.Now
	}
	return &Ledger{now: clock, base: clock()}
}

// ticks returns the current time in ticks, rounded down, and the end of a lease from now,
// rounded up, so that a lease ends no earlier than asked. Both are at least 1, so that a
// zero deadline is always past.
func (l *Ledger) ticks(lease time.Duration) (now, deadline uint64) {
	d := max(l.now().Sub(l.base), 0)
	now = min(uint64(d/tickUnit)+1, maxTick)
	end := uint64(d) + uint64(lease) + uint64(tickUnit) - 1
	deadline = min(end/uint64(tickUnit)+1, maxTick)
	return now, deadline
}

func (l *Ledger) campaign(id string, create bool) *campaign {
	if c, ok := l.campaigns.Load(id); ok {
		return c.(*campaign)
	}
	if !create {
		return nil
	}
	c, _ := l.campaigns.LoadOrStore(id, new(campaign))
	return c.(*campaign)
}

// chunk returns chunk i, allocating it if create is set; otherwise a missing chunk is nil.
func (c *campaign) chunk(i uint64, create bool) *chunk {
	if p := c.dir.Load(); p != nil && i < uint64(len(*p)) {
		if ch := (*p)[i].Load(); ch != nil {
			return ch
		}
	}
	if !create {
		return nil
	}
	// Installs and copies happen under the lock, so no install is lost to a copy; readers
	// of an older directory that miss a chunk come here and find it.
	c.grow.Lock()
	defer c.grow.Unlock()
	var dir []atomic.Pointer[chunk]
	if p := c.dir.Load(); p != nil {
		dir = *p
	}
	if i >= uint64(len(dir)) {
		grown := make([]atomic.Pointer[chunk], min(max(i+1, 2*uint64(len(dir))), maxChunks))
		for j := range dir {
			grown[j].Store(dir[j].Load())
		}
		c.dir.Store(&grown)
		dir = grown
	}
	ch := dir[i].Load()
	if ch == nil {
		ch = new(chunk)
		dir[i].Store(ch)
	}
	return ch
}

// chunks returns the current directory; entries may be nil.
func (c *campaign) chunks() []atomic.Pointer[chunk] {
	if p := c.dir.Load(); p != nil {
		return *p
	}
	return nil
}

// words walks the words of a campaign: at(w) returns word w's claims and done bits, or nils
// when the chunk is missing and create is unset.
type words struct {
	c      *campaign
	create bool
	idx    uint64
	cur    *chunk
}

func (ws *words) at(w uint64) (*atomic.Uint64, *atomic.Uint32) {
	if i := w / chunkLen; ws.cur == nil || i != ws.idx {
		ws.idx, ws.cur = i, ws.c.chunk(i, ws.create)
		if ws.cur == nil {
			return nil, nil
		}
	}
	return &ws.cur.claims[w%chunkLen], &ws.cur.done[w%chunkLen]
}

// Reserve allocates room for recipients [0, n) of campaign so that the first claims do not
// pay for it. It is optional: claims grow the campaign as needed.
func (l *Ledger) Reserve(campaign string, n uint32) {
	c := l.campaign(campaign, true)
	for i := uint64(0); i*chunkSize < uint64(n); i++ {
		c.chunk(i, true)
	}
}

// Forget drops everything recorded for campaign. Call it only when no claim, Done or
// Release of the campaign can still run.
func (l *Ledger) Forget(campaign string) { l.campaigns.Delete(campaign) }

// Claim takes the recipients in [start, start+n) that are neither done nor under a live
// claim, claims them until lease from now, and appends them to dst in ascending order. Two
// claims whose leases are both live never return the same recipient, and a recipient whose
// Done has returned is never returned again.
func (l *Ledger) Claim(ctx context.Context, campaign string, start, n uint32, lease time.Duration, dst []uint32) ([]uint32, error) {
	if err := ctx.Err(); err != nil {
		return dst, fmt.Errorf("memledger: claim: %w", err)
	}
	if lease <= 0 {
		return dst, fmt.Errorf("memledger: claim: lease %v is not positive", lease)
	}
	end := uint64(start) + uint64(n)
	if end > maxCount {
		return dst, fmt.Errorf("memledger: claim: range [%d, %d) is past the last recipient index", start, end)
	}
	if n == 0 {
		return dst, nil
	}
	ws := words{c: l.campaign(campaign, true), create: true}
	dst = slices.Grow(dst, int(min(n, 1<<16)))
	now, deadline := l.ticks(lease)
	for w := uint64(start) / wordBits; w*wordBits < end; w++ {
		claims, done := ws.at(w)
		lo := max(uint64(start), w*wordBits) - w*wordBits
		hi := min(end, (w+1)*wordBits) - w*wordBits
		mask := uint32(wordMask>>(wordBits-(hi-lo))) << lo
		got := claimWord(claims, done, mask, now, deadline)
		for got != 0 {
			b := bits.TrailingZeros32(got)
			got &= got - 1
			dst = append(dst, uint32(w*wordBits)+uint32(b))
		}
	}
	return dst, nil
}

// claimWord claims the free recipients of mask in one word and returns them.
func claimWord(claims *atomic.Uint64, done *atomic.Uint32, mask uint32, now, deadline uint64) uint32 {
	for {
		old := claims.Load()
		held, dl := uint32(old&wordMask), old>>wordBits
		if dl <= now {
			held, dl = 0, 0 // every claim in the word has expired
		}
		free := mask &^ held &^ done.Load()
		if free == 0 {
			return 0
		}
		if !claims.CompareAndSwap(old, uint64(held|free)|max(dl, deadline)<<wordBits) {
			continue
		}
		// Done sets its bits before it clears claims: recheck so that a recipient finished
		// between the load above and the CAS is not handed out.
		if lost := free & done.Load(); lost != 0 {
			clearWord(claims, lost)
			free &^= lost
		}
		return free
	}
}

// clearWord clears the claimed bits of mask in one word.
func clearWord(claims *atomic.Uint64, mask uint32) {
	for {
		old := claims.Load()
		held := uint32(old&wordMask) &^ mask
		if held == uint32(old&wordMask) {
			return
		}
		next := uint64(held) | old&^wordMask
		if held == 0 {
			next = 0 // no claims left: no deadline either
		}
		if claims.CompareAndSwap(old, next) {
			return
		}
	}
}

// Done marks recipients finished and clears their claims; they are never claimed again.
// It is idempotent, and recipients need not be claimed nor sorted (sorted is fastest).
func (l *Ledger) Done(ctx context.Context, campaign string, recipients []uint32) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memledger: done: %w", err)
	}
	if len(recipients) == 0 {
		return nil
	}
	ws := words{c: l.campaign(campaign, true), create: true}
	forWords(recipients, func(w uint64, mask uint32) {
		claims, done := ws.at(w)
		done.Or(mask)
		clearWord(claims, mask)
	})
	return nil
}

// Release clears the claims on recipients so that they can be claimed again; finished
// recipients stay finished. It is idempotent. It must be called only by the claimer, before
// its lease runs out: after that the recipients may be claimed by someone else, and
// releasing would hand them out a second time.
func (l *Ledger) Release(ctx context.Context, campaign string, recipients []uint32) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memledger: release: %w", err)
	}
	c := l.campaign(campaign, false)
	if c == nil || len(recipients) == 0 {
		return nil
	}
	ws := words{c: c}
	forWords(recipients, func(w uint64, mask uint32) {
		if claims, _ := ws.at(w); claims != nil {
			clearWord(claims, mask)
		}
	})
	return nil
}

// Remaining counts the recipients in [start, start+n) that are not done.
func (l *Ledger) Remaining(ctx context.Context, campaign string, start, n uint32) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memledger: remaining: %w", err)
	}
	c := l.campaign(campaign, false)
	if c == nil {
		return int(n), nil
	}
	ws := words{c: c}
	left := 0
	for i := uint64(start); i < uint64(start)+uint64(n); {
		w := i / wordBits
		hi := min((w+1)*wordBits, uint64(start)+uint64(n))
		var mask uint32
		for b := i; b < hi; b++ {
			mask |= 1 << (b % wordBits)
		}
		if _, done := ws.at(w); done == nil {
			left += bits.OnesCount32(mask)
		} else {
			left += bits.OnesCount32(mask &^ done.Load())
		}
		i = hi
	}
	return left, nil
}

// forWords calls f once per run of recipients that fall in the same word, with their bits.
func forWords(recipients []uint32, f func(w uint64, mask uint32)) {
	cur := uint64(recipients[0]) / wordBits
	base, mask := cur*wordBits, uint32(0)
	for _, r := range recipients {
		off := uint64(r) - base // wraps around, and so is large, when r < base
		if off >= wordBits {
			f(cur, mask)
			cur, mask = uint64(r)/wordBits, 0
			base = cur * wordBits
			off = uint64(r) - base
		}
		mask |= 1 << off
	}
	f(cur, mask)
}

// Counts is a snapshot of one campaign in the ledger.
type Counts struct {
	Done    int // recipients finished
	Claimed int // recipients under a live claim, not finished
}

// ErrUnknownCampaign is returned by Counts for a campaign the ledger has never seen.
var ErrUnknownCampaign = errors.New("unknown campaign")

// Counts counts the finished and claimed recipients of campaign; it reads every word, so it
// is meant for reports and tests, not hot paths.
func (l *Ledger) Counts(campaign string) (Counts, error) {
	c := l.campaign(campaign, false)
	if c == nil {
		return Counts{}, fmt.Errorf("memledger: counts %q: %w", campaign, ErrUnknownCampaign)
	}
	now, _ := l.ticks(0)
	var out Counts
	dir := c.chunks()
	for j := range dir {
		ch := dir[j].Load()
		if ch == nil {
			continue
		}
		for i := range ch.claims {
			d := ch.done[i].Load()
			out.Done += bits.OnesCount32(d)
			if w := ch.claims[i].Load(); w>>wordBits > now {
				out.Claimed += bits.OnesCount32(uint32(w&wordMask) &^ d)
			}
		}
	}
	return out, nil
}
