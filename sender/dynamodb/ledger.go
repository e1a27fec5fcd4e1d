package dynamodb

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
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
//	             first) set means recipient start+i is done
//	ver       N  bumped by every change of done, for optimistic concurrency
//	owner     S  the Ledger holding the range's lease (absent when free)
//	expires   N  the lease's end, Unix milliseconds by the claimer's clock
//
// The lease covers the whole range: a range is claimed, worked and finished by one owner at a
// time, which is how the pipeline works (one batch message per range).
const (
	attrCampaign = "campaign"
	attrStart    = "start"
	attrN        = "n"
	attrDone     = "done"
	attrVer      = "ver"
	attrOwner    = "owner"
	attrExpires  = "expires"
)

// LedgerOptions tune a Ledger.
type LedgerOptions struct {
	Options
	// Owner names this Ledger in leases (0: host name, process ID and random bytes). Two
	// Ledgers with the same Owner share leases; give each process its own.
	Owner string
}

// Ledger records which recipients of a campaign are done, in a DynamoDB table with one item
// per batch range; it implements sender.Ledger. Claim takes a lease on the whole range
// [start, start+n) and returns its recipients that are not done; Done sets their bits in the
// range's done bitmap; once every recipient this Ledger claimed in a range is done or
// released, the lease is dropped.
//
// Callers must always claim the same ranges (the same start and n for a given recipient):
// the pipeline's batch boundaries are deterministic, so a redelivered batch message claims
// exactly the range it claimed before. Claiming a range with a different n than it was first
// claimed with is an error. Done and Release take recipients of ranges this Ledger claimed
// (and has not yet finished); others are an error.
//
// Leases compare expiry times written by one process's clock with another's: keep clocks in
// sync (NTP) and leases well above the expected skew. A lease that runs out while its owner
// is still pushing lets another owner claim the range; recipients the first one marks done
// after that are still recorded, but ones it was pushing at that moment may be pushed twice.
//
// A Ledger is safe for concurrent use; it keeps its open claims in memory.
type Ledger struct {
	client *awsdynamodb.Client
	table  string
	owner  string
	opts   Options

	mu     sync.Mutex
	claims map[string][]*claim // campaign -> open claims, sorted by start
}

// claim is a range this Ledger holds a lease on.
type claim struct {
	start, n uint32

	mu      sync.Mutex
	done    []byte // the range's done bitmap as last seen
	ver     int64  // its version
	pending []byte // bitmap of recipients claimed here, neither done nor released
	closed  bool   // finished and removed from Ledger.claims
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
	owner := opts.Owner
	if owner == "" {
		host, _ := os.Hostname()
		var b [6]byte
		_, _ = rand.Read(b[:])
		owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	return &Ledger{
		client: client,
		table:  table,
		owner:  owner,
		opts:   opts.Options.withDefaults(),
		claims: map[string][]*claim{},
	}, nil
}

// Owner returns the name this Ledger writes into leases.
func (l *Ledger) Owner() string { return l.owner }

func ledgerKey(campaign string, start uint32) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrCampaign: &types.AttributeValueMemberS{Value: campaign},
		attrStart:    &types.AttributeValueMemberN{Value: strconv.FormatUint(uint64(start), 10)},
	}
}

func num[T int64 | uint32](v T) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(int64(v), 10)}
}

