package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/auth"
	"github.com/salvopush/salvo/sender/localstore"
	"github.com/salvopush/salvo/sender/memqueue"
)

// nobody is a registry with no users: these tests never get past creation.
type nobody struct{}

func (nobody) Devices(_ context.Context, ids []string) ([][]sender.Device, error) {
	return make([][]sender.Device, len(ids)), nil
}

// tokens of the test users, by name.
var tokens = map[string]string{"viewer": "t-viewer", "creator": "t-creator", "operator": "t-operator", "admin": "t-admin"}

func newAPI(t *testing.T, maxUpload int64, routes ...api.Route) (*httptest.Server, *localstore.Store) {
	t.Helper()
	objects, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ranges, err := memqueue.New(memqueue.Config{FIFO: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ranges.Close() })
	svc, err := sender.NewService(sender.ServiceConfig{Registry: nobody{}, Objects: objects,
		Records: localstore.NewRecords(), Ranges: ranges})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	var f auth.File
	for name, tok := range tokens {
		f.Users = append(f.Users, auth.User{Name: name, TokenSHA256: auth.Hash(tok), Roles: []auth.Role{auth.Role(name)}})
	}
	data, _ := jsonOf(f)
	users, err := auth.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	hs := api.NewServer(api.New(api.Config{Service: svc, Objects: objects, Users: users, MaxUpload: maxUpload, Routes: routes}), api.Limits{})
	srv := httptest.NewUnstartedServer(hs.Handler)
	srv.Config = hs
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, objects
}

func call(t *testing.T, srv *httptest.Server, method, path, token string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const goodCampaign = `{"name":"n","audience":{"user_ids":["u1"]},"message":{"fcm":{"title":"t","body":"b"}}}`

// extraRoute is a route served for another package: it answers "extra <id>", or
// sender.ErrNotFound for the campaign "missing".
var extraRoute = api.Route{Pattern: "GET /v1/campaigns/{id}/extra", Role: auth.Viewer,
	Serve: func(w http.ResponseWriter, r *http.Request) error {
		if r.PathValue("id") == "missing" {
			return fmt.Errorf("campaign missing: %w", sender.ErrNotFound)
		}
		_, err := io.WriteString(w, "extra "+r.PathValue("id"))
		return err
	}}

func TestAuthAndRoles(t *testing.T) {
	t.Parallel()
	srv, _ := newAPI(t, 0, extraRoute)
	checkRoutes(t, srv, []routeCase{
		// Health needs no token.
		{"healthz open", "GET", "/healthz", "", "", 200},
		// Every other route needs one.
		{"list without token", "GET", "/v1/campaigns", "", "", 401},
		{"create without token", "POST", "/v1/campaigns", "", goodCampaign, 401},
		{"go without token", "POST", "/v1/campaigns/x/go", "", "", 401},
		// A token nobody holds, or a malformed header, is the same as none.
		{"unknown token", "GET", "/v1/campaigns", "nope", "", 401},
		// Reads take viewer; a viewer cannot create or press.
		{"viewer reads", "GET", "/v1/campaigns", tokens["viewer"], "", 200},
		{"viewer creates", "POST", "/v1/campaigns", tokens["viewer"], goodCampaign, 403},
		{"viewer presses", "POST", "/v1/campaigns/x/go", tokens["viewer"], "", 403},
		// A creator creates but may not press GO or abort.
		{"creator creates", "POST", "/v1/campaigns", tokens["creator"], goodCampaign, 202},
		{"creator presses", "POST", "/v1/campaigns/x/go", tokens["creator"], "", 403},
		{"creator aborts", "POST", "/v1/campaigns/x/abort", tokens["creator"], "", 403},
		// An operator passes the role check (404: no such campaign).
		{"operator presses", "POST", "/v1/campaigns/x/go", tokens["operator"], "", 404},
		{"operator creates", "POST", "/v1/campaigns", tokens["operator"], goodCampaign, 403},
		// Admin does everything.
		{"admin aborts", "POST", "/v1/campaigns/x/abort", tokens["admin"], "", 404},
		{"whoami", "GET", "/v1/whoami", tokens["viewer"], "", 200},
		// A route added through Config.Routes is behind the same guard.
		{"extra route without token", "GET", "/v1/campaigns/c/extra", "", "", 401},
		{"extra route without its role", "GET", "/v1/campaigns/c/extra", tokens["creator"], "", 403},
		{"extra route", "GET", "/v1/campaigns/c/extra", tokens["viewer"], "", 200},
		// Its errors are answered as the API's own.
		{"extra route error", "GET", "/v1/campaigns/missing/extra", tokens["viewer"], "", 404},
	})
}

// routeCase is one row of a route table: a call and the status it must get.
type routeCase struct {
	name         string
	method, path string
	token        string
	body         string
	want         int
}

// checkRoutes makes every call of the table, in order, as a subtest.
func checkRoutes(t *testing.T, srv *httptest.Server, tests []routeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			code, resp := call(t, srv, tt.method, tt.path, tt.token, body)
			if code != tt.want {
				t.Fatalf("%s %s: %d %s, want %d", tt.method, tt.path, code, resp, tt.want)
			}
		})
	}
}

