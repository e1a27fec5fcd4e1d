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

// A claim word packs, for wordBits consecutive recipients, their claimed bits (low bits), the
// tag of the owner holding them and the word's lease deadline (high bits), so that one CAS
// claims, renews and expires them.
const (
	wordBits  = 16
	wordMask  = 1<<wordBits - 1
	tagBits   = 10
	tagShift  = wordBits
	tagMask   = 1<<tagBits - 1
	tickShift = wordBits + tagBits
	tickBits  = 64 - tickShift // deadline in milliseconds since the ledger began: 8.7 years
	maxTick   = 1<<tickBits - 1
	tickUnit  = time.Millisecond

	tagNone   = 0       // no claim in the word
	tagShared = tagMask // claims of several owners, or of an owner past the last tag
	maxTag    = tagMask - 1

	chunkLen  = 4096 // words per chunk
	chunkSize = chunkLen * wordBits
	maxCount  = 1 << 32 // recipients are uint32 indices
	maxChunks = maxCount / chunkSize
)

// A state word holds the recipients' states for the same wordBits recipients: one plane of
// bits per state. Accepted and rejected are final; failed is cleared by Redrive. The repeated
// plane marks accepted recipients whose acceptance was recorded more than once (a subset of
// accepted).
const (
	accShift  = 0
	rejShift  = wordBits
	failShift = 2 * wordBits
	repShift  = 3 * wordBits
)

// ErrClosed is returned by Finish, Redrive and Forget on a journaled Ledger after Close.
var ErrClosed = errors.New("memledger: closed")

var _ sender.Ledger = (*Ledger)(nil)

// Ledger is an in-process sender.Ledger; see the package documentation. It is safe for
// concurrent use and owns no goroutines. A Ledger from New needs no Close; one from Open
// must be closed.
type Ledger struct {
	now  func() time.Time
	base time.Time

	campaigns sync.Map // campaign ID -> *campaign
	owners    sync.Map // owner -> uint64 tag (1..maxTag)
	tags      atomic.Uint64

	journal *journal // nil: memory only
}

type campaign struct {
	grow sync.Mutex                              // serialises chunk installs and directory growth
	dir  atomic.Pointer[[]atomic.Pointer[chunk]] // replaced on growth; chunks never move

	accepted, rejected, failed atomic.Int64
	repeated                   atomic.Int64 // recipients whose acceptance was recorded twice or more
}

type chunk struct {
	claims [chunkLen]atomic.Uint64 // claimed bits | owner tag | deadline tick
	states [chunkLen]atomic.Uint64 // accepted, rejected and failed planes
}

// New returns an empty in-memory ledger on the system clock.
func New() *Ledger { return NewWithClock(nil) }

// NewWithClock returns an empty in-memory ledger whose leases follow clock (time.Now if
// nil); tests use it to expire leases without waiting.
func NewWithClock(clock func() time.Time) *Ledger {
	if clock == nil {
		clock = time.Now
	}
	return &Ledger{now: clock, base: clock()}
}

func packClaim(held uint32, tag, tick uint64) uint64 {
	return uint64(held) | tag<<tagShift | tick<<tickShift
}

func unpackClaim(w uint64) (held uint32, tag, tick uint64) {
	return uint32(w & wordMask), w >> tagShift & tagMask, w >> tickShift
}

func planes(s uint64) (acc, rej, fail uint32) {
	return uint32(s>>accShift) & wordMask, uint32(s>>rejShift) & wordMask, uint32(s>>failShift) & wordMask
}

// repeatedPlane returns the recipients of a state word accepted more than once.
func repeatedPlane(s uint64) uint32 { return uint32(s>>repShift) & wordMask }

func packStates(acc, rej, fail, rep uint32) uint64 {
	return uint64(acc)<<accShift | uint64(rej)<<rejShift | uint64(fail)<<failShift | uint64(rep)<<repShift
}