// Claim takes the lease on the range [start, start+n) of campaign for lease, unless another
// owner holds an unexpired lease on it, and appends the range's recipients that are not done
// to dst. It appends nothing when another owner holds the range or when all of it is done (a
// range found all done is not kept leased). Claiming a range this Ledger already holds
// renews the lease.
func (l *Ledger) Claim(ctx context.Context, campaign string, start, n uint32, lease time.Duration, dst []uint32) ([]uint32, error) {
	if campaign == "" || n == 0 || lease <= 0 || uint64(start)+uint64(n) > 1<<32 {
		return dst, fmt.Errorf("dynamodb: ledger: claim: bad arguments (campaign %q, start %d, n %d, lease %v)", campaign, start, n, lease)
	}
	now := time.Now()
	out, err := l.client.UpdateItem(ctx, &awsdynamodb.UpdateItemInput{
		TableName:        aws.String(l.table),
		Key:              ledgerKey(campaign, start),
		UpdateExpression: aws.String("SET #o = :me, #e = :exp, #n = if_not_exists(#n, :n), #d = if_not_exists(#d, :zeros), #v = if_not_exists(#v, :zero)"),
		ConditionExpression: aws.String(
			"attribute_not_exists(#o) OR #o = :me OR #e < :now"),
		ExpressionAttributeNames: map[string]string{"#o": attrOwner, "#e": attrExpires, "#n": attrN, "#d": attrDone, "#v": attrVer},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me":    &types.AttributeValueMemberS{Value: l.owner},
			":exp":   num(now.Add(lease).UnixMilli()),
			":now":   num(now.UnixMilli()),
			":n":     num(n),
			":zeros": &types.AttributeValueMemberB{Value: make([]byte, (n+7)/8)},
			":zero":  num(int64(0)),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		if isConditionFailed(err) {
			return dst, nil // leased by another owner
		}
		return dst, fmt.Errorf("dynamodb: ledger: claim %s/%d: %w", campaign, start, err)
	}
	storedN, done, ver, err := decodeRange(out.Attributes)
	if err != nil {
		return dst, fmt.Errorf("dynamodb: ledger: claim %s/%d: %w", campaign, start, err)
	}
	if storedN != n {
		if !l.holds(campaign, start) {
			_ = l.dropLease(ctx, campaign, start) // best effort; the lease runs out anyway
		}
		return dst, fmt.Errorf("dynamodb: ledger: claim %s/%d: range holds %d recipients, claimed with %d (callers must claim the same ranges)", campaign, start, storedN, n)
	}
	c := &claim{start: start, n: n, done: done, ver: ver, pending: make([]byte, len(done))}
	empty := true
	for i := range n {
		if !bit(done, i) {
			setBit(c.pending, i)
			dst = append(dst, start+i)
			empty = false
		}
	}
	if empty {
		c = nil // nothing claimed: keep no claim, and drop the lease
	}
	if old := l.replace(campaign, start, c); old != nil {
		old.mu.Lock()
		old.closed = true
		old.mu.Unlock()
	}
	if empty {
		if err := l.dropLease(ctx, campaign, start); err != nil {
			return dst, fmt.Errorf("dynamodb: ledger: claim %s/%d: drop lease of a finished range: %w", campaign, start, err)
		}
	}
	return dst, nil
}

// Remaining counts the recipients in [start, start+n) of campaign that are not done (a
// consistent read of the range's item; a range never claimed counts whole).
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
	storedN, done, _, err := decodeRange(out.Item)
	if err != nil {
		return 0, fmt.Errorf("dynamodb: ledger: remaining %s/%d: %w", campaign, start, err)
	}
	left := 0
	for i := range min(n, storedN) {
		if !bit(done, i) {
			left++
		}
	}
	return left + int(n-min(n, storedN)), nil
}

// Done marks recipients finished: their bits are set in their ranges' done bitmaps (merged
// with concurrent writers, never lost), and they are never claimed again. A range whose
// claimed recipients are all done or released loses its lease in the same write.
func (l *Ledger) Done(ctx context.Context, campaign string, recipients []uint32) error {
	groups, err := l.group(campaign, recipients)
	if err != nil {
		return fmt.Errorf("dynamodb: ledger: done: %w", err)
	}
	for c, rs := range groups {
		finished, err := l.markDone(ctx, campaign, c, rs)
		if err != nil {
			return fmt.Errorf("dynamodb: ledger: done %s/%d: %w", campaign, c.start, err)
		}
		if finished {
			l.forget(campaign, c)
		}
	}
	return nil
}

