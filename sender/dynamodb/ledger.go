package dynamodb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/salvopush/salvo/sender"
)

// Ledger table attributes. One item per (campaign, range start):
//
//	campaign  S  partition key
//	start     N  sort key: the first recipient index of the range
//	n         N  recipients in the range [start, start+n)
//	done      B  bitmap of ceil(n/8) bytes; bit i (byte i/8, bit i%8, least significant
//	             first) set means recipient start+i is final (accepted or rejected)
//	rej       B  bitmap likewise: the final recipients that were rejected (a subset of done)
//	fail      B  bitmap likewise: failed recipients (never final ones), cleared by Redrive
//	rep       B  bitmap likewise: accepted recipients whose acceptance was recorded more
//	             than once (a subset of done)
//	ver       N  bumped by every change of the bitmaps, for optimistic concurrency
//	wid       S  a random ID of the last Finish write, so that a writer whose answer was
//	             lost (and whose retry then failed its condition) finds its write landed
//	owner     S  the send loop holding the range's lease (absent when free)
//	expires   N  the lease's end, Unix milliseconds by the claimer's clock
//
// Items written before rej, fail and rep existed lack them; they read as all clear.
const (
	attrCampaign = "campaign"
	attrStart    = "start"
	attrN        = "n"
	attrDone     = "done"
	attrRej      = "rej"
	attrFail     = "fail"
	attrRep      = "rep"
	attrVer      = "ver"
	attrWriter   = "wid"
	attrOwner    = "owner"
	attrExpires  = "expires"
)

// LedgerOptions tune a Ledger.
type LedgerOptions struct {
	Options
	// Clock gives the time leases are written with and compared to (time.Now if nil); tests
	// use it to expire leases without waiting.
	Clock func() time.Time
	// Owner is ignored: owners are named per call, one per send loop (sender.Ledger).
	//
	// Deprecated: leave it empty; it will be removed.
	Owner string
}

// Ledger records the fate of every recipient of a campaign in a DynamoDB table, one item
// per batch range; it implements sender.Ledger.
//
// A lease covers a whole range: Claim takes it for one owner (a send loop) when nobody
// holds it under a live lease, that owner included, and returns the range's recipients
// that are neither final nor failed. So a range is claimed, worked and finished by one
// owner at a time, which is how the pipeline works (one batch message per range), and no
// recipient is ever held by two live send loops, of one process or of two. The lease drops
// once everything the owner claimed in the range is finished or released, or when it runs
// out; until then what the owner released is not claimable by others (the lease is the
// range's, not the recipient's).
//
// Callers must always claim the same ranges (the same start and n for a given recipient):
// claiming a start with another n is an error. Finish takes recipients of ranges claimed at
// least once, by anyone: the range's item holds them. Release takes any recipients and
// ignores those the owner does not hold here.
//
// Leases compare expiry times written by one process's clock with another's: keep clocks in
// sync (NTP) and leases well above the expected skew. A lease that runs out while its owner
// is still pushing lets another owner claim the range; Renew then fails with
// sender.ErrLeaseLost, so the first owner stops, and what it finishes meanwhile is still
// recorded, but the pushes it had in flight may be made twice.
//
// A Ledger is safe for concurrent use. It keeps in memory what its own owners hold, and a
// copy of the items they work on to save a read before each write.
type Ledger struct {
	client *awsdynamodb.Client
	table  string
	opts   Options
	now    func() time.Time

	mu     sync.Mutex
	ranges map[string][]*span // campaign -> ranges its owners hold here, sorted by start
}

// span is a range some owner of this Ledger holds (or held) a lease on.
type span struct {
	campaign string
	start, n uint32

	mu       sync.Mutex
	item     rangeItem         // the item as last read or written
	holders  map[string][]byte // owner -> bitmap of what it claimed and has not finished or released
	detached bool              // removed from Ledger.ranges; look again
}

