package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/salvopush/salvo/mockpush"
)

// runMockpush starts the mock APNs and FCM servers, writes the ready file and serves until
// ctx is cancelled (SIGINT/SIGTERM).
func runMockpush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := mockpush.DefaultConfig()
	fs := newFlagSet("mockpush", stderr)
	readyFile := fs.String("ready-file", "", "write the ready JSON (URLs, CA, keys) to `PATH` (required)")
	fs.StringVar(&cfg.Dir, "dir", "", "write the generated CA, key and service-account files into `DIR` (default: a temporary folder removed on exit)")
	apnsPort := fs.Int("apns-port", 0, "APNs port on 127.0.0.1 (0: chosen by the OS)")
	fcmPort := fs.Int("fcm-port", 0, "FCM port on 127.0.0.1 (0: chosen by the OS)")
	controlPort := fs.Int("control-port", 0, "control API port on 127.0.0.1 (0: chosen by the OS)")
	fs.StringVar(&cfg.APNsTopic, "apns-topic", cfg.APNsTopic, "the apns-topic (bundle ID) the mock APNs accepts")
	fs.StringVar(&cfg.APNsTeamID, "apns-team-id", cfg.APNsTeamID, "team ID of the generated APNs key")
	fs.StringVar(&cfg.FCMProject, "fcm-project", cfg.FCMProject, "Firebase project ID of the mock FCM")
	maxStreams := fs.Uint("max-streams", uint(cfg.MaxConcurrentStreams), "SETTINGS_MAX_CONCURRENT_STREAMS advertised by both mocks")
	fs.IntVar(&cfg.FCMQuotaPerMinute, "fcm-quota", cfg.FCMQuotaPerMinute, "FCM send requests allowed per project per sliding minute")
	faultsFile := fs.String("faults", "", "initial fault injection from `FILE.json` (format in docs/mockpush.md)")
	seed := fs.String("seed", "", "seed of the fault generators (overrides the faults file's seed)")
	oneStream := fs.Bool("one-stream-until-accepted", false, "APNs: advertise 1 stream on a new connection until its first accepted push")
	dropStreams := fs.Bool("drop-streams-on-reject", false, "APNs: drop to 1 stream after a rejected push, restore after the next accepted one")
	fs.BoolVar(&cfg.KeepAccepted, "keep-accepted", false, "keep the token of every accepted push, per campaign, for GET /accepted")
	fs.BoolVar(&cfg.Permissive, "permissive", false, "APNs: skip provider-token checks (HTTP/2 conformance tools only)")
	fs.Func("apns-key", "also trust the APNs key `KEYID:TEAMID:FILE` (a .p8 private key or PEM public key; repeatable)", func(v string) error {
		k, err := parseAPNsKeyFlag(v)
		if err != nil {
			return err
		}
		cfg.APNsKeys = append(cfg.APNsKeys, k)
		return nil
	})
	// Hidden from the usage text: a CPU profile of the whole mock, for `go tool pprof`.
	cpuProfile := fs.String("cpuprofile", "", "")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: salvo mockpush --ready-file PATH [flags]\n\nRuns mock APNs and FCM servers on 127.0.0.1 until SIGINT/SIGTERM.\n\nflags:")
		fs.VisitAll(func(f *flag.Flag) {
			if f.Name != "cpuprofile" {
				printFlag(fs.Output(), f)
			}
		})
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *readyFile == "" {
		return usageError("--ready-file is required")
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	for _, p := range []struct {
		name string
		v    int
		dst  *string
	}{{"apns-port", *apnsPort, &cfg.APNsAddr}, {"fcm-port", *fcmPort, &cfg.FCMAddr}, {"control-port", *controlPort, &cfg.ControlAddr}} {
		if p.v < 0 || p.v > 65535 {
			return usageError("--%s %d is not a port", p.name, p.v)
		}
		*p.dst = "127.0.0.1:" + strconv.Itoa(p.v)
	}
	cfg.MaxConcurrentStreams = uint32(min(*maxStreams, 1<<21))
	if *faultsFile != "" {
		b, err := os.ReadFile(*faultsFile)
		if err != nil {
			return usageError("--faults: %v", err)
		}
		f, err := mockpush.ParseFaults(b)
		if err != nil {
			return usageError("--faults %s: %v", *faultsFile, err)
		}
		cfg.Faults = f
	}
	if *seed != "" {
		n, err := strconv.ParseUint(*seed, 10, 64)
		if err != nil {
			return usageError("--seed %q is not an unsigned integer", *seed)
		}
		cfg.Faults.Seed = n
	}
	cfg.Faults.APNs.OneStreamUntilAccepted = cfg.Faults.APNs.OneStreamUntilAccepted || *oneStream
	cfg.Faults.APNs.DropStreamsOnReject = cfg.Faults.APNs.DropStreamsOnReject || *dropStreams
	if err := cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	srv, err := mockpush.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	r := srv.Ready()
	if err := mockpush.WriteReadyFile(*readyFile, r); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "mockpush: apns %s, fcm %s, control %s; ready file %s\n", r.APNsURL, r.FCMURL, r.ControlURL, *readyFile)
	<-ctx.Done()
	return srv.Close()
}

// startCPUProfile writes a CPU profile to path until the returned function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("mockpush: cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("mockpush: cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// printFlag prints one flag as flag.PrintDefaults does.
func printFlag(w io.Writer, f *flag.Flag) {
	name, usage := flag.UnquoteUsage(f)
	line := "  -" + f.Name
	if name != "" {
		line += " " + name
	}
	if len(line) <= 4 {
		line += "\t"
	} else {
		line += "\n    \t"
	}
	line += strings.ReplaceAll(usage, "\n", "\n    \t")
	switch g, _ := f.Value.(flag.Getter); {
	case f.DefValue == "" || f.DefValue == "0" || f.DefValue == "false":
	case g != nil && isString(g.Get()):
		line += fmt.Sprintf(" (default %q)", f.DefValue)
	default:
		line += " (default " + f.DefValue + ")"
	}
	fmt.Fprintln(w, line)
}

func isString(v any) bool { _, ok := v.(string); return ok }

// parseAPNsKeyFlag parses KEYID:TEAMID:FILE.
func parseAPNsKeyFlag(v string) (mockpush.APNsKey, error) {
	parts := strings.SplitN(v, ":", 3)
	if len(parts) != 3 {
		return mockpush.APNsKey{}, fmt.Errorf("want KEYID:TEAMID:FILE, got %q", v)
	}
	b, err := os.ReadFile(parts[2])
	if err != nil {
		return mockpush.APNsKey{}, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return mockpush.APNsKey{}, fmt.Errorf("%s: no PEM block", parts[2])
	}
	var pub *ecdsa.PublicKey
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if ek, ok := k.(*ecdsa.PrivateKey); ok {
			pub = &ek.PublicKey
		}
	} else if k, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
		pub, _ = k.(*ecdsa.PublicKey)
	}
	if pub == nil {
		return mockpush.APNsKey{}, fmt.Errorf("%s: not an ECDSA key", parts[2])
	}
	return mockpush.APNsKey{KeyID: parts[0], TeamID: parts[1], Public: pub}, nil
}
