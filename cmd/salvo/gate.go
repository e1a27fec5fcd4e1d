package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/salvopush/salvo/results"
)

// Defaults of the gate's length (docs/gate.md says why).
const (
	// defaultGatePairs is the most pairs of runs the gate plays per workload.
	defaultGatePairs = 20
	// defaultGateBudget is the time for the whole gate, builds included.
	defaultGateBudget = 6 * time.Minute
)

// gateWorkload is one scenario the gate plays with both revisions.
type gateWorkload struct {
	transport string
	audience  int
}

// gateWorkloads are the gate's workloads: the production transport and the reference one,
// each sending for one to a few seconds on two cores (docs/gate.md says why these sizes).
func gateWorkloads() []gateWorkload {
	return []gateWorkload{{"burst", 300000}, {"stock", 10000}}
}

// scenarioJSON is the workload as a scenario file. It uses only scenario fields that every
// revision with the transport choice understands, so an older base reads it too.
func (w gateWorkload) scenarioJSON() ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"name":            "gate-" + w.transport,
		"description":     "salvo gate: " + w.transport + " transports, played by the base and the candidate in turn",
		"audience":        w.audience,
		"ios_share":       0.5,
		"invalid_share":   0.01,
		"transport":       w.transport,
		"workers":         1,
		"timeout_seconds": 60,
		"criteria":        map[string]any{"max_lost": 0, "max_duplicates": 0, "max_failed": 0},
	}, "", "  ")
}

// runGate is `salvo gate [--base REF] [--out DIR] [--pairs N]`: it builds the base revision
// from git (in a temporary worktree) and the candidate from the working tree, plays each
// workload with the two binaries in interleaved pairs (the order alternated), and decides
// with results.Gate. Exit 0: no regression; 1: a regression or a correctness failure; 2:
// could not run. The last line printed is the one-line verdict.
func runGate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gate", stderr)
	base := fs.String("base", "", "git ref of the base revision (default: the merge-base of HEAD with --main; HEAD~1 when that is HEAD itself or there is no --main)")
	mainRef := fs.String("main", "main", "the main branch, for the default base (origin/<main> is tried too)")
	repo := fs.String("repo", ".", "a folder of the git working tree to gate (the candidate)")
	candidateBin := fs.String("candidate-bin", "", "use this salvo binary, already built from the working tree, as the candidate instead of building it (make bench-ci passes bin/salvo)")
	baseWorktree := fs.String("base-worktree", "", "where to check out the base (default: a folder in the user's cache, reused by the next gate so that the build cache serves it)")
	out := fs.String("out", filepath.Join("results", "gate"), "folder for gate.md, gate.json and the runs")
	pairs := fs.Int("pairs", defaultGatePairs, fmt.Sprintf("most pairs of runs per workload (%d..50)", results.GateMinPairs))
	budget := fs.Duration("budget", defaultGateBudget, fmt.Sprintf("time for the whole gate: no pair is started that, as slow as the slowest so far, would end after it (but at least %d are played)", results.GateMinPairs))
	transports := fs.String("transports", "burst,stock", "workloads to play, by transport (burst, stock)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: salvo gate [--base REF] [--out DIR] [--pairs N] [flags]\n\n"+
			"Builds the base revision and the working tree, plays both in interleaved pairs on this\n"+
			"machine and compares them (docs/gate.md). Exit 0: no regression; 1: a regression or a\n"+
			"correctness failure; 2: could not run. The last line printed is the verdict.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *pairs < results.GateMinPairs || *pairs > 50 {
		return usageError("--pairs: %d is out of range (%d..50)", *pairs, results.GateMinPairs)
	}
	var workloads []gateWorkload
	for _, name := range strings.Split(*transports, ",") {
		found := false
		for _, w := range gateWorkloads() {
			if w.transport == name {
				workloads, found = append(workloads, w), true
			}
		}
		if !found {
			return usageError("--transports: unknown transport %q (burst, stock)", name)
		}
	}
	outDir, err := filepath.Abs(*out)
	if err != nil {
		return usageError("--out: %v", err)
	}
	if *candidateBin != "" {
		abs, err := filepath.Abs(*candidateBin)
		if err != nil {
			return usageError("--candidate-bin: %v", err)
		}
		if st, err := os.Stat(abs); err != nil || st.IsDir() {
			return usageError("--candidate-bin: %s is not a file", *candidateBin)
		}
		*candidateBin = abs
	}
	g := &gate{stdout: stdout, out: outDir, pairs: *pairs, budget: *budget, baseWorktree: *baseWorktree,
		candidateBin: *candidateBin, workloads: workloads, start: time.Now()}
	in := g.run(ctx, *repo, *base, *mainRef)
	in.ElapsedSeconds = time.Since(g.start).Seconds()
	res := results.Gate(in)
	if err := res.WriteTable(stdout); err != nil {
		return err
	}
	if err := results.WriteGate(outDir, res); err != nil {
		fmt.Fprintf(stdout, "\ncould not write the report: %v\n", err)
		if res.Code == 0 {
			res.Code = 2
			res.Verdict = "gate: COULD NOT RUN: " + err.Error()
		}
	} else {
		fmt.Fprintf(stdout, "\nreport: %s, %s\n", filepath.Join(*out, "gate.md"), filepath.Join(*out, "gate.json"))
	}
	fmt.Fprintln(stdout, res.Verdict)
	if res.Code != 0 {
		return &exitError{code: res.Code, err: errors.New(res.Verdict), reported: true}
	}
	return nil
}