// rangeItem is a ledger item's bitmaps and version.
type rangeItem struct {
	n                    uint32
	done, rej, fail, rep []byte
	ver                  int64
	owner                string
	writer               string // the wid of the last Finish write
}

var _ sender.Ledger = (*Ledger)(nil)

// NewLedger returns a Ledger over table (made by CreateTables). It makes no call.
func NewLedger(client *awsdynamodb.Client, table string, opts LedgerOptions) (*Ledger, error) {
	if table == "" {
		return nil, errors.New("dynamodb: ledger table name is empty")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	now := opts.Clock
	if now == nil {
		now = time.Now
	}
	return &Ledger{
		client: client,
		table:  table,
		opts:   opts.Options.withDefaults(),
		now:    now,
		ranges: map[string][]*span{},
	}, nil
}

func ledgerKey(campaign string, start uint32) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrCampaign: &types.AttributeValueMemberS{Value: campaign},
		attrStart:    &types.AttributeValueMemberN{Value: strconv.FormatUint(uint64(start), 10)},
	}
}

func num[T int64 | uint32](v T) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(int64(v), 10)}
}

func strAttr(s string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: s} }

func checkArgs(campaign, owner string, start, n uint32) error {
	if campaign == "" || owner == "" || n == 0 || uint64(start)+uint64(n) > 1<<32 {
		return fmt.Errorf("bad arguments (campaign %q, owner %q, start %d, n %d)", campaign, owner, start, n)
	}
	return nil
}

