package sender

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func validSpec() CampaignSpec {
	return CampaignSpec{
		Name:     "spot",
		Audience: AudienceSource{UserIDs: []string{"u1", "u2"}},
		Message: MessageSpec{
			APNs: &APNsSpec{Payload: json.RawMessage(`{"aps":{"alert":"hi"}}`)},
			FCM:  &FCMSpec{Title: "hi", Data: map[string]string{"k": "v"}},
		},
	}
}

func TestCampaignSpecValidate(t *testing.T) {
	t.Parallel()
	big := json.RawMessage(`{"aps":{"alert":"` + strings.Repeat("x", MaxAPNsPayload) + `"}}`)
	tests := []struct {
		name  string
		edit  func(*CampaignSpec)
		field string // "" means valid
	}{
		// The base spec is valid.
		{"valid", func(*CampaignSpec) {}, ""},
		// A campaign needs a name.
		{"no name", func(s *CampaignSpec) { s.Name = " " }, "name"},
		// An audience is required...
		{"no audience", func(s *CampaignSpec) { s.Audience = AudienceSource{} }, "audience"},
		// ...and is inline or an object, not both.
		{"both audiences", func(s *CampaignSpec) { s.Audience.Object = "a.csv" }, "audience"},
		// An empty user ID is named by its index.
		{"empty user id", func(s *CampaignSpec) { s.Audience.UserIDs[1] = "" }, "audience.user_ids[1]"},
		// An unknown audience format is refused.
		{"bad format", func(s *CampaignSpec) { s.Audience = AudienceSource{Object: "a", Format: "xml"} }, "audience.format"},
		// Payloads above 4096 bytes are refused before anything is sent.
		{"oversized apns payload", func(s *CampaignSpec) { s.Message.APNs.Payload = big }, "message.apns.payload"},
		// A payload must be a JSON object.
		{"payload not json", func(s *CampaignSpec) { s.Message.APNs.Payload = json.RawMessage(`nope`) }, "message.apns.payload"},
		// Unknown push types are refused.
		{"bad push type", func(s *CampaignSpec) { s.Message.APNs.PushType = "voip2" }, "message.apns.push_type"},
		// Background pushes cannot have priority 10.
		{"background priority 10", func(s *CampaignSpec) { s.Message.APNs.PushType, s.Message.APNs.Priority = "background", 10 }, "message.apns.priority"},
		// An FCM message above 4096 bytes is refused.
		{"oversized fcm", func(s *CampaignSpec) { s.Message.FCM.Body = strings.Repeat("y", MaxFCMMessage+1) }, "message.fcm"},
		// FCM priority is high or normal.
		{"bad fcm priority", func(s *CampaignSpec) { s.Message.FCM.Priority = "urgent" }, "message.fcm.priority"},
		// A message needs at least one platform.
		{"no message", func(s *CampaignSpec) { s.Message = MessageSpec{} }, "message"},
		// Control percent is bounded.
		{"control above 100", func(s *CampaignSpec) { s.ControlPercent = 101 }, "control_percent"},
		// Variants plus control must add up to 100.
		{"variants sum", func(s *CampaignSpec) {
			s.Variants = []VariantSpec{{Name: "a", Percent: 40}, {Name: "b", Percent: 40}}
		}, "variants"},
		// Variant names are unique.
		{"duplicate variant", func(s *CampaignSpec) {
			s.Variants = []VariantSpec{{Name: "a", Percent: 50}, {Name: "a", Percent: 50}}
		}, "variants[1].name"},
		// Variants with control adding to 100 are fine.
		{"variants ok", func(s *CampaignSpec) {
			s.ControlPercent = 10
			s.Variants = []VariantSpec{{Name: "a", Percent: 45}, {Name: "b", Percent: 45}}
		}, ""},
		// Negative TTL is refused.
		{"negative ttl", func(s *CampaignSpec) { s.TTLSeconds = -1 }, "ttl_seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			tt.edit(&s)
			err := s.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("Validate = %v, want a FieldError on %q", err, tt.field)
			}
		})
	}
}

