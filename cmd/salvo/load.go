package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"time"

	jwt "github.com/golang-jwt/jwt/v5"
	"github.com/sideshow/apns2/token"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/salvopush/salvo/loadgen/h2flood"
	"github.com/salvopush/salvo/mockpush"
)

// runLoad floods the mock APNs or FCM with silent pushes from a lean HTTP/2 client and
// reports requests per second and the mock's CPU time per request (from its /stats).
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := "usage: salvo load apns|fcm --ready-file PATH [--duration 10s] [--conns N] [--streams M] [--max-requests N] [--reset]"
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, usage)
		if len(args) == 0 {
			return usageError("missing target (apns or fcm)")
		}
		return nil
	}
	target := args[0]
	if target != "apns" && target != "fcm" {
		return usageError("unknown target %q (want apns or fcm)", target)
	}
	fs := newFlagSet("load "+target, stderr)
	readyFile := fs.String("ready-file", "", "ready file written by salvo mockpush (required)")
	duration := fs.Duration("duration", 10*time.Second, "how long to flood (at most 10m)")
	conns := fs.Int("conns", 4, "connections")
	streams := fs.Int("streams", 500, "streams in flight per connection (capped by the server)")
	maxRequests := fs.Int64("max-requests", 0, "stop after this many requests (0: only the duration bounds the run)")
	reset := fs.Bool("reset", false, "clear the mock's counters and receipts (POST /reset) before the run")
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage+"\n\nflags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	switch {
	case *readyFile == "":
		return usageError("--ready-file is required")
	case *duration <= 0 || *duration > 10*time.Minute:
		return usageError("--duration %v is out of (0, 10m]", *duration)
	case *conns <= 0 || *conns > 1024:
		return usageError("--conns %d is out of 1..1024", *conns)
	case *streams <= 0 || *streams > 100000:
		return usageError("--streams %d is out of 1..100000", *streams)
	}
	r, err := mockpush.ReadReadyFile(*readyFile)
	if err != nil {
		return usageError("%v", err)
	}
	pool, err := r.CertPool()
	if err != nil {
		return err
	}
	tlsCfg := &tls.Config{RootCAs: pool}
	fc := h2flood.Config{TLS: tlsCfg, Conns: *conns, Streams: *streams, Duration: *duration, MaxRequests: *maxRequests}
	if target == "apns" {
		err = apnsFlood(&fc, r)
	} else {
		err = fcmFlood(ctx, &fc, r, tlsCfg)
	}
	if err != nil {
		return err
	}
	ctl := &mockpush.Control{URL: r.ControlURL}
	if *reset {
		if err := ctl.Reset(ctx); err != nil {
			return fmt.Errorf("load: %w", err)
		}
	}
	before, err := ctl.Stats(ctx)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	self0 := mockpush.ReadProcessStats()
	res, err := h2flood.Run(ctx, fc)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	self1 := mockpush.ReadProcessStats()
	after, err := ctl.Stats(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	fmt.Fprintf(stdout, "load %s: %s, %d conns x %d streams, %s\n", target, res.Elapsed.Round(time.Millisecond), *conns, *streams, fc.URL)
	fmt.Fprintf(stdout, "client: sent %d, completed %d, %.0f requests/s, refused %d, connections %d (errors %d)\n",
		res.Sent, res.Completed, res.PerSecond(), res.Refused, res.Conns, res.Errors)
	codes := make([]int, 0, len(res.Status))
	for c := range res.Status {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		fmt.Fprintf(stdout, "  status %d: %d\n", c, res.Status[c])
	}
	pb, pa := before.APNs, after.APNs
	if target == "fcm" {
		pb, pa = before.FCM, after.FCM
	}
	received := pa.Received - pb.Received
	fmt.Fprintf(stdout, "mock: received %d, accepted %d\n", received, pa.Accepted-pb.Accepted)
	if before.Process != nil && after.Process != nil && received > 0 {
		cpu := after.Process.CPUSeconds - before.Process.CPUSeconds
		fmt.Fprintf(stdout, "mock cpu: %.2f s = %.2f CPU-us per request (max RSS %d MiB)\n",
			cpu, cpu*1e6/float64(received), after.Process.MaxRSSBytes>>20)
	}
	if self0 != nil && self1 != nil && res.Completed > 0 {
		cpu := self1.CPUSeconds - self0.CPUSeconds
		fmt.Fprintf(stdout, "client cpu: %.2f s = %.2f CPU-us per request\n", cpu, cpu*1e6/float64(res.Completed))
	}
	return nil
}

// apnsFlood fills fc for valid background pushes to the mock APNs, each to its own token.
func apnsFlood(fc *h2flood.Config, r mockpush.Ready) error {
	key, err := token.AuthKeyFromFile(r.APNsKeyFile)
	if err != nil {
		return fmt.Errorf("load: apns key: %w", err)
	}
	bearer, err := providerToken(key, r.APNsKeyID, r.APNsTeamID, time.Now())
	if err != nil {
		return err
	}
	fc.URL, fc.PathPrefix = r.APNsURL, "/3/device/"
	fc.Header = [][2]string{
		{"authorization", "bearer " + bearer}, {"apns-topic", r.APNsTopic},
		{"apns-push-type", "background"}, {"apns-priority", "5"}, {"apns-collapse-id", "load"},
	}
	fc.Body = []byte(`{"aps":{"content-available":1}}`)
	return nil
}

// fcmFlood fills fc for valid data-only FCM v1 messages, each to its own token, with an
// access token the mock's /token issues for the generated service account (as the sender
// gets one).
func fcmFlood(ctx context.Context, fc *h2flood.Config, r mockpush.Ready, tlsCfg *tls.Config) error {
	sa, err := os.ReadFile(r.FCMServiceAccountFile)
	if err != nil {
		return fmt.Errorf("load: fcm service account: %w", err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 30 * time.Second}
	octx := context.WithValue(ctx, oauth2.HTTPClient, hc)
	creds, err := google.CredentialsFromJSON(octx, sa, "https://www.googleapis.com/auth/firebase.messaging")
	if err != nil {
		return fmt.Errorf("load: fcm credentials: %w", err)
	}
	tok, err := creds.TokenSource.Token()
	if err != nil {
		return fmt.Errorf("load: fcm access token: %w", err)
	}
	fc.URL, fc.PathPrefix, fc.TokenInBody = r.FCMURL, "/v1/projects/"+r.FCMProjectID+"/messages:send", true
	fc.Header = [][2]string{{"content-type", "application/json"}, {"authorization", "Bearer " + tok.AccessToken}}
	// The body the burst transport sends for a silent campaign push.
	fc.Body = []byte(`{"message":{"token":"`)
	fc.BodySuffix = []byte(`","data":{"campaign_id":"load"},"android":{"collapse_key":"load","priority":"high"}}}`)
	return nil
}

// providerToken signs an APNs provider token (ES256 with kid, iss and iat).
func providerToken(key *ecdsa.PrivateKey, keyID, teamID string, now time.Time) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": teamID, "iat": now.Unix()})
	t.Header["kid"] = keyID
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("load: provider token: %w", err)
	}
	return s, nil
}