// Claim takes the lease on the range [start, start+n) of campaign for owner, unless someone
// (owner included) holds a live lease on it, and appends the range's recipients that are
// neither final nor failed to dst. It appends nothing when the range is held, or when
// nothing in it is left to push (such a range is not kept leased).
func (l *Ledger) Claim(ctx context.Context, campaign, owner string, start, n uint32, lease time.Duration, dst []uint32) ([]uint32, error) {
	if err := checkArgs(campaign, owner, start, n); err != nil || lease <= 0 {
		return dst, fmt.Errorf("dynamodb: ledger: claim: %w", cmp.Or(err, fmt.Errorf("lease %v is not positive", lease)))
	}
	now := l.now()
	exp := now.Add(lease).UnixMilli()
	zeros := &types.AttributeValueMemberB{Value: make([]byte, (n+7)/8)}
	out, err := l.client.UpdateItem(ctx, &awsdynamodb.UpdateItemInput{
		TableName: aws.String(l.table),
		Key:       ledgerKey(campaign, start),
		UpdateExpression: aws.String("SET #o = :me, #e = :exp, #n = if_not_exists(#n, :n), #d = if_not_exists(#d, :zeros), " +
			"#r = if_not_exists(#r, :zeros), #f = if_not_exists(#f, :zeros), #v = if_not_exists(#v, :zero)"),
		ConditionExpression: aws.String("attribute_not_exists(#o) OR #e <= :now"),
		ExpressionAttributeNames: map[string]string{"#o": attrOwner, "#e": attrExpires, "#n": attrN,
			"#d": attrDone, "#r": attrRej, "#f": attrFail, "#v": attrVer},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me": strAttr(owner), ":exp": num(exp), ":now": num(now.UnixMilli()),
			":n": num(n), ":zeros": zeros, ":zero": num(int64(0)),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		if isConditionFailed(err) {
			return dst, nil // leased by someone
		}
		return dst, fmt.Errorf("dynamodb: ledger: claim %s/%d: %w", campaign, start, err)
	}
	it, err := decodeRange(out.Attributes)
	if err == nil && it.n != n {
		err = fmt.Errorf("range holds %d recipients, claimed with %d (callers must claim the same ranges)", it.n, n)
	}
	if err != nil {
		_ = l.dropLease(ctx, campaign, owner, start) // best effort; the lease runs out anyway
		return dst, fmt.Errorf("dynamodb: ledger: claim %s/%d: %w", campaign, start, err)
	}
	claimed := make([]byte, len(it.done))
	before := len(dst)
	for i := range n {
		if !bit(it.done, i) && !bit(it.fail, i) {
			setBit(claimed, i)
			dst = append(dst, start+i)
		}
	}
	if len(dst) == before {
		if err := l.dropLease(ctx, campaign, owner, start); err != nil {
			return dst, fmt.Errorf("dynamodb: ledger: claim %s/%d: drop the lease of a finished range: %w", campaign, start, err)
		}
		return dst, nil
	}
	for {
		s := l.span(campaign, start, n)
		s.mu.Lock()
		if s.detached {
			s.mu.Unlock()
			continue
		}
		if it.ver >= s.item.ver {
			s.item = it
		}
		s.holders[owner] = claimed
		s.mu.Unlock()
		return dst, nil
	}
}

// Renew extends owner's lease on [start, start+n) to lease from now, if owner still holds
// it; otherwise (it ran out, someone else took it, or owner finished or released everything
// it claimed there) it returns an error wrapping sender.ErrLeaseLost.
func (l *Ledger) Renew(ctx context.Context, campaign, owner string, start, n uint32, lease time.Duration) error {
	if err := checkArgs(campaign, owner, start, n); err != nil || lease <= 0 {
		return fmt.Errorf("dynamodb: ledger: renew: %w", cmp.Or(err, fmt.Errorf("lease %v is not positive", lease)))
	}
	now := l.now()
	_, err := l.client.UpdateItem(ctx, &awsdynamodb.UpdateItemInput{
		TableName:                aws.String(l.table),
		Key:                      ledgerKey(campaign, start),
		UpdateExpression:         aws.String("SET #e = :exp"),
		ConditionExpression:      aws.String("#o = :me AND #e > :now AND #n = :n"),
		ExpressionAttributeNames: map[string]string{"#o": attrOwner, "#e": attrExpires, "#n": attrN},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me": strAttr(owner), ":exp": num(now.Add(lease).UnixMilli()), ":now": num(now.UnixMilli()), ":n": num(n),
		},
	})
	if isConditionFailed(err) {
		return fmt.Errorf("dynamodb: ledger: renew %s/%d: %s does not hold it: %w", campaign, start, owner, sender.ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("dynamodb: ledger: renew %s/%d: %w", campaign, start, err)
	}
	return nil
}

// Remaining counts the recipients in [start, start+n) of campaign that are neither final
// nor failed (a consistent read of the range's item; a range never claimed counts whole).
func (l *Ledger) Remaining(ctx context.Context, campaign string, start, n uint32) (int, error) {
	out, err := l.client.GetItem(ctx, &awsdynamodb.GetItemInput{
		TableName:      aws.String(l.table),
		Key:            ledgerKey(campaign, start),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return 0, fmt.Errorf("dynamodb: ledger: remaining %s/%d: %w", campaign, start, err)
	}
	if len(out.Item) == 0 {
		return int(n), nil
	}
	it, err := decodeRange(out.Item)
	if err != nil {
		return 0, fmt.Errorf("dynamodb: ledger: remaining %s/%d: %w", campaign, start, err)
	}
	left := int(n - min(n, it.n))
	for i := range min(n, it.n) {
		if !bit(it.done, i) && !bit(it.fail, i) {
			left++
		}
	}
	return left, nil
}

// Finish records recipients in state, one conditional write per range (merged with
// concurrent writers, never lost; see sender.Ledger for which states overwrite which), and
// drops owner's claims on them. The write that leaves owner nothing claimed in a range also
// drops owner's lease on it.
func (l *Ledger) Finish(ctx context.Context, campaign, owner string, state sender.RecipientState, recipients []uint32) error {
	if state < sender.RecipientAccepted || state > sender.RecipientFailed {
		return fmt.Errorf("dynamodb: ledger: finish: invalid state %v", state)
	}
	groups, err := l.group(ctx, campaign, recipients, true)
	if err != nil {
		return fmt.Errorf("dynamodb: ledger: finish: %w", err)
	}
	for _, g := range groups {
		if err := l.finish(ctx, campaign, owner, state, g.span, g.rs); err != nil {
			return fmt.Errorf("dynamodb: ledger: finish %s/%d: %w", campaign, g.span.start, err)
		}
	}
	return nil
}

// apply returns the bitmaps of it after recording rs (offsets in the range) in state, and
// whether anything changed. Accepted recipients accepted again are marked repeated.
func apply(it rangeItem, state sender.RecipientState, rs []byte) (rangeItem, bool) {
	it.done, it.rej, it.fail, it.rep = slices.Clone(it.done), slices.Clone(it.rej), slices.Clone(it.fail), slices.Clone(it.rep)
	changed := false
	for i, m := range rs {
		if again := m & it.done[i] &^ it.rej[i] &^ it.rep[i]; state == sender.RecipientAccepted && again != 0 {
			it.rep[i] |= again
			changed = true
		}
		set := m &^ it.done[i]
		if state == sender.RecipientFailed {
			set &^= it.fail[i]
		}
		if set == 0 {
			continue
		}
		changed = true
		switch state {
		case sender.RecipientAccepted:
			it.done[i] |= set
			it.fail[i] &^= set
		case sender.RecipientRejected:
			it.done[i] |= set
			it.rej[i] |= set
			it.fail[i] &^= set
		case sender.RecipientFailed:
			it.fail[i] |= set
		}
	}
	return it, changed
}

// finish writes one range's part of a Finish with a version-checked update, re-reading and
// re-applying when another writer changed the item first. Each write carries a new writer
// ID: when a write's answer was lost and its retry failed the version check, the re-read
// item still naming this write's ID shows that it landed, and it is not applied twice (a
// second apply would mark the accepted recipients repeated). Should another writer have
// changed the item since, the landed write cannot be told apart and is applied again: the
// bitmaps are idempotent, the repeated marks not.
func (l *Ledger) finish(ctx context.Context, campaign, owner string, state sender.RecipientState, s *span, rs []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.item
	claimed, holds := s.holders[owner]
	wrote := "" // the writer ID of the last write tried
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if attempt >= l.opts.MaxAttempts {
				return fmt.Errorf("lost the update race %d times", attempt)
			}
			if err := l.opts.wait(ctx, attempt); err != nil {
				return err
			}
			got, err := l.client.GetItem(ctx, &awsdynamodb.GetItemInput{TableName: aws.String(l.table), Key: ledgerKey(campaign, s.start), ConsistentRead: aws.Bool(true)})
			if err != nil {
				return err
			}
			if it, err = decodeRange(got.Item); err != nil {
				return err
			}
			if wrote != "" && it.writer == wrote {
				s.item = it // the last write landed; its answer was lost
				break
			}
		}
		next, changed := apply(it, state, rs)
		// What owner still holds here: claimed, not in this call, not final meanwhile.
		var left []byte
		if holds {
			left = slices.Clone(claimed)
			for i := range left {
				left[i] &^= rs[i] | next.done[i]
			}
		}
		drop := holds && allZero(left) && it.owner == owner
		if !changed && !drop {
			s.item = it
			break
		}
		wrote = strconv.FormatUint(rand.Uint64(), 36)
		const set = "SET #d = :d, #r = :r, #f = :f, #p = :p, #v = :next, #w = :wid"
		in := &awsdynamodb.UpdateItemInput{
			TableName:           aws.String(l.table),
			Key:                 ledgerKey(campaign, s.start),
			UpdateExpression:    aws.String(set),
			ConditionExpression: aws.String("#v = :ver"),
			ExpressionAttributeNames: map[string]string{"#d": attrDone, "#r": attrRej, "#f": attrFail, "#p": attrRep,
				"#v": attrVer, "#w": attrWriter},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":d": &types.AttributeValueMemberB{Value: next.done}, ":r": &types.AttributeValueMemberB{Value: next.rej},
				":f": &types.AttributeValueMemberB{Value: next.fail}, ":p": &types.AttributeValueMemberB{Value: next.rep},
				":ver": num(it.ver), ":next": num(it.ver + 1), ":wid": strAttr(wrote),
			},
		}
		if drop {
			// Nothing left claimed here: drop the lease in the same write, if still ours.
			in.UpdateExpression = aws.String(set + " REMOVE #o, #e")
			in.ConditionExpression = aws.String("#v = :ver AND #o = :me")
			in.ExpressionAttributeNames["#o"] = attrOwner
			in.ExpressionAttributeNames["#e"] = attrExpires
			in.ExpressionAttributeValues[":me"] = strAttr(owner)
		}
		_, err := l.client.UpdateItem(ctx, in)
		if err == nil {
			next.ver, next.writer = it.ver+1, wrote
			if drop {
				next.owner = ""
			}
			s.item = next
			break
		}
		if !isConditionFailed(err) {
			return err
		}
	}
	// What is final now is held by nobody; what owner finished or failed is not its any more.
	for h, left := range s.holders {
		for i := range left {
			left[i] &^= s.item.done[i]
			if h == owner {
				left[i] &^= rs[i]
			}
		}
		l.settle(s, h, left)
	}
	return nil
}