func TestAssignDeterministicAndSplit(t *testing.T) {
	t.Parallel()
	s := validSpec()
	s.ControlPercent = 10
	s.Variants = []VariantSpec{{Name: "a", Percent: 60}, {Name: "b", Percent: 30}}
	const n = 100000
	counts := map[int]int{}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("u%07d", i)
		v := s.Assign("camp1", id)
		if again := s.Assign("camp1", id); again != v {
			t.Fatalf("Assign(%s) = %d then %d", id, v, again)
		}
		counts[v]++
	}
	for v, want := range map[int]float64{Control: 0.10, 0: 0.60, 1: 0.30} {
		got := float64(counts[v]) / n
		if got < want-0.01 || got > want+0.01 {
			t.Errorf("variant %d share %.4f, want %.2f ± 0.01", v, got, want)
		}
	}
}

func TestRenderSilent(t *testing.T) {
	t.Parallel()
	s := validSpec()
	s.Silent = true
	a, err := s.RenderAPNs("camp", 0, "com.app", timeZero)
	if err != nil {
		t.Fatal(err)
	}
	if a.PushType != "background" || a.Priority != 5 || a.CollapseID != "camp" || a.Topic != "com.app" {
		t.Errorf("silent APNs = %+v", a)
	}
	f, err := s.RenderFCM("camp", 0, "proj")
	if err != nil {
		t.Fatal(err)
	}
	if f.Title != "" || f.Body != "" || f.CollapseKey != "camp" || f.Data["k"] != "v" || f.Project != "proj" {
		t.Errorf("silent FCM = %+v", f)
	}
}

