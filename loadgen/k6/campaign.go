package k6

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/grafana/sobek"
	"go.k6.io/k6/js/common"
	"go.k6.io/k6/metrics"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
)

// CampaignsOptions configure a campaign API client, the argument of `new Campaigns({...})`.
type CampaignsOptions struct {
	// URL is the API's base URL, e.g. "http://127.0.0.1:8080" (required).
	URL string `js:"url"`
	// Token is the bearer token sent as "Authorization: Bearer <token>"; empty takes
	// __ENV.SALVO_TOKEN, and with neither no Authorization header is sent.
	Token string `js:"token"`
	// Timeout bounds one API call, as a duration; default "30s".
	Timeout string `js:"timeout"`
}

// WaitOptions are the optional last argument of the wait* methods.
type WaitOptions struct {
	// Timeout bounds the wait, as a duration; default "60s".
	Timeout string `js:"timeout"`
	// Since is accepted for scripts written against older versions and no longer used:
	// waitDone follows the campaign's own progress.
	Since int64 `js:"since"`
}

// pollEvery is how often the wait* methods read the API.
const pollEvery = 100 * time.Millisecond

// campaignsClient is one VU's client of one API process.
type campaignsClient struct {
	mi     *ModuleInstance
	client *api.Client
}

// bearer adds an Authorization header to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// newCampaigns is `new Campaigns(options)`.
func (mi *ModuleInstance) newCampaigns(call sobek.ConstructorCall) *sobek.Object {
	rt := mi.vu.Runtime()
	var o CampaignsOptions
	if err := rt.ExportTo(call.Argument(0), &o); err != nil {
		common.Throw(rt, fmt.Errorf("salvo: Campaigns options: %w", err))
	}
	c, err := newCampaignsClient(o, envValue(rt, "SALVO_TOKEN"))
	if err != nil {
		common.Throw(rt, err)
	}
	cc := &campaignsClient{mi: mi, client: c}
	return newObject(rt, map[string]any{
		"upload":       cc.upload,
		"create":       cc.create,
		"status":       cc.status,
		"prepare":      cc.prepare,
		"press":        cc.press,
		"workers":      cc.workers,
		"finished":     cc.finished,
		"waitResolved": cc.waitResolved,
		"waitReady":    cc.waitReady,
		"waitDone":     cc.waitDone,
	})
}

// newCampaignsClient checks o and builds the API client; envToken is used when o has no
// token.
func newCampaignsClient(o CampaignsOptions, envToken string) (*api.Client, error) {
	if !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
		return nil, fmt.Errorf("salvo: Campaigns url %q: want http://host:port", o.URL)
	}
	timeout := 30 * time.Second
	if o.Timeout != "" {
		d, err := time.ParseDuration(o.Timeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("salvo: Campaigns timeout %q: want a positive duration such as \"30s\"", o.Timeout)
		}
		timeout = d
	}
	token := o.Token
	if token == "" {
		token = envToken
	}
	// Each client has its own connections, so that VUs pressing at once really press
	// concurrently.
	var rt http.RoundTripper = http.DefaultTransport.(*http.Transport).Clone()
	if token != "" {
		rt = bearer{token: token, next: rt}
	}
	return &api.Client{URL: o.URL, HTTP: &http.Client{Transport: rt, Timeout: timeout}}, nil
}

// ctx is the VU's context (the init context has one too).
func (c *campaignsClient) ctx() context.Context { return c.mi.vu.Context() }

// timed runs one API call and records its duration, tagged with the call's name.
func (c *campaignsClient) timed(call string, fn func(context.Context) error) error {
	start := time.Now()
	err := fn(c.ctx())
	if state := c.mi.vu.State(); state != nil {
		tm := state.Tags.GetCurrentValues()
		metrics.PushIfNotDone(c.ctx(), state.Samples, metrics.Sample{
			TimeSeries: metrics.TimeSeries{Metric: c.mi.metrics.callDuration, Tags: tm.Tags.With("call", call)},
			Time:       time.Now(), Value: metrics.D(time.Since(start)), Metadata: tm.Metadata})
	}
	return err
}

// toJS turns an API answer into a plain JS object with the API's own JSON field names
// (docs/api.md), rather than Go's.
func (c *campaignsClient) toJS(v any) (sobek.Value, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("salvo: encode answer: %w", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("salvo: decode answer: %w", err)
	}
	return c.mi.vu.Runtime().ToValue(out), nil
}