// settle records what owner still holds in s (s.mu held) and forgets s once nobody here
// holds anything in it.
func (l *Ledger) settle(s *span, owner string, left []byte) {
	if !allZero(left) {
		s.holders[owner] = left
		return
	}
	delete(s.holders, owner)
	if len(s.holders) > 0 || s.detached {
		return
	}
	s.detached = true
	l.mu.Lock()
	defer l.mu.Unlock()
	ss := l.ranges[s.campaign]
	if i, found := slices.BinarySearchFunc(ss, s.start, byStart); found && ss[i] == s {
		ss = slices.Delete(ss, i, i+1)
	}
	if len(ss) == 0 {
		delete(l.ranges, s.campaign)
	} else {
		l.ranges[s.campaign] = ss
	}
}

func byStart(s *span, start uint32) int { return cmp.Compare(s.start, start) }

// span returns the span of (campaign, start), adding it if missing.
func (l *Ledger) span(campaign string, start, n uint32) *span {
	l.mu.Lock()
	defer l.mu.Unlock()
	ss := l.ranges[campaign]
	i, found := slices.BinarySearchFunc(ss, start, byStart)
	if found {
		return ss[i]
	}
	s := &span{campaign: campaign, start: start, n: n, holders: map[string][]byte{}}
	l.ranges[campaign] = slices.Insert(ss, i, s)
	return s
}