// markDone writes the done bits of rs (all in c) with a version-checked update, merging
// with the stored bitmap and retrying when another writer changed it first. It reports
// whether c is finished (nothing claimed here is pending any more); c is then closed.
func (l *Ledger) markDone(ctx context.Context, campaign string, c *claim, rs []uint32) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false, errors.New("range is no longer claimed here")
	}
	bm := slices.Clone(c.done)
	for _, r := range rs {
		setBit(bm, r-c.start)
	}
	ver := c.ver
	owned := true // whether the lease is still ours, as far as we know
	var pending []byte
	var finished bool
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if attempt >= l.opts.MaxAttempts {
				return false, fmt.Errorf("lost the update race %d times", attempt)
			}
			if err := l.opts.wait(ctx, attempt); err != nil {
				return false, err
			}
		}
		// Pending: claimed here and not done, by us or (as the merged bitmap shows) anyone.
		pending = slices.Clone(c.pending)
		for i := range pending {
			pending[i] &^= bm[i]
		}
		finished = allZero(pending)
		in := &awsdynamodb.UpdateItemInput{
			TableName:                aws.String(l.table),
			Key:                      ledgerKey(campaign, c.start),
			UpdateExpression:         aws.String("SET #d = :bm, #v = :next"),
			ConditionExpression:      aws.String("#v = :ver"),
			ExpressionAttributeNames: map[string]string{"#d": attrDone, "#v": attrVer},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":bm":   &types.AttributeValueMemberB{Value: bm},
				":ver":  num(ver),
				":next": num(ver + 1),
			},
		}
		if finished && owned {
			// Nothing left claimed here: drop the lease in the same write.
			in.UpdateExpression = aws.String("SET #d = :bm, #v = :next REMOVE #o, #e")
			in.ConditionExpression = aws.String("#v = :ver AND #o = :me")
			in.ExpressionAttributeNames["#o"] = attrOwner
			in.ExpressionAttributeNames["#e"] = attrExpires
			in.ExpressionAttributeValues[":me"] = &types.AttributeValueMemberS{Value: l.owner}
		}
		_, err := l.client.UpdateItem(ctx, in)
		if err == nil {
			c.done, c.ver, c.pending = bm, ver+1, pending
			break
		}
		if !isConditionFailed(err) {
			return false, err
		}
		// Someone else wrote the range (or took the lease): merge and try again.
		got, err := l.client.GetItem(ctx, &awsdynamodb.GetItemInput{TableName: aws.String(l.table), Key: ledgerKey(campaign, c.start), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return false, err
		}
		_, stored, storedVer, err := decodeRange(got.Item)
		if err != nil {
			return false, err
		}
		for i := range bm {
			if i < len(stored) {
				bm[i] |= stored[i]
			}
		}
		ver = storedVer
		owner, _ := got.Item[attrOwner].(*types.AttributeValueMemberS)
		owned = owner != nil && owner.Value == l.owner
	}
	c.closed = finished
	return finished, nil
}

// Release gives claimed, unfinished recipients back. Leases are per range: once every
// recipient this Ledger claimed in a range is done or released, the range's lease is
// dropped and another owner may claim what is not done. Until then nothing is written.
func (l *Ledger) Release(ctx context.Context, campaign string, recipients []uint32) error {
	groups, err := l.group(campaign, recipients)
	if err != nil {
		return fmt.Errorf("dynamodb: ledger: release: %w", err)
	}
	for c, rs := range groups {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			continue
		}
		for _, r := range rs {
			clearBit(c.pending, r-c.start)
		}
		finished := allZero(c.pending)
		if finished {
			c.closed = true
		}
		c.mu.Unlock()
		if finished {
			l.forget(campaign, c)
			if err := l.dropLease(ctx, campaign, c.start); err != nil {
				return fmt.Errorf("dynamodb: ledger: release %s/%d: %w", campaign, c.start, err)
			}
		}
	}
	return nil
}

