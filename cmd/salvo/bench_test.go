package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestBenchRefusesBadInput checks that bad flags and bad arm selections exit 2 with a
// reason, before anything is generated or started.
func TestBenchRefusesBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		inOutput string
	}{
		// no repeats at all
		{"repeat zero", []string{"--repeat", "0"}, "--repeat"},
		// more repeats than the gate ever needs
		{"repeat too many", []string{"--repeat", "21"}, "--repeat"},
		// a negative audience
		{"audience", []string{"--audience", "-5"}, "--audience"},
		// an unknown transport kind
		{"transport", []string{"--transport", "fast"}, "--transport"},
		// an unknown scenario lists the built-in ones
		{"unknown scenario", []string{"--scenario", "nope"}, "built in:"},
		// an arm of a scenario that has none
		{"arm without arms", []string{"--scenario", "ci", "--arm", "x"}, "has no arms"},
		// an unknown arm names the arms there are
		{"unknown arm", []string{"--scenario", "chaos", "--arm", "no-fault,nope"}, "no arm nope (arms: no-fault"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			args := append([]string{"bench", "--out", t.TempDir(), "--cache-dir", t.TempDir()}, tt.args...)
			if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, tt.inOutput) {
				t.Errorf("output lacks %q:\n%s", tt.inOutput, out)
			}
		})
	}
}
