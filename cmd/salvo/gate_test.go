package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salvopush/salvo/results"
)

// fakeSalvo is the source of a stand-in for `salvo bench` that writes a report.json with
// the contract's fields in a few microseconds: cpu scales the sender's CPU, lost is the
// number of lost notifications, and benchExit, when not 0, makes it exit with that code
// and no report. Run N of a side (the number at the end of --out) gets a spread of ±2%.
func fakeSalvo(cpu float64, lost, benchExit int) string {
	return fmt.Sprintf(`package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "bench" {
		os.Exit(2)
	}
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	scenario := fs.String("scenario", "", "")
	out := fs.String("out", "", "")
	fs.Parse(os.Args[2:])
	if %[3]d != 0 {
		fmt.Println("fake bench: setup failed")
		os.Exit(%[3]d)
	}
	var sc struct {
		Transport string  `+"`json:\"transport\"`"+`
		Audience  float64 `+"`json:\"audience\"`"+`
	}
	data, err := os.ReadFile(*scenario)
	if err == nil {
		err = json.Unmarshal(data, &sc)
	}
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	name := filepath.Base(*out)
	n, _ := strconv.Atoi(name[strings.LastIndex(name, "-")+1:])
	noise := 1 + float64(n%%5-2)/100
	accepted := sc.Audience - %[2]d
	report := map[string]any{
		"schema":           "salvo.report/v1",
		"scenario":         "gate-" + sc.Transport,
		"audience":         map[string]any{"recipients": sc.Audience},
		"delivery":         map[string]any{"accepted": accepted, "lost": %[2]d, "duplicates": 0},
		"mock":             map[string]any{"received": accepted, "unique": accepted, "duplicates": 0},
		"milestones_ms":    map[string]any{"first": 1, "p95": 900 * noise, "p99": 990 * noise, "all": 1000 * noise},
		"throughput_per_s": map[string]any{"mean": accepted / noise},
		"resources": map[string]any{"sender_cpu_us_per_notification": 2 * %[1]g * noise,
			"mock_cpu_seconds": 4e-6 * accepted * noise},
		"pass":     true,
		"failures": []string{},
	}
	js, _ := json.Marshal(report)
	if err := os.MkdirAll(*out, 0o755); err == nil {
		err = os.WriteFile(filepath.Join(*out, "report.json"), js, 0o644)
	}
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
}
`, cpu, lost, benchExit)
}