// blocked returns the recipients of a state word that cannot be claimed: final or failed.
func blocked(s uint64) uint32 {
	acc, rej, fail := planes(s)
	return acc | rej | fail
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

// tag returns owner's tag, giving it one on first use; owners past the last tag share
// tagShared, whose claims cannot be told apart.
func (l *Ledger) tag(owner string) uint64 {
	if t, ok := l.owners.Load(owner); ok {
		return t.(uint64)
	}
	if l.tags.Load() >= maxTag {
		return tagShared
	}
	t := l.tags.Add(1)
	if t > maxTag {
		return tagShared
	}
	got, _ := l.owners.LoadOrStore(owner, t)
	return got.(uint64)
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

// words walks the words of a campaign: at(w) returns word w's claims and states, or nils
// when the chunk is missing and create is unset.
type words struct {
	c      *campaign
	create bool
	idx    uint64
	cur    *chunk
}

func (ws *words) at(w uint64) (*atomic.Uint64, *atomic.Uint64) {
	if i := w / chunkLen; ws.cur == nil || i != ws.idx {
		ws.idx, ws.cur = i, ws.c.chunk(i, ws.create)
	}
	if ws.cur == nil {
		return nil, nil
	}
	return &ws.cur.claims[w%chunkLen], &ws.cur.states[w%chunkLen]
}

// rangeMask returns the bits of word w that fall in [start, end).
func rangeMask(w, start, end uint64) uint32 {
	lo := max(start, w*wordBits) - w*wordBits
	hi := min(end, (w+1)*wordBits) - w*wordBits
	return uint32(wordMask>>(wordBits-(hi-lo))) << lo
}

// checkRange rejects a range past the last recipient index.
func checkRange(start, n uint32) error {
	if end := uint64(start) + uint64(n); end > maxCount {
		return fmt.Errorf("range [%d, %d) is past the last recipient index", start, end)
	}
	return nil
}

// Reserve allocates room for recipients [0, n) of campaign so that the first claims do not
// pay for it. It is optional: claims grow the campaign as needed.
func (l *Ledger) Reserve(campaign string, n uint32) {
	c := l.campaign(campaign, true)
	for i := uint64(0); i*chunkSize < uint64(n); i++ {
		c.chunk(i, true)
	}
}

// Claim takes, for owner, the recipients in [start, start+n) that are pending (neither
// finished, failed nor under a live claim of anyone, owner included), claims them until
// lease from now, and appends them to dst in ascending order.
func (l *Ledger) Claim(ctx context.Context, campaign, owner string, start, n uint32, lease time.Duration, dst []uint32) ([]uint32, error) {
	if err := ctx.Err(); err != nil {
		return dst, fmt.Errorf("memledger: claim: %w", err)
	}
	if lease <= 0 {
		return dst, fmt.Errorf("memledger: claim: lease %v is not positive", lease)
	}
	if err := checkRange(start, n); err != nil {
		return dst, fmt.Errorf("memledger: claim: %w", err)
	}
	if n == 0 {
		return dst, nil
	}
	if l.journal != nil {
		// A journal that can no longer write (a full disk) could not record what a claim
		// would lead to: nothing more is handed out to push until the process restarts.
		if err := l.journal.failure(); err != nil {
			return dst, fmt.Errorf("memledger: claim: %w", err)
		}
	}
	tag := l.tag(owner)
	ws := words{c: l.campaign(campaign, true), create: true}
	dst = slices.Grow(dst, int(min(n, 1<<16)))
	now, deadline := l.ticks(lease)
	end := uint64(start) + uint64(n)
	for w := uint64(start) / wordBits; w*wordBits < end; w++ {
		claims, states := ws.at(w)
		got := claimWord(claims, states, rangeMask(w, uint64(start), end), tag, now, deadline)
		for got != 0 {
			b := bits.TrailingZeros32(got)
			got &= got - 1
			dst = append(dst, uint32(w*wordBits)+uint32(b))
		}
	}
	return dst, nil
}

// claimWord claims the free recipients of mask in one word for tag and returns them.
func claimWord(claims, states *atomic.Uint64, mask uint32, tag, now, deadline uint64) uint32 {
	for {
		old := claims.Load()
		held, otag, dl := unpackClaim(old)
		if dl <= now {
			held, otag, dl = 0, tagNone, 0 // every claim in the word has expired
		}
		free := mask &^ held &^ blocked(states.Load())
		if free == 0 {
			return 0
		}
		ntag := tag
		if held != 0 && otag != tag {
			ntag = tagShared
		}
		if !claims.CompareAndSwap(old, packClaim(held|free, ntag, max(dl, deadline))) {
			continue
		}
		// Finish sets states before it clears claims: recheck so that a recipient finished
		// between the load above and the CAS is not handed out.
		if lost := free & blocked(states.Load()); lost != 0 {
			clearClaims(claims, lost, tagShared, 0)
			free &^= lost
		}
		return free
	}
}

// clearClaims clears the claimed bits of mask in one word, when the word's claims are tag's
// (or shared); in a word held by another owner it clears only the bits of mask in also,
// which are final and so safe to drop whoever holds them. A word left with no claim loses
// its tag and deadline.
func clearClaims(claims *atomic.Uint64, mask uint32, tag uint64, also uint32) {
	for {
		old := claims.Load()
		held, otag, dl := unpackClaim(old)
		clr := mask
		if otag != tag && otag != tagShared && tag != tagShared {
			clr = mask & also
		}
		next := held &^ clr
		if next == held {
			return
		}
		w := packClaim(next, otag, dl)
		if next == 0 {
			w = 0
		}
		if claims.CompareAndSwap(old, w) {
			return
		}
	}
}

// Renew extends owner's live claims in [start, start+n) to lease from now. It returns an
// error wrapping sender.ErrLeaseLost when a claim in the range that owner may hold has run
// out (it is not revived: someone else may take it at any moment), or when owner holds no
// claim in the range at all (it finished or released them, or others took them after they
// ran out). Words whose claims belong to another owner are left alone. Because leases are
// kept per word (see the package documentation), renewing also extends the other claims of
// the range's first and last words.
func (l *Ledger) Renew(ctx context.Context, campaign, owner string, start, n uint32, lease time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memledger: renew: %w", err)
	}
	if lease <= 0 {
		return fmt.Errorf("memledger: renew: lease %v is not positive", lease)
	}
	if err := checkRange(start, n); err != nil {
		return fmt.Errorf("memledger: renew: %w", err)
	}
	c := l.campaign(campaign, false)
	if c == nil {
		return fmt.Errorf("memledger: renew %s [%d, +%d): unknown campaign: %w", campaign, start, n, sender.ErrLeaseLost)
	}
	tag := l.tag(owner)
	ws := words{c: c}
	now, deadline := l.ticks(lease)
	end := uint64(start) + uint64(n)
	held, lost := false, false
	for w := uint64(start) / wordBits; w*wordBits < end; w++ {
		claims, _ := ws.at(w)
		if claims == nil {
			continue
		}
		mine, gone := renewWord(claims, rangeMask(w, uint64(start), end), tag, now, deadline)
		held = held || mine
		lost = lost || gone
	}
	switch {
	case lost:
		return fmt.Errorf("memledger: renew %s [%d, +%d): a claim ran out: %w", campaign, start, n, sender.ErrLeaseLost)
	case !held:
		return fmt.Errorf("memledger: renew %s [%d, +%d): %s holds nothing here: %w", campaign, start, n, owner, sender.ErrLeaseLost)
	}
	return nil
}

// renewWord extends the deadline of a word whose claims in mask are tag's (or shared). It
// reports whether the word holds such claims, and whether they had run out.
func renewWord(claims *atomic.Uint64, mask uint32, tag, now, deadline uint64) (mine, lost bool) {
	for {
		old := claims.Load()
		held, otag, dl := unpackClaim(old)
		if held&mask == 0 || (otag != tag && otag != tagShared) {
			return false, false
		}
		if dl <= now {
			return false, true
		}
		if dl >= deadline || claims.CompareAndSwap(old, packClaim(held, otag, deadline)) {
			return true, false
		}
	}
}

// Finish records recipients in state (see sender.Ledger) and drops their claims: owner's,
// and anyone's on recipients that are now final. Recipients need not be claimed, sorted or
// distinct; contiguous runs in ascending order are fastest (and journal compactly). On a
// journaled Ledger, Finish returns once the change is on disk.
func (l *Ledger) Finish(ctx context.Context, campaign, owner string, state sender.RecipientState, recipients []uint32) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memledger: finish: %w", err)
	}
	if state < sender.RecipientAccepted || state > sender.RecipientFailed {
		return fmt.Errorf("memledger: finish: invalid state %v", state)
	}
	if len(recipients) == 0 {
		return nil
	}
	tag := l.tag(owner)
	if l.journal != nil {
		if err := l.journal.finish(l, campaign, tag, state, recipients); err != nil {
			return fmt.Errorf("memledger: finish: %w", err)
		}
		return nil
	}
	ws := words{c: l.campaign(campaign, true), create: true}
	forRuns(recipients, func(s, n uint32) { ws.finish(tag, state, s, n) })
	return nil
}

