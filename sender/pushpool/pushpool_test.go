package pushpool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The errors net/http returns for requests it judges unprocessed but may not resend itself.
var (
	refused    = errors.New("http2: Transport: cannot retry err [stream error: stream ID 3; REFUSED_STREAM] after Request.Body was written; define Request.GetBody to avoid this error")
	notWritten = errors.New("net/http: cannot rewind body after connection loss")
)

func TestResendUnprocessed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		failures  int   // unprocessed errors before the answer
		unproc    error // the unprocessed error; refused when nil
		other     error // returned instead of an answer, when set
		wantCalls int
		wantErr   bool
	}{
		// Answered at once: one call.
		{name: "answered", wantCalls: 1},
		// Refused twice, then answered: sent three times, the body each time in full.
		{name: "refused twice", failures: 2, wantCalls: 3},
		// Not written before the connection broke, then answered.
		{name: "not written", failures: 1, unproc: notWritten, wantCalls: 2},
		// Refused every time: sent 1+maxResends times, then the error comes through.
		{name: "refused always", failures: 100, wantCalls: 1 + maxResends, wantErr: true},
		// Other errors are not resent: the server may have processed the request.
		{name: "reset", other: io.ErrUnexpectedEOF, wantCalls: 1, wantErr: true},
	}
	for _, tc := range tests {
		calls := 0
		next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			calls++
			if r.GetBody != nil {
				t.Errorf("%s: GetBody passed on; net/http would resend with backoff itself", tc.name)
			}
			body, _ := io.ReadAll(r.Body)
			if string(body) != "payload" {
				t.Errorf("%s: call %d body %q, want payload", tc.name, calls, body)
			}
			switch {
			case tc.other != nil:
				return nil, tc.other
			case calls <= tc.failures && tc.unproc != nil:
				return nil, tc.unproc
			case calls <= tc.failures:
				return nil, refused
			}
			return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
		})
		req, err := http.NewRequest(http.MethodPost, "https://h/3/device/x", bytes.NewReader([]byte("payload")))
		if err != nil {
			t.Fatal(err)
		}
		_, err = resendUnprocessed{next: next}.RoundTrip(req)
		if calls != tc.wantCalls || (err != nil) != tc.wantErr {
			t.Errorf("%s: %d calls, error %v; want %d calls, error %v", tc.name, calls, err, tc.wantCalls, tc.wantErr)
		}
	}
}

func TestStreamGate(t *testing.T) {
	t.Parallel()
	entered := make(chan string, 2)
	wrote := make(chan struct{})
	finish := make(chan struct{})
	next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		entered <- r.URL.Path
		if r.URL.Path == "/first" {
			<-wrote
			httptrace.ContextClientTrace(r.Context()).WroteHeaders()
			<-finish
		}
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})
	g := &streamGate{next: next, turn: make(chan struct{}, 1)}
	send := func(path string) <-chan error {
		done := make(chan error, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, "https://h"+path, strings.NewReader("{}"))
			_, err := g.RoundTrip(req)
			done <- err
		}()
		return done
	}
	first := send("/first")
	if got := <-entered; got != "/first" {
		t.Fatalf("entered %s first", got)
	}
	second := send("/second")
	select {
	case got := <-entered:
		t.Fatalf("%s entered while /first still waited for its stream", got)
	case <-time.After(20 * time.Millisecond):
	}
	close(wrote) // /first's stream is open: /second may go
	if got := <-entered; got != "/second" {
		t.Fatalf("entered %s, want /second", got)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	close(finish)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// A request whose context ends while it waits for its turn gives up.
	g.turn <- struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://h/third", strings.NewReader("{}"))
	if _, err := g.RoundTrip(req); !errors.Is(err, context.Canceled) {
		t.Errorf("RoundTrip with a done context = %v, want context.Canceled", err)
	}
}
