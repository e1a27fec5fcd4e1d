package mockpush

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Faults is the fault injection of both mocks, set from the --faults file, by PUT /faults or
// by SetFaults. Every random choice comes from a generator seeded with Seed (per platform),
// so the n-th request a platform handles after the faults are set meets the same fate in
// every run with the same seed. The zero value injects nothing. docs/mockpush.md documents
// every field.
type Faults struct {
	// Seed seeds the per-platform random generators.
	Seed uint64 `json:"seed"`
	// APNs and FCM are the faults of each mock.
	APNs PlatformFaults `json:"apns"`
	FCM  PlatformFaults `json:"fcm"`
}

// PlatformFaults are the faults of one mock.
type PlatformFaults struct {
	// Latency delays responses (the request is still counted at once).
	Latency Latency `json:"latency"`
	// Errors are injected error answers, each with its own rate.
	Errors []ErrorFault `json:"errors,omitempty"`
	// GoAwayAfterStreams, when > 0, sends GOAWAY (NO_ERROR) after that many requests on a
	// connection; the connection then closes once its last stream is answered.
	GoAwayAfterStreams int `json:"goaway_after_streams,omitempty"`
	// ResetAfterStreams, when > 0, resets the TCP connection when request number
	// ResetAfterStreams+1 arrives on it; that request is counted as rejected
	// "ConnectionReset" and never answered.
	ResetAfterStreams int `json:"reset_after_streams,omitempty"`
	// Outage answers every request 503 (APNs ServiceUnavailable, FCM UNAVAILABLE) during a
	// window measured from the moment these faults are set.
	Outage Outage `json:"outage"`
	// Unreachable closes the mock's port during a window measured from the moment these
	// faults are set: dials are refused and every open connection is reset; when the window
	// ends the mock listens again on the same address.
	Unreachable Window `json:"unreachable"`
	// OneStreamUntilAccepted (APNs) advertises MAX_CONCURRENT_STREAMS 1 on a new
	// connection until its first accepted push, as APNs does on token auth.
	OneStreamUntilAccepted bool `json:"one_stream_until_accepted,omitempty"`
	// DropStreamsOnReject (APNs) lowers MAX_CONCURRENT_STREAMS to 1 after a rejected push
	// on the connection and restores it after the next accepted push.
	DropStreamsOnReject bool `json:"drop_streams_on_reject,omitempty"`
}

// Latency is a response delay: Fixed plus a random part drawn from Distribution, capped at
// MaxMS when MaxMS > 0.
type Latency struct {
	// FixedMS is added to every response.
	FixedMS float64 `json:"fixed_ms,omitempty"`
	// Distribution of the random part: "" (none), "uniform" (0..2*MeanMS), "exponential"
	// (mean MeanMS) or "normal" (MeanMS, StddevMS, cut at 0).
	Distribution string  `json:"distribution,omitempty"`
	MeanMS       float64 `json:"mean_ms,omitempty"`
	StddevMS     float64 `json:"stddev_ms,omitempty"`
	MaxMS        float64 `json:"max_ms,omitempty"`
}

// ErrorFault answers a share Rate of requests with the error Reason: for APNs one of
// TooManyRequests (429), InternalServerError (500), ServiceUnavailable (503), Shutdown
// (503); for FCM one of QUOTA_EXCEEDED (429), INTERNAL (500), UNAVAILABLE (503).
type ErrorFault struct {
	Reason string  `json:"reason"`
	Rate   float64 `json:"rate"`
	// RetryAfterSeconds, when > 0, adds a Retry-After header.
	RetryAfterSeconds int `json:"retry_after_seconds,omitempty"`
}

// Outage is a window during which every request is answered 503.
type Outage struct {
	// StartAfterMS is when the window opens, after the faults are set.
	StartAfterMS float64 `json:"start_after_ms,omitempty"`
	// DurationMS is how long it lasts; 0 means no outage.
	DurationMS float64 `json:"duration_ms,omitempty"`
	// RetryAfterSeconds, when > 0, adds a Retry-After header to the 503 answers.
	RetryAfterSeconds int `json:"retry_after_seconds,omitempty"`
}

// Window is a span of time measured from the moment the faults are set.
type Window struct {
	// StartAfterMS is when the window opens, after the faults are set.
	StartAfterMS float64 `json:"start_after_ms,omitempty"`
	// DurationMS is how long it lasts; 0 means no window.
	DurationMS float64 `json:"duration_ms,omitempty"`
}

// apnsInjectable and fcmInjectable map the injectable reasons to their HTTP status.
var (
	apnsInjectable = map[string]int{"TooManyRequests": 429, "InternalServerError": 500, "ServiceUnavailable": 503, "Shutdown": 503}
	fcmInjectable  = map[string]int{"QUOTA_EXCEEDED": 429, "INTERNAL": 500, "UNAVAILABLE": 503}
)

// ParseFaults decodes fault JSON strictly (unknown fields are errors) and validates it.
func ParseFaults(data []byte) (Faults, error) {
	var f Faults
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Faults{}, fmt.Errorf("faults: decode: %w", err)
	}
	if dec.More() {
		return Faults{}, fmt.Errorf("faults: decode: trailing data")
	}
	if err := f.Validate(); err != nil {
		return Faults{}, err
	}
	return f, nil
}

// Validate reports the first invalid field by its JSON path.
func (f Faults) Validate() error {
	if err := f.APNs.validate("apns", apnsInjectable); err != nil {
		return err
	}
	return f.FCM.validate("fcm", fcmInjectable)
}