// gate is one run of the gate.
type gate struct {
	stdout       io.Writer
	out          string
	pairs        int
	budget       time.Duration
	baseWorktree string
	candidateBin string
	workloads    []gateWorkload
	start        time.Time
}

// run builds the two revisions and plays the pairs; whatever goes wrong ends up in the
// returned input (Errors, or runs without a report) for results.Gate to judge.
func (g *gate) run(ctx context.Context, repo, baseRef, mainRef string) results.GateInput {
	var in results.GateInput
	fail := func(format string, a ...any) results.GateInput {
		in.Errors = append(in.Errors, fmt.Sprintf(format, a...))
		return in
	}
	root, err := git(ctx, repo, "rev-parse", "--show-toplevel")
	if err != nil {
		return fail("not in a git work tree: %v", err)
	}
	in.BaseRef, in.BaseCommit, err = resolveBase(ctx, root, baseRef, mainRef)
	if err != nil {
		return fail("%v", err)
	}
	in.Candidate = describeWorkTree(ctx, root)
	in.MockDiffers = mockDiffers(ctx, root, in.BaseCommit)
	fmt.Fprintf(g.stdout, "gate: base %s = %s, candidate %s\n", in.BaseRef, in.BaseCommit, in.Candidate)
	tmp, err := os.MkdirTemp("", "salvo-gate-")
	if err != nil {
		return fail("temporary folder: %v", err)
	}
	defer os.RemoveAll(tmp)
	// The report folder keeps only this gate's files.
	for _, p := range []string{"runs", "gate.md", "gate.json"} {
		if err := os.RemoveAll(filepath.Join(g.out, p)); err != nil {
			return fail("clean %s: %v", g.out, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(g.out, "runs"), 0o755); err != nil {
		return fail("%v", err)
	}
	bins, err := g.build(ctx, root, tmp, in.BaseCommit)
	if err != nil {
		return fail("%v", err)
	}
	scenario := map[string]string{}
	for _, w := range g.workloads {
		js, err := w.scenarioJSON()
		if err != nil {
			return fail("scenario: %v", err)
		}
		p := filepath.Join(tmp, "gate-"+w.transport+".json")
		if err := os.WriteFile(p, js, 0o644); err != nil {
			return fail("scenario: %v", err)
		}
		scenario[w.transport] = p
		in.Arms = append(in.Arms, results.GateArm{Name: w.transport})
	}
	// Each side runs in its own folder, so each keeps its own registry cache in the format
	// its revision writes.
	cwd := map[string]string{}
	for _, side := range []string{"base", "candidate"} {
		cwd[side] = filepath.Join(tmp, "cwd-"+side)
		if err := os.MkdirAll(cwd[side], 0o755); err != nil {
			return fail("%v", err)
		}
	}
	var slowest time.Duration // the slowest round so far
	for i := 1; i <= g.pairs; i++ {
		// Stop when one more round, as slow as the slowest so far, would end after the budget.
		if i > results.GateMinPairs && time.Since(g.start)+slowest > g.budget {
			fmt.Fprintf(g.stdout, "gate: %d pairs played; one more (up to %s) would end after the %s budget\n",
				i-1, slowest.Round(time.Second), g.budget)
			break
		}
		roundStart := time.Now()
		for a, w := range g.workloads {
			p := results.GatePair{BaseFirst: i%2 == 1}
			order := []string{"base", "candidate"}
			if !p.BaseFirst {
				order = []string{"candidate", "base"}
			}
			for _, side := range order {
				dir := filepath.Join(g.out, "runs", w.transport, fmt.Sprintf("%s-%d", side, i))
				r := g.bench(ctx, bins[side], cwd[side], scenario[w.transport], dir)
				fmt.Fprintf(g.stdout, "pair %d/%d %s %-9s %s\n", i, g.pairs, w.transport, side, runLine(r))
				if side == "base" {
					p.Base = r
				} else {
					p.Candidate = r
				}
			}
			in.Arms[a].Pairs = append(in.Arms[a].Pairs, p)
			if p.Base.Report == nil || p.Candidate.Report == nil || ctx.Err() != nil {
				// The base cannot be measured or the candidate broke: more runs change nothing.
				if ctx.Err() != nil {
					in.Errors = append(in.Errors, fmt.Sprintf("interrupted: %v", ctx.Err()))
				}
				return in
			}
		}
		slowest = max(slowest, time.Since(roundStart))
	}
	return in
}

// build builds the base in a git worktree and the candidate from the working tree, and
// returns the two binaries by side. The base's binary is kept beside its worktree, named
// after the commit and the Go toolchain and settings, and reused by the next gate on the same
// base.
func (g *gate) build(ctx context.Context, root, tmp, baseCommit string) (map[string]string, error) {
	bins := map[string]string{"base": filepath.Join(tmp, "salvo-base"), "candidate": filepath.Join(tmp, "salvo-candidate")}
	wt, release := baseWorktreePath(g.baseWorktree, root, tmp)
	defer release()
	_, _ = git(ctx, root, "worktree", "remove", "--force", wt) // left by a gate that was killed
	_ = os.RemoveAll(wt)
	_, _ = git(ctx, root, "worktree", "prune")
	if _, err := git(ctx, root, "worktree", "add", "--detach", wt, baseCommit); err != nil {
		return nil, fmt.Errorf("check out the base: %w", err)
	}
	defer func() {
		// Not ctx: the worktree must go even when the gate was interrupted.
		if _, err := git(context.Background(), root, "worktree", "remove", "--force", wt); err != nil {
			fmt.Fprintf(g.stdout, "gate: %v\n", err)
		}
	}()
	var kept string
	if env, err := goOutput(ctx, wt, "env", "GOVERSION", "GOOS", "GOARCH", "CGO_ENABLED", "GOFLAGS", "GOEXPERIMENT", "GOAMD64"); err == nil {
		sum := sha256.Sum256([]byte(baseCommit + "\n" + env))
		kept = filepath.Join(filepath.Dir(wt), "salvo-"+hex.EncodeToString(sum[:8]))
		if _, err := os.Stat(kept); err == nil {
			fmt.Fprintf(g.stdout, "gate: the base's binary is kept from an earlier gate (%s)\n", kept)
			bins["base"] = kept
		}
	}
	if g.candidateBin != "" {
		bins["candidate"] = g.candidateBin
		fmt.Fprintf(g.stdout, "gate: the candidate is %s, built from the working tree by the caller\n", g.candidateBin)
	}
	for _, b := range []struct{ side, dir string }{{"base", wt}, {"candidate", root}} {
		if bins[b.side] == kept || (b.side == "candidate" && g.candidateBin != "") {
			continue
		}
		t0 := time.Now()
		fmt.Fprintf(g.stdout, "gate: building the %s\n", b.side)
		if _, err := goOutput(ctx, b.dir, "build", "-o", bins[b.side], "./cmd/salvo"); err != nil {
			return nil, fmt.Errorf("the %s does not build: %w", b.side, err)
		}
		fmt.Fprintf(g.stdout, "gate: built the %s in %s\n", b.side, time.Since(t0).Round(100*time.Millisecond))
		if b.side == "base" && kept != "" && filepath.Dir(kept) != tmp {
			keepBinary(bins["base"], kept)
		}
	}
	return bins, nil
}

// keepBinary copies the base's binary to kept for the next gate, and removes older kept
// binaries beyond the newest two (each is tens of megabytes). Failing to keep is harmless.
func keepBinary(built, kept string) {
	data, err := os.ReadFile(built)
	if err != nil || os.WriteFile(kept+".tmp", data, 0o755) != nil || os.Rename(kept+".tmp", kept) != nil {
		_ = os.Remove(kept + ".tmp")
		return
	}
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(kept), "salvo-*"))
	slices.SortFunc(old, func(a, b string) int {
		sa, ea := os.Stat(a)
		sb, eb := os.Stat(b)
		if ea != nil || eb != nil {
			return 0
		}
		return sb.ModTime().Compare(sa.ModTime()) // newest first
	})
	for _, p := range old[min(len(old), 2):] {
		_ = os.Remove(p)
	}
}

