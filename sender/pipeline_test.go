package sender_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/localstore"
	"github.com/salvopush/salvo/sender/memledger"
	"github.com/salvopush/salvo/sender/memqueue"
)

// registry gives every user one device: "i<n>" users an iOS token, others an Android one.
type registry struct{}

func (registry) Devices(_ context.Context, ids []string) ([][]sender.Device, error) {
	out := make([][]sender.Device, len(ids))
	for i, id := range ids {
		if id[0] == 'i' {
			out[i] = []sender.Device{{Platform: sender.PlatformIOS, Token: "tok-" + id, App: "com.example"}}
		} else {
			out[i] = []sender.Device{{Platform: sender.PlatformAndroid, Token: "tok-" + id, App: "proj"}}
		}
	}
	return out, nil
}

// transport answers every push with answer(token) and counts pushes per token.
type transport struct {
	answer func(token string) sender.Result
	mu     sync.Mutex
	pushes map[string]int
	calls  atomic.Int64
	// onBatch, when set, sees every batch (under mu) before it is answered.
	onBatch func(*sender.Batch)
	// refuse, when set, may refuse a whole batch: Send returns its error and pushes nothing.
	refuse  func(*sender.Batch) error
	refused atomic.Int64 // tokens in refused batches
}

func newTransport(answer func(string) sender.Result) *transport {
	return &transport{answer: answer, pushes: map[string]int{}}
}

