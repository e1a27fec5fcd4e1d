package gameday

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/auth"
	"github.com/salvopush/salvo/sender/awsconfig"
	"github.com/salvopush/salvo/sender/dynamodb"
	"github.com/salvopush/salvo/sender/embedded"
	"github.com/salvopush/salvo/sender/s3"
)

// pipeline is the production pipeline a rehearsal drives through its campaign API: embedded
// in this process, or deployed (process mode). run walks the same sequence on either.
type pipeline interface {
	// api is a client of the campaign API, with a token that may create, prepare, GO and
	// abort.
	api() *api.Client
	// workers is how many send workers must be ready before GO.
	workers() int
	// figures returns the send's figures merged over the send workers and how many
	// published them; final asks for the workers' last word (embedded: they are read in
	// place; process: what they published).
	figures(ctx context.Context, campaign, send string) (*sender.SendStats, int, error)
	// feedback returns the invalid-token rows (platform,token,reason) the workers wrote for
	// the campaign so far.
	feedback(ctx context.Context, campaign string) ([]string, error)
	// abortHint says how someone else can abort the campaign.
	abortHint(campaign string) string
	// close stops what the pipeline started here.
	close()
}

// memRegistry is the rehearsal's device registry in memory: the tokens file's devices.
type memRegistry map[string][]sender.Device

// Devices implements sender.Registry.
func (r memRegistry) Devices(_ context.Context, ids []string) ([][]sender.Device, error) {
	out := make([][]sender.Device, len(ids))
	for i, id := range ids {
		out[i] = r[id]
	}
	return out, nil
}

// embeddedPipeline is the whole pipeline in this process (sender/embedded), its registry
// the tokens file, its transports the rehearsal's.
type embeddedPipeline struct {
	dir       string
	tokenFile string
	sys       *embedded.System
}

// sendShape is the send loops and push size of the embedded workers: with a rate cap, few
// loops pushing chunks of a twentieth of the rate, so that what they ask for at once is half
// what the limiter lets through within its wait (pushes held back are retried, and counted
// as retries); without a cap, the defaults.
func sendShape(rate float64) (loops, chunk int) {
	if rate <= 0 {
		return 64, 50
	}
	chunk = min(max(int(rate/20), 1), 50)
	loops = min(max(int(rate/8)/chunk, 1), 64) // an eighth of a second of pushes asked for at once
	return loops, chunk
}

func startEmbedded(ctx context.Context, cfg *Config, toks *Tokens, set map[sender.Platform]sender.Transport, opts Options) (*embeddedPipeline, error) {
	dir, err := os.MkdirTemp("", "salvo-gameday-")
	if err != nil {
		return nil, fmt.Errorf("gameday: work folder: %w", err)
	}
	p := &embeddedPipeline{dir: dir, tokenFile: filepath.Join(dir, "api-token")}
	token := auth.NewToken()
	if err := os.WriteFile(p.tokenFile, []byte(token+"\n"), 0o600); err != nil {
		p.close()
		return nil, fmt.Errorf("gameday: api token: %w", err)
	}
	topic, project := cfg.scope()
	_, devices := toks.Devices(topic, project)
	loops, chunk := sendShape(cfg.RatePerSecond)
	p.sys, err = embedded.Start(ctx, embedded.Config{Dir: dir, Ephemeral: true, Registry: memRegistry(devices), Transports: set,
		APIAddr: opts.APIAddr, Users: auth.Single("gameday", token, auth.Admin), Token: token, Send: loops, Chunk: chunk,
		Log: opts.Log})
	if err != nil {
		p.close()
		return nil, fmt.Errorf("gameday: %w", err)
	}
	if m := opts.Metrics; m != nil {
		for _, w := range p.sys.Workers {
			m.WatchWorker(w)
		}
		m.WatchService(p.sys.Service, p.sys.Records)
	}
	return p, nil
}

func (p *embeddedPipeline) api() *api.Client { return p.sys.Client() }
func (p *embeddedPipeline) workers() int     { return len(p.sys.Workers) }

func (p *embeddedPipeline) figures(_ context.Context, campaign, send string) (*sender.SendStats, int, error) {
	out := sender.NewSendStats()
	for _, w := range p.sys.Workers {
		out.Merge(w.SendStats(campaign, send))
	}
	return out, len(p.sys.Workers), nil
}

