package sender_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/localstore"
	"github.com/salvopush/salvo/sender/memqueue"
)

// TestWorkersListAliveDeadAndForgotten checks the list of workers an operator sees: a
// heartbeat younger than 10 s is alive, an older one is listed dead, and one 10 minutes old
// or more is no longer listed (dead workers leave the list).
func TestWorkersListAliveDeadAndForgotten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)
	records := localstore.NewRecords()
	objects, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ranges, err := memqueue.New(memqueue.Config{FIFO: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ranges.Close()
	svc, err := sender.NewService(sender.ServiceConfig{Registry: registry{}, Objects: objects, Records: records, Ranges: ranges,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	tests := []struct {
		worker string
		age    time.Duration // of its last heartbeat
		listed bool
		alive  bool
	}{
		{"fresh", 2 * time.Second, true, true},                           // beating
		{"just-alive", 9*time.Second + 999*time.Millisecond, true, true}, // within 10 s
		{"stale", 10 * time.Second, true, false},                         // missed its beats: dead, still listed
		{"dead-a-while", 9*time.Minute + 59*time.Second, true, false},    // dead, listed for now
		{"forgotten", 10 * time.Minute, false, false},                    // dead 10 minutes: left the list
		{"long-gone", 48 * time.Hour, false, false},                      // and stays out
	}
	for _, tc := range tests {
		data, _ := json.Marshal(sender.Heartbeat{Worker: tc.worker, Send: 8, At: now.Add(-tc.age)})
		if _, err := records.CompareAndSwap(ctx, "workers/"+tc.worker, 0, data); err != nil {
			t.Fatal(err)
		}
	}
	ws, err := svc.Workers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, w := range ws {
		got[w.Worker] = w.Alive
	}
	for _, tc := range tests {
		alive, listed := got[tc.worker]
		if listed != tc.listed || alive != tc.alive {
			t.Errorf("%s (heartbeat %s old): listed %v alive %v, want listed %v alive %v", tc.worker, tc.age, listed, alive, tc.listed, tc.alive)
		}
	}
}