// spanGroup is the part of a call's recipients that falls in one span, as a bitmap of
// offsets in the range.
type spanGroup struct {
	span *span
	rs   []byte
}

// group sorts recipients into the spans holding them, by start. Recipients of ranges no
// owner of this Ledger holds are looked up in the table when lookup is set (their range
// must have been claimed once, by anyone), and ignored otherwise.
func (l *Ledger) group(ctx context.Context, campaign string, recipients []uint32, lookup bool) ([]spanGroup, error) {
	var groups []spanGroup
	add := func(s *span, r uint32) {
		i, found := slices.BinarySearchFunc(groups, s.start, func(g spanGroup, start uint32) int { return cmp.Compare(g.span.start, start) })
		if !found {
			groups = slices.Insert(groups, i, spanGroup{span: s, rs: make([]byte, (s.n+7)/8)})
		}
		setBit(groups[i].rs, r-s.start)
	}
	var unknown []uint32
	l.mu.Lock()
	ss := l.ranges[campaign]
	for _, r := range recipients {
		i, found := slices.BinarySearchFunc(ss, r, byStart)
		if !found {
			i--
		}
		if i >= 0 && r-ss[i].start < ss[i].n {
			add(ss[i], r)
		} else {
			unknown = append(unknown, r)
		}
	}
	l.mu.Unlock()
	if !lookup {
		return groups, nil
	}
	slices.Sort(unknown)
	var last *span
	for _, r := range unknown {
		if last == nil || r-last.start >= last.n {
			it, err := l.rangeOf(ctx, campaign, r)
			if err != nil {
				return nil, err
			}
			if it == nil || r-it.start >= it.n {
				return nil, fmt.Errorf("recipient %d of campaign %q is in no range claimed yet", r, campaign)
			}
			last = &span{campaign: campaign, start: it.start, n: it.n, item: it.rangeItem, holders: map[string][]byte{}, detached: true}
		}
		add(last, r)
	}
	return groups, nil
}

