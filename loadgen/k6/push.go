package k6

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/grafana/sobek"
	"go.k6.io/k6/js/common"
	"go.k6.io/k6/lib"
	"go.k6.io/k6/metrics"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
)

// PushOptions configure a push client, the argument of `new Push({...})` in a script.
// Endpoints and credentials come from a mock's ready file, from explicit APNs/FCM options,
// or both (explicit fields win).
type PushOptions struct {
	// ReadyFile is the ready file `salvo mockpush` wrote; empty takes __ENV.SALVO_READY_FILE.
	ReadyFile string `js:"readyFile"`
	// APNs and FCM name an endpoint and its credentials explicitly (e.g. real providers).
	APNs APNsOptions `js:"apns"`
	FCM  FCMOptions  `js:"fcm"`
	// Connections per provider of the process-wide transport (default 4); MaxStreams caps
	// the streams in flight per connection (0: the server's limit).
	Connections int `js:"connections"`
	MaxStreams  int `js:"maxStreams"`
	// Timeout bounds one push from request to answer, as a duration ("10s", the default).
	Timeout string `js:"timeout"`
	// Campaign is the campaign ID of the default messages (apns-collapse-id, FCM collapse
	// key and data campaign_id); default "k6-" and a random ID per k6 process.
	Campaign string `js:"campaign"`
}

// APNsOptions name an APNs endpoint and its token-auth credentials.
type APNsOptions struct {
	URL     string `js:"url"`
	KeyFile string `js:"keyFile"`
	KeyID   string `js:"keyId"`
	TeamID  string `js:"teamId"`
	// Topic is the default apns-topic (the app's bundle ID).
	Topic  string `js:"topic"`
	CAFile string `js:"caFile"`
}

// FCMOptions name an FCM endpoint and its service account.
type FCMOptions struct {
	URL                string `js:"url"`
	ServiceAccountFile string `js:"serviceAccountFile"`
	ProjectID          string `js:"projectId"`
	CAFile             string `js:"caFile"`
}

// resolve fills the options from the ready file and checks them.
func (o *PushOptions) resolve() (timeout time.Duration, err error) {
	if o.ReadyFile != "" {
		r, err := mockpush.ReadReadyFile(o.ReadyFile)
		if err != nil {
			return 0, fmt.Errorf("salvo: Push readyFile: %w", err)
		}
		fill := func(dst *string, v string) {
			if *dst == "" {
				*dst = v
			}
		}
		fill(&o.APNs.URL, r.APNsURL)
		fill(&o.APNs.KeyFile, r.APNsKeyFile)
		fill(&o.APNs.KeyID, r.APNsKeyID)
		fill(&o.APNs.TeamID, r.APNsTeamID)
		fill(&o.APNs.Topic, r.APNsTopic)
		fill(&o.APNs.CAFile, r.CAFile)
		fill(&o.FCM.URL, r.FCMURL)
		fill(&o.FCM.ServiceAccountFile, r.FCMServiceAccountFile)
		fill(&o.FCM.ProjectID, r.FCMProjectID)
		fill(&o.FCM.CAFile, r.CAFile)
	}
	if o.APNs.URL == "" && o.FCM.ServiceAccountFile == "" {
		return 0, errors.New("salvo: Push: no endpoint (give readyFile, set SALVO_READY_FILE, or give apns/fcm options)")
	}
	if o.Connections < 0 || o.MaxStreams < 0 {
		return 0, fmt.Errorf("salvo: Push connections %d / maxStreams %d: must not be negative", o.Connections, o.MaxStreams)
	}
	if o.Timeout != "" {
		if timeout, err = time.ParseDuration(o.Timeout); err != nil || timeout <= 0 {
			return 0, fmt.Errorf("salvo: Push timeout %q: want a positive duration such as \"10s\"", o.Timeout)
		}
	}
	return timeout, nil
}

// pushClient is one VU's push client. Its transports are the process's (transportCache): all
// VUs with the same endpoint and options share one connection pool.
type pushClient struct {
	mi   *ModuleInstance
	apns transportKey
	fcm  transportKey
	// defaults are the silent messages sent when a call names none.
	defAPNs *sender.APNsMessage
	defFCM  *sender.FCMMessage
	// lastAPNs and lastFCM remember the message object of the previous call, so that a
	// script passing the same object every iteration converts it once.
	lastAPNs msgMemo[sender.APNsMessage]
	lastFCM  msgMemo[sender.FCMMessage]
}

// msgMemo is a message converted from a script object.
type msgMemo[M any] struct {
	obj *sobek.Object
	msg *M
}