func TestParseAudience(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		format AudienceFormat
		in     string
		want   []string
		field  string // error's field when the input is bad
	}{
		// A bare list of IDs.
		{"csv plain", AudienceCSV, "u1\nu2\n\nu3\n", []string{"u1", "u2", "u3"}, ""},
		// A header picks the column.
		{"csv header", AudienceCSV, "name,user_id\nann,u1\nbob,u2\n", []string{"u1", "u2"}, ""},
		// A short row is named by its line.
		{"csv short row", AudienceCSV, "name,user_id\nann,u1\nbob\n", nil, "audience line 3"},
		// Several columns without a user_id header are refused.
		{"csv no header", AudienceCSV, "a,b\n", nil, "audience line 1"},
		// NDJSON objects.
		{"ndjson", AudienceNDJSON, `{"user_id":"u1"}` + "\n" + `{"user_id":"u2","x":1}`, []string{"u1", "u2"}, ""},
		// A line that is not JSON is named.
		{"ndjson bad line", AudienceNDJSON, `{"user_id":"u1"}` + "\n{oops\n", nil, "audience line 2"},
		// A line without user_id is named.
		{"ndjson missing id", AudienceNDJSON, `{"id":"u1"}`, nil, "audience line 1"},
		// A JSON array.
		{"json array", AudienceJSON, `["u1","u2"]`, []string{"u1", "u2"}, ""},
		// A JSON object with user_ids.
		{"json object", AudienceJSON, `{"user_ids":["u1"]}`, []string{"u1"}, ""},
		// An empty ID inside a JSON array is named by index.
		{"json empty id", AudienceJSON, `["u1",""]`, nil, "audience[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAudience([]byte(tt.in), tt.format)
			if tt.field != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tt.field {
					t.Fatalf("err = %v, want field %q", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseAudience(f *testing.F) {
	f.Add([]byte("user_id\nu1\n"), uint8(0))
	f.Add([]byte(`{"user_id":"u"}`), uint8(1))
	f.Add([]byte(`["a","b"]`), uint8(2))
	formats := []AudienceFormat{AudienceCSV, AudienceNDJSON, AudienceJSON}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		ids, err := ParseAudience(data, formats[int(which)%3])
		if err != nil {
			return
		}
		for _, id := range ids {
			if checkUserID(id) != nil {
				t.Fatalf("accepted a bad user ID %q", id)
			}
		}
	})
}

// runOf puts tokens end to end as one run.
func runOf(toks [][]byte) segBuf {
	var b segBuf
	for _, t := range toks {
		b.tokens = append(b.tokens, t...)
		b.lens = append(b.lens, uint16(len(t)))
	}
	return b
}

// decodeAlone decodes one shard on its own.
func decodeAlone(b []byte, info ShardInfo) (*Preloaded, error) {
	sh, err := decodeShard(b, info)
	if err != nil {
		return nil, err
	}
	sh.start = 0
	return newPreloaded(Manifest{}, []shardData{sh}), nil
}

func TestPreloadedUnevenShards(t *testing.T) {
	t.Parallel()
	// Shards of 3, 1, 0 and 2 recipients: found by search, not by division.
	var shards []shardData
	var want []string
	start := uint32(0)
	for s, n := range []int{3, 1, 0, 2} {
		var toks [][]byte
		for i := range n {
			tok := fmt.Sprintf("s%d-%d", s, i)
			toks = append(toks, []byte(tok))
			want = append(want, tok)
		}
		b := encodeShard(nil, start, []segBuf{runOf(toks)})
		sh, err := decodeShard(b, ShardInfo{Start: start, Count: uint32(n)})
		if err != nil {
			t.Fatal(err)
		}
		shards = append(shards, sh)
		start += uint32(n)
	}
	p := newPreloaded(Manifest{}, shards)
	if p.Len() != len(want) || p.per != 0 {
		t.Fatalf("Len %d, per %d; want %d, 0", p.Len(), p.per, len(want))
	}
	for i, w := range want {
		if got := string(p.Token(uint32(i))); got != w {
			t.Errorf("token %d = %q, want %q", i, got, w)
		}
	}
}

func TestShardRoundTrip(t *testing.T) {
	t.Parallel()
	toks := [][]byte{[]byte("aa"), []byte(strings.Repeat("b", 160)), []byte("c")}
	// Two runs (as a shard cut across two chunks' buffers) make one shard.
	b := encodeShard(nil, 7, []segBuf{runOf(toks[:1]), runOf(toks[1:])})
	info := ShardInfo{Start: 7, Count: 3}
	p, err := decodeAlone(b, info)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range toks {
		if got := p.Token(uint32(i)); string(got) != string(want) {
			t.Errorf("token %d = %q, want %q", i, got, want)
		}
	}
	// A flipped byte is caught by the checksum.
	b[20] ^= 1
	if _, err := decodeAlone(b, info); err == nil {
		t.Error("corrupted shard decoded without error")
	}
}

func TestShardCuts(t *testing.T) {
	t.Parallel()
	var parts []segBuf
	var want []string
	for c := range 5 { // five chunks of uneven sizes
		var toks [][]byte
		for i := range 3 + 2*c {
			tok := fmt.Sprintf("t%d-%d%s", c, i, strings.Repeat("x", i))
			toks = append(toks, []byte(tok))
			want = append(want, tok)
		}
		parts = append(parts, runOf(toks))
	}
	l := &laidOut{parts: parts}
	for _, size := range []int{1, 2, 4, 7, 100} {
		var got []string
		for _, sh := range l.shards(size) {
			n := 0
			for _, p := range sh {
				n += len(p.lens)
			}
			if n > size {
				t.Fatalf("size %d: a shard of %d", size, n)
			}
			b := encodeShard(nil, uint32(len(got)), sh)
			p, err := decodeAlone(b, ShardInfo{Start: uint32(len(got)), Count: uint32(n)})
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				got = append(got, string(p.Token(uint32(i))))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("size %d: %q, want %q", size, got, want)
		}
	}
}

func TestDedupe(t *testing.T) {
	t.Parallel()
	in := []string{"b", "a", "b", "c", "a", "", "", "d"}
	if got, want := dedupe(in), []string{"b", "a", "c", "", "d"}; !slices.Equal(got, want) {
		t.Errorf("dedupe = %q, want %q", got, want)
	}
	var many []string
	for i := range 10000 {
		many = append(many, fmt.Sprint(i%3000))
	}
	if got := dedupe(many); len(got) != 3000 || got[2999] != "2999" {
		t.Errorf("dedupe of 10000 with 3000 distinct: %d", len(got))
	}
}

func FuzzDecodeShard(f *testing.F) {
	f.Add(encodeShard(nil, 0, []segBuf{runOf([][]byte{[]byte("tok")})}), uint32(0), uint32(1))
	f.Fuzz(func(t *testing.T, b []byte, start, count uint32) {
		_, _ = decodeAlone(b, ShardInfo{Start: start, Count: count}) // must not panic
	})
}

var timeZero = time.Time{}

func TestSegmentIndex(t *testing.T) {
	t.Parallel()
	m := Manifest{Segments: []Segment{{Start: 0, Count: 3}, {Start: 3, Count: 1}, {Start: 4, Count: 5}}}
	for _, tc := range []struct {
		i    uint32
		want int
	}{
		{0, 0}, {2, 0}, // the first segment, both ends
		{3, 1},         // a one-recipient segment
		{4, 2}, {8, 2}, // the last segment, both ends
		{9, -1}, // past the end
	} {
		if got := m.SegmentIndex(tc.i); got != tc.want {
			t.Errorf("SegmentIndex(%d) = %d, want %d", tc.i, got, tc.want)
		}
	}
}

// FuzzCampaignSpec feeds arbitrary create bodies through the JSON decoding and Validate: a
// spec that validates must be safe to use — its durations in range, its variants' percents
// adding up, every variant renderable on each platform it has a message for.
func FuzzCampaignSpec(f *testing.F) {
	f.Add([]byte(`{"name":"n","audience":{"user_ids":["u1"]},"message":{"fcm":{"title":"t"}}}`))
	f.Add([]byte(`{"name":"n","silent":true,"ttl_seconds":60,"delivery_deadline_seconds":30,"audience":{"object":"a.csv"},"message":{"apns":{},"fcm":{"data":{"k":"v"}}}}`))
	f.Add([]byte(`{"name":"n","control_percent":10,"variants":[{"name":"a","percent":45},{"name":"b","percent":45,"message":{"apns":{"payload":{"aps":{"alert":"x"}}}}}],"audience":{"user_ids":["u"]},"message":{"apns":{"payload":{"aps":{"alert":"y"}}}}}`))
	f.Add([]byte(`{"name":"n","ttl_seconds":9300000000}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s CampaignSpec
		if json.Unmarshal(data, &s) != nil || s.Validate() != nil {
			return
		}
		if d := s.DeliveryDeadline(); d <= 0 || d > MaxDeliveryDeadline {
			t.Fatalf("deadline %v out of range", d)
		}
		if s.TTLSeconds > 0 && s.DeliveryDeadline() > time.Duration(s.TTLSeconds)*time.Second {
			t.Fatalf("deadline %v past the TTL %d s", s.DeliveryDeadline(), s.TTLSeconds)
		}
		at := time.Unix(1_700_000_000, 0)
		for v := range s.VariantNames() {
			if s.HasMessage(v, PlatformIOS) {
				m, err := s.RenderAPNs("c", v, "topic", at)
				if err != nil || len(m.Payload) > MaxAPNsPayload || (s.TTLSeconds > 0 && !m.Expiration.After(at)) {
					t.Fatalf("variant %d: apns %+v, %v", v, m, err)
				}
			}
			if s.HasMessage(v, PlatformAndroid) {
				if _, err := s.RenderFCM("c", v, "project"); err != nil {
					t.Fatalf("variant %d: fcm %v", v, err)
				}
			}
		}
	})
}

// TestSpreadOrder: every range once, and the first ranges enqueued spread over the whole
// audience (the first two are at its start and its middle).
func TestSpreadOrder(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 5, 8, 13, 64, 100} {
		got := spreadOrder(n)
		seen := map[int]bool{}
		for _, i := range got {
			if i < 0 || i >= n || seen[i] {
				t.Fatalf("spreadOrder(%d) = %v: %d out of range or repeated", n, got, i)
			}
			seen[i] = true
		}
		if len(got) != n {
			t.Fatalf("spreadOrder(%d) = %v: %d ranges", n, got, len(got))
		}
		if n >= 4 {
			// The first half of the order covers both halves of the audience evenly.
			low := 0
			for _, i := range got[:n/2] {
				if i < (n+1)/2 {
					low++
				}
			}
			if d := 2*low - n/2; d < -1 || d > 1 {
				t.Fatalf("spreadOrder(%d) = %v: %d of the first %d in the lower half", n, got, low, n/2)
			}
		}
	}
}
