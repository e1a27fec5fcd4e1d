package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salvopush/salvo/gameday"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/diskregistry"
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

// TestGenRegistryFromCSV: real devices imported from a tokens file land in an on-disk
// registry under the user IDs a rehearsal derives (or the file names), with the app IDs
// given; a platform without its app ID is refused.
func TestGenRegistryFromCSV(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	ios, android := strings.Repeat("ab", 32), "fcm-"+strings.Repeat("x", 150)
	csv := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(csv, []byte("platform,token,user_id\nios,"+ios+"\nandroid,"+android+",ana\nios,"+ios+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runGen(ctx, []string{"registry", "--from-csv", csv, "--out", filepath.Join(dir, "reg")}, &out, &out); err == nil ||
		!strings.Contains(err.Error(), "--apns-topic") {
		t.Fatalf("import without --apns-topic: %v", err)
	}
	args := []string{"registry", "--from-csv", csv, "--apns-topic", "com.example.app", "--fcm-project", "example", "--out", filepath.Join(dir, "reg")}
	if err := runGen(ctx, args, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "2 users, 2 devices (ios 1, android 1; 1 duplicate lines dropped)") {
		t.Fatalf("output %q", out.String())
	}
	reg, err := diskregistry.Open(filepath.Join(dir, "reg"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	iosUser := gameday.UserIDFor(sender.PlatformIOS, ios)
	devs, err := reg.Devices(ctx, []string{iosUser, "ana"})
	if err != nil {
		t.Fatal(err)
	}
	if len(devs[0]) != 1 || devs[0][0].Token != ios || devs[0][0].App != "com.example.app" ||
		len(devs[1]) != 1 || devs[1][0].Token != android || devs[1][0].App != "example" {
		t.Fatalf("devices %+v", devs)
	}
	aud, err := os.ReadFile(filepath.Join(dir, "reg", "audience.csv"))
	if err != nil || string(aud) != "user_id\nana\n"+iosUser+"\n" {
		t.Fatalf("audience.csv %q (%v)", aud, err)
	}
}