// startedItem is a ledger item with its start.
type startedItem struct {
	start uint32
	rangeItem
}

// rangeOf reads the item of the range starting at or before r (nil if none).
func (l *Ledger) rangeOf(ctx context.Context, campaign string, r uint32) (*startedItem, error) {
	out, err := l.client.Query(ctx, &awsdynamodb.QueryInput{
		TableName:                 aws.String(l.table),
		KeyConditionExpression:    aws.String("#c = :c AND #s <= :r"),
		ExpressionAttributeNames:  map[string]string{"#c": attrCampaign, "#s": attrStart},
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": strAttr(campaign), ":r": num(r)},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("find the range of %d: %w", r, err)
	}
	if len(out.Items) == 0 {
		return nil, nil
	}
	return decodeStarted(out.Items[0])
}

func decodeStarted(item map[string]types.AttributeValue) (*startedItem, error) {
	it, err := decodeRange(item)
	if err != nil {
		return nil, err
	}
	sv, ok := item[attrStart].(*types.AttributeValueMemberN)
	if !ok {
		return nil, errors.New("ledger item lacks start")
	}
	start, err := strconv.ParseUint(sv.Value, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("ledger item: start: %w", err)
	}
	return &startedItem{start: uint32(start), rangeItem: it}, nil
}

// Release gives owner's claims on recipients back. Leases are per range: once owner holds
// nothing else in a range, its lease there is dropped and anyone may claim what is neither
// final nor failed; until then nothing is written. Recipients owner does not hold here are
// ignored.
func (l *Ledger) Release(ctx context.Context, campaign, owner string, recipients []uint32) error {
	groups, err := l.group(ctx, campaign, recipients, false)
	if err != nil {
		return fmt.Errorf("dynamodb: ledger: release: %w", err)
	}
	for _, g := range groups {
		s := g.span
		s.mu.Lock()
		claimed, holds := s.holders[owner]
		if !holds {
			s.mu.Unlock()
			continue
		}
		for i := range claimed {
			claimed[i] &^= g.rs[i]
		}
		empty := allZero(claimed)
		l.settle(s, owner, claimed)
		s.mu.Unlock()
		if empty {
			if err := l.dropLease(ctx, campaign, owner, s.start); err != nil {
				return fmt.Errorf("dynamodb: ledger: release %s/%d: %w", campaign, s.start, err)
			}
		}
	}
	return nil
}

// dropLease removes owner's lease on a range; a lease someone else holds is left.
func (l *Ledger) dropLease(ctx context.Context, campaign, owner string, start uint32) error {
	_, err := l.client.UpdateItem(ctx, &awsdynamodb.UpdateItemInput{
		TableName:                 aws.String(l.table),
		Key:                       ledgerKey(campaign, start),
		UpdateExpression:          aws.String("REMOVE #o, #e"),
		ConditionExpression:       aws.String("#o = :me"),
		ExpressionAttributeNames:  map[string]string{"#o": attrOwner, "#e": attrExpires},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": strAttr(owner)},
	})
	if err != nil && !isConditionFailed(err) {
		return err
	}
	return nil
}

// Redrive makes the failed recipients in [start, start+n) of campaign pending again, one
// conditional write per range item that has some, and returns how many it changed. The
// range may span many items (a whole campaign, say).
func (l *Ledger) Redrive(ctx context.Context, campaign string, start, n uint32) (int, error) {
	if campaign == "" || uint64(start)+uint64(n) > 1<<32 {
		return 0, fmt.Errorf("dynamodb: ledger: redrive: bad arguments (campaign %q, start %d, n %d)", campaign, start, n)
	}
	if n == 0 {
		return 0, nil
	}
	end := uint64(start) + uint64(n)
	var items []*startedItem
	first, err := l.rangeOf(ctx, campaign, start)
	if err != nil {
		return 0, fmt.Errorf("dynamodb: ledger: redrive: %w", err)
	}
	if first != nil && uint64(first.start)+uint64(first.n) > uint64(start) {
		items = append(items, first)
	}
	if n > 1 {
		p := awsdynamodb.NewQueryPaginator(l.client, &awsdynamodb.QueryInput{
			TableName:                aws.String(l.table),
			KeyConditionExpression:   aws.String("#c = :c AND #s BETWEEN :lo AND :hi"),
			ExpressionAttributeNames: map[string]string{"#c": attrCampaign, "#s": attrStart},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":c": strAttr(campaign), ":lo": num(start + 1), ":hi": num(uint32(end - 1)),
			},
			ConsistentRead: aws.Bool(true),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return 0, fmt.Errorf("dynamodb: ledger: redrive: %w", err)
			}
			for _, item := range page.Items {
				it, err := decodeStarted(item)
				if err != nil {
					return 0, fmt.Errorf("dynamodb: ledger: redrive: %w", err)
				}
				items = append(items, it)
			}
		}
	}
	changed := 0
	for _, it := range items {
		c, err := l.redrive(ctx, campaign, it, uint64(start), end)
		changed += c
		if err != nil {
			return changed, fmt.Errorf("dynamodb: ledger: redrive %s/%d: %w", campaign, it.start, err)
		}
	}
	return changed, nil
}