// TestClientGet checks that Client.Get returns a body as it is, and an *APIError for an
// error answer.
func TestClientGet(t *testing.T) {
	t.Parallel()
	srv, _ := newAPI(t, 0, extraRoute)
	c := &api.Client{URL: srv.URL, HTTP: srv.Client(), Token: tokens["viewer"]}
	body, err := c.Get(t.Context(), "/v1/campaigns/c1/extra")
	if err != nil || string(body) != "extra c1" {
		t.Fatalf("Get = %q, %v; want \"extra c1\"", body, err)
	}
	_, err = c.Get(t.Context(), "/v1/campaigns/missing/extra")
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Status != 404 || !strings.Contains(ae.Error(), "campaign missing") {
		t.Fatalf("Get of a missing campaign = %v, want a 404 APIError naming it", err)
	}
}

func TestCreateRefusesBadBodies(t *testing.T) {
	t.Parallel()
	srv, _ := newAPI(t, 0)
	tests := []struct {
		name, body, wantInError string
	}{
		// Trailing garbage after the object.
		{"trailing garbage", goodCampaign + ` {"x":1}`, "after the JSON value"},
		{"trailing text", goodCampaign + `xyz`, "after the JSON value"},
		// Unknown fields are named.
		{"unknown field", `{"name":"n","colour":"red"}`, "colour"},
		// A TTL that would overflow a duration.
		{"huge ttl", `{"name":"n","ttl_seconds":9300000000,"audience":{"user_ids":["u1"]},"message":{"fcm":{"title":"t"}}}`, "ttl_seconds"},
		// A deadline past the TTL.
		{"deadline past ttl", `{"name":"n","ttl_seconds":60,"delivery_deadline_seconds":120,"audience":{"user_ids":["u1"]},"message":{"fcm":{"title":"t"}}}`, "delivery_deadline_seconds"},
		// An empty body.
		{"empty", ``, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, resp := call(t, srv, "POST", "/v1/campaigns", tokens["creator"], strings.NewReader(tt.body))
			if code != 400 || !strings.Contains(resp, tt.wantInError) {
				t.Fatalf("%d %s, want 400 naming %q", code, resp, tt.wantInError)
			}
		})
	}
}

// TestCreateWarnsOfMissingPlatforms: an FCM-only message is accepted with a warning that
// iOS devices are left out (and counted at resolution), not silently.
func TestCreateWarnsOfMissingPlatforms(t *testing.T) {
	t.Parallel()
	srv, _ := newAPI(t, 0)
	code, resp := call(t, srv, "POST", "/v1/campaigns", tokens["creator"], strings.NewReader(goodCampaign))
	if code != 202 || !strings.Contains(resp, "no ios message") {
		t.Fatalf("%d %s", code, resp)
	}
}