func (p *embeddedPipeline) feedback(ctx context.Context, campaign string) ([]string, error) {
	for _, w := range p.sys.Workers {
		if err := w.FlushFeedback(ctx); err != nil {
			return nil, err
		}
	}
	return readFeedback(ctx, p.sys.Objects, campaign)
}

func (p *embeddedPipeline) abortHint(campaign string) string {
	return fmt.Sprintf("Ctrl-C here, or POST %s/v1/campaigns/%s/abort with the bearer token in %s", p.sys.URL(), campaign, p.tokenFile)
}

// close stops the pipeline and removes its work folder (it holds device tokens).
func (p *embeddedPipeline) close() {
	if p.sys != nil {
		_ = p.sys.Close() // the run is measured; this only stops it
	}
	_ = os.RemoveAll(p.dir)
}

// processPipeline is a deployed `salvo serve` and its workers, reached through the API, with
// S3 (the workers' figures and feedback) and DynamoDB (the registry) from the AWS
// environment.
type processPipeline struct {
	cfg     *APIConfig
	client  *api.Client
	objects *s3.Store
}

func startProcess(ctx context.Context, cfg *Config, toks *Tokens, opts Options) (*processPipeline, error) {
	a := cfg.API
	raw, err := os.ReadFile(a.TokenFile)
	if err != nil {
		return nil, configErr("api.token_file", "%v", err)
	}
	token, err := auth.ReadToken(strings.NewReader(string(raw)))
	if err != nil {
		return nil, configErr("api.token_file", "%v", err)
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	names := awsconfig.DefaultNames()
	if a.Bucket != "" {
		names.Bucket = a.Bucket
	}
	if a.RegistryTable != "" {
		names.RegistryTable = a.RegistryTable
	}
	ac := awsconfig.FromEnv(getenv)
	if err := ac.Validate(); err != nil {
		return nil, fmt.Errorf("gameday: aws: %w", err)
	}
	clients, err := ac.Clients(ctx)
	if err != nil {
		return nil, fmt.Errorf("gameday: aws: %w", err)
	}
	objects, err := s3.New(clients.S3, names.Bucket, s3.Options{})
	if err != nil {
		return nil, fmt.Errorf("gameday: %w", err)
	}
	// The rehearsal's devices go into the registry under their user IDs (UserIDFor, or the
	// file's own): an idempotent upsert, the same entries `salvo gen registry --from-csv`
	// writes.
	topic, project := cfg.scope()
	users, devices := toks.Devices(topic, project)
	_, err = dynamodb.LoadRegistry(ctx, clients.DynamoDB, names.RegistryTable, func(fn func(string, []sender.Device) error) error {
		for _, u := range users {
			if err := fn(u, devices[u]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gameday: load the rehearsal's devices into the registry: %w", err)
	}
	return &processPipeline{cfg: a, client: &api.Client{URL: strings.TrimSuffix(a.URL, "/"), Token: token}, objects: objects}, nil
}

func (p *processPipeline) api() *api.Client { return p.client }
func (p *processPipeline) workers() int     { return p.cfg.Workers }

// figures reads what the workers published (they publish at least once a second).
func (p *processPipeline) figures(ctx context.Context, campaign, send string) (*sender.SendStats, int, error) {
	st, ws, err := sender.CollectSendStats(ctx, p.objects, campaign, send)
	return st, len(ws), err
}

func (p *processPipeline) feedback(ctx context.Context, campaign string) ([]string, error) {
	return readFeedback(ctx, p.objects, campaign)
}

func (p *processPipeline) abortHint(campaign string) string {
	return fmt.Sprintf("Ctrl-C here, or `salvo campaign abort %s --api %s` (operator role)", campaign, p.cfg.URL)
}

func (p *processPipeline) close() {}

// readFeedback reads the campaign's invalid-token files (campaigns/<id>/feedback/*.csv) and
// returns their rows without headers.
func readFeedback(ctx context.Context, store sender.ObjectStore, campaign string) ([]string, error) {
	keys, err := store.List(ctx, "campaigns/"+campaign+"/feedback/")
	if err != nil {
		return nil, fmt.Errorf("gameday: feedback: %w", err)
	}
	var rows []string
	for _, k := range keys {
		data, err := store.Get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("gameday: feedback: %w", err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if line != "" && line != "platform,token,reason" {
				rows = append(rows, line)
			}
		}
	}
	return rows, nil
}