// group sorts recipients into the open claims holding them.
func (l *Ledger) group(campaign string, recipients []uint32) (map[*claim][]uint32, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := l.claims[campaign]
	groups := map[*claim][]uint32{}
	for _, r := range recipients {
		// The last claim starting at or before r.
		i, found := slices.BinarySearchFunc(cs, r, func(c *claim, s uint32) int { return cmp.Compare(c.start, s) })
		if !found {
			i--
		}
		if i < 0 || r-cs[i].start >= cs[i].n {
			return nil, fmt.Errorf("recipient %d of campaign %q is in no range claimed here", r, campaign)
		}
		groups[cs[i]] = append(groups[cs[i]], r)
	}
	return groups, nil
}

// replace puts c (nil: nothing) as the open claim of (campaign, start) and returns the
// claim it replaced, if any; the caller closes that one (outside l.mu: lock order is c.mu
// before l.mu).
func (l *Ledger) replace(campaign string, start uint32, c *claim) *claim {
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := l.claims[campaign]
	var old *claim
	i, found := slices.BinarySearchFunc(cs, start, func(c *claim, s uint32) int { return cmp.Compare(c.start, s) })
	switch {
	case found && c != nil:
		old, cs[i] = cs[i], c
	case found:
		old, cs = cs[i], slices.Delete(cs, i, i+1)
	case c != nil:
		cs = slices.Insert(cs, i, c)
	}
	if len(cs) == 0 {
		delete(l.claims, campaign)
	} else {
		l.claims[campaign] = cs
	}
	return old
}

// holds reports whether an open claim of (campaign, start) exists here.
func (l *Ledger) holds(campaign string, start uint32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, found := slices.BinarySearchFunc(l.claims[campaign], start, func(c *claim, s uint32) int { return cmp.Compare(c.start, s) })
	return found
}

// forget removes c from the open claims, unless a newer claim of the same range replaced it.
func (l *Ledger) forget(campaign string, c *claim) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := l.claims[campaign]
	if i, found := slices.BinarySearchFunc(cs, c.start, func(c *claim, s uint32) int { return cmp.Compare(c.start, s) }); found && cs[i] == c {
		cs = slices.Delete(cs, i, i+1)
	}
	if len(cs) == 0 {
		delete(l.claims, campaign)
	} else {
		l.claims[campaign] = cs
	}
}

// dropLease removes this Ledger's lease on a range; a lease someone else holds is left.
func (l *Ledger) dropLease(ctx context.Context, campaign string, start uint32) error {
	_, err := l.client.UpdateItem(ctx, &awsdynamodb.UpdateItemInput{
		TableName:                 aws.String(l.table),
		Key:                       ledgerKey(campaign, start),
		UpdateExpression:          aws.String("REMOVE #o, #e"),
		ConditionExpression:       aws.String("#o = :me"),
		ExpressionAttributeNames:  map[string]string{"#o": attrOwner, "#e": attrExpires},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": &types.AttributeValueMemberS{Value: l.owner}},
	})
	if err != nil && !isConditionFailed(err) {
		return err
	}
	return nil
}

// decodeRange reads n, done and ver of a ledger item.
func decodeRange(item map[string]types.AttributeValue) (n uint32, done []byte, ver int64, err error) {
	nv, ok1 := item[attrN].(*types.AttributeValueMemberN)
	dv, ok2 := item[attrDone].(*types.AttributeValueMemberB)
	vv, ok3 := item[attrVer].(*types.AttributeValueMemberN)
	if !ok1 || !ok2 || !ok3 {
		return 0, nil, 0, errors.New("ledger item lacks n, done or ver")
	}
	n64, err := strconv.ParseUint(nv.Value, 10, 32)
	if err != nil {
		return 0, nil, 0, fmt.Errorf("ledger item: n: %w", err)
	}
	ver, err = strconv.ParseInt(vv.Value, 10, 64)
	if err != nil {
		return 0, nil, 0, fmt.Errorf("ledger item: ver: %w", err)
	}
	if len(dv.Value) != int((n64+7)/8) {
		return 0, nil, 0, fmt.Errorf("ledger item: done bitmap of %d bytes for %d recipients", len(dv.Value), n64)
	}
	return uint32(n64), slices.Clone(dv.Value), ver, nil
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