func (t *transport) Send(ctx context.Context, b *sender.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.calls.Add(1)
	if t.refuse != nil {
		if err := t.refuse(b); err != nil {
			t.refused.Add(int64(len(b.Tokens)))
			return err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.onBatch != nil {
		t.onBatch(b)
	}
	for i, tok := range b.Tokens {
		t.pushes[string(tok)]++
		r := t.answer(string(tok))
		r.At = time.Now()
		b.Results[i] = r
	}
	return nil
}

func (t *transport) Close() error { return nil }

func (t *transport) count() (total, distinct int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.pushes {
		total += n
	}
	return total, len(t.pushes)
}

// requirePushedOnce fails the test unless the pushes went to exactly the devices of ids (as
// the registry above gives them, written out here again), each once.
func (t *transport) requirePushedOnce(tb testing.TB, ids ...[]string) {
	tb.Helper()
	want := map[string]bool{}
	for _, list := range ids {
		for _, id := range list {
			want["tok-"+id] = true
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for tok, n := range t.pushes {
		if !want[tok] || n != 1 {
			tb.Errorf("%s pushed %d times (expected: %v)", tok, n, want[tok])
		}
	}
	for tok := range want {
		if t.pushes[tok] == 0 {
			tb.Errorf("%s never pushed", tok)
		}
	}
}

func accept(string) sender.Result { return sender.Result{Outcome: sender.Accepted, Status: 200} }

// rig is a service and one worker over in-memory backends.
type rig struct {
	svc                          *sender.Service
	w                            *sender.Worker
	objects                      *localstore.Store
	records                      *localstore.Records
	ranges, batches, deadLetters *memqueue.Queue
	ledger                       *memledger.Ledger
	tr                           *transport
	stop                         func()
}

func newRig(t *testing.T, tr *transport, retry sender.RetryPolicy) *rig {
	t.Helper()
	objects, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{objects: objects, records: localstore.NewRecords(), ledger: memledger.New(), tr: tr}
	mustQ := func(cfg memqueue.Config) *memqueue.Queue {
		q, err := memqueue.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	r.ranges = mustQ(memqueue.Config{FIFO: true, VisibilityTimeout: 2 * time.Second})
	r.batches = mustQ(memqueue.Config{VisibilityTimeout: 2 * time.Second})
	r.deadLetters = mustQ(memqueue.Config{})
	r.svc, err = sender.NewService(sender.ServiceConfig{Registry: registry{}, Objects: objects, Records: r.records,
		Ranges: r.ranges, Ledger: r.ledger, DeadLetters: r.deadLetters, RangeCount: 4, Watch: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.w, err = sender.NewWorker(sender.WorkerConfig{ID: "w", Objects: objects, Records: r.records, Ledger: r.ledger,
		Ranges: r.ranges, Batches: r.batches, DeadLetters: r.deadLetters,
		Transports: map[sender.Platform]sender.Transport{sender.PlatformIOS: tr, sender.PlatformAndroid: tr},
		Fanout:     1, Send: 4, BatchIOS: 10, BatchAndroid: 10, Chunk: 5, Retry: retry,
		Visibility: 2 * time.Second, Lease: 2 * time.Second, Poll: 20 * time.Millisecond, Wait: 50 * time.Millisecond,
		StatsEvery: 100 * time.Millisecond, StallAfter: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
		r.svc.Close()
		for _, q := range []*memqueue.Queue{r.ranges, r.batches, r.deadLetters} {
			q.Close()
		}
	}
	t.Cleanup(r.stop)
	return r
}

// users returns n iOS users and n Android users.
func users(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("i%d", i), fmt.Sprintf("a%d", i))
	}
	return out
}

func spec(ids []string) sender.CampaignSpec {
	return sender.CampaignSpec{Name: "t", Audience: sender.AudienceSource{UserIDs: ids},
		Message: sender.MessageSpec{APNs: &sender.APNsSpec{Payload: json.RawMessage(`{"aps":{"alert":"hi"}}`)},
			FCM: &sender.FCMSpec{Title: "hi"}}}
}

// waitFor polls cond every 20 ms for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rig) status(t *testing.T, id string) *sender.Status {
	t.Helper()
	st, err := r.svc.Status(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// ready creates a campaign and waits until it is prepared.
func (r *rig) ready(t *testing.T, id string, s sender.CampaignSpec) {
	t.Helper()
	ctx := context.Background()
	if _, err := r.svc.Create(ctx, id, s); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "resolution", func() bool { return r.status(t, id).Campaign.State == sender.StateResolved })
	if _, err := r.svc.Prepare(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "prepare", func() bool { return r.status(t, id).Prepared })
}

func (r *rig) waitState(t *testing.T, id, state string) *sender.Status {
	t.Helper()
	var st *sender.Status
	waitFor(t, "state "+state, func() bool {
		st = r.status(t, id)
		return st.Campaign.State == state
	})
	return st
}

// TestSendFinishesDone: everyone accepted once, the campaign ends done with the ledger's
// counts, and the status progress agrees.
func TestSendFinishesDone(t *testing.T) {
	t.Parallel()
	r := newRig(t, newTransport(accept), sender.RetryPolicy{})
	r.ready(t, "c", spec(users(50)))
	if _, err := r.svc.Press(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	st := r.waitState(t, "c", sender.StateDone)
	if res := st.Campaign.Result; res == nil || res.Accepted != 100 || res.Failed != 0 || res.Unsent != 0 {
		t.Fatalf("result %+v", st.Campaign.Result)
	}
	r.tr.requirePushedOnce(t, users(50))
	p := st.Progress
	if p == nil || p.Accepted != 100 || p.InFlight != 0 || p.Source != "ledger" {
		t.Fatalf("progress %+v", p)
	}
}

// TestDeadlineFailsAndRedrives: a provider that keeps failing transiently is tried until the
// delivery deadline, then its recipients are failed with the reason, dead-lettered, and the
// campaign ends done_with_failures; a redrive after the provider recovers sends exactly
// those, once.
func TestDeadlineFailsAndRedrives(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	down.Store(true)
	tr := newTransport(func(tok string) sender.Result {
		if down.Load() && tok[4] == 'a' { // Android is down
			return sender.Result{Outcome: sender.Transient, Status: 503, Reason: "UNAVAILABLE"}
		}
		return sender.Result{Outcome: sender.Accepted, Status: 200}
	})
	r := newRig(t, tr, sender.RetryPolicy{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond})
	s := spec(users(20))
	s.DeliveryDeadlineSeconds = 1
	r.ready(t, "c", s)
	if _, err := r.svc.Press(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	st := r.waitState(t, "c", sender.StateDoneWithFailures)
	if res := st.Campaign.Result; res.Accepted != 20 || res.Failed != 20 {
		t.Fatalf("result %+v, want 20 accepted and 20 failed", res)
	}
	// The reasons come from the figures the worker publishes (every 100 ms here).
	waitFor(t, "failure reasons", func() bool {
		st = r.status(t, "c")
		var n int64
		for _, v := range st.Progress.FailedBy {
			n += v
		}
		return n == 20
	})
	var reasons int64
	for why, n := range st.Progress.FailedBy {
		if n > 0 && !strings.Contains(why, "UNAVAILABLE") {
			t.Fatalf("failure reason %q does not say what the provider answered", why)
		}
		reasons += n
	}
	if reasons != 20 || st.Progress.DeadLettered != 20 {
		t.Fatalf("failed by reason %v, dead-lettered %d", st.Progress.FailedBy, st.Progress.DeadLettered)
	}
	if n := r.deadLetters.Stats().Visible; n == 0 {
		t.Fatal("nothing on the dead-letter queue")
	}
	before, _ := r.tr.count()
	down.Store(false)
	if _, err := r.svc.Redrive(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	st = r.waitState(t, "c", sender.StateDone)
	if res := st.Campaign.Result; res.Accepted != 40 || res.Failed != 0 {
		t.Fatalf("after redrive %+v", res)
	}
	after, _ := r.tr.count()
	r.tr.mu.Lock()
	defer r.tr.mu.Unlock()
	for tok, n := range r.tr.pushes {
		if tok[4] == 'i' && n != 1 {
			t.Fatalf("%s pushed %d times: the redrive resent an accepted recipient", tok, n)
		}
	}
	if after-before != 20 {
		t.Fatalf("redrive pushed %d, want the 20 failed ones", after-before)
	}
	if _, err := r.svc.Redrive(context.Background(), "c"); err == nil {
		t.Fatal("a second redrive with nothing failed was accepted")
	}
}

// TestCannotSendFailsAtOnce: a batch the transport can never send (here: Android devices
// of another FCM project than the transport's) fails its recipients at once, with the
// transport's reason, dead-lettered, instead of being retried until the delivery deadline
// (10 minutes by default, which the wait below would not reach).
func TestCannotSendFailsAtOnce(t *testing.T) {
	t.Parallel()
	tr := newTransport(accept)
	tr.refuse = func(b *sender.Batch) error {
		if b.Platform == sender.PlatformAndroid {
			return fmt.Errorf("fcm: send: batch is for project %q, transport for %q: %w", "theirs", "ours", sender.ErrCannotSend)
		}
		return nil
	}
	r := newRig(t, tr, sender.RetryPolicy{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond})
	r.ready(t, "c", spec(users(20)))
	if _, err := r.svc.Press(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	st := r.waitState(t, "c", sender.StateDoneWithFailures)
	if res := st.Campaign.Result; res.Accepted != 20 || res.Failed != 20 {
		t.Fatalf("result %+v, want the 20 iOS accepted and the 20 Android failed", res)
	}
	waitFor(t, "failure reasons", func() bool {
		st = r.status(t, "c")
		return st.Progress.FailedBy[`transport: fcm: send: batch is for project "theirs", transport for "ours": cannot be sent by this transport`] == 20
	})
	if n := tr.refused.Load(); n != 20 {
		// Each of the 20 Android recipients tried once, never again.
		t.Fatalf("%d recipients in refused batches, want each of the 20 once", n)
	}
	if r.deadLetters.Stats().Visible == 0 {
		t.Fatal("nothing on the dead-letter queue")
	}
}

// TestAbortStopsPushes: after an abort the worker lets go of the campaign and pushes nothing
// more of it, and the campaign ends aborted with what was not sent counted.
func TestAbortStopsPushes(t *testing.T) {
	t.Parallel()
	tr := newTransport(func(string) sender.Result {
		return sender.Result{Outcome: sender.Transient, Status: 429, Reason: "TooManyRequests"}
	})
	r := newRig(t, tr, sender.RetryPolicy{Base: 20 * time.Millisecond, Max: 50 * time.Millisecond})
	r.ready(t, "c", spec(users(20)))
	if _, err := r.svc.Press(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pushes", func() bool { return tr.calls.Load() > 10 })
	if _, err := r.svc.Abort(sender.WithActor(context.Background(), "ops"), "c", "wrong copy"); err != nil {
		t.Fatal(err)
	}
	// The result is written once the workers have let go of the campaign: from then on
	// nothing of it may be pushed, even while its batch messages are drained from the queue.
	var st *sender.Status
	waitFor(t, "abort result", func() bool { st = r.status(t, "c"); return st.Campaign.Result != nil })
	calls := tr.calls.Load()
	waitFor(t, "queues drained", func() bool {
		rq, bq := r.ranges.Stats(), r.batches.Stats()
		return rq.Visible+rq.InFlight+bq.Visible+bq.InFlight == 0
	})
	if more := tr.calls.Load() - calls; more != 0 {
		t.Fatalf("%d pushes after the workers let go of the aborted campaign", more)
	}
	if res := st.Campaign.Result; res.Unsent != 40 || st.Campaign.Aborted.By != "ops" {
		t.Fatalf("result %+v aborted %+v", res, st.Campaign.Aborted)
	}
	if _, err := r.svc.Press(context.Background(), "c"); err != nil {
		t.Fatalf("press after abort: %v (already pressed is not an error)", err)
	}
	if _, err := r.svc.Abort(context.Background(), "c", ""); err == nil {
		t.Fatal("aborting an ended campaign was accepted")
	}
}

// TestPartialClaimKeepsTheBatch: recipients another loop holds are not pushed, and the batch
// message stays until they are finished; once that loop lets go they are pushed, once.
func TestPartialClaimKeepsTheBatch(t *testing.T) {
	t.Parallel()
	r := newRig(t, newTransport(accept), sender.RetryPolicy{})
	r.ready(t, "c", spec(users(10)))
	ctx := context.Background()
	// Another owner holds the first 5 recipients (both platforms' segments start at 0 and 10).
	held, err := r.ledger.Claim(ctx, "c", "other/0", 0, 5, time.Minute, nil)
	if err != nil || len(held) != 5 {
		t.Fatalf("claim: %v %v", held, err)
	}
	if _, err := r.svc.Press(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the free recipients", func() bool { c, _ := r.ledger.Counts(ctx, "c"); return c.Accepted == 15 })
	// The batch holding the 5 came back to the worker twice more (its message kept and
	// shown again): it had its chances to push them.
	base := r.batches.Stats().Redelivered
	waitFor(t, "the kept batch to come back twice", func() bool { return r.batches.Stats().Redelivered >= base+2 })
	if c, _ := r.ledger.Counts(ctx, "c"); c.Accepted != 15 {
		t.Fatalf("accepted %d while 5 are held elsewhere", c.Accepted)
	}
	if st := r.status(t, "c"); st.Campaign.State != sender.StateSending {
		t.Fatalf("state %s with 5 held", st.Campaign.State)
	}
	if err := r.ledger.Release(ctx, "c", "other/0", held); err != nil {
		t.Fatal(err)
	}
	st := r.waitState(t, "c", sender.StateDone)
	if st.Campaign.Result.Accepted != 20 {
		t.Fatalf("result %+v", st.Campaign.Result)
	}
	r.tr.requirePushedOnce(t, users(10))
}

// TestPressOnceAndRecovery: concurrent presses start one send; a press whose winner died
// before queuing its ranges is finished by a later press.
func TestPressOnceAndRecovery(t *testing.T) {
	t.Parallel()
	r := newRig(t, newTransport(accept), sender.RetryPolicy{})
	r.ready(t, "c", spec(users(5)))
	var wg sync.WaitGroup
	var started atomic.Int32
	ids := make(chan string, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.svc.Press(context.Background(), "c")
			if err != nil {
				t.Error(err)
				return
			}
			if !res.AlreadyPressed {
				started.Add(1)
			}
			ids <- res.SendID
		}()
	}
	wg.Wait()
	close(ids)
	first := <-ids
	for id := range ids {
		if id != first {
			t.Fatalf("presses answered %s and %s", first, id)
		}
	}
	if started.Load() != 1 {
		t.Fatalf("%d presses started a send", started.Load())
	}
	r.waitState(t, "c", sender.StateDone)

	// A winner that died between its compare-and-set and queuing all its ranges: the record
	// says sending, not enqueued, and range 0 of 2 made it onto the queue (and is sent).
	dUsers := []string{"id0", "ad0", "id1", "ad1", "id2", "ad2", "id3", "ad3", "id4", "ad4"}
	r.ready(t, "d", spec(dUsers))
	ctx := context.Background()
	dead := &sender.SendInfo{ID: "s-dead", PressedAt: time.Now(), Deadline: time.Now().Add(time.Hour), Ranges: 2}
	setSend := func(pressedAt time.Time) {
		t.Helper()
		rec, err := r.records.Get(ctx, "campaign/d")
		if err != nil {
			t.Fatal(err)
		}
		var cr sender.CampaignRecord
		_ = json.Unmarshal(rec.Data, &cr)
		dead.PressedAt = pressedAt
		cr.State, cr.Send = sender.StateSending, dead
		data, _ := json.Marshal(cr)
		if _, err := r.records.CompareAndSwap(ctx, "campaign/d", rec.Version, data); err != nil {
			t.Fatal(err)
		}
	}
	setSend(time.Now())
	body, _ := json.Marshal(sender.RangeMessage{Campaign: "d", Send: "s-dead", PressedAt: dead.PressedAt.UnixNano(),
		Deadline: dead.Deadline.UnixNano(), Start: 0, End: 5})
	// The winner's own message: the deduplication ID and group its enqueue gives range 0.
	if err := r.ranges.Send(ctx, []sender.OutMessage{{Body: body, GroupID: "d-r0", DedupID: "d-r0"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "range 0", func() bool { c, _ := r.ledger.Counts(ctx, "d"); return c.Accepted == 5 })
	// A press right after the winner's leaves the queuing to it (it may still be at it).
	res, err := r.svc.Press(ctx, "d")
	if err != nil || !res.AlreadyPressed || res.SendID != "s-dead" {
		t.Fatalf("press while the winner may still queue: %+v %v", res, err)
	}
	if st := r.status(t, "d"); st.Campaign.Send.Enqueued || r.ranges.Stats().Deduplicated != 0 {
		t.Fatalf("a press within the winner's time queued its ranges: enqueued %v", st.Campaign.Send.Enqueued)
	}
	// Long after, a press finishes the job: range 1 queued, range 0 dropped as a repeat.
	setSend(time.Now().Add(-time.Minute))
	res, err = r.svc.Press(ctx, "d")
	if err != nil || !res.AlreadyPressed || res.SendID != "s-dead" {
		t.Fatalf("recovery press: %+v %v", res, err)
	}
	st := r.waitState(t, "d", sender.StateDone)
	if st.Campaign.Result.Accepted != 10 || !st.Campaign.Send.Enqueued {
		t.Fatalf("recovered send: %+v enqueued %v", st.Campaign.Result, st.Campaign.Send.Enqueued)
	}
	if n := r.ranges.Stats().Deduplicated; n != 1 {
		t.Errorf("%d range messages dropped as repeats, want range 0's", n)
	}
	waitFor(t, "queues drained", func() bool {
		rq, bq := r.ranges.Stats(), r.batches.Stats()
		return rq.Visible+rq.InFlight+bq.Visible+bq.InFlight == 0
	})
	r.tr.requirePushedOnce(t, users(5), dUsers)
}