// newPush is `new Push(options)`.
func (mi *ModuleInstance) newPush(call sobek.ConstructorCall) *sobek.Object {
	rt := mi.vu.Runtime()
	var o PushOptions
	if arg := call.Argument(0); !absent(arg) {
		if err := rt.ExportTo(arg, &o); err != nil {
			common.Throw(rt, fmt.Errorf("salvo: Push options: %w", err))
		}
	}
	if o.ReadyFile == "" && o.APNs.URL == "" && o.FCM.ServiceAccountFile == "" {
		o.ReadyFile = envValue(rt, "SALVO_READY_FILE")
	}
	p, err := mi.newPushClient(o)
	if err != nil {
		common.Throw(rt, err)
	}
	return newObject(rt, map[string]any{
		"apns":   p.sendAPNs,
		"fcm":    p.sendFCM,
		"tokens": p.tokensJS,
		"close":  p.close,
	})
}

// newPushClient checks o and makes the client; it opens no connection.
func (mi *ModuleInstance) newPushClient(o PushOptions) (*pushClient, error) {
	timeout, err := o.resolve()
	if err != nil {
		return nil, err
	}
	if o.Campaign == "" {
		o.Campaign = mi.root.run
	}
	p := &pushClient{mi: mi}
	base := transportKey{conns: o.Connections, maxStreams: o.MaxStreams, timeout: timeout}
	if o.APNs.URL != "" {
		p.apns = base
		p.apns.platform, p.apns.url, p.apns.caFile = sender.PlatformIOS, o.APNs.URL, o.APNs.CAFile
		p.apns.keyFile, p.apns.keyID, p.apns.teamID = o.APNs.KeyFile, o.APNs.KeyID, o.APNs.TeamID
	}
	if o.FCM.ServiceAccountFile != "" {
		p.fcm = base
		p.fcm.platform, p.fcm.url, p.fcm.caFile = sender.PlatformAndroid, o.FCM.URL, o.FCM.CAFile
		p.fcm.keyFile, p.fcm.project = o.FCM.ServiceAccountFile, o.FCM.ProjectID
	}
	p.defAPNs = mi.root.messages.apns(silentAPNs(o.APNs.Topic, o.Campaign))
	p.defFCM = mi.root.messages.fcm(silentFCM(o.FCM.ProjectID, o.Campaign))
	return p, nil
}

// SendResult is what push.apns() and push.fcm() return: the outcome counts of one call.
type SendResult struct {
	Sent     int `js:"sent"`
	Accepted int `js:"accepted"`
	Rejected int `js:"rejected"`
	Failed   int `js:"failed"`
	// Reasons counts the rejected and failed answers by reason (APNs reason, FCM error
	// code, or a transport cause such as "timeout").
	Reasons map[string]int `js:"reasons"`
}

// sendAPNs is push.apns(tokens, message?).
func (p *pushClient) sendAPNs(tokens sobek.Value, message sobek.Value) (*SendResult, error) {
	msg, err := p.apnsMessage(message)
	if err != nil {
		return nil, err
	}
	return p.send(p.apns, &sender.Batch{Platform: sender.PlatformIOS, APNs: msg}, tokens)
}

// sendFCM is push.fcm(tokens, message?).
func (p *pushClient) sendFCM(tokens sobek.Value, message sobek.Value) (*SendResult, error) {
	msg, err := p.fcmMessage(message)
	if err != nil {
		return nil, err
	}
	return p.send(p.fcm, &sender.Batch{Platform: sender.PlatformAndroid, FCM: msg}, tokens)
}

// send pushes b to the tokens a script named or asked for, and records every answer. key
// is the zero key when the client has no endpoint for b's platform.
func (p *pushClient) send(key transportKey, b *sender.Batch, tokens sobek.Value) (*SendResult, error) {
	if key.platform == 0 {
		provider := map[sender.Platform]string{sender.PlatformIOS: "APNs", sender.PlatformAndroid: "FCM"}[b.Platform]
		return nil, fmt.Errorf("salvo: push.%s: this client has no %s endpoint", pushName(b.Platform), provider)
	}
	state := p.mi.vu.State()
	if state == nil {
		return nil, fmt.Errorf("salvo: push.%s: not available in the init context", pushName(key.platform))
	}
	toks, err := p.tokens(key.platform, tokens)
	if err != nil {
		return nil, err
	}
	ctx := p.mi.vu.Context()
	t, err := p.mi.root.transports.get(ctx, key)
	if err != nil {
		return nil, err
	}
	b.Tokens, b.Results = toks, make([]sender.Result, len(toks))
	start := time.Now()
	if err := t.Send(ctx, b); err != nil {
		if ctx.Err() != nil { // the test is ending: nothing to record
			return &SendResult{Reasons: map[string]int{}}, nil
		}
		return nil, fmt.Errorf("salvo: push.%s: %w", pushName(key.platform), err)
	}
	res := tally(b.Results)
	p.mi.metrics.record(ctx, state, pushName(key.platform), start, b.Results)
	return res, nil
}

// pushName is a platform's provider as scripts name it: the JS method and the provider tag.
func pushName(p sender.Platform) string {
	if p == sender.PlatformIOS {
		return "apns"
	}
	return "fcm"
}