func (p PlatformFaults) validate(name string, injectable map[string]int) error {
	bad := func(field string, v any) error { return fmt.Errorf("faults: %s.%s: invalid value %v", name, field, v) }
	l := p.Latency
	for _, v := range []struct {
		field string
		v     float64
	}{{"latency.fixed_ms", l.FixedMS}, {"latency.mean_ms", l.MeanMS}, {"latency.stddev_ms", l.StddevMS}, {"latency.max_ms", l.MaxMS},
		{"outage.start_after_ms", p.Outage.StartAfterMS}, {"outage.duration_ms", p.Outage.DurationMS},
		{"unreachable.start_after_ms", p.Unreachable.StartAfterMS}, {"unreachable.duration_ms", p.Unreachable.DurationMS}} {
		if v.v < 0 || math.IsNaN(v.v) || v.v > 3.6e6 {
			return bad(v.field, v.v)
		}
	}
	switch l.Distribution {
	case "", "uniform", "exponential", "normal":
	default:
		return bad("latency.distribution", l.Distribution)
	}
	total := 0.0
	for i, e := range p.Errors {
		if _, ok := injectable[e.Reason]; !ok {
			return bad(fmt.Sprintf("errors[%d].reason", i), e.Reason)
		}
		if e.Rate < 0 || e.Rate > 1 || math.IsNaN(e.Rate) {
			return bad(fmt.Sprintf("errors[%d].rate", i), e.Rate)
		}
		if e.RetryAfterSeconds < 0 || e.RetryAfterSeconds > 86400 {
			return bad(fmt.Sprintf("errors[%d].retry_after_seconds", i), e.RetryAfterSeconds)
		}
		total += e.Rate
	}
	if total > 1+1e-9 {
		return bad("errors", fmt.Sprintf("rates sum to %g > 1", total))
	}
	switch {
	case p.GoAwayAfterStreams < 0:
		return bad("goaway_after_streams", p.GoAwayAfterStreams)
	case p.ResetAfterStreams < 0:
		return bad("reset_after_streams", p.ResetAfterStreams)
	case p.Outage.RetryAfterSeconds < 0 || p.Outage.RetryAfterSeconds > 86400:
		return bad("outage.retry_after_seconds", p.Outage.RetryAfterSeconds)
	}
	return nil
}

// faultDecision is what the fault injector decided for one request.
type faultDecision struct {
	delay time.Duration
	// reason is the injected error reason ("" for none); status its HTTP status.
	reason     string
	status     int
	retryAfter int
}

// injector applies one platform's faults. It is safe for concurrent use; its fast path (no
// faults set) takes no lock.
type injector struct {
	// active is 1 when some per-request fault (latency, errors, outage) is set.
	active     atomic.Bool
	goAwayN    atomic.Int64
	resetN     atomic.Int64
	oneStream  atomic.Bool
	dropOnRej  atomic.Bool
	injectable map[string]int
	outageName string

	mu     sync.Mutex
	faults PlatformFaults
	rng    *rand.Rand
	setAt  time.Time
}

func newInjector(injectable map[string]int, outageReason string) *injector {
	return &injector{injectable: injectable, outageName: outageReason, rng: rand.New(rand.NewPCG(0, 0))}
}

// set replaces the faults; seed and stream pick the generator's sequence.
func (in *injector) set(p PlatformFaults, seed, stream uint64, now time.Time) {
	in.mu.Lock()
	in.faults = p
	in.faults.Errors = append([]ErrorFault(nil), p.Errors...)
	in.rng = rand.New(rand.NewPCG(seed, stream))
	in.setAt = now
	in.mu.Unlock()
	in.goAwayN.Store(int64(p.GoAwayAfterStreams))
	in.resetN.Store(int64(p.ResetAfterStreams))
	in.oneStream.Store(p.OneStreamUntilAccepted)
	in.dropOnRej.Store(p.DropStreamsOnReject)
	in.active.Store(p.Latency != (Latency{}) || len(p.Errors) > 0 || p.Outage.DurationMS > 0)
}

func (in *injector) get() PlatformFaults {
	in.mu.Lock()
	defer in.mu.Unlock()
	p := in.faults
	p.Errors = append([]ErrorFault(nil), p.Errors...)
	return p
}

// decide draws the fate of one request arriving at now.
func (in *injector) decide(now time.Time) faultDecision {
	if !in.active.Load() {
		return faultDecision{}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	f := &in.faults
	var d faultDecision
	// Draw in a fixed order so that the sequence depends only on the seed and the count.
	d.delay = in.latency()
	if len(f.Errors) > 0 {
		u := in.rng.Float64()
		acc := 0.0
		for _, e := range f.Errors {
			acc += e.Rate
			if u < acc {
				d.reason, d.status, d.retryAfter = e.Reason, in.injectable[e.Reason], e.RetryAfterSeconds
				break
			}
		}
	}
	if o := f.Outage; o.DurationMS > 0 {
		since := float64(now.Sub(in.setAt)) / float64(time.Millisecond)
		if since >= o.StartAfterMS && since < o.StartAfterMS+o.DurationMS {
			d.reason, d.status, d.retryAfter = in.outageName, 503, o.RetryAfterSeconds
		}
	}
	return d
}

func (in *injector) latency() time.Duration {
	l := in.faults.Latency
	ms := l.FixedMS
	switch l.Distribution {
	case "uniform":
		ms += in.rng.Float64() * 2 * l.MeanMS
	case "exponential":
		ms += in.rng.ExpFloat64() * l.MeanMS
	case "normal":
		ms += max(0, l.MeanMS+in.rng.NormFloat64()*l.StddevMS)
	}
	if l.MaxMS > 0 && ms > l.MaxMS {
		ms = l.MaxMS
	}
	return time.Duration(ms * float64(time.Millisecond))
}
