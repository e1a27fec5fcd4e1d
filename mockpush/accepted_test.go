package mockpush

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"
	"github.com/sideshow/apns2"
)

// TestAccepted pushes through apns2 (HTTP/2, the batched path) and firebase admin over
// HTTP/1.1 (the single path) and reads back, per campaign, exactly the tokens accepted: a
// duplicate listed again, rejections and other campaigns left out, nothing after a reset.
func TestAccepted(t *testing.T) {
	s := startServer(t, func(c *Config) { c.KeepAccepted = true })
	r := s.Ready()
	ctl := &Control{URL: r.ControlURL}
	ctx := context.Background()
	ac := apnsClient(t, r, apnsToken(t, r))
	push := func(token, campaign string) {
		t.Helper()
		res, err := ac.Push(&apns2.Notification{DeviceToken: token, Topic: r.APNsTopic, CollapseID: campaign, Payload: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if want := !IsUnregistered(token); res.Sent() != want {
			t.Fatalf("push %s: %+v", token, res)
		}
	}
	fc := fcmClient(t, r, r.FCMProjectID, oauthClient(t, r, false))
	fpush := func(token, campaign string) {
		t.Helper()
		_, err := fc.Send(ctx, &messaging.Message{Token: token, Data: map[string]string{"k": "v"},
			Android: &messaging.AndroidConfig{CollapseKey: campaign}})
		if err != nil && !(IsUnregistered(token) && messaging.IsUnregistered(err)) {
			t.Fatalf("fcm push %s: %v", token, err)
		}
	}
	push(hexToken(1), "c1")
	push(hexToken(2), "c1")
	push(hexToken(1), "c1") // a duplicate
	push(hexToken(3), "c2")
	push(UnregisteredMarker+hexToken(4)[len(UnregisteredMarker):], "c1")
	fpush(fcmToken(5), "c1")
	fpush(UnregisteredMarker+fcmToken(6), "c1")
	fpush(fcmToken(7), "c2")

	want := Accepted{IOS: []string{hexToken(1), hexToken(2), hexToken(1)}, Android: []string{fcmToken(5)}}
	for _, get := range []struct {
		name string
		do   func() (Accepted, error)
	}{
		{"Server.Accepted", func() (Accepted, error) { return s.Accepted("c1") }},
		{"GET /accepted", func() (Accepted, error) { return ctl.Accepted(ctx, "c1") }},
	} {
		got, err := get.do()
		if err != nil || !slices.Equal(got.IOS, want.IOS) || !slices.Equal(got.Android, want.Android) {
			t.Fatalf("%s(c1) = %+v, %v; want %+v", get.name, got, err, want)
		}
	}
	if got, err := ctl.Accepted(ctx, "c2"); err != nil || !slices.Equal(got.IOS, []string{hexToken(3)}) ||
		!slices.Equal(got.Android, []string{fcmToken(7)}) {
		t.Fatalf("accepted for c2 = %+v, %v", got, err)
	}
	if got, err := ctl.Accepted(ctx, "none"); err != nil || got.Len() != 0 {
		t.Fatalf("accepted for an unknown campaign = %+v, %v", got, err)
	}
	st := s.Stats()
	if n := st.APNs.Accepted + st.FCM.Accepted; n != 6 {
		t.Fatalf("the counts hold %d accepted, the lists 6", n)
	}
	if _, err := ctl.Accepted(ctx, ""); err == nil {
		t.Fatal("GET /accepted without a campaign: no error")
	}
	if err := ctl.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := ctl.Accepted(ctx, "c1"); err != nil || got.Len() != 0 {
		t.Fatalf("accepted after a reset = %+v, %v", got, err)
	}
	push(hexToken(2), "c1")
	if got, err := ctl.Accepted(ctx, "c1"); err != nil || !slices.Equal(got.IOS, []string{hexToken(2)}) {
		t.Fatalf("accepted after a reset and a push = %+v, %v", got, err)
	}
}

// TestAcceptedNotKept: a server started without KeepAccepted says so instead of answering
// an empty list, which would read as "nothing delivered".
func TestAcceptedNotKept(t *testing.T) {
	s := startServer(t, nil)
	if _, err := s.Accepted("c1"); !errors.Is(err, ErrNotKept) {
		t.Fatalf("Server.Accepted = %v, want ErrNotKept", err)
	}
	ctl := &Control{URL: s.Ready().ControlURL}
	if _, err := ctl.Accepted(context.Background(), "c1"); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("GET /accepted = %v, want 409", err)
	}
}

// TestAcceptedLedger drives the ledger's two paths directly: batches across ledgers and
// resets keep each pair with its campaign, a batch from before a reset is dropped with its
// count, and a line break in a token (an FCM condition) cannot split a line.
func TestAcceptedLedger(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	a, f := newLedger(t0), newLedger(t0)
	a.keepAccepted()
	f.keepAccepted()
	var b acceptBatch
	b.add(a, "t1", "c1", t0)
	b.add(a, "t2", "c2", t0)
	b.add(f, "t3", "c1", t0) // another ledger: the batch so far is committed to a
	b.commit()
	f.accept("'x' in topics\n&& 'y' in topics", "c1", t0)
	b.add(a, "t4", "c1", t0)
	a.reset(t0) // the batch's t4 was made before the reset: dropped
	b.add(a, "t5", "c1", t0)
	b.commit()
	for _, c := range []struct {
		l        *ledger
		campaign string
		want     []string
	}{
		{a, "c1", []string{"t5"}},
		{a, "c2", nil},
		{f, "c1", []string{"t3", "'x' in topics && 'y' in topics"}},
	} {
		if got := c.l.acceptedTokens(c.campaign); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.campaign, got, c.want)
		}
	}
	if st := a.stats(); st.Accepted != 1 {
		t.Errorf("ledger a counts %d accepted, its list 1", st.Accepted)
	}
}

