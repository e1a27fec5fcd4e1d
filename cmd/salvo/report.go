package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/salvopush/salvo/results"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/auth"
)

// liveScenario is the scenario name of a report made of a campaign's real sends.
const liveScenario = "live"

// runReport writes the standard report folder of a campaign's sends, fetched from the
// campaign API (GET /v1/campaigns/{id}/report?format=tar). Exit 0 when every check held, 1
// when one did not (as `salvo bench`), 2 when no report could be made.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", stderr)
	var af apiFlags
	af.register(fs)
	id := fs.String("campaign", "", "campaign ID (required)")
	out := fs.String("out", "", "folder to write report.json, report.md, latency.hgrm, latency.hlog, timeline.csv and the plots into (required)")
	settle := fs.Duration("settle", 15*time.Second, "when acceptances have no latency sample yet (workers publish their figures every second), ask again for up to this long before writing the report with the gap stated")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: salvo report --campaign ID --out DIR [--api URL] [--token-file FILE]\n\nWrites the report of a finished campaign's sends (the GO press and every redrive): counts from the\ndelivery ledger, latency and timeline from the send workers' published figures.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *id == "":
		return usageError("--campaign: required")
	case *out == "":
		return usageError("--out: required")
	case *settle < 0:
		return usageError("--settle: must not be negative")
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(*settle)
	for {
		files, err := fetchReport(ctx, c, *id)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		r, err := parseFetched(files)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if gap := r.NoLatencySample; gap == nil || *gap <= 0 || !time.Now().Before(deadline) {
			if err := writeFetched(*out, files); err != nil {
				return &exitError{code: 2, err: err}
			}
			return reportVerdict(r, *out, stdout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// fetchReport fetches a campaign's report folder as a tar and returns its files.
func fetchReport(ctx context.Context, c *api.Client, id string) (map[string][]byte, error) {
	body, err := c.Get(ctx, "/v1/campaigns/"+url.PathEscape(id)+"/report?format=tar")
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", id, err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(body))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("report %s: read archive: %w", id, err)
		}
		if h.Typeflag != tar.TypeReg || h.Name != path.Base(h.Name) || !filepath.IsLocal(h.Name) {
			return nil, fmt.Errorf("report %s: archive entry %q is not a plain file name", id, h.Name)
		}
		if files[h.Name], err = io.ReadAll(tr); err != nil {
			return nil, fmt.Errorf("report %s: read %s: %w", id, h.Name, err)
		}
	}
	return files, nil
}

// parseFetched reads the report.json of fetched files.
func parseFetched(files map[string][]byte) (*results.Report, error) {
	data, ok := files["report.json"]
	if !ok {
		return nil, errors.New("report: the archive holds no report.json")
	}
	dir, err := os.MkdirTemp("", "salvo-report-")
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "report.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return results.ReadReport(p)
}

// writeFetched writes the files into dir (created if needed).
func writeFetched(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	return nil
}

// reportVerdict prints the report's summary and turns a failed check into exit code 1.
func reportVerdict(r *results.Report, dir string, stdout io.Writer) error {
	d := r.Delivery
	fmt.Fprintf(stdout, "report: %d accepted, %d rejected, %d failed, %d lost of %d recipients; p99 %.1f ms; %s\n",
		d.Accepted, d.RejectedTotal(), d.Failed, d.Lost, r.Audience.Recipients, r.Latency.P99, r.TargetLine())
	if g := r.NoLatencySample; g != nil && *g > 0 {
		fmt.Fprintf(stdout, "report: %d accepted notifications have no latency sample (their worker stopped before publishing them)\n", *g)
	}
	fmt.Fprintf(stdout, "report: %s written to %s\n", r.Verdict(), dir)
	if !r.Pass {
		return &exitError{code: 1, err: fmt.Errorf("%d checks did not hold: %q", len(r.Failures), r.Failures)}
	}
	return nil
}

// reportRoutes are the campaign report's routes, served by the API (api.Config.Routes) for
// the viewer role:
//
//	GET /v1/campaigns/{id}/report               report.json
//	GET /v1/campaigns/{id}/report?format=tar    the whole folder in one tar (one consistent cut)
//	GET /v1/campaigns/{id}/report/{file}        one file of the folder (report.md, latency.svg...)
//
// Each request builds the report afresh from the ledger and the published figures, which
// stay in the stores: the report of a send finished long ago is fetched the same way.
func reportRoutes(svc *sender.Service) []api.Route {
	build := func(r *http.Request) (map[string][]byte, error) {
		rep, in, err := campaignReport(r.Context(), svc, r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		return results.RunFiles(rep, in)
	}
	return []api.Route{
		{Pattern: "GET /v1/campaigns/{id}/report", Role: auth.Viewer, Serve: func(w http.ResponseWriter, r *http.Request) error {
			files, err := build(r)
			if err != nil {
				return err
			}
			switch f := r.URL.Query().Get("format"); f {
			case "tar":
				return serveTar(w, r.PathValue("id"), files)
			case "", "json":
				return serveFile(w, "report.json", files["report.json"])
			default:
				return fmt.Errorf("%w: format %q: want json or tar", sender.ErrInvalid, f)
			}
		}},
		{Pattern: "GET /v1/campaigns/{id}/report/{file}", Role: auth.Viewer, Serve: func(w http.ResponseWriter, r *http.Request) error {
			name := r.PathValue("file")
			files, err := build(r)
			if err != nil {
				return err
			}
			data, ok := files[name]
			if !ok {
				names := make([]string, 0, len(files))
				for n := range files {
					names = append(names, n)
				}
				slices.Sort(names)
				return fmt.Errorf("%w: no file %q in a report (files: %v)", sender.ErrNotFound, name, names)
			}
			return serveFile(w, name, data)
		}},
	}
}

// serveFile answers one file with a content type from its extension.
func serveFile(w http.ResponseWriter, name string, data []byte) error {
	ct := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".md", ".hgrm", ".hlog":
		ct = "text/plain; charset=utf-8"
	case ".json":
		ct = "application/json"
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	_, err := w.Write(data)
	return err
}

// serveTar answers the files as one tar archive.
func serveTar(w http.ResponseWriter, id string, files map[string][]byte) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	now := time.Now()
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return fmt.Errorf("report: tar: %w", err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			return fmt.Errorf("report: tar: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("report: tar: %w", err)
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "report-"+id+".tar"))
	_, err := w.Write(buf.Bytes())
	return err
}

// campaignReport builds the report of a finished campaign's sends: counts from the
// service's progress (the delivery ledger where there is one), latency and timeline from
// every send's published figures (the GO press and every redrive, merged; a redrive's
// latencies run from its own press). A campaign never pressed, or still sending, has no
// report yet (sender.ErrNotReady).
func campaignReport(ctx context.Context, svc *sender.Service, id string) (*results.Report, results.Inputs, error) {
	st, err := svc.Status(ctx, id)
	if err != nil {
		return nil, results.Inputs{}, err
	}
	rec := st.Campaign
	switch {
	case rec.Send == nil:
		return nil, results.Inputs{}, fmt.Errorf("%w: campaign %s was never pressed: no send to report", sender.ErrNotReady, id)
	case !rec.Terminal() || st.Progress == nil:
		return nil, results.Inputs{}, fmt.Errorf("%w: campaign %s is %s; its report is made once the send has finished (GET /v1/campaigns/%s shows its progress)",
			sender.ErrNotReady, id, rec.State, id)
	}
	fig, workers, err := svc.Figures(ctx, rec)
	if err != nil {
		return nil, results.Inputs{}, err
	}
	in := liveInputs(rec, st.Progress, fig, workers)
	return results.Build(in), in, nil
}

// liveInputs turns a finished campaign's record, progress and merged figures into the
// report's inputs: counts from the progress, latency and timeline from the figures, with
// the acceptances that have no latency sample counted.
func liveInputs(rec *sender.CampaignRecord, p *sender.Progress, fig *sender.SendStats, workers []sender.WorkerFigures) results.Inputs {
	res := rec.Resolution
	aud := results.Audience{Recipients: int64(res.Recipients) + int64(res.ControlDevices),
		IOS: int64(res.IOS + res.ControlIOS), Android: int64(res.Android + res.ControlDevices - res.ControlIOS),
		Control: int64(res.ControlDevices)}
	var iosShare float64
	if aud.Recipients > 0 {
		iosShare = float64(aud.IOS) / float64(aud.Recipients)
	}
	names := map[string]bool{}
	for _, w := range workers {
		names[w.Worker] = true
	}
	var sends []map[string]any
	for _, s := range rec.Sends() {
		sends = append(sends, map[string]any{"id": s.ID, "pressed_at": s.PressedAt.UTC().Format(time.RFC3339Nano)})
	}
	extra := map[string]any{
		"mode":       "live",
		"campaign":   rec.ID,
		"name":       rec.Spec.Name,
		"state":      rec.State,
		"silent":     rec.Spec.Silent,
		"sends":      sends,
		"source":     p.Source,
		"unsent":     p.Unsent,
		"duplicates": "delivery.duplicates counts the recipients the ledger recorded accepted more than once (repeated); a push accepted whose answer was never recorded (a worker killed between the two) needs the provider's (or the mock's) own count",
	}
	if rec.Prepare != nil {
		extra["prepare_workers"] = rec.Prepare.Workers
	}
	rejected, unattributed := rejectedByReason(p.Rejected, p.RejectedBy)
	if unattributed != 0 {
		extra["rejected_unattributed"] = unattributed
	}
	gap := p.Accepted - fig.Latency.TotalCount()
	return results.Inputs{
		Scenario:  liveScenario,
		StartedAt: rec.Send.PressedAt,
		Config: results.Config{Audience: res.UsersTotal, IOSShare: iosShare, Transport: "set per send worker",
			Workers: len(names), Extra: extra},
		Audience:        aud,
		Delivery:        results.Delivery{Accepted: p.Accepted, Rejected: rejected, Failed: p.Failed, Duplicates: p.Repeated, Retries: p.Retries},
		Latency:         fig.Latency,
		Timeline:        fig.Timeline,
		NoLatencySample: &gap,
	}
}

// rejectedByReason splits the ledger's count of rejected recipients by the reasons the
// workers published. Reasons a dead worker never published are counted under
// "(reason not published)"; when the published reasons count more than the ledger (a push
// repeated after a worker died), the ledger's count is kept, the excess taken off the
// largest reasons, and returned as unattributed (negative) so the report says so.
func rejectedByReason(total int64, byReason map[string]int64) (map[string]int64, int64) {
	out := map[string]int64{}
	var sum int64
	for k, v := range byReason {
		if v > 0 {
			out[k] = v
			sum += v
		}
	}
	diff := total - sum
	switch {
	case diff > 0:
		out["(reason not published)"] = diff
	case diff < 0:
		excess := -diff
		for excess > 0 {
			var big string
			for k, v := range out {
				if big == "" || v > out[big] || v == out[big] && k < big {
					big = k
				}
			}
			take := min(excess, out[big])
			out[big] -= take
			excess -= take
			if out[big] == 0 {
				delete(out, big)
			}
		}
	}
	return out, diff
}

// apiFlags say which campaign API to call and with which token.
type apiFlags struct {
	url, tokenFile string
}

func (a *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "api", envOr("SALVO_API", "http://127.0.0.1:8080"), "campaign API base URL (default $SALVO_API)")
	fs.StringVar(&a.tokenFile, "token-file", "", "file holding the bearer token (default: $SALVO_TOKEN)")
}

// client returns the API client, reading the token from the token file or $SALVO_TOKEN.
func (a *apiFlags) client() (*api.Client, error) {
	token := os.Getenv("SALVO_TOKEN")
	if a.tokenFile != "" {
		f, err := os.Open(a.tokenFile)
		if err != nil {
			return nil, usageError("--token-file: %v", err)
		}
		token, err = auth.ReadToken(f)
		f.Close()
		if err != nil {
			return nil, usageError("--token-file: %v", err)
		}
	}
	return &api.Client{URL: a.url, Token: token}, nil
}
