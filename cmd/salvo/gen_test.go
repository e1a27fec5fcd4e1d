package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenFlags(t *testing.T) {
	t.Parallel()
	reg := t.TempDir()
	var out bytes.Buffer
	if err := runGen(context.Background(), []string{"registry", "--users", "50", "--out", reg}, &out, &out); err != nil {
		t.Fatal(err)
	}
	noReg := t.TempDir()
	aud := filepath.Join(t.TempDir(), "a.csv")
	for _, tc := range []struct {
		args []string
		want string // in the error; the exit code is always 2
	}{
		{nil, "want registry or audience"},                               // no kind
		{[]string{"users"}, `unknown kind "users"`},                      // a typo
		{[]string{"registry", "--out", reg}, "--users"},                  // --users is required
		{[]string{"registry", "--users", "-5", "--out", reg}, "--users"}, // negative
		{[]string{"registry", "--users", "x", "--out", reg}, "-users"},   // not a number (flag package message)
		{[]string{"registry", "--users", "9", "--ios-share", "1.5", "--out", reg}, "--ios-share"},
		{[]string{"registry", "--users", "9", "--multi-device-share", "-0.1", "--out", reg}, "--multi-device-share"},
		{[]string{"registry", "--users", "9", "--invalid-share", "NaN", "--out", reg}, "--invalid-share"},
		{[]string{"registry", "--users", "9", "--long-token-share", "2", "--out", reg}, "--long-token-share"},
		{[]string{"registry", "--users", "9", "--seed", "-1", "--out", reg}, "-seed"}, // seeds are unsigned
		{[]string{"registry", "--users", "9", "--apns-topic", "com example", "--out", reg}, "--apns-topic"},
		{[]string{"registry", "--users", "9", "--fcm-project", "a/b", "--out", reg}, "--fcm-project"},
		{[]string{"registry", "--users", "9"}, "--out"}, // --out is required
		{[]string{"registry", "--users", "9", "--out", reg, "extra"}, "unexpected argument"},
		{[]string{"audience", "--out", aud}, "--from"},                          // --from is required
		{[]string{"audience", "--from", reg}, "--out"},                          // --out is required
		{[]string{"audience", "--from", noReg, "--out", aud}, "--from"},         // no registry there
		{[]string{"audience", "--from", "dynamodb://", "--out", aud}, "--from"}, // no table named
		{[]string{"registry", "--users", "9", "--to", "s3://x"}, "--to"},        // not a table
		{[]string{"audience", "--from", reg, "--out", aud, "--sample", "1.2"}, "--sample"},
		{[]string{"audience", "--from", reg, "--out", aud, "--unknown", "-1"}, "--unknown"},
		{[]string{"audience", "--from", reg, "--out", aud, "--format", "xml"}, "--format"},
	} {
		err := runGen(context.Background(), tc.args, &out, &out)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("gen %q = %v, want exit 2 and %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(aud); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused run wrote %s", aud)
	}
}

func TestGenRegistryAndAudience(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := t.TempDir()
	var out bytes.Buffer
	args := []string{"registry", "--users", "1000", "--ios-share", "0.7", "--multi-device-share", "0.1",
		"--invalid-share", "0.02", "--long-token-share", "0.1", "--seed", "9", "--apns-topic", "com.example.app",
		"--fcm-project", "example", "--out", reg}
	if err := runGen(ctx, args, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "registry: 1000 users") {
		t.Fatalf("output %q", out.String())
	}
	for _, name := range []string{"registry.bin", "audience.csv", "registry.json"} {
		if _, err := os.Stat(filepath.Join(reg, name)); err != nil {
			t.Fatal(err)
		}
	}
	aud := filepath.Join(t.TempDir(), "a.ndjson")
	out.Reset()
	args = []string{"audience", "--from", reg, "--sample", "0.25", "--unknown", "5", "--format", "ndjson", "--out", aud}
	if err := runGen(ctx, args, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "audience: 255 users (250 known, 5 unknown)") {
		t.Fatalf("output %q", out.String())
	}
	b, err := os.ReadFile(aud)
	if err != nil || bytes.Count(b, []byte("\n")) != 255 || !bytes.HasPrefix(b, []byte(`{"user_id":"u`)) {
		t.Fatalf("audience file %.80q (%v)", b, err)
	}
}
