package memqueue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/salvopush/salvo/sender"
)

// Limits taken from SQS.
const (
	// MaxBatch is the most messages one Receive returns.
	MaxBatch = 10
	// MaxBodySize is the largest message body accepted by Send, in bytes.
	MaxBodySize = 256 << 10
	// MaxIDLen is the longest GroupID or DedupID accepted on a FIFO queue, in bytes.
	MaxIDLen = 128
	// MaxVisibilityTimeout is the longest visibility timeout, in the Config and in
	// ExtendVisibility.
	MaxVisibilityTimeout = 12 * time.Hour
)

// Defaults for the zero fields of Config.
const (
	DefaultVisibilityTimeout = 30 * time.Second
	DefaultDedupWindow       = 5 * time.Minute
)

// ErrClosed is returned by every method called on, or waiting in, a closed Queue.
var ErrClosed = errors.New("queue closed")

// ErrNotInFlight is returned by ExtendVisibility when the receipt is not the latest one of a
// message that is still in flight: the message was deleted, received again, or its
// visibility timeout ran out.
var ErrNotInFlight = errors.New("message not in flight for this receipt")

// Config configures a Queue. The zero value is a standard queue with SQS defaults.
type Config struct {
	// FIFO selects FIFO semantics: deduplication by DedupID, ordered message groups.
	FIFO bool
	// VisibilityTimeout is how long a received message stays hidden before it is delivered
	// again; 0 means DefaultVisibilityTimeout.
	VisibilityTimeout time.Duration
	// DedupWindow is how long a FIFO DedupID is remembered after the first Send that used
	// it; 0 means DefaultDedupWindow. Ignored by standard queues.
	DedupWindow time.Duration
	// Clock gives the time for visibility deadlines and the deduplication window; nil means
	// time.Now. Long-poll waits always use real time.
	Clock func() time.Time
}

// Validate reports the first bad field of c, by name.
func (c Config) Validate() error {
	switch {
	case c.VisibilityTimeout < 0:
		return fmt.Errorf("VisibilityTimeout %v is negative", c.VisibilityTimeout)
	case c.VisibilityTimeout > MaxVisibilityTimeout:
		return fmt.Errorf("VisibilityTimeout %v is above %v", c.VisibilityTimeout, MaxVisibilityTimeout)
	case c.DedupWindow < 0:
		return fmt.Errorf("DedupWindow %v is negative", c.DedupWindow)
	}
	return nil
}

// Stats is a snapshot of a Queue's counters.
type Stats struct {
	// Visible counts messages waiting to be received. On a FIFO queue it includes messages
	// held back behind an in-flight message of their group.
	Visible int
	// InFlight counts messages received and neither deleted nor timed out.
	InFlight int
	// Deduplicated counts FIFO messages accepted by Send and dropped as duplicates.
	Deduplicated uint64
	// Redelivered counts messages that became visible again after a visibility timeout (or
	// an ExtendVisibility to zero).
	Redelivered uint64
	// StaleDeletes counts receipts given to Delete that were not the latest receipt of a
	// message still on the queue; they deleted nothing.
	StaleDeletes uint64
}

var _ sender.Queue = (*Queue)(nil)

// Queue is an in-process queue with the SQS semantics the pipeline relies on. It implements
// sender.Queue; all methods are safe for concurrent use. A Queue owns no goroutines: timeouts
// are applied when the queue is next used, and waiting receivers time their own wake-ups.
type Queue struct {
	fifo   bool
	vis    time.Duration
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	closed  bool
	done    chan struct{} // closed by Close
	seq     uint64
	entries map[uint64]*entry // messages on the queue, by sequence number
	visible int
	heap    deadlineHeap // in-flight messages by deadline

	ready ring[*entry] // standard queues: visible messages, oldest first

	groups      map[string]*group // FIFO queues: groups with messages
	freeGroups  []*group          // FIFO queues: emptied groups kept for reuse
	readyGroups ring[*group]      // FIFO queues: groups with a deliverable head

	dedup      map[string]time.Time // FIFO: DedupID -> end of its window
	dedupOrder ring[dedupRecord]    // FIFO: DedupIDs in the order their windows end

	waiters []*waiter
	// watcher is the waiting receiver whose timer is set for watchAt, the earliest
	// visibility deadline when it started waiting; one watcher is enough to notice
	// timed-out messages.
	watcher *waiter
	watchAt time.Time

	deduplicated, redelivered, staleDeletes uint64
}

