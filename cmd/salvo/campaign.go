package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
)

// campaignUsage lists the campaign subcommands.
const campaignUsage = `usage: salvo campaign COMMAND [flags] [ID]

commands:
  create  --spec FILE [--audience FILE] [--id ID]   create a campaign (spec: docs/api.md)
  list                                               list campaigns
  status  ID                                         a campaign's state and progress (JSON)
  prepare ID [--workers N] [--wait]                  ask send workers to preload it (--wait: until they are ready)
  go      ID                                         press GO (a second press is a no-op)
  wait    ID [--timeout D]                           wait until it ends; exit 0 done, 1 otherwise
  abort   ID [--reason TEXT]                         stop it; what was not sent is counted
  redrive ID                                         send its failed (dead-lettered) recipients again, once
  test-push ID                                       send its message to your own devices (not counted)
  approve ID                                         approve it (not your own; after your test push)
  reject  ID --reason TEXT                           reject it until its message is edited
  cancel  ID [--reason TEXT]                         cancel its scheduled send before the time
  workers                                            the workers seen in the last 10 minutes, alive or not (JSON)

every command takes --api URL (or $SALVO_API) and --token-file FILE (or $SALVO_TOKEN)`

// runCampaign drives the campaign API from the command line.
func runCampaign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, campaignUsage)
		if len(args) == 0 {
			return usageError("a command is required")
		}
		return flag.ErrHelp
	}
	cmd, args := args[0], args[1:]
	fs := newFlagSet("campaign "+cmd, stderr)
	var af apiFlags
	af.register(fs)
	spec := fs.String("spec", "", "create: campaign spec, JSON (the body of POST /v1/campaigns)")
	audience := fs.String("audience", "", "create: audience file (CSV, NDJSON or JSON) uploaded first and used as the spec's audience")
	id := fs.String("id", "", "create: campaign ID (default: the spec's, or a new one)")
	workers := fs.Int("workers", 1, "prepare: send workers that must report ready")
	reason := fs.String("reason", "", "abort, reject, cancel: why (goes to the audit log)")
	wait := fs.Bool("wait", false, "prepare: wait until the workers are ready (GO is allowed)")
	timeout := fs.Duration("timeout", 30*time.Minute, "wait, prepare --wait: give up after this long")
	fs.Usage = func() { fmt.Fprintln(stderr, campaignUsage); fs.PrintDefaults() }
	// Flags may come before or after the campaign ID.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	needID := func() (string, error) {
		if len(positional) != 1 {
			return "", usageError("%s needs exactly one campaign ID", cmd)
		}
		return positional[0], nil
	}
	switch cmd {
	case "create":
		if len(positional) != 0 {
			return usageError("unexpected argument %q", positional[0])
		}
		return campaignCreate(ctx, c, *spec, *audience, *id, stdout)
	case "list":
		recs, err := c.List(ctx)
		if err != nil {
			return err
		}
		for _, r := range recs {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%d recipients\n", r.ID, r.State, r.Spec.Name, r.Resolution.Recipients)
		}
		return nil
	case "workers":
		if len(positional) != 0 {
			return usageError("unexpected argument %q", positional[0])
		}
		ws, err := c.Workers(ctx)
		if err != nil {
			return err
		}
		return printJSON(stdout, map[string]any{"workers": ws})
	case "status", "prepare", "go", "abort", "redrive", "wait", "test-push", "approve", "reject", "cancel":
	default:
		return usageError("unknown command %q (see salvo campaign -h)", cmd)
	}
	cid, err := needID()
	if err != nil {
		return err
	}
	var out any
	switch cmd {
	case "status":
		out, err = c.Status(ctx, cid)
	case "prepare":
		if *workers < 1 {
			return usageError("--workers must be at least 1")
		}
		if *wait {
			err = campaignPrepareAndWait(ctx, c, cid, *workers, *timeout, stdout)
		} else {
			err = c.Prepare(ctx, cid, *workers)
		}
		out = map[string]any{"prepare": cid, "workers": *workers, "prepared": *wait && err == nil}
	case "go":
		out, err = c.Press(ctx, cid)
	case "abort":
		out, err = c.Abort(ctx, cid, *reason)
	case "redrive":
		out, err = c.Redrive(ctx, cid)
	case "wait":
		return campaignWait(ctx, c, cid, *timeout, stdout)
	case "test-push":
		out, err = c.TestPush(ctx, cid)
	case "approve":
		out, err = c.Approve(ctx, cid)
	case "reject":
		out, err = c.Reject(ctx, cid, *reason)
	case "cancel":
		out, err = c.Cancel(ctx, cid, *reason)
	}
	if err != nil {
		return err
	}
	return printJSON(stdout, out)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// campaignCreate uploads the audience (if given) and creates the campaign.