// goOutput runs the go command in dir and returns its trimmed output; on failure the error
// holds the last lines it printed.
func goOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go %s: %w: %s", args[0], err, lastLines(string(out), 5))
	}
	return strings.TrimSpace(string(out)), nil
}

// baseWorktreePath is where the base is checked out: dir when set, else a folder of the
// user's cache named after the repository. It stays the same from one gate to the next, so
// that Go's build cache (whose keys hold a package's folder) serves every package the base
// did not change since the last gate. When another gate holds it (a lock file beside it), a
// temporary folder is used instead. release frees it.
func baseWorktreePath(dir, root, tmp string) (path string, release func()) {
	fallback := filepath.Join(tmp, "base")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return fallback, func() {}
		}
		sum := sha256.Sum256([]byte(root))
		dir = filepath.Join(cache, "salvo-gate", hex.EncodeToString(sum[:6]), "base")
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fallback, func() {}
	}
	lock := dir + ".lock"
	if st, err := os.Stat(lock); err == nil && time.Since(st.ModTime()) > time.Hour {
		_ = os.Remove(lock) // left by a gate that was killed
	}
	f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fallback, func() {}
	}
	f.Close()
	return dir, func() { _ = os.Remove(lock) }
}

// bench plays one scenario with one binary into dir, its output into dir.log. A run that
// ends with exit 0 or 1 (a criterion failed) has a report; any other end has none.
func (g *gate) bench(ctx context.Context, bin, cwd, scenario, dir string) results.GateRun {
	r := results.GateRun{Dir: dir}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		r.Err = err.Error()
		return r
	}
	logPath := dir + ".log"
	logf, err := os.Create(logPath)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer logf.Close()
	// A run of the gate's scenarios takes seconds; this bound only stops a hung one.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(rctx, bin, "bench", "--scenario", scenario, "--out", dir)
	cmd.Dir = cwd
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	runErr := cmd.Run()
	var ee *exec.ExitError
	if runErr != nil && !(errors.As(runErr, &ee) && ee.ExitCode() == 1) {
		r.Err = fmt.Sprintf("%v: %s", runErr, lastLogLine(logPath))
		return r
	}
	rep, err := results.ReadReport(filepath.Join(dir, "report.json"))
	if err != nil {
		r.Err = fmt.Sprintf("%v (bench: %s)", err, lastLogLine(logPath))
		return r
	}
	r.Report = rep
	return r
}