type state uint8

const (
	stateReady state = iota
	stateInFlight
	stateDeleted
)

type entry struct {
	seq          uint64
	id           string
	body         []byte
	group        *group // FIFO only
	state        state
	inHeld       bool // FIFO: in group.held
	receiveCount int
	deadline     time.Time // visibility deadline while in flight
	heapIdx      int
}

// group is a FIFO message group. Its messages are delivered in order, and none while one of
// them is in flight.
type group struct {
	id      string
	pending ring[*entry] // not yet delivered, or delivered and returned; deleted ones are skipped
	held    []*entry     // taken by the last delivery, in order, not yet deleted
	// inflight counts the held entries still in flight; the group is blocked while it is > 0.
	inflight int
	queued   bool // in Queue.readyGroups
}

type dedupRecord struct {
	id      string
	expires time.Time
}

type waiter struct {
	ch        chan struct{} // buffered 1; receives a token when signalled
	queued    bool          // in Queue.waiters
	signalled bool          // taken off the list by wake
}

// New returns an empty queue configured by cfg. The caller closes it with Close.
func New(cfg Config) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("memqueue: config: %w", err)
	}
	q := &Queue{
		fifo:    cfg.FIFO,
		vis:     cfg.VisibilityTimeout,
		window:  cfg.DedupWindow,
		now:     cfg.Clock,
		done:    make(chan struct{}),
		entries: make(map[uint64]*entry),
	}
	if q.vis == 0 {
		q.vis = DefaultVisibilityTimeout
	}
	if q.window == 0 {
		q.window = DefaultDedupWindow
	}
	if q.now == nil {
		q.now = time.Now
	}
	if q.fifo {
		q.groups = make(map[string]*group)
		q.dedup = make(map[string]time.Time)
	}
	return q, nil
}

// FIFO reports whether q is a FIFO queue.
func (q *Queue) FIFO() bool { return q.fifo }

func (q *Queue) validate(m *sender.OutMessage) error {
	switch {
	case len(m.Body) == 0:
		return errors.New("Body is empty")
	case len(m.Body) > MaxBodySize:
		return fmt.Errorf("Body is %d bytes, above %d", len(m.Body), MaxBodySize)
	case !q.fifo:
		return nil
	case m.DedupID == "":
		return errors.New("DedupID is empty (required on FIFO queues)")
	case len(m.DedupID) > MaxIDLen:
		return fmt.Errorf("DedupID is %d bytes, above %d", len(m.DedupID), MaxIDLen)
	case m.GroupID == "":
		return errors.New("GroupID is empty (required on FIFO queues)")
	case len(m.GroupID) > MaxIDLen:
		return fmt.Errorf("GroupID is %d bytes, above %d", len(m.GroupID), MaxIDLen)
	}
	return nil
}