// forRuns calls f for each run of consecutive ascending recipients.
func forRuns(recipients []uint32, f func(start, n uint32)) {
	for i := 0; i < len(recipients); {
		j := i + 1
		for j < len(recipients) && recipients[j-1] != 1<<32-1 && recipients[j] == recipients[j-1]+1 {
			j++
		}
		f(recipients[i], uint32(j-i))
		i = j
	}
}

// finish applies Finish to the recipients [start, start+n) of ws's campaign (which must be
// walked with create set).
func (ws *words) finish(tag uint64, state sender.RecipientState, start, n uint32) {
	end := uint64(start) + uint64(n)
	var acc, rej, fail, again int64
	for w := uint64(start) / wordBits; w*wordBits < end; w++ {
		claims, states := ws.at(w)
		mask := rangeMask(w, uint64(start), end)
		set, unfailed, final, repeated := finishWord(states, mask, state)
		clearClaims(claims, mask, tag, final)
		switch state {
		case sender.RecipientAccepted:
			acc += int64(bits.OnesCount32(set))
			again += int64(bits.OnesCount32(repeated))
		case sender.RecipientRejected:
			rej += int64(bits.OnesCount32(set))
		case sender.RecipientFailed:
			fail += int64(bits.OnesCount32(set))
		}
		fail -= int64(bits.OnesCount32(unfailed))
	}
	ws.c.add(acc, rej, fail)
	if again != 0 {
		ws.c.repeated.Add(again)
	}
}