// runLine is a run's progress line.
func runLine(r results.GateRun) string {
	if r.Report == nil {
		return "NO REPORT: " + r.Err
	}
	var b strings.Builder
	for i, m := range results.GateMetrics() {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.4g", m.Label, m.Value(r.Report))
	}
	return b.String()
}

// resolveBase finds the base commit: ref when given, else the merge-base of HEAD with the
// main branch (local, then origin/), else HEAD~1. The merge-base is not used when it is
// HEAD itself (on the main branch, or a branch with no commit of its own): the last commit
// is then the change to gate. A base that cannot be found is an error, never a silent pass.
func resolveBase(ctx context.Context, root, ref, mainRef string) (name, commit string, err error) {
	commitOf := func(r string) (string, error) {
		return git(ctx, root, "rev-parse", "--verify", "--quiet", r+"^{commit}")
	}
	if ref != "" {
		c, err := commitOf(ref)
		if err != nil {
			return "", "", fmt.Errorf("base %q does not exist in this repository (fetch it, or check the name)", ref)
		}
		return ref, c, nil
	}
	head, err := commitOf("HEAD")
	if err != nil {
		return "", "", fmt.Errorf("HEAD is not a commit: %w", err)
	}
	for _, m := range []string{mainRef, "origin/" + mainRef} {
		if _, err := commitOf(m); err != nil {
			continue
		}
		mb, err := git(ctx, root, "merge-base", "HEAD", m)
		if err != nil || mb == head {
			break
		}
		return "merge-base of HEAD and " + m, mb, nil
	}
	c, err := commitOf("HEAD~1")
	if err != nil {
		shallow, _ := git(ctx, root, "rev-parse", "--is-shallow-repository")
		hint := "the repository has a single commit"
		if shallow == "true" {
			hint = "the clone is shallow (git fetch --deepen=1, or clone with more history)"
		}
		return "", "", fmt.Errorf("no base to compare with: HEAD~1 does not exist (%s) and HEAD has no merge-base with %s other than itself; pass --base REF", hint, mainRef)
	}
	return "HEAD~1", c, nil
}

