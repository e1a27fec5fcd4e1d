package memledger

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender"
)

// crashChildEnv, when set, makes the test binary the child of TestJournalCrash: it finishes
// chunks into the journal named by the variable, reporting each one that returned on
// stdout, until it is killed.
const crashChildEnv = "SALVO_MEMLEDGER_CRASH_CHILD"

// Crash child's work: crashLoops goroutines; loop g finishes chunks g, g+crashLoops, ...
// of crashChunk recipients each, in the state chunkState gives, one at a time.
const (
	crashLoops    = 16
	crashChunk    = 50
	crashCampaign = "crash"
	crashMax      = 200_000 // chunks per loop at most: the child is killed long before
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		os.Exit(crashChild(path))
	}
	os.Exit(m.Run())
}

func chunkState(c int) sender.RecipientState { return sender.RecipientState(1 + c%3) }

func crashChild(path string) int {
	l, err := Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range crashLoops {
		wg.Go(func() {
			owner := fmt.Sprintf("loop-%d", g)
			rs := make([]uint32, crashChunk)
			for k := range crashMax {
				c := k*crashLoops + g
				for i := range rs {
					rs[i] = uint32(c*crashChunk + i)
				}
				if err := l.Finish(context.Background(), crashCampaign, owner, chunkState(c), rs); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				_, _ = os.Stdout.WriteString(strconv.Itoa(c) + "\n")
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return 0
}

// TestJournalCrash kills a process with SIGKILL while its loops finish recipients into a
// journal, then reopens the journal: every Finish that returned before the kill is there
// in its state, and nothing that was never finished is.
func TestJournalCrash(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.journal")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	returned := map[int]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		c, err := strconv.Atoi(sc.Text())
		if err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
		returned[c] = true
		if len(returned) == 400 {
			if err := cmd.Process.Signal(os.Kill); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := cmd.Wait(); err == nil || len(returned) < 400 {
		t.Fatalf("child ended with %v after %d chunks; want it killed after 400", err, len(returned))
	}

	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Logf("child reported %d chunks; reopened: %+v", len(returned), l.Recovery())
	// Each loop's chunks returned in order: all up to its last report are there, the next
	// one may or may not be (it was in flight), and none after it is.
	for g := range crashLoops {
		last := -1
		for k := 0; returned[k*crashLoops+g]; k++ {
			last = k
		}
		for k := 0; k <= last+6; k++ {
			c := k*crashLoops + g
			if k <= last && !returned[c] {
				t.Fatalf("loop %d: chunk %d not reported before a later one", g, c)
			}
			got := chunkStates(l, c)
			switch {
			case k <= last && got != chunkState(c):
				t.Errorf("chunk %d returned before the kill but reads %v, want %v", c, got, chunkState(c))
			case k == last+1 && got != chunkState(c) && got != 0:
				t.Errorf("chunk %d (in flight at the kill) reads %v, want %v or nothing", c, got, chunkState(c))
			case k > last+1 && got != 0:
				t.Errorf("chunk %d was never finished but reads %v", c, got)
			}
		}
	}
	if got, _ := l.Counts(context.Background(), crashCampaign); got != scanCounts(l, crashCampaign) {
		t.Errorf("Counts %+v disagree with the words %+v", got, scanCounts(l, crashCampaign))
	}
}

// chunkStates returns the state all recipients of crash chunk c share; -1 if they differ.
func chunkStates(l *Ledger, c int) sender.RecipientState {
	first := stateOf(l, crashCampaign, uint32(c*crashChunk))
	for i := 1; i < crashChunk; i++ {
		if stateOf(l, crashCampaign, uint32(c*crashChunk+i)) != first {
			return 255
		}
	}
	return first
}

// journalOps writes a known history into l.
func journalOps(t *testing.T, l *Ledger) {
	t.Helper()
	ctx := context.Background()
	steps := []func() error{
		func() error { return l.Finish(ctx, "a", "o", sender.RecipientAccepted, span(0, 100)) },
		func() error { return l.Finish(ctx, "a", "o", sender.RecipientRejected, []uint32{500, 7, 501, 502}) },
		func() error { return l.Finish(ctx, "a", "o", sender.RecipientFailed, span(200, 300)) },
		func() error { _, err := l.Redrive(ctx, "a", 250, 100); return err },
		func() error { return l.Finish(ctx, "a", "p", sender.RecipientAccepted, span(90, 110)) }, // 90..99 again
		func() error {
			return l.Finish(ctx, "b", "o", sender.RecipientFailed, []uint32{1<<32 - 3, 1<<32 - 2, 1<<32 - 1})
		},
		func() error { return l.Finish(ctx, "gone", "o", sender.RecipientAccepted, span(0, 10)) },
		func() error { return l.Forget(ctx, "gone") },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

// snapshot is every state of the campaigns journalOps touches, for comparisons.
func snapshot(l *Ledger) map[string]sender.LedgerCounts {
	out := map[string]sender.LedgerCounts{}
	for _, c := range []string{"a", "b", "gone"} {
		out[c], _ = l.Counts(context.Background(), c)
		if scanCounts(l, c) != out[c] {
			out[c+" (words)"] = scanCounts(l, c)
		}
	}
	for _, r := range []uint32{0, 7, 99, 100, 200, 249, 250, 299, 500, 502, 503} {
		out[fmt.Sprintf("a/%d=%v", r, stateOf(l, "a", r))] = sender.LedgerCounts{}
	}
	return out
}

func TestJournalReopen(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data", "ledger")
	path := filepath.Join(dir, "journal")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	journalOps(t, l)
	want := snapshot(l)
	if want["a"] != (sender.LedgerCounts{Accepted: 110, Rejected: 3, Failed: 50, Repeated: 10}) || want["b"].Failed != 3 || want["gone"] != (sender.LedgerCounts{}) {
		t.Fatalf("counts before reopening: %+v", want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		path string
		mode fs.FileMode
	}{{dir, 0o700 | fs.ModeDir}, {path, 0o600}} {
		if fi, err := os.Stat(p.path); err != nil || fi.Mode() != p.mode {
			t.Errorf("%s: mode %v, %v; want %v", p.path, fi.Mode(), err, p.mode)
		}
	}
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := snapshot(l); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reopening:\n%v\nwant\n%v", got, want)
	}
	if rec := l.Recovery(); rec.Records != 8 || rec.Dropped != 0 || rec.Cause != "" {
		t.Fatalf("Recovery = %+v; want 8 records, nothing dropped", rec)
	}
	// The redrive was journaled: a second one changes nothing, and what it freed is claimable.
	if n, err := l.Redrive(context.Background(), "a", 250, 100); err != nil || n != 0 {
		t.Fatalf("second Redrive = %d, %v; want 0", n, err)
	}
	if got, _ := l.Claim(context.Background(), "a", "o", 240, 20, time.Minute, nil); !slices.Equal(got, span(250, 260)) {
		t.Fatalf("Claim after reopening = %v, want the redriven 250..259", got)
	}
}

// TestJournalCut cuts the journal at many points, as a crash during a write would: Open
// keeps the whole records before the cut and drops the rest, and the journal then takes
// new records that survive another reopen.
func TestJournalCut(t *testing.T) {
	t.Parallel()
	dir, data, ends := journalWithOps(t)
	tests := []struct {
		name    string
		size    int
		records int
	}{
		// Inside the file header: the journal starts over.
		{"torn header", 3, 0},
		// Right after the header: nothing to drop.
		{"header only", len(magic), 0},
		// Inside the first record's frame header.
		{"torn frame header", ends[0] + 5, 1},
		// Inside the second record's payload.
		{"torn payload", ends[1] + frameHeader + 2, 2},
		// One byte short of the last record.
		{"last byte missing", len(data) - 1, len(ends) - 1},
		// At a record boundary: nothing to drop.
		{"boundary", ends[3], 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, data[:tt.size], 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			rec := l.Recovery()
			wantKept := len(magic)
			if tt.records > 0 {
				wantKept = ends[tt.records-1]
			}
			wantDropped := tt.size - wantKept
			if tt.size < len(magic) {
				wantDropped = 0 // a torn header is rewritten, not reported
			}
			if rec.Records != tt.records || rec.Kept != int64(wantKept) || rec.Dropped != int64(wantDropped) || rec.Salvaged != "" || (wantDropped > 0) != (rec.Cause != "") {
				t.Fatalf("Recovery = %+v; want %d records, %d kept, %d dropped", rec, tt.records, wantKept, wantDropped)
			}
			if err := l.Finish(context.Background(), "after", "o", sender.RecipientAccepted, span(0, 5)); err != nil {
				t.Fatal(err)
			}
			l = reopen(t, l, path)
			if c, _ := l.Counts(context.Background(), "after"); c.Accepted != 5 || l.Recovery().Records != tt.records+1 || l.Recovery().Dropped != 0 {
				t.Fatalf("after appending and reopening: %+v, %+v", c, l.Recovery())
			}
		})
	}
}

// openTemp opens a new journal in a temporary directory.
func openTemp(t *testing.T) (*Ledger, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "j")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return l, path
}

// reopen closes l and opens the journal at path again; the new Ledger is closed when the
// test ends.
func reopen(t *testing.T, l *Ledger, path string) *Ledger {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// journalWithOps writes journalOps' history to a journal in a new directory and returns
// the directory, the journal's bytes and the end of each of its frames.
func journalWithOps(t *testing.T) (dir string, data []byte, ends []int) {
	t.Helper()
	dir = t.TempDir()
	full := filepath.Join(dir, "full")
	l, err := Open(full)
	if err != nil {
		t.Fatal(err)
	}
	journalOps(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if data, err = os.ReadFile(full); err != nil {
		t.Fatal(err)
	}
	return dir, data, frameEnds(t, data)
}

// frameEnds returns the offset just past each frame of a journal (up to the zeros an open
// journal writes ahead).
func frameEnds(t *testing.T, data []byte) []int {
	t.Helper()
	var ends []int
	for off := len(magic); off < len(data) && !allZero(data[off:]); {
		_, size, err := nextFrame(data[off:])
		if err != nil {
			t.Fatalf("frame at %d: %v", off, err)
		}
		off += size
		ends = append(ends, off)
	}
	return ends
}

// TestJournalFlippedByte damages one byte: in the last record the tail is cut quietly (a
// crash looks the same); in an earlier record replay stops there, the rest is saved beside
// the journal, and the logger hears it at ERROR.
func TestJournalFlippedByte(t *testing.T) {
	t.Parallel()
	dir, data, ends := journalWithOps(t)
	tests := []struct {
		name     string
		at       int  // byte flipped
		records  int  // replayed
		salvaged bool // good records followed the bad one
	}{
		// The last record's payload.
		{"last record", len(data) - 1, len(ends) - 1, false},
		// The first record's checksum.
		{"first checksum", len(magic) + 5, 0, true},
		// The third record's length: it no longer frames what follows.
		{"third length", ends[1], 2, true},
		// The fourth record's payload.
		{"fourth payload", ends[2] + frameHeader + 3, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			bad := bytes.Clone(data)
			bad[tt.at] ^= 0x40
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			l, err := OpenJournal(path, JournalOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			rec := l.Recovery()
			kept := len(magic)
			if tt.records > 0 {
				kept = ends[tt.records-1]
			}
			if rec.Records != tt.records || rec.Kept != int64(kept) || rec.Dropped != int64(len(data)-kept) || rec.Cause == "" {
				t.Fatalf("Recovery = %+v; want %d records and %d bytes kept", rec, tt.records, kept)
			}
			if (rec.Salvaged != "") != tt.salvaged || strings.Contains(logs.String(), "level=ERROR") != tt.salvaged {
				t.Fatalf("salvaged %q, logs %q; want salvage and ERROR: %v", rec.Salvaged, logs.String(), tt.salvaged)
			}
			if tt.salvaged {
				saved, err := os.ReadFile(rec.Salvaged)
				if err != nil || !bytes.Equal(saved, bad[kept:]) {
					t.Fatalf("saved %d bytes, %v; want the %d dropped", len(saved), err, len(bad)-kept)
				}
			}
			if fi, _ := os.Stat(path); fi.Size() != int64(kept) {
				t.Fatalf("journal is %d bytes after Open, want cut to %d", fi.Size(), kept)
			}
		})
	}
}

func TestJournalRefusesOtherFiles(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "notes.txt")
	content := []byte("these are somebody's notes, not a journal\n")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil {
		t.Fatal("Open of a text file: no error")
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
		t.Fatalf("Open changed the file to %q", got)
	}
}

func TestJournalClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, err := Open(filepath.Join(t.TempDir(), "j"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := l.Finish(ctx, "c", "o", sender.RecipientAccepted, []uint32{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Finish after Close = %v, want ErrClosed", err)
	}
	if _, err := l.Redrive(ctx, "c", 0, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Redrive after Close = %v, want ErrClosed", err)
	}
	if got, err := l.Claim(ctx, "c", "o", 0, 2, time.Minute, nil); err != nil || len(got) != 2 {
		t.Fatalf("Claim after Close = %v, %v; claims live in memory", got, err)
	}
}

// TestJournalFull: once the journal cannot write (a full disk, here /dev/full), Finish and
// Claim are refused with the cause, so that a sender pushes nothing more it could not
// record; the file keeps what was synced before.
func TestJournalFull(t *testing.T) {
	t.Parallel()
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full here: %v", err)
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Finish(ctx, "c", "o", sender.RecipientAccepted, []uint32{0, 1}); err != nil {
		t.Fatal(err)
	}
	kept := l.journal.f
	l.journal.f = full
	if err := l.Finish(ctx, "c", "o", sender.RecipientAccepted, []uint32{2}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Finish on a full disk = %v, want ENOSPC", err)
	}
	if err := l.Finish(ctx, "c", "o", sender.RecipientAccepted, []uint32{3}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Finish after the failure = %v, want ENOSPC", err)
	}
	if got, err := l.Claim(ctx, "c", "o", 4, 2, time.Minute, nil); !errors.Is(err, syscall.ENOSPC) || len(got) != 0 {
		t.Fatalf("Claim after the failure = %v, %v; want nothing and ENOSPC", got, err)
	}
	// The change whose write failed stays in memory (its recipients were pushed and
	// answered); the ones refused after it do not.
	if c, err := l.Counts(ctx, "c"); err != nil || c.Accepted != 3 {
		t.Fatalf("Counts = %+v, %v; want the 2 journaled acceptances and the one that failed to write", c, err)
	}
	l.journal.f = kept
	_ = full.Close()
	if err := l.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
	again, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if c, err := again.Counts(ctx, "c"); err != nil || c.Accepted != 2 {
		t.Fatalf("reopened Counts = %+v, %v; want 2", c, err)
	}
}

// TestJournalLargeFinish finishes many scattered recipients in one call: the journal splits
// it into frames within bounds, and replays it whole.
func TestJournalLargeFinish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, path := openTemp(t)
	rng := rand.New(rand.NewPCG(1, 2))
	rs := make([]uint32, 60_000)
	for i := range rs {
		rs[i] = rng.Uint32N(1 << 20)
	}
	if err := l.Finish(ctx, "c", "o", sender.RecipientRejected, rs); err != nil {
		t.Fatal(err)
	}
	want, _ := l.Counts(ctx, "c")
	data, _ := os.ReadFile(path) // Finish returned: its records are on disk
	if frames := len(frameEnds(t, data)); frames < 2 {
		t.Fatalf("%d frames for %d bytes of runs, want several", frames, len(data))
	}
	l = reopen(t, l, path)
	if got, _ := l.Counts(ctx, "c"); got != want || want.Rejected < 55_000 {
		t.Fatalf("after reopening %+v, want %+v", got, want)
	}
	for _, r := range rs[:100] {
		if stateOf(l, "c", r) != sender.RecipientRejected {
			t.Fatalf("recipient %d lost", r)
		}
	}
}

// TestJournalConcurrent has many goroutines finish and redrive at once: what the journal
// replays is exactly what memory held, however the calls interleaved.
func TestJournalConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, path := openTemp(t)
	var wg sync.WaitGroup
	var calls atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			rs := make([]uint32, 0, 20)
			for range 40 {
				start := rng.Uint32N(2000)
				rs = rs[:0]
				for i := range uint32(1 + rng.IntN(20)) {
					rs = append(rs, start+i)
				}
				if err := l.Finish(ctx, "c", "o", sender.RecipientState(1+rng.IntN(3)), rs); err != nil {
					t.Error(err)
					return
				}
				if rng.IntN(8) == 0 {
					if _, err := l.Redrive(ctx, "c", rng.Uint32N(2000), 50); err != nil {
						t.Error(err)
						return
					}
				}
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	want := make([]sender.RecipientState, 2100)
	for r := range want {
		want[r] = stateOf(l, "c", uint32(r))
	}
	wantCounts, _ := l.Counts(ctx, "c")
	l = reopen(t, l, path)
	for r := range want {
		if got := stateOf(l, "c", uint32(r)); got != want[r] {
			t.Fatalf("recipient %d: %v after reopening, %v before", r, got, want[r])
		}
	}
	if got, _ := l.Counts(ctx, "c"); got != wantCounts || calls.Load() != 16*40 {
		t.Fatalf("Counts %+v after reopening, %+v before (%d calls)", got, wantCounts, calls.Load())
	}
}

// BenchmarkJournalFinish has 64 goroutines finish 50 recipients each per call on a journal,
// every call waiting for its sync; the finishes/s metric is the figure to compare with the
// send path's need (16k/s at 800k notifications/s).
func BenchmarkJournalFinish(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "j"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	b.ResetTimer()
	finishAll(b, l, 0)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "finishes/s")
}

// finishAll has 64 goroutines finish 50 recipients each per call, b.N calls in all, each
// waiting pause after its call.
func finishAll(b *testing.B, l *Ledger, pause time.Duration) {
	ctx := context.Background()
	var next atomic.Uint32
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		rs := make([]uint32, 50)
		for pb.Next() {
			start := (next.Add(1) - 1) * 50
			for i := range rs {
				rs[i] = start + uint32(i)
			}
			if err := l.Finish(ctx, "c", "o", sender.RecipientAccepted, rs); err != nil {
				b.Error(err)
				return
			}
			if pause > 0 {
				time.Sleep(pause)
			}
		}
	})
}

// BenchmarkJournalFinishPaced has 64 goroutines each finish 50 recipients, then wait 4 ms
// as a send loop waits for its pushes' answers: 16k finishes/s, the send path's need at
// 800k notifications/s. It reports the process's CPU per recipient (user + system, which
// includes the syncs) and the syncs per second, the figures that pacing the syncs changes.
func BenchmarkJournalFinishPaced(b *testing.B) {
	for _, gap := range []time.Duration{-1, DefaultSyncGap, 5 * time.Millisecond} {
		b.Run(fmt.Sprintf("journal/gap=%v", max(gap, 0)), func(b *testing.B) {
			l, err := OpenJournal(filepath.Join(b.TempDir(), "j"), JournalOptions{SyncGap: gap})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			benchFinishPaced(b, l)
		})
	}
	// The same without a journal: the difference is the journal's cost.
	b.Run("memory", func(b *testing.B) { benchFinishPaced(b, New()) })
}

func benchFinishPaced(b *testing.B, l *Ledger) {
	cpu0 := processCPU(b)
	b.ResetTimer()
	finishAll(b, l, 4*time.Millisecond)
	b.StopTimer()
	b.ReportMetric((processCPU(b)-cpu0).Seconds()*1e9/float64(b.N*50), "CPU-ns/recipient")
	if l.journal != nil {
		b.ReportMetric(float64(l.journal.syncs.Load())/b.Elapsed().Seconds(), "syncs/s")
	}
}

// processCPU is the process's user + system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestJournalWritesAhead: the journal writes zeros ahead of its records, so that a sync
// does not grow the file. A copy of the file taken while it is open (a crash) replays to
// the same state with the zeros taken as the end; a record torn in front of the zeros is
// cut as before; Close leaves no zeros behind.
func TestJournalWritesAhead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, path := openTemp(t)
	for i := range uint32(100) {
		if err := l.Finish(ctx, "c", "o", sender.RecipientAccepted, []uint32{2 * i}); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := l.Counts(ctx, "c")
	data, err := os.ReadFile(path) // as a crash would leave it: every Finish returned
	if err != nil {
		t.Fatal(err)
	}
	ends := frameEnds(t, data)
	end := ends[len(ends)-1]
	if len(data) < end+preallocate/2 || !allZero(data[end:]) {
		t.Fatalf("journal of %d bytes with records up to %d: want zeros written ahead", len(data), end)
	}

	crashed := filepath.Join(t.TempDir(), "crashed")
	if err := os.WriteFile(crashed, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(crashed)
	if err != nil {
		t.Fatal(err)
	}
	rec := c.Recovery()
	if got, _ := c.Counts(ctx, "c"); got != want || rec.Dropped != 0 || rec.Zeros != int64(len(data)-end) || rec.Kept != int64(end) {
		t.Fatalf("after a crash: %+v, Recovery %+v; want %+v, nothing dropped, %d zeros", got, rec, want, len(data)-end)
	}
	// It goes on writing over the zeros.
	if err := c.Finish(ctx, "c", "o", sender.RecipientAccepted, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	c = reopen(t, c, crashed)
	if got, _ := c.Counts(ctx, "c"); got.Accepted != want.Accepted+1 {
		t.Fatalf("after writing over the zeros: %+v, want %d accepted", got, want.Accepted+1)
	}
	_ = c.Close()

	torn := bytes.Clone(data)
	clear(torn[end-3 : end]) // the last record's end never reached the disk
	if err := os.WriteFile(crashed, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Open(crashed)
	if err != nil {
		t.Fatal(err)
	}
	rec = c.Recovery()
	if got, _ := c.Counts(ctx, "c"); got.Accepted != want.Accepted-1 || rec.Dropped != int64(len(data)-ends[len(ends)-2]) || rec.Cause == "" {
		t.Fatalf("torn last record: %+v, Recovery %+v; want one acceptance less, the rest dropped with a cause", got, rec)
	}
	_ = c.Close()

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != int64(end) {
		t.Fatalf("after Close: %v, %v; want %d bytes", fi, err, end)
	}
}
