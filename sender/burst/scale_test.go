package burst_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
)

// scaleTokens is the audience of the scale comparison: hundreds of tokens, one in eight
// unregistered. Each transport sends them over 2 connections with up to scaleStreams pushes
// in flight, to a mock of its own (so that each mock counts one transport alone).
const (
	scaleTokens  = 400
	scaleStreams = 64
)

// outcomes are the final outcome counts of a send, by class and reason.
type outcomes map[string]int

// sendUntilFinal sends tokens through tr as the send path would: the transient results
// again, until every token has a final answer (accepted or a permanent rejection). It returns
// the final result per token and how many tries were transient.
func sendUntilFinal(t *testing.T, tr sender.Transport, r mockpush.Ready, p sender.Platform, tokens [][]byte) ([]sender.Result, int) {
	t.Helper()
	final := make([]sender.Result, len(tokens))
	left := make([]int, len(tokens))
	for i := range left {
		left[i] = i
	}
	transient := 0
	for round := 0; len(left) > 0; round++ {
		if round == 200 {
			t.Fatalf("%d tokens still transient after %d rounds: %+v", len(left), round, final[left[0]])
		}
		if round > 0 {
			time.Sleep(20 * time.Millisecond) // a backoff between rounds, as the retry policy has
		}
		batch := make([][]byte, len(left))
		for k, i := range left {
			batch[k] = tokens[i]
		}
		res := send(t, tr, newBatch(r, p, batch...))
		next := left[:0:0]
		for k, i := range left {
			final[i] = res[k]
			if res[k].Outcome == sender.Transient {
				transient++
				next = append(next, i)
			}
		}
		left = next
	}
	return final, transient
}

func countOutcomes(res []sender.Result) outcomes {
	o := outcomes{}
	for _, r := range res {
		switch r.Outcome {
		case sender.Accepted:
			o["accepted"]++
		default:
			o[fmt.Sprintf("%v %d %s", r.Outcome, r.Status, r.Reason)]++
		}
	}
	return o
}