// gitRepo makes a git repository in a temporary folder with one commit per source of the
// fake salvo (an empty source: no commit), and returns the folder.
func gitRepo(t *testing.T, commits ...string) string {
	t.Helper()
	dir := t.TempDir()
	gitIn(t, dir, "init", "-q", "-b", "main")
	write(t, dir, "go.mod", "module fake\n\ngo 1.26\n")
	for i, src := range commits {
		write(t, dir, "cmd/salvo/main.go", src)
		gitIn(t, dir, "add", ".")
		gitIn(t, dir, "commit", "-q", "-m", fmt.Sprintf("commit %d", i+1))
	}
	return dir
}

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGateExitCodes runs the gate on small git repositories whose salvo is a fake bench:
// each exit code of contract section 5, with the verdict as the last line printed.
func TestGateExitCodes(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not found")
	}
	t.Parallel()
	good := fakeSalvo(1, 0, 0)
	tests := []struct {
		name     string
		commits  []string // the repository's history, oldest first
		worktree string   // the candidate's source when it differs from the last commit
		args     []string
		given    string // the source of a binary passed as --candidate-bin
		code     int
		last     string // the verdict line starts so
	}{
		// A base that does not exist: could not run.
		{name: "base missing", commits: []string{good}, args: []string{"--base", "no-such-ref"},
			code: 2, last: `gate: COULD NOT RUN: base "no-such-ref" does not exist`},
		// A clone with one commit and no --base: no HEAD~1, never a silent pass.
		{name: "single commit", commits: []string{good},
			code: 2, last: "gate: COULD NOT RUN: no base to compare with: HEAD~1 does not exist (the repository has a single commit)"},
		// A base that does not compile.
		{name: "base does not build", commits: []string{"package main\n\nfunc main() {", good},
			code: 2, last: "gate: COULD NOT RUN: the base does not build"},
		// A base whose bench cannot run (a flag or scenario field it does not know).
		{name: "base bench fails", commits: []string{fakeSalvo(1, 0, 2), good},
			code: 2, last: "gate: COULD NOT RUN: base run"},
		// The same code on both sides (the default base, HEAD~1): no regression.
		{name: "unchanged", commits: []string{good, good + "\n// a comment\n"},
			code: 0, last: "gate: PASS: no regression in 14 metrics [base"},
		// The working tree spends 50% more sender CPU than its base, HEAD.
		{name: "regression", commits: []string{good}, worktree: fakeSalvo(1.5, 0, 0), args: []string{"--base", "HEAD"},
			code: 1, last: "gate: FAIL: regressed: burst sender CPU per notification +50%"},
		// A candidate binary given by the caller is the one measured (the working tree is
		// not built).
		{name: "candidate binary given", commits: []string{good}, given: fakeSalvo(1.5, 0, 0), args: []string{"--base", "HEAD"},
			code: 1, last: "gate: FAIL: regressed: burst sender CPU per notification +50%"},
		// The working tree loses one notification per run: a correctness failure.
		{name: "lost", commits: []string{good}, worktree: fakeSalvo(1, 1, 0), args: []string{"--base", "HEAD"},
			code: 1, last: "gate: FAIL: candidate run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			repo := gitRepo(t, tt.commits...)
			if tt.worktree != "" {
				write(t, repo, "cmd/salvo/main.go", tt.worktree)
			}
			if tt.given != "" {
				bin := filepath.Join(t.TempDir(), "salvo")
				tt.args = append(tt.args, "--candidate-bin", bin)
				other := gitRepo(t, tt.given)
				cmd := exec.Command("go", "build", "-o", bin, "./cmd/salvo")
				cmd.Dir = other
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("build the given candidate: %v\n%s", err, out)
				}
			}
			out := filepath.Join(t.TempDir(), "gate")
			args := append([]string{"gate", "--repo", repo, "--out", out, "--pairs", fmt.Sprint(results.GateMinPairs),
				"--base-worktree", filepath.Join(t.TempDir(), "base")}, tt.args...)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if last := lastLine(stdout.String()); !strings.HasPrefix(last, tt.last) {
				t.Errorf("last line %q, want it to start with %q\nstdout:\n%s", last, tt.last, stdout.String())
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr %q: the verdict is the last line, on stdout", stderr.String())
			}
			for _, f := range []string{"gate.md", "gate.json"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Errorf("no %s: %v", f, err)
				}
			}
			if wts, _ := git(context.Background(), repo, "worktree", "list"); strings.Count(wts, "\n") > 0 {
				t.Errorf("the base's worktree was left behind:\n%s", wts)
			}
		})
	}
}

// TestGateKeepsBaseBinary: a second gate on the same base reuses the base's binary instead
// of building it again, and decides the same.
func TestGateKeepsBaseBinary(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not found")
	}
	t.Parallel()
	good := fakeSalvo(1, 0, 0)
	repo := gitRepo(t, good, good+"\n// a comment\n")
	worktree := filepath.Join(t.TempDir(), "base")
	for i, want := range []string{"gate: built the base", "gate: the base's binary is kept from an earlier gate"} {
		var stdout, stderr bytes.Buffer
		args := []string{"gate", "--repo", repo, "--out", filepath.Join(t.TempDir(), "gate"), "--base-worktree", worktree,
			"--pairs", fmt.Sprint(results.GateMinPairs), "--transports", "burst"}
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("gate %d: exit %d\n%s%s", i+1, code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("gate %d does not say %q:\n%s", i+1, want, stdout.String())
		}
	}
}
