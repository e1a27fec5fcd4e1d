package mockpush

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sideshow/apns2"
)

// TestUnreachableWindow: the unreachable fault closes the APNs port (a dial is refused),
// resets the connection a client already had, leaves FCM and the control API serving, and
// when the window ends the mock listens again on the same address and counts again.
func TestUnreachableWindow(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	r := s.Ready()
	ctl := &Control{URL: r.ControlURL}
	ctx := context.Background()
	addr := strings.TrimPrefix(r.APNsURL, "https://")
	c := apnsClient(t, r, apnsToken(t, r))
	push := func(i int) (*apns2.Response, error) {
		return c.Push(&apns2.Notification{DeviceToken: hexToken(i), Topic: r.APNsTopic, Payload: []byte(`{}`)})
	}
	if res, err := push(1); err != nil || res.StatusCode != 200 {
		t.Fatalf("before the window: %v %+v", err, res)
	}
	// A window that opens now: closed before PUT /faults answers.
	if err := ctl.SetFaults(ctx, Faults{APNs: PlatformFaults{Unreachable: Window{DurationMS: 60000}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", addr, 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial during the window: %v, want connection refused", err)
	}
	if res, err := push(2); err == nil {
		t.Fatalf("push during the window answered %+v: the open connection was not dropped", res)
	}
	if st, err := ctl.Stats(ctx); err != nil || st.APNs.Received != 1 {
		t.Fatalf("stats during the window: %+v %v (the control API must answer, APNs count only the push before)", st, err)
	}
	if nc, err := net.DialTimeout("tcp", strings.TrimPrefix(r.FCMURL, "https://"), 5*time.Second); err != nil {
		t.Fatalf("FCM must stay reachable: %v", err)
	} else {
		nc.Close()
	}
	f, err := ctl.Faults(ctx)
	if err != nil || f.APNs.Unreachable.DurationMS != 60000 {
		t.Fatalf("GET /faults: %+v %v", f, err)
	}
	// A short window replaces it: the port opens at once, closes after 50 ms for 200 ms, and
	// opens again on the same address.
	if err := ctl.SetFaults(ctx, Faults{APNs: PlatformFaults{Unreachable: Window{StartAfterMS: 50, DurationMS: 200}}}); err != nil {
		t.Fatal(err)
	}
	sawRefused := false
	deadline := time.Now().Add(30 * time.Second) // only keeps a broken build from hanging
	for {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			sawRefused = true
		} else {
			nc.Close()
			if sawRefused {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the port did not close and open again (refused seen: %v)", sawRefused)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var res *apns2.Response
	for try := 0; ; try++ {
		if res, err = push(3); err == nil || try == 20 {
			break
		}
		time.Sleep(50 * time.Millisecond) // the client's dead connection may take a try to be dropped
	}
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("after the window: %v %+v", err, res)
	}
	if st := s.Stats(); st.APNs.Accepted != 2 || st.APNs.Unique != 2 {
		t.Fatalf("stats after the window: %+v, want the pushes before and after accepted", st.APNs)
	}
}

// TestUnreachableValidate: the window's fields are checked like the outage's.
func TestUnreachableValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		f    Faults
		want string
	}{
		// a negative start
		{"negative start", Faults{FCM: PlatformFaults{Unreachable: Window{StartAfterMS: -1, DurationMS: 10}}}, "fcm.unreachable.start_after_ms"},
		// longer than an hour
		{"too long", Faults{APNs: PlatformFaults{Unreachable: Window{DurationMS: 4e6}}}, "apns.unreachable.duration_ms"},
	} {
		if err := tc.f.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
	if _, err := ParseFaults([]byte(`{"apns": {"unreachable": {"start_after_ms": 0, "duration_ms": 20000}}}`)); err != nil {
		t.Errorf("a valid window: %v", err)
	}
}