// TestUploadLimit: an upload over the limit is refused while it is read (413) and stores
// nothing; one within it is stored whole.
func TestUploadLimit(t *testing.T) {
	t.Parallel()
	srv, objects := newAPI(t, 1<<20)
	big := io.LimitReader(zeros{}, 5<<20) // no Content-Length: the limit bites while reading
	code, resp := call(t, srv, "PUT", "/v1/objects/audiences/big.csv", tokens["creator"], io.NopCloser(big))
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("big upload: %d %s", code, resp)
	}
	if _, err := objects.Get(context.Background(), "audiences/big.csv"); !errors.Is(err, sender.ErrNotFound) {
		t.Fatalf("a refused upload left an object: %v", err)
	}
	small := strings.Repeat("user_id\n", 1000)
	if code, resp := call(t, srv, "PUT", "/v1/objects/audiences/small.csv", tokens["creator"], strings.NewReader(small)); code != 201 {
		t.Fatalf("small upload: %d %s", code, resp)
	}
	got, err := objects.Get(context.Background(), "audiences/small.csv")
	if err != nil || string(got) != small {
		t.Fatalf("stored %d bytes (%v), want %d", len(got), err, len(small))
	}
	// Keys under campaigns/ and runs/ belong to the pipeline.
	if code, _ := call(t, srv, "PUT", "/v1/objects/campaigns/x/manifest.json", tokens["creator"], strings.NewReader("{}")); code != 400 {
		t.Fatalf("upload under campaigns/: %d", code)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestSlowBodyIsCutOff: a client trickling its body is cut off after the grace period
// instead of holding its connection, and the server keeps answering others.
func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	objects, _ := localstore.Open(t.TempDir())
	ranges, _ := memqueue.New(memqueue.Config{FIFO: true})
	defer ranges.Close()
	svc, _ := sender.NewService(sender.ServiceConfig{Registry: nobody{}, Objects: objects, Records: localstore.NewRecords(), Ranges: ranges})
	defer svc.Close()
	lim := api.Limits{BodyGrace: 300 * time.Millisecond, MinBodyRate: 1000, MaxConns: 64}
	ln, err := api.Listen("127.0.0.1:0", lim)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(api.New(api.Config{Service: svc, Objects: objects}), lim)
	go srv.Serve(ln)
	defer srv.Close()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /v1/objects/audiences/slow.csv HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
	closed := make(chan error, 1)
	go func() {
		// One byte at a time, far below the minimum rate, until the server closes on us.
		for i := 0; i < 200; i++ {
			if _, err := conn.Write([]byte("a")); err != nil {
				closed <- err
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		closed <- nil
	}()
	resp := make([]byte, 512)
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, _ := conn.Read(resp)
	if !bytes.Contains(resp[:n], []byte(" 408 ")) {
		t.Fatalf("slow body answered %q, want 408", resp[:n])
	}
	// Meanwhile and after, others are served.
	r, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", r, err)
	}
	r.Body.Close()
	if _, err := objects.Get(context.Background(), "audiences/slow.csv"); !errors.Is(err, sender.ErrNotFound) {
		t.Fatalf("a cut-off upload left an object: %v", err)
	}
}

func jsonOf(v any) ([]byte, error) { return json.Marshal(v) }

// TestRefusalClosesAnUnreadBody: an answer given before the body was read (here 401, no
// token) is sent at once and the connection closed, without waiting for a body that may
// never come.
func TestRefusalClosesAnUnreadBody(t *testing.T) {
	t.Parallel()
	srv, _ := newAPI(t, 0)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /v1/objects/audiences/a.csv HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := io.ReadAll(conn) // returns once the server closes
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, resp)
	}
	if !bytes.Contains(resp, []byte(" 401 ")) || !bytes.Contains(resp, []byte("Connection: close")) {
		t.Fatalf("answer %q, want 401 and Connection: close", resp)
	}
}