// TestParseAccepted: the format's round trip, and the lines it refuses.
func TestParseAccepted(t *testing.T) {
	in := Accepted{IOS: []string{"aa", "bb"}, Android: []string{"x:y_z", "/topics/news"}}
	var buf bytes.Buffer
	if _, err := in.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "ios,aa\nios,bb\nandroid,x:y_z\nandroid,/topics/news\n" {
		t.Fatalf("WriteTo wrote %q", buf.String())
	}
	back, err := ParseAccepted(&buf)
	if err != nil || !slices.Equal(back.IOS, in.IOS) || !slices.Equal(back.Android, in.Android) {
		t.Fatalf("ParseAccepted = %+v, %v", back, err)
	}
	for _, tc := range []struct {
		name, body string
	}{
		// No comma.
		{"no platform", "aa\n"},
		// An unknown platform.
		{"unknown platform", "sms,aa\n"},
		// An empty token.
		{"empty token", "ios,\n"},
		// A control character in the token.
		{"control character", "ios,a\tb\n"},
		// A line over the bound.
		{"long line", "ios," + strings.Repeat("a", maxAcceptedLine) + "\n"},
	} {
		if got, err := ParseAccepted(strings.NewReader(tc.body)); err == nil {
			t.Errorf("%s: ParseAccepted(%q) = %+v, want an error", tc.name, tc.body, got)
		}
	}
}

// FuzzParseAccepted: whatever parses holds one token per non-blank line, and writes back to
// a body that parses to the same lists.
func FuzzParseAccepted(f *testing.F) {
	f.Add([]byte("ios,aa\nandroid,b\n"))
	f.Add([]byte("ios,\n"))
	f.Add([]byte("\r\n\nandroid,x,y\r\nios,z"))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := ParseAccepted(bytes.NewReader(body))
		if err != nil {
			return
		}
		lines := 0
		for _, l := range strings.Split(string(body), "\n") {
			if strings.TrimSuffix(l, "\r") != "" {
				lines++
			}
		}
		if a.Len() != lines {
			t.Fatalf("%d tokens from %d non-blank lines of %q", a.Len(), lines, body)
		}
		var buf bytes.Buffer
		if _, err := a.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := ParseAccepted(&buf)
		if err != nil || !slices.Equal(back.IOS, a.IOS) || !slices.Equal(back.Android, a.Android) {
			t.Fatalf("round trip of %+v: %+v, %v", a, back, err)
		}
	})
}