func (c *campaign) add(acc, rej, fail int64) {
	if acc != 0 {
		c.accepted.Add(acc)
	}
	if rej != 0 {
		c.rejected.Add(rej)
	}
	if fail != 0 {
		c.failed.Add(fail)
	}
}

// finishWord sets state on the recipients of mask that may take it (final ones never change;
// failed ones may become final) and returns those it set, those that were failed before, the
// word's final recipients after the change and, when state is accepted, the recipients of
// mask accepted before and now marked repeated for the first time.
func finishWord(states *atomic.Uint64, mask uint32, state sender.RecipientState) (set, unfailed, final, repeated uint32) {
	for {
		old := states.Load()
		acc, rej, fail := planes(old)
		rep := repeatedPlane(old)
		repeated = 0
		if state == sender.RecipientAccepted {
			repeated = mask & acc &^ rep
		}
		set = mask &^ (acc | rej)
		if state == sender.RecipientFailed {
			set &^= fail
		}
		if set == 0 && repeated == 0 {
			return 0, 0, acc | rej, 0
		}
		unfailed = 0
		switch state {
		case sender.RecipientAccepted:
			unfailed, acc, fail = fail&set, acc|set, fail&^set
		case sender.RecipientRejected:
			unfailed, rej, fail = fail&set, rej|set, fail&^set
		case sender.RecipientFailed:
			fail |= set
		}
		if states.CompareAndSwap(old, packStates(acc, rej, fail, rep|repeated)) {
			return set, unfailed, acc | rej, repeated
		}
	}
}

// Release gives owner's claims on recipients back: they are pending again at once. Claims
// held by another owner are left alone (they are not owner's to give), as are finished
// recipients. It is idempotent; recipients need not be sorted.
func (l *Ledger) Release(ctx context.Context, campaign, owner string, recipients []uint32) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memledger: release: %w", err)
	}
	c := l.campaign(campaign, false)
	if c == nil || len(recipients) == 0 {
		return nil
	}
	tag := l.tag(owner)
	ws := words{c: c}
	forWords(recipients, func(w uint64, mask uint32) {
		if claims, _ := ws.at(w); claims != nil {
			clearClaims(claims, mask, tag, 0)
		}
	})
	return nil
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

