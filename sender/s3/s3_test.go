package s3_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/salvopush/salvo/localstack/npmemu"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/s3"
)

func TestMain(m *testing.M) { os.Exit(npmemu.Run(m)) }

// counter counts the S3 requests of interest.
type counter struct {
	next                               aws.HTTPClient
	uploadParts, rangedGets, listPages atomic.Int64
}

func (c *counter) Do(r *http.Request) (*http.Response, error) {
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPut && q.Has("partNumber"):
		c.uploadParts.Add(1)
	case r.Method == http.MethodGet && r.Header.Get("Range") != "":
		c.rangedGets.Add(1)
	case r.Method == http.MethodGet && q.Get("list-type") == "2":
		c.listPages.Add(1)
	}
	return c.next.Do(r)
}

// newStore creates a bucket unique to the test and a Store over it whose requests c counts.
func newStore(t *testing.T, opts s3.Options) (*s3.Store, *awss3.Client, *counter) {
	t.Helper()
	ep := npmemu.Start(t)
	cfg, err := ep.AWSConfig().AWS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{}
	client := awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(ep.S3)
		o.UsePathStyle = true
		c.next = o.HTTPClient
		o.HTTPClient = c
	})
	bucket := fmt.Sprintf("t%d", time.Now().UnixNano())
	if err := s3.CreateBucket(t.Context(), client, bucket); err != nil {
		t.Fatal(err)
	}
	st, err := s3.New(client, bucket, opts)
	if err != nil {
		t.Fatal(err)
	}
	return st, client, c
}

func random(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	_, _ = r.Read(b)
	return b
}

func TestRoundTrip(t *testing.T) {
	const part = s3.MinPartSize
	st, _, c := newStore(t, s3.Options{PartSize: part, MultipartThreshold: part, Concurrency: 4})
	tests := []struct {
		name       string
		size       int
		wantParts  int64 // UploadPart requests
		wantRanged int64 // ranged GET requests
	}{
		// An empty object (e.g. an empty feedback file) round-trips.
		{"empty", 0, 0, 0},
		// A small manifest: one PUT, one plain GET.
		{"small", 1 << 10, 0, 0},
		// Just under the threshold: still one PUT; one part's worth, so one plain GET.
		{"one part", part - 1, 0, 0},
		// A 20 MiB shard: 4 parts up, 4 ranges down in parallel.
		{"20 MiB shard", 20 << 20, 4, 4},
		// An odd size: the last part and range are short.
		{"odd size", 20<<20 + 12345, 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := random(tt.size)
			key := "campaigns/c1/" + tt.name
			parts, ranged := c.uploadParts.Load(), c.rangedGets.Load()
			if err := st.Put(t.Context(), key, data); err != nil {
				t.Fatal(err)
			}
			got, err := st.Get(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes back, want the %d put (contents differ)", len(got), len(data))
			}
			if n := c.uploadParts.Load() - parts; n != tt.wantParts {
				t.Errorf("UploadPart requests: %d, want %d", n, tt.wantParts)
			}
			if n := c.rangedGets.Load() - ranged; n != tt.wantRanged {
				t.Errorf("ranged GETs: %d, want %d", n, tt.wantRanged)
			}
		})
	}
}

func TestOverwrite(t *testing.T) {
	st, _, _ := newStore(t, s3.Options{})
	for _, v := range []string{"first", "second"} {
		if err := st.Put(t.Context(), "results/run1/report.json", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Get(t.Context(), "results/run1/report.json")
	if err != nil || string(got) != "second" {
		t.Fatalf("Get = %q, %v; want the second write", got, err)
	}
}

func TestNotFound(t *testing.T) {
	st, _, _ := newStore(t, s3.Options{})
	_, err := st.Get(t.Context(), "campaigns/missing")
	if !errors.Is(err, sender.ErrNotFound) {
		t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
	}
}

func TestListPagination(t *testing.T) {
	st, _, c := newStore(t, s3.Options{ListPageSize: 3})
	keys := []string{"a/1", "a/2", "a/3", "a/4", "a/5", "a/6", "a/7", "ab", "b/1"}
	for _, k := range slices.Backward(keys) {
		if err := st.Put(t.Context(), k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix    string
		want      []string
		wantPages int64
	}{
		// Seven keys in pages of three: three pages.
		{"a/", keys[:7], 3},
		// A prefix that is not a folder matches by characters.
		{"a", keys[:8], 3},
		// Everything.
		{"", keys, 3},
		// Nothing matches: one empty page.
		{"zzz", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			before := c.listPages.Load()
			got, err := st.List(t.Context(), tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
			}
			if n := c.listPages.Load() - before; n != tt.wantPages {
				t.Errorf("List(%q) read %d pages, want %d", tt.prefix, n, tt.wantPages)
			}
		})
	}
}

func TestCreateBucketTwice(t *testing.T) {
	st, client, _ := newStore(t, s3.Options{})
	if err := s3.CreateBucket(t.Context(), client, st.Bucket()); err != nil {
		t.Fatalf("second CreateBucket: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts s3.Options
		ok   bool
	}{
		// Zero value: defaults.
		{"zero", s3.Options{}, true},
		// Parts under 5 MiB are refused by S3, so by Validate too.
		{"tiny parts", s3.Options{PartSize: 1 << 20}, false},
		// S3 pages hold at most 1000 keys.
		{"huge pages", s3.Options{ListPageSize: 5000}, false},
	}
	for _, tt := range tests {
		if err := tt.opts.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