// upload is campaigns.upload(key, data): PUT /v1/objects/{key} with a string or
// ArrayBuffer body (an audience file).
func (c *campaignsClient) upload(key string, data sobek.Value) error {
	var body []byte
	switch d := data.Export().(type) {
	case string:
		body = []byte(d)
	case sobek.ArrayBuffer:
		body = d.Bytes()
	case []byte:
		body = d
	default:
		return fmt.Errorf("salvo: campaigns.upload %s: data must be a string or an ArrayBuffer, got %T", key, d)
	}
	return c.timed("upload", func(ctx context.Context) error { return c.client.PutObject(ctx, key, body) })
}

// create is campaigns.create(spec): POST /v1/campaigns with the campaign spec of
// docs/api.md (its optional "id" included). Unknown fields are refused here, by name.
func (c *campaignsClient) create(spec sobek.Value) (sobek.Value, error) {
	raw, err := json.Marshal(spec.Export())
	if err != nil {
		return nil, fmt.Errorf("salvo: campaigns.create: encode spec: %w", err)
	}
	var req api.CreateRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("salvo: campaigns.create: spec: %w", err)
	}
	var out *api.CreateResponse
	err = c.timed("create", func(ctx context.Context) (err error) {
		out, err = c.client.Create(ctx, req.ID, req.CampaignSpec)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("salvo: campaigns.create: %w", err)
	}
	return c.toJS(out)
}

// status is campaigns.status(id): GET /v1/campaigns/{id}.
func (c *campaignsClient) status(id string) (sobek.Value, error) {
	st, err := c.getStatus(id)
	if err != nil {
		return nil, err
	}
	return c.toJS(st)
}

