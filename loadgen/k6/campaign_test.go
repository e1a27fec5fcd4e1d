package k6

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/burst"
	"github.com/salvopush/salvo/sender/diskregistry"
	"github.com/salvopush/salvo/sender/localstore"
	"github.com/salvopush/salvo/sender/memledger"
	"github.com/salvopush/salvo/sender/memqueue"
)

// pipeline is Salvo's pipeline in this process: two API replicas over shared stores, each
// behind a bearer-token check, and one worker (fan-out and send, with heartbeats) pushing
// to the mock servers.
type pipeline struct {
	apis     []string
	mock     *mockpush.Server
	audience string // the audience CSV: every user of the registry
}

const testToken = "s3cret"

func startPipeline(t *testing.T, users int) *pipeline {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	spec := loadgen.RegistrySpec{Users: users, IOSShare: 0.5, MultiDeviceShare: 0.1, Seed: 3}
	sum, err := loadgen.WriteRegistry(ctx, spec, filepath.Join(dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := diskregistry.Open(filepath.Join(dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	mock, _ := startMock(t)
	r := mock.Ready()
	apnsT, err := burst.NewAPNs(burst.APNsConfig{URL: r.APNsURL, KeyFile: r.APNsKeyFile, KeyID: r.APNsKeyID,
		TeamID: r.APNsTeamID, CAFile: r.CAFile, Connections: 1})
	if err != nil {
		t.Fatal(err)
	}
	fcmT, err := burst.NewFCM(ctx, burst.FCMConfig{Endpoint: r.FCMURL, ServiceAccountFile: r.FCMServiceAccountFile,
		CAFile: r.CAFile, Connections: 1})
	if err != nil {
		t.Fatal(err)
	}
	objects, err := localstore.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	records := localstore.NewRecords()
	ranges, err := memqueue.New(memqueue.Config{FIFO: true, VisibilityTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	batches, err := memqueue.New(memqueue.Config{VisibilityTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	deadLetters, err := memqueue.New(memqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ledger := memledger.New()
	p := &pipeline{mock: mock, audience: filepath.Join(dir, "registry", sum.AudienceFile)}
	for range 2 {
		svc, err := sender.NewService(sender.ServiceConfig{Registry: reg, Objects: objects, Records: records, Ranges: ranges,
			Ledger: ledger, DeadLetters: deadLetters})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(requireToken(api.New(api.Config{Service: svc, Objects: objects})))
		t.Cleanup(func() { srv.Close(); svc.Close() })
		p.apis = append(p.apis, srv.URL)
	}
	w, err := sender.NewWorker(sender.WorkerConfig{ID: "w1", Objects: objects, Records: records, Ledger: ledger,
		Ranges: ranges, Batches: batches, DeadLetters: deadLetters, Transports: map[sender.Platform]sender.Transport{
			sender.PlatformIOS: apnsT, sender.PlatformAndroid: fcmT},
		Fanout: 1, Send: 4, Poll: 20 * time.Millisecond, Wait: 50 * time.Millisecond, Heartbeat: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; apnsT.Close(); fcmT.Close() })
	return p
}

// requireToken answers 401 to requests without "Authorization: Bearer s3cret", as the API
// does once it has authentication (contracts: API authentication).
func requireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+testToken)) != 1 {
			http.Error(w, `{"error":"unauthenticated"}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// TestCampaignStorm drives a campaign from a script through both replicas, presses GO from
// several VUs at once, and requires one press to start the send, every other to answer
// already_pressed with the same send, and the mock to receive each recipient once.
func TestCampaignStorm(t *testing.T) {
	p := startPipeline(t, 300)
	csv, err := os.ReadFile(p.audience)
	if err != nil {
		t.Fatal(err)
	}
	root := New()
	// setup(): the token from __ENV.SALVO_TOKEN.
	v := newTestVU(t, root, map[string]string{"SALVO_TOKEN": testToken})
	if err := v.rt.VU.Runtime().Set("audience", string(csv)); err != nil {
		t.Fatal(err)
	}
	v.run(`var api = new salvo.Campaigns({url: "` + p.apis[0] + `"})`)
	v.iterate()
	v.run(`
		api.upload("audiences/k6.csv", audience);
		var c = api.create({id: "storm-1", name: "storm", audience: {object: "audiences/k6.csv"}, silent: true,
			message: {apns: {payload: {aps: {"content-available": 1}}}, fcm: {data: {spot: "on-air"}}}});
		var resolved = api.waitResolved(c.id, {timeout: "30s"});
		api.prepare(c.id, 1);
		var ready = api.waitReady(c.id, {timeout: "30s"});
		var since = api.finished();`)
	recipients := v.run(`ready.campaign.resolution.recipients`).ToInteger()
	if recipients < 300 {
		t.Fatalf("%d recipients for 300 users", recipients)
	}

	// The storm: VUs alternating between the replicas press at once.
	const presses = 6
	answers := make(chan string, presses)
	var vus []*testVU
	for i := range presses {
		u := newTestVU(t, root, nil)
		u.run(`var api = new salvo.Campaigns({url: "` + p.apis[i%2] + `", token: "` + testToken + `"})`)
		u.iterate()
		vus = append(vus, u)
	}
	start := make(chan struct{})
	errs := make(chan error, presses)
	for _, u := range vus {
		go func() {
			<-start
			val, err := u.rt.VU.Runtime().RunString(`JSON.stringify(api.press("storm-1"))`)
			if err != nil {
				errs <- err
				return
			}
			answers <- val.String()
		}()
	}
	close(start)
	sendIDs := map[string]int{}
	started := 0
	for range presses {
		select {
		case err := <-errs:
			t.Fatal(err)
		case a := <-answers:
			var pr sender.PressResult
			if err := json.Unmarshal([]byte(a), &pr); err != nil {
				t.Fatalf("press answer %s: %v", a, err)
			}
			if !pr.AlreadyPressed {
				started++
			}
			sendIDs[pr.SendID]++
		}
	}
	if started != 1 || len(sendIDs) != 1 {
		t.Errorf("%d presses started the send (want 1); send IDs answered: %v (want one)", started, sendIDs)
	}
	var pressed map[string]float64
	for _, u := range vus {
		for k, n := range sums(u.drain(), MetricCampaignPresses, "result") {
			if pressed == nil {
				pressed = map[string]float64{}
			}
			pressed[k] += n
		}
	}
	if pressed[pressStarted] != 1 || pressed[pressAlready] != presses-1 {
		t.Errorf("salvo_campaign_presses by result: %v", pressed)
	}

	// teardown(): wait for the workers, then compare with the mock's own counts.
	done := v.run(`api.waitDone("storm-1", {since: since, timeout: "60s"})`).ToInteger()
	if done != recipients {
		t.Errorf("waitDone counted %d finished, want %d", done, recipients)
	}
	st := p.mock.Stats()
	if got := st.APNs.Unique + st.FCM.Unique; got != recipients || st.APNs.Duplicates+st.FCM.Duplicates != 0 {
		t.Errorf("mock: %d unique (want %d), %d duplicates", got, recipients, st.APNs.Duplicates+st.FCM.Duplicates)
	}
	if n := count(v.drain(), MetricCampaignDuration); n == 0 {
		t.Error("no salvo_campaign_call_duration sample")
	}
}

// TestCampaignsToken requires the bearer token from the option or from __ENV.SALVO_TOKEN,
// and a clear error without one.
func TestCampaignsToken(t *testing.T) {
	srv := httptest.NewServer(requireToken(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"workers":[{"worker":"w","done":7}]}`))
	})))
	defer srv.Close()
	tests := []struct {
		name  string
		env   map[string]string
		opts  string
		want  int64
		throw string
	}{
		// The option.
		{name: "option", opts: `token: "` + testToken + `"`, want: 7},
		// The environment.
		{name: "env", env: map[string]string{"SALVO_TOKEN": testToken}, want: 7},
		// The option wins over the environment.
		{name: "option first", env: map[string]string{"SALVO_TOKEN": "wrong"}, opts: `token: "` + testToken + `"`, want: 7},
		// No token: the API's 401 is the exception.
		{name: "none", throw: "401"},
		// Not a URL.
		{name: "bad url", opts: `url: "127.0.0.1:80"`, throw: "want http://"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVU(t, New(), tc.env)
			opts := `url: "` + srv.URL + `"`
			if tc.opts != "" {
				opts += ", " + tc.opts
			}
			code := `new salvo.Campaigns({` + opts + `}).finished()`
			if tc.throw != "" {
				if msg := v.fails(code); !strings.Contains(msg, tc.throw) {
					t.Fatalf("exception %q does not mention %q", msg, tc.throw)
				}
				return
			}
			if got := v.run(code).ToInteger(); got != tc.want {
				t.Fatalf("finished() = %d, want %d", got, tc.want)
			}
		})
	}
}