// redrive clears the fail bits of one item that fall in [start, end), with a
// version-checked write, re-reading when another writer changed the item first.
func (l *Ledger) redrive(ctx context.Context, campaign string, it *startedItem, start, end uint64) (int, error) {
	cur := it.rangeItem
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if attempt >= l.opts.MaxAttempts {
				return 0, fmt.Errorf("lost the update race %d times", attempt)
			}
			if err := l.opts.wait(ctx, attempt); err != nil {
				return 0, err
			}
			got, err := l.client.GetItem(ctx, &awsdynamodb.GetItemInput{TableName: aws.String(l.table), Key: ledgerKey(campaign, it.start), ConsistentRead: aws.Bool(true)})
			if err != nil {
				return 0, err
			}
			if cur, err = decodeRange(got.Item); err != nil {
				return 0, err
			}
		}
		fail := slices.Clone(cur.fail)
		cleared := 0
		for i := range cur.n {
			if r := uint64(it.start) + uint64(i); r >= start && r < end && bit(fail, i) {
				clearBit(fail, i)
				cleared++
			}
		}
		if cleared == 0 {
			return 0, nil
		}
		_, err := l.client.UpdateItem(ctx, &awsdynamodb.UpdateItemInput{
			TableName:                aws.String(l.table),
			Key:                      ledgerKey(campaign, it.start),
			UpdateExpression:         aws.String("SET #f = :f, #v = :next"),
			ConditionExpression:      aws.String("#v = :ver"),
			ExpressionAttributeNames: map[string]string{"#f": attrFail, "#v": attrVer},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":f": &types.AttributeValueMemberB{Value: fail}, ":ver": num(cur.ver), ":next": num(cur.ver + 1),
			},
		})
		if err == nil {
			return cleared, nil
		}
		if !isConditionFailed(err) {
			return 0, err
		}
	}
}

