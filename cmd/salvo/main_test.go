package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestEverySubcommandHelpAndBadFlag checks the binary's contract: every subcommand prints
// usage on -h (exit 0) and exits non-zero with a one-line reason on a bad flag.
func TestEverySubcommandHelpAndBadFlag(t *testing.T) {
	t.Parallel()
	for name := range commands() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := []string{name}
			if name == "gen" || name == "results" || name == "load" {
				args = append(args, firstVerb(name))
			}
			var out, errOut bytes.Buffer
			if code := run(context.Background(), append(args, "-h"), &out, &errOut); code != 0 {
				t.Errorf("-h: exit %d, want 0 (stderr %q)", code, errOut.String())
			}
			if !strings.Contains(strings.ToLower(errOut.String()+out.String()), "usage") {
				t.Errorf("-h printed no usage: %q", errOut.String())
			}
			out.Reset()
			errOut.Reset()
			code := run(context.Background(), append(args, "--no-such-flag"), &out, &errOut)
			if code == 0 {
				t.Fatalf("bad flag: exit 0")
			}
			last := lastLine(errOut.String())
			if !strings.HasPrefix(last, "salvo "+name) || !strings.Contains(last, "no-such-flag") {
				t.Errorf("bad flag: last line %q does not give the reason", last)
			}
		})
	}
}

func firstVerb(cmd string) string {
	switch cmd {
	case "gen":
		return "registry"
	case "results":
		return "compare"
	}
	return "apns"
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"nope"}, &out, &errOut); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
}
