package memledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/salvopush/salvo/sender"
)

// JournalOptions tune OpenJournal; the zero value is ready to use.
type JournalOptions struct {
	// Clock gives the time for leases (time.Now if nil).
	Clock func() time.Time
	// Logger, if not nil, hears what Open did about a damaged journal (a cut tail at WARN,
	// a corrupt record followed by good ones at ERROR).
	Logger *slog.Logger
	// SyncGap is the least time between the starts of two syncs (DefaultSyncGap if zero;
	// negative: no gap). A sync costs the process CPU whatever it carries (about 100-300
	// CPU-µs on ext4 here), so spacing them lets each carry more finishes, at the price of
	// up to SyncGap more wait per Finish. BenchmarkJournalFinishPaced measures both.
	SyncGap time.Duration
}

// DefaultSyncGap spaces the journal's syncs: at 16k finishes/s (800k notifications/s in
// chunks of 50), 2 ms cut the journal's CPU per recipient by a fifth in
// BenchmarkJournalFinishPaced, against 64 send loops that each wait up to 2 ms longer.
const DefaultSyncGap = 2 * time.Millisecond

// Recovery says what Open found in the journal.
type Recovery struct {
	Records int   // records replayed
	Kept    int64 // bytes of the journal kept, header included
	// Dropped counts the bytes cut from the end: a record torn by a crash, or everything
	// from the first record that failed its checks.
	Dropped int64
	// Zeros counts the zero bytes after the last record: space written ahead for records
	// to come (see preallocate), neither records nor damage.
	Zeros int64
	Cause string // why the bytes were dropped; empty when none were
	// Salvaged names the file the dropped bytes were saved to when a good record followed
	// the bad one (corruption in the middle, not a torn end); empty otherwise.
	Salvaged string
}

// maxSyncs bounds the syncs of a journal that run at once.
const maxSyncs = 2

// journal is the append-only file behind a Ledger from Open.
type journal struct {
	f        *os.File
	recovery Recovery

	mu       sync.Mutex // orders changes in memory with their records in buf; guards all below
	synced   sync.Cond  // on mu: broadcast when a sync ends (for a leader waiting for a slot, and Close)
	buf      []byte     // records not yet written
	size     int64      // the journal's end: where the next records go
	alloc    int64      // the file's size: zeros from size on, written ahead (see preallocate)
	gen      *syncGen   // the sync that will carry the records in buf
	leading  bool       // a caller has taken on gen's sync and is getting ready to write
	syncing  int        // syncs running
	lastSync time.Time  // when the latest sync wrote
	syncGap  time.Duration
	syncs    atomic.Int64 // syncs started, for the benchmarks
	closed   bool
	err      error // the first write or sync failure; the journal takes nothing after it
}

// Open is OpenJournal with default options.
func Open(path string) (*Ledger, error) { return OpenJournal(path, JournalOptions{}) }

// OpenJournal returns a Ledger whose finished, failed and redriven recipients survive the
// process: it replays the journal at path (created, mode 0600, in a directory made with
// mode 0700 if missing), then appends every Finish, Redrive and Forget to it and syncs
// before they return. Claims are not journaled: after a restart nothing is claimed, which
// is right, since the claimers died with the process.
//
// A journal whose end is damaged (a record torn by a crash, or failing its checksum) is cut
// before the first bad record, and the Ledger opens with what came before; Recovery says
// what was cut. If a good record follows the bad one, the cut bytes are saved beside the
// journal first (path + ".corrupt-" + a timestamp) and the Logger hears it at ERROR: the
// records after the corruption are not replayed. A file that is not a journal is an error.
// The caller closes the Ledger with Close.
func OpenJournal(path string, opts JournalOptions) (*Ledger, error) {
	l := NewWithClock(opts.Clock)
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("memledger: open: %w", err)
		}
	}
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("memledger: open: %w", err)
	}
	j := &journal{f: f, syncGap: opts.SyncGap, gen: newSyncGen()}
	if j.syncGap == 0 {
		j.syncGap = DefaultSyncGap
	}
	j.synced.L = &j.mu
	if err := j.load(l, path, created, opts); err != nil {
		f.Close()
		return nil, fmt.Errorf("memledger: open %s: %w", path, err)
	}
	l.journal = j
	return l, nil
}

