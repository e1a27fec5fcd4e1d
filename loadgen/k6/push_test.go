package k6

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
)

// TestPushRecordsEveryAnswer pushes to generated and named tokens, unregistered ones among
// them, and requires that the call's result, the k6 samples and the mock's own counts agree
// answer for answer.
func TestPushRecordsEveryAnswer(t *testing.T) {
	mock, ready := startMock(t)
	root := New()
	v := newTestVU(t, root, map[string]string{"SALVO_READY_FILE": ready})
	v.run(`var push = new salvo.Push({connections: 2})`) // the ready file from __ENV
	v.iterate()

	dead := mockpush.UnregisteredMarker + strings.Repeat("0", 56)
	res := v.run(`
		var a = push.apns(20);
		var b = push.apns(["` + dead + `", "` + strings.Repeat("ab", 32) + `"]);
		var f = push.fcm(15);
		var g = push.fcm(["` + dead + `:APA91bxxxxxxxxxxxxxxxx"]);
		JSON.stringify([a, b, f, g])`).String()
	want := `[{"sent":20,"accepted":20,"rejected":0,"failed":0,"reasons":{}},` +
		`{"sent":2,"accepted":1,"rejected":1,"failed":0,"reasons":{"Unregistered":1}},` +
		`{"sent":15,"accepted":15,"rejected":0,"failed":0,"reasons":{}},` +
		`{"sent":1,"accepted":0,"rejected":1,"failed":0,"reasons":{"UNREGISTERED":1}}]`
	if res != want {
		t.Fatalf("results\n got %s\nwant %s", res, want)
	}

	s := v.drain()
	if n := count(s, MetricPushLatency); n != 38 {
		t.Errorf("%d latency samples, want one per answer (38)", n)
	}
	byOutcome := map[string]int{}
	for _, x := range s {
		if x.Metric.Name == MetricPushLatency {
			o, _ := x.Tags.Get("outcome")
			p, _ := x.Tags.Get("provider")
			byOutcome[p+"/"+o]++
			if x.Value < 0 {
				t.Errorf("negative latency %v", x.Value)
			}
		}
	}
	if fmt.Sprint(byOutcome) != "map[apns/accepted:21 apns/rejected:1 fcm/accepted:15 fcm/rejected:1]" {
		t.Errorf("latency samples by provider/outcome: %v", byOutcome)
	}
	if got := sums(s, MetricPushAccepted, "provider"); got["apns"] != 21 || got["fcm"] != 15 {
		t.Errorf("salvo_push_accepted by provider: %v, want apns 21, fcm 15", got)
	}
	if got := sums(s, MetricPushRejected, "reason"); len(got) != 2 || got["Unregistered"] != 1 || got["UNREGISTERED"] != 1 {
		t.Errorf("salvo_push_rejected by reason: %v", got)
	}
	if got := sums(s, MetricPushFailed, ""); len(got) != 0 {
		t.Errorf("salvo_push_failed: %v, want no sample", got)
	}

	st := mock.Stats()
	if st.APNs.Accepted != 21 || st.APNs.Unique != 21 || st.APNs.Rejected["Unregistered"] != 1 ||
		st.FCM.Accepted != 15 || st.FCM.Unique != 15 || st.FCM.Rejected["UNREGISTERED"] != 1 {
		t.Errorf("mock counted %+v", st)
	}
}

// TestPushFailuresAreCounted makes the mock answer 503 and requires failed counts by reason,
// not exceptions.
func TestPushFailuresAreCounted(t *testing.T) {
	mock, ready := startMock(t)
	if err := mock.SetFaults(mockpush.Faults{Seed: 1, APNs: mockpush.PlatformFaults{
		Errors: []mockpush.ErrorFault{{Reason: "ServiceUnavailable", Rate: 1}}}}); err != nil {
		t.Fatal(err)
	}
	v := newTestVU(t, New(), nil)
	v.run(`var push = new salvo.Push({readyFile: "` + ready + `"})`)
	v.iterate()
	if got := v.run(`JSON.stringify(push.apns(5))`).String(); got != `{"sent":5,"accepted":0,"rejected":0,"failed":5,"reasons":{"ServiceUnavailable":5}}` {
		t.Fatalf("result %s", got)
	}
	s := v.drain()
	if got := sums(s, MetricPushFailed, "reason"); got["ServiceUnavailable"] != 5 {
		t.Errorf("salvo_push_failed by reason: %v", got)
	}
	if got := sums(s, MetricPushAccepted, ""); len(got) != 0 {
		t.Errorf("salvo_push_accepted: %v, want no sample", got)
	}
}

// TestVUsShareOneTransport runs two VUs with equal options and requires one transport per
// platform for both, and that close() lets a later send open a new one.
func TestVUsShareOneTransport(t *testing.T) {
	_, ready := startMock(t)
	root := New()
	var vus []*testVU
	for range 2 {
		v := newTestVU(t, root, nil)
		v.run(`var push = new salvo.Push({readyFile: "` + ready + `", connections: 1})`)
		v.iterate()
		v.run(`push.apns(3); push.fcm(3)`)
		vus = append(vus, v)
	}
	if n := len(root.transports.m); n != 2 {
		t.Fatalf("%d transports for two VUs on two platforms, want 2", n)
	}
	vus[0].run(`push.close()`)
	if n := len(root.transports.m); n != 0 {
		t.Fatalf("%d transports after close, want 0", n)
	}
	if got := vus[1].run(`push.apns(2).accepted`).ToInteger(); got != 2 {
		t.Fatalf("send after close: %d accepted, want 2", got)
	}
}