func campaignCreate(ctx context.Context, c *api.Client, specFile, audienceFile, id string, stdout io.Writer) error {
	if specFile == "" {
		return usageError("create needs --spec FILE")
	}
	raw, err := os.ReadFile(specFile)
	if err != nil {
		return usageError("--spec: %v", err)
	}
	var req api.CreateRequest
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return usageError("--spec %s: %v", specFile, err)
	}
	if id != "" {
		req.ID = id
	}
	if audienceFile != "" {
		data, err := os.ReadFile(audienceFile)
		if err != nil {
			return usageError("--audience: %v", err)
		}
		key := "audiences/" + filepath.Base(audienceFile)
		if err := c.PutObject(ctx, key, data); err != nil {
			return fmt.Errorf("upload audience: %w", err)
		}
		req.Audience = sender.AudienceSource{Object: key}
	}
	resp, err := c.Create(ctx, req.ID, req.CampaignSpec)
	if err != nil {
		return err
	}
	return printJSON(stdout, resp)
}

// campaignWait prints a line a second until the campaign ends; exit 0 when it is done,
// 1 when it ended otherwise (done_with_failures, aborted, failed) or the timeout passed.
func campaignWait(ctx context.Context, c *api.Client, id string, timeout time.Duration, stdout io.Writer) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := c.Status(ctx, id)
		if err != nil {
			return err
		}
		r := st.Campaign
		line := fmt.Sprintf("%s %s", id, r.State)
		if p := st.Progress; p != nil {
			line += fmt.Sprintf("  accepted %d  rejected %d  failed %d  in flight %d  p99 %.0f ms", p.Accepted, p.Rejected, p.Failed, p.InFlight, p.LatencyMs.P99)
			if p.Stall != nil {
				line += fmt.Sprintf("  STALLED since %s: %s", p.Stall.Since.Format(time.TimeOnly), p.Stall.Cause)
			}
		}
		fmt.Fprintln(stdout, line)
		if r.Terminal() {
			if r.State == sender.StateDone {
				return nil
			}
			return &exitError{code: 1, err: fmt.Errorf("campaign %s ended %s", id, r.State)}
		}
		if time.Now().After(deadline) {
			return &exitError{code: 1, err: fmt.Errorf("campaign %s still %s after %s", id, r.State, timeout)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// campaignPrepareAndWait asks for the prepare (once resolution has finished) and waits until
// enough send workers hold the campaign for GO, printing a line when the count of ready
// workers changes.
func campaignPrepareAndWait(ctx context.Context, c *api.Client, id string, workers int, timeout time.Duration, stdout io.Writer) error {
	deadline := time.Now().Add(timeout)
	last := -1
	asked := false
	for {
		st, err := c.Status(ctx, id)
		if err != nil {
			return err
		}
		if !asked && st.Campaign.State != sender.StateResolving {
			if err := c.Prepare(ctx, id, workers); err != nil {
				return err
			}
			asked = true
			continue
		}
		if asked && st.Prepared {
			return nil
		}
		want := 1
		if st.Campaign.Prepare != nil {
			want = st.Campaign.Prepare.Workers
		}
		if len(st.Ready) != last {
			last = len(st.Ready)
			fmt.Fprintf(stdout, "%s %s: %d of %d send workers ready\n", id, st.Campaign.State, last, want)
		}
		if st.Campaign.Terminal() {
			return &exitError{code: 1, err: fmt.Errorf("campaign %s is %s", id, st.Campaign.State)}
		}
		if time.Now().After(deadline) {
			return &exitError{code: 1, err: fmt.Errorf("campaign %s: %d of %d send workers ready after %s", id, last, want, timeout)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
