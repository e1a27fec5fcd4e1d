package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/auth"
)

// TestScheduledSendTwoServeReplicas runs the operator's workflow on separate processes
// over the AWS emulators: two `salvo serve` replicas (with the mock's transports, for test
// pushes), a fan-out and a send worker. A campaign needing one approval is scheduled a few
// seconds ahead: an approver sends themselves a test push through one replica and approves
// through the other; both replicas' schedulers wake at the send time and exactly one press
// starts the send (the same compare-and-set on the DynamoDB record as GO). Every recipient
// gets one notification, the test pushes come on top under their own collapse IDs, and how
// late the press was is reported.
func TestScheduledSendTwoServeReplicas(t *testing.T) {
	d := newDeployment(t, 2000, 0)
	send, _, users := d.expected()
	// An approver whose own registry entry is the first user (their phones are in the
	// audience too: the test push must not collide with the campaign's notification).
	approverToken := auth.NewToken()
	authFile := filepath.Join(d.dir, "auth-workflow.json")
	err := auth.WriteFile(authFile, auth.File{Users: []auth.User{
		{Name: "admin", TokenSHA256: auth.Hash(d.token), Roles: []auth.Role{auth.Admin}},
		{Name: "bob", TokenSHA256: auth.Hash(approverToken), Roles: []auth.Role{auth.Approver, auth.Viewer}, UserID: users[0]}}})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(name string) *api.Client {
		url := d.start(name, "serve", "--addr", "127.0.0.1:0", "--auth-file", authFile, "--mock-ready", d.ready, "--connections", "1")
		return &api.Client{URL: url, Token: d.token}
	}
	api1, api2 := serve("api1"), serve("api2")
	d.api = api1
	d.startWorker("fanout", "fanout")
	d.startWorker("send1", "send")
	ctx := context.Background()

	at := time.Now().Add(8 * time.Second).Truncate(time.Second)
	spec := sender.CampaignSpec{Name: "scheduled", Audience: sender.AudienceSource{UserIDs: users}, SendAt: &at, ApprovalsRequired: 1,
		Message: sender.MessageSpec{APNs: &sender.APNsSpec{Payload: json.RawMessage(`{"aps":{"alert":"hi"}}`)},
			FCM: &sender.FCMSpec{Title: "hi"}}}
	if _, err := api1.Create(ctx, "sched", spec); err != nil {
		t.Fatal(err)
	}
	d.campaigns = append(d.campaigns, "sched")
	bob1 := &api.Client{URL: api1.URL, Token: approverToken}
	bob2 := &api.Client{URL: api2.URL, Token: approverToken}
	rep, err := bob2.TestPush(ctx, "sched")
	if err != nil || rep.Sent == 0 || rep.Accepted != rep.Sent {
		t.Fatalf("test push through serve: %+v %v", rep, err)
	}
	if _, err := bob1.Approve(ctx, "sched"); err != nil {
		t.Fatal(err)
	}
	var st *sender.Status
	d.waitFor("the scheduled send to finish", func() bool {
		st, err = api2.Status(ctx, "sched")
		if err != nil {
			t.Fatal(err)
		}
		return st.Campaign.Terminal()
	})
	if st.Campaign.State != sender.StateDone {
		t.Fatalf("ended %s: %+v", st.Campaign.State, st.Campaign.Result)
	}
	gos := 0
	for _, a := range st.Campaign.Audit {
		if a.Action == "go" {
			gos++
			if a.By != "scheduler" {
				t.Fatalf("pressed by %s, want the scheduler", a.By)
			}
		}
	}
	if gos != 1 {
		t.Fatalf("%d GO entries in the audit log, want exactly 1", gos)
	}
	late := st.Campaign.Send.PressedAt.Sub(at)
	if late < 0 {
		t.Fatalf("pressed %s before its time", -late)
	}
	time.Sleep(time.Second) // anything sent twice would arrive now
	received, unique, dups := d.mockTotals()
	if received != int64(send+rep.Sent) || unique != received || dups != 0 {
		t.Fatalf("mock received %d, unique %d, duplicates %d; want %d recipients + %d test pushes, each once", received, unique, dups, send, rep.Sent)
	}
	t.Logf("scheduled press %s after its send time on two replicas (target: within 1 s)", late)
}