// Send puts msgs on the queue in order, all or none: every message is validated first (body
// 1..MaxBodySize bytes; on FIFO queues DedupID and GroupID set) and an invalid one fails the
// whole call, naming its index and field. Bodies are copied, so the caller may reuse them.
// On a FIFO queue a message whose DedupID was sent within the DedupWindow (even if that
// message has since been deleted, or sits earlier in msgs) is accepted and dropped.
func (q *Queue) Send(ctx context.Context, msgs []sender.OutMessage) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memqueue: send: %w", err)
	}
	total := 0
	for i := range msgs {
		if err := q.validate(&msgs[i]); err != nil {
			return fmt.Errorf("memqueue: send: message %d: %w", i, err)
		}
		total += len(msgs[i].Body)
	}
	if len(msgs) == 0 {
		return nil
	}
	// One allocation each for the bodies, the entries and the IDs of the whole call.
	bodies := make([]byte, 0, total)
	ents := make([]entry, len(msgs))
	var idBuf []byte

	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return fmt.Errorf("memqueue: send: %w", ErrClosed)
	}
	now := q.now()
	if q.fifo {
		q.pruneDedup(now)
	}
	added := 0
	for i := range msgs {
		m := &msgs[i]
		if q.fifo {
			if end, ok := q.dedup[m.DedupID]; ok && end.After(now) {
				q.deduplicated++
				continue
			}
			end := now.Add(q.window)
			q.dedup[m.DedupID] = end
			q.dedupOrder.pushBack(dedupRecord{id: m.DedupID, expires: end})
		}
		q.seq++
		start := len(bodies)
		bodies = append(bodies, m.Body...)
		if idBuf == nil {
			idBuf = make([]byte, 0, len(msgs)*decimalLen(q.seq+uint64(len(msgs))))
		}
		idBuf = strconv.AppendUint(idBuf, q.seq, 10)
		e := &ents[i]
		*e = entry{
			seq:     q.seq,
			body:    bodies[start:len(bodies):len(bodies)],
			heapIdx: -1,
		}
		q.entries[e.seq] = e
		q.visible++
		added++
		if q.fifo {
			g := q.groups[m.GroupID]
			if g == nil {
				g = q.newGroup(m.GroupID)
			}
			e.group = g
			g.pending.pushBack(e)
			q.queueGroup(g)
		} else {
			q.ready.pushBack(e)
		}
	}
	// Cut the IDs out of one string, in the order they were appended.
	ids, off := string(idBuf), 0
	for i := range ents {
		if e := &ents[i]; e.seq != 0 {
			n := decimalLen(e.seq)
			e.id = ids[off : off+n]
			off += n
		}
	}
	q.wake(added)
	return nil
}