// TestStockAndBurstAgreeAtScale sends the same few hundred tokens through the stock and the
// burst transport, many streams wide, under every fault the mock injects, retrying what was
// transient as the send path does, and compares: the final outcome of every token, the
// outcome counts, and what each transport's mock counted on its own (unique tokens accepted,
// duplicates, and which tokens). Which streams a GOAWAY or a reset hits depends on timing, so
// the tries along the way may differ; the end may not.
func TestStockAndBurstAgreeAtScale(t *testing.T) {
	t.Parallel()
	errs := func(rate float64, reasons ...string) mockpush.PlatformFaults {
		var f mockpush.PlatformFaults
		for _, r := range reasons {
			f.Errors = append(f.Errors, mockpush.ErrorFault{Reason: r, Rate: rate})
		}
		return f
	}
	tests := []struct {
		name   string
		apns   mockpush.PlatformFaults
		fcm    mockpush.PlatformFaults
		resets bool // a reset may leave an accepted push unanswered: it is pushed again
	}{
		// No fault: the baseline.
		{name: "none"},
		// 429 with Retry-After on a fifth of the requests.
		{name: "429", apns: mockpush.PlatformFaults{Errors: []mockpush.ErrorFault{{Reason: "TooManyRequests", Rate: 0.2, RetryAfterSeconds: 1}}},
			fcm: mockpush.PlatformFaults{Errors: []mockpush.ErrorFault{{Reason: "QUOTA_EXCEEDED", Rate: 0.2, RetryAfterSeconds: 1}}}},
		// 500 and 503 on a tenth each.
		{name: "500+503", apns: errs(0.1, "InternalServerError", "ServiceUnavailable"), fcm: errs(0.1, "INTERNAL", "UNAVAILABLE")},
		// GOAWAY every 50 streams: what the server did not process is sent again.
		{name: "goaway", apns: mockpush.PlatformFaults{GoAwayAfterStreams: 50}, fcm: mockpush.PlatformFaults{GoAwayAfterStreams: 50}},
		// The connection reset every 60 streams.
		{name: "reset", apns: mockpush.PlatformFaults{ResetAfterStreams: 60}, fcm: mockpush.PlatformFaults{ResetAfterStreams: 60}, resets: true},
		// Every request answered 503 for 300 ms after the faults are set.
		{name: "outage", apns: mockpush.PlatformFaults{Outage: mockpush.Outage{DurationMS: 300}},
			fcm: mockpush.PlatformFaults{Outage: mockpush.Outage{DurationMS: 300}}},
	}
	for _, p := range []sender.Platform{sender.PlatformIOS, sender.PlatformAndroid} {
		var tokens [][]byte
		var valid []string
		for i := range scaleTokens {
			switch {
			case i%8 == 3:
				tokens = append(tokens, deadToken(p, i))
			case p == sender.PlatformIOS:
				tokens = append(tokens, apnsToken(i))
			default:
				tokens = append(tokens, fcmToken(i))
			}
			if i%8 != 3 {
				valid = append(valid, string(tokens[i]))
			}
		}
		slices.Sort(valid)
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s %s", p, tc.name), func(t *testing.T) {
				keep := func(c *mockpush.Config) { c.KeepAccepted = true }
				mocks := []*mockpush.Server{startMock(t, keep), startMock(t, keep)}
				stock, fast := transportsOf(t, mocks[0].Ready(), mocks[1].Ready(), p, 2, scaleStreams)
				var final [2][]sender.Result
				var transient [2]int
				for k, tr := range []sender.Transport{stock, fast} {
					if err := mocks[k].SetFaults(mockpush.Faults{Seed: 5, APNs: tc.apns, FCM: tc.fcm}); err != nil {
						t.Fatal(err)
					}
					final[k], transient[k] = sendUntilFinal(t, tr, mocks[k].Ready(), p, tokens)
				}
				// A GOAWAY (NO_ERROR) leaves no transient try: both transports send what the
				// server did not process again on a new connection themselves.
				if tc.name != "none" && tc.name != "goaway" && (transient[0] == 0 || transient[1] == 0) {
					t.Errorf("the fault made no try transient (stock %d, burst %d): it was not exercised", transient[0], transient[1])
				}
				for i := range tokens {
					if a, b := final[0][i], final[1][i]; a.Outcome != b.Outcome || a.Status != b.Status || a.Reason != b.Reason ||
						a.InvalidToken != b.InvalidToken {
						t.Errorf("token %d: stock ended %+v, burst %+v", i, a, b)
					}
				}
				want := outcomes{"accepted": len(valid)}
				if p == sender.PlatformIOS {
					want["permanent 410 Unregistered"] = scaleTokens - len(valid)
				} else {
					want["permanent 404 UNREGISTERED"] = scaleTokens - len(valid)
				}
				var dups [2]int64
				for k, name := range []string{"stock", "burst"} {
					if got := countOutcomes(final[k]); fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("%s outcomes %v, want %v", name, got, want)
					}
					st := mocks[k].Stats().APNs
					if p == sender.PlatformAndroid {
						st = mocks[k].Stats().FCM
					}
					acc, err := mocks[k].Accepted("camp-1")
					if err != nil {
						t.Fatal(err)
					}
					got := acc.IOS
					if p == sender.PlatformAndroid {
						got = acc.Android
					}
					got = slices.Clone(got)
					slices.Sort(got)
					if st.Unique != int64(len(valid)) || !slices.Equal(slices.Compact(got), valid) {
						t.Errorf("%s: the mock accepted %d unique tokens (%d listed), want the %d valid ones", name, st.Unique, len(slices.Compact(got)), len(valid))
					}
					dups[k] = st.Duplicates
					// A reset may cut off the answers of pushes the mock accepted, which are
					// then pushed again: at most the pushes in flight per connection, per
					// reset. Without resets nothing accepted goes unanswered: no repeat.
					bound := st.Rejected["ConnectionReset"] * scaleStreams
					if tc.resets && bound == 0 {
						t.Errorf("%s: no connection was reset", name)
					}
					if st.Duplicates > bound {
						t.Errorf("%s: the mock counts %d duplicates, want at most %d", name, st.Duplicates, bound)
					}
				}
				t.Logf("transient tries: stock %d, burst %d; mock duplicates: stock %d, burst %d", transient[0], transient[1], dups[0], dups[1])
			})
		}
	}
}