// Counts returns campaign's totals by state: a consistent Query over the campaign's items,
// page by page, summing the bitmaps' population counts. It reads the whole campaign (about
// 100 bytes per recipient range), so it is meant for status and reports, not hot paths.
func (l *Ledger) Counts(ctx context.Context, campaign string) (sender.LedgerCounts, error) {
	var c sender.LedgerCounts
	p := awsdynamodb.NewQueryPaginator(l.client, &awsdynamodb.QueryInput{
		TableName:                 aws.String(l.table),
		KeyConditionExpression:    aws.String("#c = :c"),
		ProjectionExpression:      aws.String("#d, #r, #f, #p"),
		ExpressionAttributeNames:  map[string]string{"#c": attrCampaign, "#d": attrDone, "#r": attrRej, "#f": attrFail, "#p": attrRep},
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": strAttr(campaign)},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return sender.LedgerCounts{}, fmt.Errorf("dynamodb: ledger: counts %s: %w", campaign, err)
		}
		for _, item := range page.Items {
			done, rej, fail, rep := bitmap(item, attrDone), bitmap(item, attrRej), bitmap(item, attrFail), bitmap(item, attrRep)
			for i, d := range done {
				var r, p byte
				if i < len(rej) {
					r = rej[i] & d
				}
				if i < len(rep) {
					p = rep[i] & d &^ r
				}
				c.Accepted += int64(bits.OnesCount8(d &^ r))
				c.Rejected += int64(bits.OnesCount8(r))
				c.Repeated += int64(bits.OnesCount8(p))
			}
			for _, f := range fail {
				c.Failed += int64(bits.OnesCount8(f))
			}
		}
	}
	return c, nil
}

func bitmap(item map[string]types.AttributeValue, attr string) []byte {
	if v, ok := item[attr].(*types.AttributeValueMemberB); ok {
		return v.Value
	}
	return nil
}

// decodeRange reads n, the bitmaps, ver, owner and writer of a ledger item; rej, fail and
// rep may be missing (items from before they existed) and read as all clear.
func decodeRange(item map[string]types.AttributeValue) (rangeItem, error) {
	var it rangeItem
	nv, ok1 := item[attrN].(*types.AttributeValueMemberN)
	dv, ok2 := item[attrDone].(*types.AttributeValueMemberB)
	vv, ok3 := item[attrVer].(*types.AttributeValueMemberN)
	if !ok1 || !ok2 || !ok3 {
		return it, errors.New("ledger item lacks n, done or ver")
	}
	n64, err := strconv.ParseUint(nv.Value, 10, 32)
	if err != nil {
		return it, fmt.Errorf("ledger item: n: %w", err)
	}
	if it.ver, err = strconv.ParseInt(vv.Value, 10, 64); err != nil {
		return it, fmt.Errorf("ledger item: ver: %w", err)
	}
	size := int((n64 + 7) / 8)
	it.n, it.done = uint32(n64), slices.Clone(dv.Value)
	it.rej, it.fail, it.rep = slices.Clone(bitmap(item, attrRej)), slices.Clone(bitmap(item, attrFail)), slices.Clone(bitmap(item, attrRep))
	for _, b := range []*[]byte{&it.rej, &it.fail, &it.rep} {
		if len(*b) == 0 {
			*b = make([]byte, size)
		}
	}
	if len(it.done) != size || len(it.rej) != size || len(it.fail) != size || len(it.rep) != size {
		return it, fmt.Errorf("ledger item: bitmaps of %d, %d, %d and %d bytes for %d recipients",
			len(it.done), len(it.rej), len(it.fail), len(it.rep), n64)
	}
	if ov, ok := item[attrOwner].(*types.AttributeValueMemberS); ok {
		it.owner = ov.Value
	}
	if wv, ok := item[attrWriter].(*types.AttributeValueMemberS); ok {
		it.writer = wv.Value
	}
	return it, nil
}

func bit(b []byte, i uint32) bool { return b[i/8]&(1<<(i%8)) != 0 }
func setBit(b []byte, i uint32)   { b[i/8] |= 1 << (i % 8) }
func clearBit(b []byte, i uint32) { b[i/8] &^= 1 << (i % 8) }

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
