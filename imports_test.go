package salvo_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is this repository's module path.
const module = "github.com/salvopush/salvo"

// importRule forbids every package matching From to depend, directly or not, on a package
// matching any of Not. Patterns are import paths; a trailing "/..." also matches the path
// itself and everything below it.
type importRule struct {
	From string
	Not  []string
	Why  string
}

// importRules keep the code flowing one way: the production pipeline under sender/ knows
// nothing of the harness, the mock servers or the reports; the mock servers know nothing of
// the pipeline they check; and the lean transport and the provider core stay free of the
// provider SDKs. Test files are not production code and are not checked.
var importRules = []importRule{
	{
		From: module + "/sender/...",
		Not: []string{module + "/scenarios/...", module + "/results/...", module + "/loadgen/...",
			module + "/mockpush/...", module + "/localstack/...", module + "/cmd/..."},
		Why: "the production pipeline must not depend on the harness (scenarios, loadgen, localstack), the mock servers or the reports; measurement it needs belongs in a leaf package of its own",
	},
	{
		From: module + "/mockpush/...",
		Not:  []string{module + "/sender/...", module + "/scenarios/...", module + "/results/..."},
		Why:  "the mock servers check the pipeline from outside: two implementations that check each other must not share code",
	},
	{
		From: module + "/sender/burst",
		Not:  []string{"github.com/sideshow/apns2/...", "firebase.google.com/..."},
		Why:  "the frame-level transport is the lean production path; what it shares with the stock transports lives in sender/provider",
	},
	{
		From: module + "/sender/provider",
		Not: []string{"github.com/sideshow/apns2/...", "firebase.google.com/...", "google.golang.org/api/...",
			"golang.org/x/oauth2/..."},
		Why: "the provider core is shared by every transport and imports no provider SDK",
	},
}

// listedPackage is the part of `go list -json` output the test reads.
type listedPackage struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

// TestImportRules runs `go list -deps -json ./...` and fails once for every import that
// breaks an importRule, naming the packages that reach it and one chain that does.
func TestImportRules(t *testing.T) {
	t.Parallel()
	pkgs := listPackages(t)
	for _, rule := range importRules {
		matched := 0
		// offenders groups the breaking packages by the import that breaks the rule (the
		// last link of their chain), so that one bad import is reported once.
		offenders := map[string][]string{}
		var edges []string
		for _, path := range slices.Sorted(maps.Keys(pkgs)) {
			if !matchPath(rule.From, path) {
				continue
			}
			matched++
			chain := forbiddenChain(pkgs, path, rule.Not)
			if chain == nil {
				continue
			}
			edge := chain[len(chain)-2] + " imports " + chain[len(chain)-1]
			if offenders[edge] == nil {
				edges = append(edges, edge)
			}
			offenders[edge] = append(offenders[edge], strings.Join(chain, " -> "))
		}
		for _, edge := range edges {
			chains := offenders[edge]
			t.Errorf("rule %s must not depend on %s: %s, which %d package(s) reach (e.g. %s): %s",
				rule.From, strings.Join(rule.Not, ", "), edge, len(chains), chains[0], rule.Why)
		}
		if matched == 0 {
			t.Errorf("rule for %s matches no package: a rename left it checking nothing", rule.From)
		}
	}
}

// TestForbiddenChain checks the rule engine on a small made-up graph.
func TestForbiddenChain(t *testing.T) {
	t.Parallel()
	pkgs := map[string]listedPackage{
		"m/sender":       {ImportPath: "m/sender", Imports: []string{"m/sender/util", "fmt"}},
		"m/sender/util":  {ImportPath: "m/sender/util", Imports: []string{"m/results"}},
		"m/sender/clean": {ImportPath: "m/sender/clean", Imports: []string{"fmt"}},
		"m/results":      {ImportPath: "m/results"},
		"m/resultsx":     {ImportPath: "m/resultsx"},
		"m/sender/near":  {ImportPath: "m/sender/near", Imports: []string{"m/resultsx"}},
		"fmt":            {ImportPath: "fmt", Standard: true},
	}
	tests := []struct {
		from string
		not  []string
		want []string // nil: no forbidden dependency
	}{
		// an indirect dependency is found, with the chain that makes it
		{"m/sender", []string{"m/results/..."}, []string{"m/sender", "m/sender/util", "m/results"}},
		// a package without it passes
		{"m/sender/clean", []string{"m/results/..."}, nil},
		// a pattern does not match a longer name that merely starts the same
		{"m/sender/near", []string{"m/results/..."}, nil},
		// an exact pattern matches the path itself
		{"m/sender/near", []string{"m/resultsx"}, []string{"m/sender/near", "m/resultsx"}},
	}
	for _, tc := range tests {
		got := forbiddenChain(pkgs, tc.from, tc.not)
		if !slices.Equal(got, tc.want) {
			t.Errorf("forbiddenChain(%s, %q) = %q, want %q", tc.from, tc.not, got, tc.want)
		}
	}
}

// listPackages lists every package of the module and every package they depend on,
// without test files. `go test` puts its own toolchain's go first on PATH.
func listPackages(t *testing.T) map[string]listedPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,Standard", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	pkgs := map[string]listedPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	if _, ok := pkgs[module+"/sender"]; !ok {
		t.Fatalf("go list found %d packages but not %s/sender", len(pkgs), module)
	}
	return pkgs
}

// forbiddenChain returns the shortest import chain from the package from to a package
// matching one of not, or nil when there is none. Standard-library packages are not
// followed.
func forbiddenChain(pkgs map[string]listedPackage, from string, not []string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur != from && slices.ContainsFunc(not, func(pat string) bool { return matchPath(pat, cur) }) {
			var chain []string
			for p := cur; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, next := range pkgs[cur].Imports {
			if _, seen := prev[next]; seen || pkgs[next].Standard {
				continue
			}
			prev[next] = cur
			queue = append(queue, next)
		}
	}
	return nil
}

// matchPath reports whether path matches pattern: equal to it, or below it when pattern
// ends in "/...".
func matchPath(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}