// load replays the file into l and leaves it ready for appends.
func (j *journal) load(l *Ledger, path string, created bool, opts JournalOptions) error {
	if err := j.f.Chmod(0o600); err != nil {
		return err
	}
	data, err := io.ReadAll(j.f)
	if err != nil {
		return err
	}
	if len(data) < len(magic) && bytes.HasPrefix([]byte(magic), data) {
		// New, or torn while its header was written: start it over.
		if err := j.f.Truncate(0); err != nil {
			return err
		}
		if _, err := j.f.WriteAt([]byte(magic), 0); err != nil {
			return err
		}
		if err := j.f.Sync(); err != nil {
			return err
		}
		j.size, j.alloc = int64(len(magic)), int64(len(magic))
		j.recovery = Recovery{Kept: int64(len(magic))}
		if created {
			return syncDir(filepath.Dir(path))
		}
		return nil
	}
	if !bytes.HasPrefix(data, []byte(magic)) {
		return errors.New("not a ledger journal (bad header)")
	}
	off, records, cause := l.replay(data)
	j.size, j.alloc = int64(off), int64(len(data))
	j.recovery = Recovery{Records: records, Kept: int64(off), Dropped: int64(len(data) - off)}
	if off == len(data) || allZero(data[off:]) {
		// The end, or the end followed by the zeros written ahead of it.
		j.recovery.Dropped, j.recovery.Zeros = 0, int64(len(data)-off)
		return nil
	}
	j.recovery.Cause = cause.Error()
	log := opts.Logger
	if at := goodFrameAfter(data[off:]); at >= 0 {
		clock := opts.Clock
		if clock == nil {
			clock = time.Now
		}
		j.recovery.Salvaged = fmt.Sprintf("%s.corrupt-%d", path, clock().UnixNano())
		if err := os.WriteFile(j.recovery.Salvaged, data[off:], 0o600); err != nil {
			return fmt.Errorf("save the records after a corrupt one: %w", err)
		}
		if log != nil {
			log.Error("memledger: corrupt journal record followed by good ones; replay stopped there",
				"path", path, "offset", off, "cause", cause, "dropped_bytes", len(data)-off,
				"good_record_at", off+at, "saved_to", j.recovery.Salvaged)
		}
	} else if log != nil {
		log.Warn("memledger: journal tail cut", "path", path, "offset", off, "cause", cause, "dropped_bytes", len(data)-off)
	}
	if err := j.f.Truncate(int64(off)); err != nil {
		return err
	}
	j.alloc = int64(off)
	return j.f.Sync()
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// preallocate is how far ahead of its end the journal writes zeros. A sync of records
// written over zeros already on disk leaves the file's size alone, so fdatasync has no
// metadata to commit: 140-176 CPU-µs and 0.5-1.6 ms a sync, against 235-249 CPU-µs and
// 1.9-2.3 ms when every sync grew the file (ext4 on the development machine, 3000 syncs of
// 600 bytes, in 3 of 4 tries; the fourth was even). Replay takes a zero tail as the end.
const preallocate = 1 << 20

// write writes b at the journal's end, first writing zeros past the file's end when b
// would reach it. The caller syncs.
func (j *journal) write(b []byte) error {
	end := j.size + int64(len(b))
	if end > j.alloc {
		to := end + preallocate
		zeros := make([]byte, 64<<10)
		for at := j.alloc; at < to; {
			n := int(min(int64(len(zeros)), to-at))
			if _, err := j.f.WriteAt(zeros[:n], at); err != nil {
				return err
			}
			at += int64(n)
			j.alloc = at
		}
	}
	if _, err := j.f.WriteAt(b, j.size); err != nil {
		return err
	}
	j.size = end
	return nil
}

// replay applies the journal's records to l, stopping at the first bad one; it returns the
// offset where it stopped, the records applied and, if it stopped early, why.
func (l *Ledger) replay(data []byte) (off, records int, cause error) {
	off = len(magic)
	for off < len(data) {
		p, size, err := nextFrame(data[off:])
		var r record
		if err == nil {
			r, err = parseRecord(p)
		}
		if err != nil {
			return off, records, fmt.Errorf("record %d at offset %d: %w", records+1, off, err)
		}
		l.apply(r)
		off += size
		records++
	}
	return off, records, nil
}

// apply replays one checked record in memory.
func (l *Ledger) apply(r record) {
	switch r.kind {
	case kindFinish:
		ws := words{c: l.campaign(string(r.campaign), true), create: true}
		_ = eachRun(r.runs, func(s, n uint32) { ws.finish(tagShared, r.state, s, n) })
	case kindRedrive:
		l.redrive(string(r.campaign), r.start, r.n)
	case kindForget:
		l.campaigns.Delete(string(r.campaign))
	}
}

// goodFrameAfter returns the offset of the first intact record in b after its first byte,
// or -1.
func goodFrameAfter(b []byte) int {
	for i := 1; i+frameHeader < len(b); i++ {
		if p, _, err := nextFrame(b[i:]); err == nil {
			if _, err := parseRecord(p); err == nil {
				return i
			}
		}
	}
	return -1
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Recovery says what Open found in the journal; zero for a Ledger from New.
func (l *Ledger) Recovery() Recovery {
	if l.journal == nil {
		return Recovery{}
	}
	return l.journal.recovery
}

// Close writes what is pending and closes the journal; later Finish, Redrive and Forget
// calls fail with ErrClosed (claims keep working in memory). It is a no-op for a Ledger
// from New, and idempotent.
func (l *Ledger) Close() error {
	j := l.journal
	if j == nil {
		return nil
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	err := j.sync()
	for j.syncing > 0 { // a sync that finished last may still be running
		j.synced.Wait()
	}
	if err == nil && j.err == nil && j.alloc > j.size {
		// Leave no zeros behind (a reopen would take them as the end all the same).
		if err = j.f.Truncate(j.size); err == nil {
			err = j.f.Sync()
		}
		if err != nil {
			err = fmt.Errorf("memledger: close: %w", err)
		}
	}
	j.mu.Unlock()
	if cerr := j.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("memledger: close: %w", cerr)
	}
	return err
}

// change applies a change in memory and appends its records under j.mu, so that the
// journal's order is the order the changes were made in; then it waits for the sync that
// carries them. do returns the grown buffer.
func (j *journal) change(do func(buf []byte) []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	if j.err != nil {
		// After a failed write or sync (a full disk), no further change is made: it
		// could not be journaled.
		return j.err
	}
	j.buf = do(j.buf)
	return j.sync()
}

// failure returns the write or sync failure that stopped the journal, or nil.
func (j *journal) failure() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// syncGen is one sync: the records it writes, and the callers waiting for them.
type syncGen struct {
	done chan struct{} // closed when the sync has ended
	err  error         // set before done is closed
}

func newSyncGen() *syncGen { return &syncGen{done: make(chan struct{})} }

// sync returns, with j.mu held as on entry, once the records appended so far are synced
// (group commit). The first caller after a sync began leads the next one: it waits out
// syncGap since the last sync, so that the callers arriving meanwhile join it, then writes
// everything appended and syncs it; the others sleep on that sync alone, so that a sync's
// end wakes only the callers whose records it carried. Up to maxSyncs syncs run at once,
// so that a sync whose caller the machine is slow to wake again does not hold up the next
// one.
func (j *journal) sync() error {
	g := j.gen
	if j.leading {
		j.mu.Unlock()
		<-g.done
		j.mu.Lock()
		return g.err
	}
	j.leading = true
	j.mu.Unlock()
	if d := j.syncGap - time.Since(j.lastSync); d > 0 {
		time.Sleep(d)
	} else {
		// Let the callers the last sync released run first: most append again at once,
		// and this sync takes them along instead of leaving them for the next one.
		runtime.Gosched()
	}
	j.mu.Lock()
	for j.syncing >= maxSyncs {
		j.synced.Wait()
	}
	j.leading = false
	j.gen = newSyncGen()
	err := j.err
	if err == nil && len(j.buf) > 0 {
		err = j.write(j.buf) // in order: writes happen under j.mu
		j.buf = j.buf[:0]
		if cap(j.buf) > 1<<20 {
			j.buf = nil
		}
	}
	j.syncing++
	j.lastSync = time.Now()
	j.syncs.Add(1)
	j.mu.Unlock()

	if err == nil {
		err = syncData(j.f)
	}

	j.mu.Lock()
	j.syncing--
	if err != nil && j.err == nil {
		j.err = fmt.Errorf("journal: %w", err)
	}
	if err != nil {
		g.err = j.err
	}
	close(g.done)
	j.synced.Broadcast()
	return g.err
}

// finish applies Finish and journals it.
func (j *journal) finish(l *Ledger, campaign string, tag uint64, state sender.RecipientState, recipients []uint32) error {
	if len(campaign) > maxCampaignLen {
		return fmt.Errorf("campaign ID of %d bytes is longer than %d", len(campaign), maxCampaignLen)
	}
	return j.change(func(buf []byte) []byte {
		ws := words{c: l.campaign(campaign, true), create: true}
		ff := finishFrames{buf: buf, campaign: campaign, state: state, at: -1}
		forRuns(recipients, func(s, n uint32) {
			ws.finish(tag, state, s, n)
			ff.run(s, n)
		})
		return ff.close()
	})
}

// redrive applies Redrive and journals it.
func (j *journal) redrive(l *Ledger, campaign string, start, n uint32) (int, error) {
	if len(campaign) > maxCampaignLen {
		return 0, fmt.Errorf("campaign ID of %d bytes is longer than %d", len(campaign), maxCampaignLen)
	}
	changed := 0
	err := j.change(func(buf []byte) []byte {
		changed = l.redrive(campaign, start, n)
		return appendRedrive(buf, campaign, start, n)
	})
	return changed, err
}

// forget applies Forget and journals it.
func (j *journal) forget(l *Ledger, campaign string) error {
	if len(campaign) > maxCampaignLen {
		return fmt.Errorf("campaign ID of %d bytes is longer than %d", len(campaign), maxCampaignLen)
	}
	return j.change(func(buf []byte) []byte {
		l.campaigns.Delete(campaign)
		return appendForget(buf, campaign)
	})
}