func (c *campaignsClient) getStatus(id string) (st *sender.Status, err error) {
	err = c.timed("status", func(ctx context.Context) (err error) {
		st, err = c.client.Status(ctx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("salvo: campaigns.status %s: %w", id, err)
	}
	return st, nil
}

// prepare is campaigns.prepare(id, workers).
func (c *campaignsClient) prepare(id string, workers int) error {
	err := c.timed("prepare", func(ctx context.Context) error { return c.client.Prepare(ctx, id, workers) })
	if err != nil {
		return fmt.Errorf("salvo: campaigns.prepare %s: %w", id, err)
	}
	return nil
}

// Press results, the values of salvo_campaign_presses's result tag.
const (
	pressStarted = "started"
	pressAlready = "already_pressed"
	pressError   = "error"
)

// press is campaigns.press(id): POST /v1/campaigns/{id}/go. It counts the press in
// salvo_campaign_presses with result "started" (this press started the send),
// "already_pressed" or "error" (and throws).
func (c *campaignsClient) press(id string) (sobek.Value, error) {
	var out *sender.PressResult
	err := c.timed("press", func(ctx context.Context) (err error) {
		out, err = c.client.Press(ctx, id)
		return err
	})
	result := pressError
	switch {
	case err != nil:
	case out.AlreadyPressed:
		result = pressAlready
	default:
		result = pressStarted
	}
	if state := c.mi.vu.State(); state != nil {
		tm := state.Tags.GetCurrentValues()
		metrics.PushIfNotDone(c.ctx(), state.Samples, metrics.Sample{
			TimeSeries: metrics.TimeSeries{Metric: c.mi.metrics.presses, Tags: tm.Tags.With("result", result)},
			Time:       time.Now(), Value: 1, Metadata: tm.Metadata})
	}
	if err != nil {
		return nil, fmt.Errorf("salvo: campaigns.press %s: %w", id, err)
	}
	return c.toJS(out)
}

// workers is campaigns.workers(): GET /v1/workers.
func (c *campaignsClient) workers() (sobek.Value, error) {
	ws, err := c.listWorkers()
	if err != nil {
		return nil, err
	}
	return c.toJS(ws)
}

func (c *campaignsClient) listWorkers() (ws []sender.WorkerStatus, err error) {
	err = c.timed("workers", func(ctx context.Context) (err error) {
		ws, err = c.client.Workers(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("salvo: campaigns.workers: %w", err)
	}
	return ws, nil
}

// finished is campaigns.finished(): the pushes every worker has finished (accepted,
// rejected, or given up), summed over their heartbeats. Workers refresh their heartbeat
// every 2 s in process mode; `salvo all` publishes none, so this is 0 there.
func (c *campaignsClient) finished() (int64, error) {
	ws, err := c.listWorkers()
	if err != nil {
		return 0, err
	}
	return sumDone(ws), nil
}

func sumDone(ws []sender.WorkerStatus) int64 {
	var n int64
	for _, w := range ws {
		n += w.Done
	}
	return n
}

// waitResolved is campaigns.waitResolved(id, {timeout}): it waits until resolution has
// finished and returns the status. A failed resolution throws.
func (c *campaignsClient) waitResolved(id string, opts sobek.Value) (sobek.Value, error) {
	return c.waitStatus("waitResolved", id, opts, func(st *sender.Status) bool {
		return st.Campaign.State != sender.StateResolving
	})
}

// waitReady is campaigns.waitReady(id, {timeout}): it waits until the workers asked for
// by prepare hold the campaign ("prepared": true) and returns the status.
func (c *campaignsClient) waitReady(id string, opts sobek.Value) (sobek.Value, error) {
	return c.waitStatus("waitReady", id, opts, func(st *sender.Status) bool { return st.Prepared })
}

// waitStatus polls the status of id until done says so.
func (c *campaignsClient) waitStatus(name, id string, opts sobek.Value, done func(*sender.Status) bool) (sobek.Value, error) {
	o, err := c.waitOptions(name, opts)
	if err != nil {
		return nil, err
	}
	var st *sender.Status
	err = c.poll(name, id, o, func() (bool, error) {
		if st, err = c.getStatus(id); err != nil {
			return false, err
		}
		if st.Campaign.State == sender.StateFailed {
			return false, fmt.Errorf("resolution failed: %s", st.Campaign.Error)
		}
		return done(st), nil
	})
	if err != nil {
		return nil, err
	}
	return c.toJS(st)
}

// waitDone is campaigns.waitDone(id, {timeout}): it waits until the campaign has ended
// (done, done_with_failures, aborted or failed) and returns how many of its recipients
// were finished (accepted, rejected or failed), from the campaign's own progress.
func (c *campaignsClient) waitDone(id string, opts sobek.Value) (int64, error) {
	o, err := c.waitOptions("waitDone", opts)
	if err != nil {
		return 0, err
	}
	st, err := c.getStatus(id)
	if err != nil {
		return 0, err
	}
	if st.Campaign.Send == nil {
		return 0, fmt.Errorf("salvo: campaigns.waitDone %s: GO was not pressed", id)
	}
	var got int64
	err = c.poll("waitDone", id, o, func() (bool, error) {
		st, err := c.getStatus(id)
		if err != nil {
			return false, err
		}
		if p := st.Progress; p != nil {
			got = p.Accepted + p.Rejected + p.Failed
		}
		return st.Campaign.Terminal(), nil
	})
	return got, err
}

// waitOpts are WaitOptions checked.
type waitOpts struct {
	timeout time.Duration
	since   int64
}

func (c *campaignsClient) waitOptions(name string, v sobek.Value) (waitOpts, error) {
	o := waitOpts{timeout: time.Minute}
	if absent(v) {
		return o, nil
	}
	var w WaitOptions
	if err := c.mi.vu.Runtime().ExportTo(v, &w); err != nil {
		return o, fmt.Errorf("salvo: campaigns.%s options: %w", name, err)
	}
	if w.Timeout != "" {
		d, err := time.ParseDuration(w.Timeout)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("salvo: campaigns.%s timeout %q: want a positive duration such as \"60s\"", name, w.Timeout)
		}
		o.timeout = d
	}
	o.since = w.Since
	return o, nil
}

// poll calls check every pollEvery until it reports done, fails, the timeout passes or the
// VU's context ends.
func (c *campaignsClient) poll(name, id string, o waitOpts, check func() (bool, error)) error {
	deadline := time.Now().Add(o.timeout)
	for {
		ok, err := check()
		if err != nil {
			return fmt.Errorf("salvo: campaigns.%s %s: %w", name, id, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("salvo: campaigns.%s %s: not done after %v", name, id, o.timeout)
		}
		select {
		case <-c.ctx().Done():
			return fmt.Errorf("salvo: campaigns.%s %s: %w", name, id, c.ctx().Err())
		case <-time.After(pollEvery):
		}
	}
}