// decimalLen is the number of decimal digits of v.
func decimalLen(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

// maxFreeGroups bounds the recycled group structs a FIFO queue keeps.
const maxFreeGroups = 1024

// newGroup registers an empty group, reusing a recycled one if there is one.
func (q *Queue) newGroup(id string) *group {
	var g *group
	if n := len(q.freeGroups); n > 0 {
		g = q.freeGroups[n-1]
		q.freeGroups[n-1] = nil
		q.freeGroups = q.freeGroups[:n-1]
	} else {
		g = new(group)
	}
	g.id = id
	q.groups[id] = g
	return g
}

// pruneDedup forgets the DedupIDs whose window ended at or before now.
func (q *Queue) pruneDedup(now time.Time) {
	for q.dedupOrder.len() > 0 && !q.dedupOrder.front().expires.After(now) {
		r := q.dedupOrder.popFront()
		if end, ok := q.dedup[r.id]; ok && end.Equal(r.expires) {
			delete(q.dedup, r.id)
		}
	}
}

// queueGroup puts g on the ready list if its head can be delivered.
func (q *Queue) queueGroup(g *group) {
	if !g.queued && g.inflight == 0 && g.pending.len() > 0 {
		g.queued = true
		q.readyGroups.pushBack(g)
	}
}

// dropGroup forgets g once it holds nothing.
func (q *Queue) dropGroup(g *group) {
	if !g.queued && g.inflight == 0 && len(g.held) == 0 && g.pending.len() == 0 && q.groups[g.id] == g {
		delete(q.groups, g.id)
		if len(q.freeGroups) < maxFreeGroups {
			// Entries never point at an empty group, so it can be reused at once.
			g.id = ""
			q.freeGroups = append(q.freeGroups, g)
		}
	}
}

// deliverable reports whether a Receive would find a message now.
func (q *Queue) deliverable() bool {
	if q.fifo {
		return q.readyGroups.len() > 0
	}
	return q.visible > 0
}

// Receive returns up to limit (1..MaxBatch) messages. If none is visible it waits up to wait
// (long polling; 0 returns at once) and returns as soon as one arrives or comes back from a
// visibility timeout; it returns no messages and a nil error when the wait runs out. Each
// message stays hidden for the VisibilityTimeout unless deleted or extended. On a FIFO queue
// messages of one group come in send order, several may come in one call, and no message of
// a group is returned while an earlier one of that group is in flight. Message bodies are
// shared with the queue and must not be modified. A cancelled ctx returns its error; a
// closed queue returns ErrClosed.
func (q *Queue) Receive(ctx context.Context, limit int, wait time.Duration) ([]sender.Message, error) {
	if limit < 1 || limit > MaxBatch {
		return nil, fmt.Errorf("memqueue: receive: max %d is outside 1..%d", limit, MaxBatch)
	}
	if wait < 0 {
		return nil, fmt.Errorf("memqueue: receive: wait %v is negative", wait)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memqueue: receive: %w", err)
	}
	var (
		until time.Time // end of the long poll, in real time
		w     *waiter
		timer *time.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	q.mu.Lock()
	for {
		if q.closed {
			q.mu.Unlock()
			return nil, fmt.Errorf("memqueue: receive: %w", ErrClosed)
		}
		now := q.now()
		q.expire(now)
		if out := q.take(now, limit); len(out) > 0 {
			if q.deliverable() || (q.watcher == nil && len(q.heap) > 0) {
				q.wake(1) // pass the rest, or the watch, on
			}
			q.mu.Unlock()
			return out, nil
		}
		if wait == 0 {
			q.mu.Unlock()
			return nil, nil
		}
		if until.IsZero() {
			until = time.Now().Add(wait)
		}
		sleep := time.Until(until)
		if sleep <= 0 {
			q.handOff(w)
			q.mu.Unlock()
			return nil, nil
		}
		if w == nil {
			w = &waiter{ch: make(chan struct{}, 1)}
		}
		q.waiters = append(q.waiters, w)
		w.queued = true
		if len(q.heap) > 0 && (q.watcher == nil || q.heap.minDeadline().Before(q.watchAt)) {
			// Watch the next visibility deadline so that a timed-out message wakes someone.
			q.watcher = w
			q.watchAt = q.heap.minDeadline()
			if d := q.watchAt.Sub(now); d < sleep {
				sleep = max(d, time.Millisecond)
			}
		}
		q.mu.Unlock()

		if timer == nil {
			timer = time.NewTimer(sleep)
		} else {
			timer.Reset(sleep)
		}
		var cancelled bool
		select {
		case <-w.ch:
		case <-timer.C:
		case <-q.done:
		case <-ctx.Done():
			cancelled = true
		}

		q.mu.Lock()
		q.unwait(w)
		if cancelled {
			q.handOff(w)
			q.mu.Unlock()
			return nil, fmt.Errorf("memqueue: receive: %w", ctx.Err())
		}
		w.signalled = false
	}
}

// unwait takes w off the waiter list (if still on it) and drops its watch. Called with q.mu
// held.
func (q *Queue) unwait(w *waiter) {
	select {
	case <-w.ch:
	default:
	}
	if w.queued {
		for i, x := range q.waiters {
			if x == w {
				q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
				break
			}
		}
		w.queued = false
	}
	if q.watcher == w {
		q.watcher = nil
		q.watchAt = time.Time{}
	}
}

// handOff is called, with q.mu held, by a receiver that leaves without messages: a signal it
// received goes to another waiter, and so does the watch over visibility deadlines.
func (q *Queue) handOff(w *waiter) {
	if w == nil {
		return
	}
	if (w.signalled && q.deliverable()) || (q.watcher == nil && len(q.heap) > 0) {
		q.wake(1)
	}
	w.signalled = false
}

// wake signals up to n waiting receivers, oldest first, sparing the watcher unless it is
// needed to reach n. Called with q.mu held.
func (q *Queue) wake(n int) {
	if n <= 0 || len(q.waiters) == 0 {
		return
	}
	kept := q.waiters[:0]
	for _, w := range q.waiters {
		if n > 0 && w != q.watcher {
			signal(w)
			n--
			continue
		}
		kept = append(kept, w)
	}
	if n > 0 && q.watcher != nil {
		if i := slices.Index(kept, q.watcher); i >= 0 {
			signal(q.watcher)
			kept = slices.Delete(kept, i, i+1)
		}
	}
	clear(q.waiters[len(kept):])
	q.waiters = kept
}

// signal tells w, already taken off the waiter list, to look again.
func signal(w *waiter) {
	w.queued = false
	w.signalled = true
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// expire returns to visibility every in-flight message whose deadline is not after now.
func (q *Queue) expire(now time.Time) {
	for len(q.heap) > 0 && !q.heap.minDeadline().After(now) {
		e := q.heap[0]
		q.heap.remove(e)
		q.requeue(e)
	}
}

// requeue makes the in-flight e visible again; it is no longer in the heap.
func (q *Queue) requeue(e *entry) {
	e.state = stateReady
	q.visible++
	q.redelivered++
	if !q.fifo {
		q.ready.pushBack(e)
		return
	}
	g := e.group
	g.inflight--
	q.releaseGroup(g)
}

// releaseGroup, once no message of g is in flight, puts its returned messages back at the
// head of the group in order and makes the group deliverable.
func (q *Queue) releaseGroup(g *group) {
	if g.inflight > 0 {
		return
	}
	for i := len(g.held) - 1; i >= 0; i-- {
		g.held[i].inHeld = false
		g.pending.pushFront(g.held[i])
	}
	clear(g.held)
	g.held = g.held[:0]
	q.queueGroup(g)
	q.dropGroup(g)
}

// take hands out up to limit visible messages. Called with q.mu held.
func (q *Queue) take(now time.Time, limit int) []sender.Message {
	if !q.deliverable() {
		return nil
	}
	out := make([]sender.Message, 0, min(limit, q.visible))
	if !q.fifo {
		for len(out) < limit && q.ready.len() > 0 {
			if e := q.ready.popFront(); e.state == stateReady {
				out = append(out, q.deliver(e, now))
			}
		}
		return setReceipts(out)
	}
	for len(out) < limit && q.readyGroups.len() > 0 {
		g := q.readyGroups.popFront()
		g.queued = false
		for len(out) < limit && g.pending.len() > 0 {
			e := g.pending.popFront()
			if e.state != stateReady {
				continue // deleted while waiting
			}
			e.inHeld = true
			g.held = append(g.held, e)
			g.inflight++
			out = append(out, q.deliver(e, now))
		}
		q.dropGroup(g)
	}
	return setReceipts(out)
}

// deliver moves the visible e in flight and returns it as a received message.
func (q *Queue) deliver(e *entry, now time.Time) sender.Message {
	e.state = stateInFlight
	e.receiveCount++
	e.deadline = now.Add(q.vis)
	q.visible--
	q.pushInFlight(e)
	return sender.Message{
		ID:           e.id,
		Body:         e.body,
		ReceiveCount: e.receiveCount,
	}
}

// setReceipts fills in the receipts of msgs, cut out of one string.
func setReceipts(msgs []sender.Message) []sender.Message {
	var stack [MaxBatch * 48]byte
	buf := stack[:0]
	for i := range msgs {
		buf = appendReceipt(buf, msgs[i].ID, msgs[i].ReceiveCount)
	}
	all, off := string(buf), 0
	for i := range msgs {
		n := len(msgs[i].ID) + 1 + decimalLen(uint64(msgs[i].ReceiveCount))
		msgs[i].Receipt = all[off : off+n]
		off += n
	}
	return msgs
}

// pushInFlight adds e to the deadline heap and, if its deadline is the earliest and no
// waiter watches one as early, wakes a waiter to watch it.
func (q *Queue) pushInFlight(e *entry) {
	q.heap.push(e)
	q.watchEarlier(e)
}

func (q *Queue) watchEarlier(e *entry) {
	if e.heapIdx == 0 && len(q.waiters) > 0 && (q.watcher == nil || e.deadline.Before(q.watchAt)) {
		q.wake(1)
	}
}

// appendReceipt appends the receipt of delivery count of the message with decimal ID id:
// "<id>.<count>".
func appendReceipt(b []byte, id string, count int) []byte {
	b = append(b, id...)
	b = append(b, '.')
	return strconv.AppendUint(b, uint64(count), 10)
}

func parseReceipt(r string) (seq uint64, count int, err error) {
	a, b, ok := strings.Cut(r, ".")
	if !ok {
		return 0, 0, fmt.Errorf("receipt %q is malformed", r)
	}
	seq, err1 := strconv.ParseUint(a, 10, 64)
	c, err2 := strconv.ParseUint(b, 10, 31)
	if err1 != nil || err2 != nil || c == 0 {
		return 0, 0, fmt.Errorf("receipt %q is malformed", r)
	}
	return seq, int(c), nil
}

// lookup returns the message whose latest receipt is r, or nil if r is stale.
func (q *Queue) lookup(seq uint64, count int) *entry {
	e := q.entries[seq]
	if e == nil || e.receiveCount != count {
		return nil
	}
	return e
}

// Delete removes the messages whose receipts are given. A receipt is valid until its
// message is received again: a message whose visibility timed out can still be deleted with
// its last receipt until someone receives it anew. A stale receipt (an older delivery of a
// message received again since, or a message already deleted) deletes nothing and is not an
// error, so Delete is idempotent; Stats counts such receipts. A malformed receipt fails the
// whole call before anything is deleted.
func (q *Queue) Delete(ctx context.Context, receipts []string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memqueue: delete: %w", err)
	}
	type handle struct {
		seq   uint64
		count int
	}
	var small [MaxBatch]handle
	hs := small[:0]
	for i, r := range receipts {
		seq, count, err := parseReceipt(r)
		if err != nil {
			return fmt.Errorf("memqueue: delete: receipt %d: %w", i, err)
		}
		hs = append(hs, handle{seq, count})
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return fmt.Errorf("memqueue: delete: %w", ErrClosed)
	}
	for _, h := range hs {
		e := q.lookup(h.seq, h.count)
		if e == nil {
			q.staleDeletes++
			continue
		}
		q.remove(e)
	}
	return nil
}

// remove deletes e, in flight or visible, from the queue. Called with q.mu held.
func (q *Queue) remove(e *entry) {
	wasInFlight := e.state == stateInFlight
	if wasInFlight {
		q.heap.remove(e)
	} else {
		q.visible-- // a visible message stays in its ring and is skipped there
	}
	e.state = stateDeleted
	delete(q.entries, e.seq)
	if !q.fifo {
		return
	}
	g := e.group
	if e.inHeld {
		e.inHeld = false
		if i := slices.Index(g.held, e); i >= 0 {
			g.held = slices.Delete(g.held, i, i+1)
		}
	}
	if wasInFlight {
		g.inflight--
		if g.inflight == 0 {
			q.releaseGroup(g)
			q.wake(1)
			return
		}
	}
	q.dropGroup(g)
}

// ExtendVisibility keeps the message of receipt hidden for d (0..MaxVisibilityTimeout) from
// now; d == 0 makes it visible at once (and unblocks its FIFO group). It fails with an error
// wrapping ErrNotInFlight unless receipt is the latest receipt of a message whose visibility
// timeout has not run out.
func (q *Queue) ExtendVisibility(ctx context.Context, receipt string, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memqueue: extend visibility: %w", err)
	}
	if d < 0 || d > MaxVisibilityTimeout {
		return fmt.Errorf("memqueue: extend visibility: %v is outside 0..%v", d, MaxVisibilityTimeout)
	}
	seq, count, err := parseReceipt(receipt)
	if err != nil {
		return fmt.Errorf("memqueue: extend visibility: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return fmt.Errorf("memqueue: extend visibility: %w", ErrClosed)
	}
	now := q.now()
	e := q.lookup(seq, count)
	if e == nil || e.state != stateInFlight || !e.deadline.After(now) {
		return fmt.Errorf("memqueue: extend visibility: receipt %q: %w", receipt, ErrNotInFlight)
	}
	if d == 0 {
		q.heap.remove(e)
		q.requeue(e)
		q.wake(1)
		return nil
	}
	e.deadline = now.Add(d)
	q.heap.fix(e.heapIdx)
	q.watchEarlier(e)
	return nil
}

// Stats returns a snapshot of the queue's counters, after applying visibility timeouts.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.expire(q.now())
	}
	return Stats{
		Visible:      q.visible,
		InFlight:     len(q.heap),
		Deduplicated: q.deduplicated,
		Redelivered:  q.redelivered,
		StaleDeletes: q.staleDeletes,
	}
}

// Close discards every message and wakes waiting receivers, which return ErrClosed; later
// calls of any method but Stats and Close return ErrClosed. Close is idempotent and always
// returns nil.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	close(q.done)
	for _, w := range q.waiters {
		w.queued = false
	}
	q.waiters = nil
	q.entries = nil
	q.heap = nil
	q.ready = ring[*entry]{}
	q.groups = nil
	q.readyGroups = ring[*group]{}
	q.visible = 0
	return nil
}