// Remaining counts the recipients in [start, start+n) that are neither final nor failed.
func (l *Ledger) Remaining(ctx context.Context, campaign string, start, n uint32) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memledger: remaining: %w", err)
	}
	if err := checkRange(start, n); err != nil {
		return 0, fmt.Errorf("memledger: remaining: %w", err)
	}
	c := l.campaign(campaign, false)
	if c == nil {
		return int(n), nil
	}
	ws := words{c: c}
	left := int(n)
	end := uint64(start) + uint64(n)
	for w := uint64(start) / wordBits; w*wordBits < end; w++ {
		if _, states := ws.at(w); states != nil {
			left -= bits.OnesCount32(rangeMask(w, uint64(start), end) & blocked(states.Load()))
		}
	}
	return left, nil
}

// Redrive makes the failed recipients in [start, start+n) pending again and returns how many
// it changed. On a journaled Ledger it returns once the change is on disk.
func (l *Ledger) Redrive(ctx context.Context, campaign string, start, n uint32) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memledger: redrive: %w", err)
	}
	if err := checkRange(start, n); err != nil {
		return 0, fmt.Errorf("memledger: redrive: %w", err)
	}
	if l.journal != nil {
		changed, err := l.journal.redrive(l, campaign, start, n)
		if err != nil {
			return changed, fmt.Errorf("memledger: redrive: %w", err)
		}
		return changed, nil
	}
	return l.redrive(campaign, start, n), nil
}

// redrive applies Redrive in memory.
func (l *Ledger) redrive(campaign string, start, n uint32) int {
	c := l.campaign(campaign, false)
	if c == nil {
		return 0
	}
	ws := words{c: c}
	changed := 0
	end := uint64(start) + uint64(n)
	for w := uint64(start) / wordBits; w*wordBits < end; w++ {
		_, states := ws.at(w)
		if states == nil {
			continue
		}
		mask := uint64(rangeMask(w, uint64(start), end)) << failShift
		for {
			old := states.Load()
			if old&mask == 0 {
				break
			}
			if states.CompareAndSwap(old, old&^mask) {
				changed += bits.OnesCount64(old & mask)
				break
			}
		}
	}
	c.add(0, 0, -int64(changed))
	return changed
}

// Counts returns campaign's totals by state; an unknown campaign has all zero. It reads
// counters kept by Finish and Redrive, so it is cheap.
func (l *Ledger) Counts(ctx context.Context, campaign string) (sender.LedgerCounts, error) {
	if err := ctx.Err(); err != nil {
		return sender.LedgerCounts{}, fmt.Errorf("memledger: counts: %w", err)
	}
	c := l.campaign(campaign, false)
	if c == nil {
		return sender.LedgerCounts{}, nil
	}
	return sender.LedgerCounts{Accepted: c.accepted.Load(), Rejected: c.rejected.Load(), Failed: c.failed.Load(),
		Repeated: c.repeated.Load()}, nil
}

// Held counts campaign's recipients under a live claim. It reads every word, so it is meant
// for reports and tests, not hot paths.
func (l *Ledger) Held(campaign string) int {
	c := l.campaign(campaign, false)
	if c == nil {
		return 0
	}
	now, _ := l.ticks(0)
	held := 0
	dir := c.chunks()
	for j := range dir {
		ch := dir[j].Load()
		if ch == nil {
			continue
		}
		for i := range ch.claims {
			if h, _, dl := unpackClaim(ch.claims[i].Load()); dl > now {
				held += bits.OnesCount32(h)
			}
		}
	}
	return held
}

// Forget drops everything recorded for campaign (on a journaled Ledger, durably). Call it
// only when no other call on the campaign can still run.
func (l *Ledger) Forget(ctx context.Context, campaign string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memledger: forget: %w", err)
	}
	if l.journal != nil {
		if err := l.journal.forget(l, campaign); err != nil {
			return fmt.Errorf("memledger: forget: %w", err)
		}
		return nil
	}
	l.campaigns.Delete(campaign)
	return nil
}