// mockDiffers says which of the files that make the mock's work per notification (its code,
// the subcommand that starts it, the module's requirements) differ between the base and the
// working tree; empty when none does.
func mockDiffers(ctx context.Context, root, base string) string {
	paths := []string{"mockpush", "cmd/salvo/mockpush.go", "go.mod", "go.sum"}
	changed, err := git(ctx, root, append([]string{"diff", "--name-only", base, "--"}, paths...)...)
	if err != nil {
		return "cannot tell whether the mock differs: " + err.Error()
	}
	untracked, err := git(ctx, root, append([]string{"ls-files", "--others", "--exclude-standard", "--"}, paths...)...)
	if err != nil {
		return "cannot tell whether the mock differs: " + err.Error()
	}
	files := strings.Fields(changed + "\n" + untracked)
	if len(files) == 0 {
		return ""
	}
	list := strings.Join(files[:min(len(files), 3)], ", ")
	if len(files) > 3 {
		list += fmt.Sprintf(" and %d more", len(files)-3)
	}
	return "the mock's code or the module's requirements differ between the base and the candidate (" + list + ")"
}

// describeWorkTree says what the candidate is: HEAD's commit, and whether tracked files
// differ from it.
func describeWorkTree(ctx context.Context, root string) string {
	head, err := git(ctx, root, "rev-parse", "HEAD")
	if err != nil {
		return "the working tree"
	}
	if st, err := git(ctx, root, "status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
		return head + " + uncommitted changes"
	}
	return head
}

// git runs git in dir and returns its trimmed output.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// lastLogLine is the last non-empty line of a log file.
func lastLogLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	return lastLines(string(data), 1)
}

// lastLines are the last n non-empty lines of s, joined by " | ".
func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "(no output)"
	}
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}
