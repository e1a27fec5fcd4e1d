package dynamodb_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/dynamodb"
)

func TestRecordStoreCompareAndSwap(t *testing.T) {
	e := newEnv(t, nil)
	s, err := dynamodb.NewRecordStore(e.client, e.tables.Records)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	steps := []struct {
		name     string
		expected int64
		data     string
		want     int64
		conflict bool
	}{
		// Creating a record: expected 0 means "must not exist".
		{"create", 0, "v1", 1, false},
		// A second create loses.
		{"create again", 0, "x", 0, true},
		// Updating from the stored version.
		{"update", 1, "v2", 2, false},
		// A stale version loses and writes nothing.
		{"stale", 1, "x", 0, true},
		// A version from the future loses too.
		{"ahead", 5, "x", 0, true},
		// Empty data is a valid record.
		{"empty data", 2, "", 3, false},
	}
	for _, st := range steps {
		got, err := s.CompareAndSwap(ctx, "campaigns/c1/go", st.expected, []byte(st.data))
		if st.conflict {
			if !errors.Is(err, sender.ErrConflict) {
				t.Fatalf("%s: err %v, want ErrConflict", st.name, err)
			}
			continue
		}
		if err != nil || got != st.want {
			t.Fatalf("%s: = %d, %v; want %d", st.name, got, err, st.want)
		}
		r, err := s.Get(ctx, "campaigns/c1/go")
		if err != nil || r.Version != st.want || string(r.Data) != st.data {
			t.Fatalf("%s: Get = %+v, %v", st.name, r, err)
		}
	}
	if _, err := s.Get(ctx, "campaigns/c1/none"); !errors.Is(err, sender.ErrNotFound) {
		t.Errorf("Get of a missing record: %v, want ErrNotFound", err)
	}
	if _, err := s.CompareAndSwap(ctx, "k", -1, nil); err == nil {
		t.Error("negative expected version accepted")
	}
}

// TestRecordStoreRace presses GO from many goroutines at once: exactly one wins each round.
func TestRecordStoreRace(t *testing.T) {
	e := newEnv(t, nil)
	s, _ := dynamodb.NewRecordStore(e.client, e.tables.Records)
	const racers = 16
	for round, expected := range []int64{0, 1, 2} {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []int
		conflicts := 0
		for i := range racers {
			wg.Go(func() {
				_, err := s.CompareAndSwap(t.Context(), "campaigns/c1/go", expected, fmt.Appendf(nil, "press %d", i))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, i)
				case errors.Is(err, sender.ErrConflict):
					conflicts++
				default:
					t.Errorf("round %d racer %d: %v", round, i, err)
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 || conflicts != racers-1 {
			t.Fatalf("round %d: winners %v, conflicts %d; want exactly one winner", round, winners, conflicts)
		}
		r, err := s.Get(t.Context(), "campaigns/c1/go")
		if err != nil || r.Version != expected+1 || string(r.Data) != fmt.Sprintf("press %d", winners[0]) {
			t.Fatalf("round %d: stored %+v, %v; want the winner's press at version %d", round, r, err, expected+1)
		}
	}
}

func TestRecordStoreList(t *testing.T) {
	e := newEnv(t, nil)
	s, _ := dynamodb.NewRecordStore(e.client, e.tables.Records)
	keys := []string{"campaigns/c1", "campaigns/c1/go", "campaigns/c2", "ready/run1/w1", "ready/run1/w2", "ready/run2/w1", "solo"}
	for _, k := range slices.Backward(keys) {
		if _, err := s.CompareAndSwap(t.Context(), k, 0, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix    string
		want      []string
		wantQuery bool // served by a Query rather than a Scan
	}{
		// Within one namespace: a Query.
		{"ready/run1/", keys[3:5], true},
		// A namespace and a partial segment.
		{"campaigns/c", keys[:3], true},
		// The namespace itself with its slash.
		{"campaigns/", keys[:3], true},
		// No slash: a Scan across namespaces.
		{"ready", keys[3:6], false},
		// Everything, sorted.
		{"", keys, false},
		// Nothing.
		{"nope/", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			q := e.calls["Query"].Load()
			recs, err := s.List(t.Context(), tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Key)
				if string(r.Data) != r.Key || r.Version != 1 {
					t.Errorf("record %+v", r)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
			}
			if used := e.calls["Query"].Load() > q; used != tt.wantQuery {
				t.Errorf("List(%q) used Query: %v, want %v", tt.prefix, used, tt.wantQuery)
			}
		})
	}
}