// TestPushMessages converts given messages and checks what the client sends.
func TestPushMessages(t *testing.T) {
	_, ready := startMock(t)
	root := New()
	v := newTestVU(t, root, nil)
	p, err := v.mi.newPushClient(PushOptions{ReadyFile: ready, Campaign: "spot-1"})
	if err != nil {
		t.Fatal(err)
	}
	alert := v.run(`({payload: {aps: {alert: {title: "Now on TV"}}}, pushType: "alert"})`)
	m, err := p.apnsMessage(alert)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload) != `{"aps":{"alert":{"title":"Now on TV"}}}` || m.PushType != "alert" || m.Priority != 10 ||
		m.CollapseID != "spot-1" || m.Topic != loadgen.DefaultAPNsTopic {
		t.Errorf("apns message %+v (payload %s)", m, m.Payload)
	}
	if again, _ := p.apnsMessage(alert); again != m {
		t.Error("the same message object was converted twice")
	}
	if d, _ := p.apnsMessage(nil); string(d.Payload) != silentPayload || d.PushType != "background" || d.Priority != 5 {
		t.Errorf("default apns message %+v", d)
	}
	for _, bad := range []string{`({payload: "{not json"})`, `({payload: 5})`, `({payload: "[1]"})`} {
		if _, err := p.apnsMessage(v.run(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	f, err := p.fcmMessage(v.run(`({data: {k: "v"}, ttl: "60s"})`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Data["k"] != "v" || f.TTL.String() != "1m0s" || f.CollapseKey != "spot-1" || f.Priority != "high" ||
		f.Project != loadgen.DefaultFCMProject {
		t.Errorf("fcm message %+v", f)
	}
	// Another VU's equal FCM message is the same pointer: the burst FCM transport reuses its
	// rendered request only for the same pointer.
	w := newTestVU(t, root, nil)
	q, err := w.mi.newPushClient(PushOptions{ReadyFile: ready, Campaign: "spot-1"})
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := q.fcmMessage(w.run(`({data: {k: "v"}, ttl: "60s"})`)); g != f {
		t.Error("equal FCM messages of two VUs are different pointers")
	}
	if q.defFCM != p.defFCM {
		t.Error("the default FCM messages of two VUs are different pointers")
	}
}

// TestPushErrors lists the mistakes that throw, each with a message naming the cause.
func TestPushErrors(t *testing.T) {
	_, ready := startMock(t)
	tests := []struct {
		name, init, iter, want string
	}{
		// No ready file and no endpoint.
		{"no endpoint", `new salvo.Push({})`, "", "no endpoint"},
		// A ready file that does not exist.
		{"missing ready file", `new salvo.Push({readyFile: "/nonexistent/r.json"})`, "", "readyFile"},
		// A timeout that is not a duration.
		{"bad timeout", `new salvo.Push({readyFile: "` + ready + `", timeout: "soon"})`, "", "timeout"},
		// Sending from the init context, where k6 has no metrics to record to.
		{"init context", `new salvo.Push({readyFile: "` + ready + `"}).apns(1)`, "", "init context"},
		// A token count out of range.
		{"zero tokens", `var p = new salvo.Push({readyFile: "` + ready + `"})`, `p.apns(0)`, "out of 1.."},
		// Tokens that are neither an array nor a number.
		{"bad tokens", `var p = new salvo.Push({readyFile: "` + ready + `"})`, `p.fcm("abc")`, "array of strings"},
		// FCM on a client with only APNs.
		{"no fcm", `var p = new salvo.Push({apns: {url: "https://127.0.0.1:1", keyFile: "k", keyId: "K", teamId: "T"}})`,
			`p.fcm(1)`, "no FCM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVU(t, New(), nil)
			if tc.iter == "" {
				if msg := v.fails(tc.init); !strings.Contains(msg, tc.want) {
					t.Fatalf("exception %q does not mention %q", msg, tc.want)
				}
				return
			}
			v.run(tc.init)
			v.iterate()
			if msg := v.fails(tc.iter); !strings.Contains(msg, tc.want) {
				t.Fatalf("exception %q does not mention %q", msg, tc.want)
			}
		})
	}
}

// TestGeneratedTokens requires tokens in the mocks' accepted formats, never with the
// unregistered marker, and unique across calls and platforms.
func TestGeneratedTokens(t *testing.T) {
	src := newTokenSource("0123456789abcdef")
	seen := map[string]bool{}
	for _, p := range []sender.Platform{sender.PlatformIOS, sender.PlatformAndroid, sender.PlatformIOS} {
		for _, tok := range src.next(p, 300) {
			s := string(tok)
			switch p {
			case sender.PlatformIOS:
				if _, err := hex.DecodeString(s); err != nil || len(s) != apnsTokenLen {
					t.Fatalf("apns token %q: not %d hex digits", s, apnsTokenLen)
				}
			default:
				if len(s) != fcmTokenLen || !strings.Contains(s, ":APA91b") {
					t.Fatalf("fcm token %q", s)
				}
			}
			if mockpush.IsUnregistered(s) {
				t.Fatalf("token %q has the unregistered marker", s)
			}
			if seen[s] {
				t.Fatalf("token %q generated twice", s)
			}
			seen[s] = true
		}
	}
}