// tally counts results for the script.
func tally(results []sender.Result) *SendResult {
	r := &SendResult{Sent: len(results), Reasons: map[string]int{}}
	for _, x := range results {
		switch x.Outcome {
		case sender.Accepted:
			r.Accepted++
			continue
		case sender.Permanent:
			r.Rejected++
		default:
			r.Failed++
		}
		r.Reasons[x.Reason]++
	}
	return r
}

// Tag values of salvo_push_latency's outcome tag.
const (
	outcomeAccepted = "accepted"
	outcomeRejected = "rejected"
	outcomeFailed   = "failed"
)

// record emits one call's samples: a latency sample per answer (tagged with provider and
// outcome) and one counter sample per outcome and reason, valued with its count, all in one
// container so that a call costs k6 one channel send. Nothing is recorded once ctx is done.
func (m *moduleMetrics) record(ctx context.Context, state *lib.State, provider string, start time.Time, results []sender.Result) {
	tm := state.Tags.GetCurrentValues()
	base := tm.Tags.With("provider", provider)
	var byOutcome [sender.Transient + 1]*metrics.TagSet
	type key struct {
		outcome sender.Outcome
		reason  string
	}
	var accepted float64
	var others map[key]float64
	samples := make(metrics.Samples, 0, len(results)+2)
	for _, r := range results {
		o := r.Outcome
		if o != sender.Accepted && o != sender.Permanent {
			o = sender.Transient
		}
		tags := byOutcome[o]
		if tags == nil {
			tags = base.With("outcome", outcomeName(o))
			byOutcome[o] = tags
		}
		samples = append(samples, metrics.Sample{TimeSeries: metrics.TimeSeries{Metric: m.latency, Tags: tags},
			Time: r.At, Value: metrics.D(max(r.At.Sub(start), 0)), Metadata: tm.Metadata})
		if o == sender.Accepted {
			accepted++
			continue
		}
		if others == nil {
			others = map[key]float64{}
		}
		others[key{o, r.Reason}]++
	}
	now := time.Now()
	if accepted > 0 {
		samples = append(samples, metrics.Sample{TimeSeries: metrics.TimeSeries{Metric: m.accepted, Tags: base},
			Time: now, Value: accepted, Metadata: tm.Metadata})
	}
	for k, n := range others {
		metric := m.failed
		if k.outcome == sender.Permanent {
			metric = m.rejected
		}
		samples = append(samples, metrics.Sample{TimeSeries: metrics.TimeSeries{Metric: metric, Tags: base.With("reason", k.reason)},
			Time: now, Value: n, Metadata: tm.Metadata})
	}
	metrics.PushIfNotDone(ctx, state.Samples, samples)
}

// outcomeName is the outcome tag of an outcome (Transient stands for every unanswered or
// retryable result).
func outcomeName(o sender.Outcome) string {
	switch o {
	case sender.Accepted:
		return outcomeAccepted
	case sender.Permanent:
		return outcomeRejected
	}
	return outcomeFailed
}

// tokens returns the device tokens of a call: the strings of a JS array, or n generated
// tokens (unique within the process) for a number n.
func (p *pushClient) tokens(platform sender.Platform, v sobek.Value) ([][]byte, error) {
	if absent(v) {
		return nil, fmt.Errorf("salvo: push.%s: tokens: want an array of strings or a count", pushName(platform))
	}
	if n, ok := v.Export().(int64); ok {
		if n < 1 || n > maxGenerated {
			return nil, fmt.Errorf("salvo: push.%s: token count %d is out of 1..%d", pushName(platform), n, maxGenerated)
		}
		return p.mi.root.tokens.next(platform, int(n)), nil
	}
	var list []string
	if err := p.mi.vu.Runtime().ExportTo(v, &list); err != nil {
		return nil, fmt.Errorf("salvo: push.%s: tokens: want an array of strings or a count: %w", pushName(platform), err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("salvo: push.%s: tokens: the array is empty", pushName(platform))
	}
	out := make([][]byte, len(list))
	for i, s := range list {
		out[i] = []byte(s)
	}
	return out, nil
}

// tokensJS is push.tokens(platform, n): n generated tokens as strings, for scripts that want
// to see or reuse them.
func (p *pushClient) tokensJS(platform string, n int) ([]string, error) {
	pl, err := sender.ParsePlatform(platform)
	if err != nil {
		return nil, fmt.Errorf("salvo: push.tokens: %w", err)
	}
	if n < 1 || n > maxGenerated {
		return nil, fmt.Errorf("salvo: push.tokens: count %d is out of 1..%d", n, maxGenerated)
	}
	toks := p.mi.root.tokens.next(pl, n)
	out := make([]string, n)
	for i, t := range toks {
		out[i] = string(t)
	}
	return out, nil
}

// close is push.close(): it closes the process-wide transports this client uses, waiting
// for the sends in progress. Call it from teardown(), when no VU sends any more; a later
// send opens new transports. Without it the connections end with the k6 process.
func (p *pushClient) close() {
	p.mi.root.transports.close(p.apns, p.fcm)
}
