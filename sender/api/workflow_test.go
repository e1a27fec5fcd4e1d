package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/salvopush/salvo/sender/api"
)

// TestWorkflowRoles: the approval, test-push, edit, cancel and schedule routes take the
// roles docs/api.md gives them. A call that passes the role check meets the next refusal
// (404 no such campaign or rule, 409 no transports), which the table names.
func TestWorkflowRoles(t *testing.T) {
	t.Parallel()
	srv, _ := newAPI(t, 0)
	const edit = `{"message":{"fcm":{"title":"t"}}}`
	const rule = `{"id":"r","cron":"0 9 * * *","campaign":` + goodCampaign + `}`
	checkRoutes(t, srv, []routeCase{
		// Approve and reject take the approver role (admin has it).
		{"creator approves", "POST", "/v1/campaigns/x/approve", tokens["creator"], "", 403},
		{"operator approves", "POST", "/v1/campaigns/x/approve", tokens["operator"], "", 403},
		{"admin approves", "POST", "/v1/campaigns/x/approve", tokens["admin"], "", 404},
		{"viewer rejects", "POST", "/v1/campaigns/x/reject", tokens["viewer"], `{"reason":"no"}`, 403},
		{"admin rejects", "POST", "/v1/campaigns/x/reject", tokens["admin"], `{"reason":"no"}`, 404},
		// Editing the message is the creator's.
		{"viewer edits", "PUT", "/v1/campaigns/x/message", tokens["viewer"], edit, 403},
		{"operator edits", "PUT", "/v1/campaigns/x/message", tokens["operator"], edit, 403},
		{"creator edits", "PUT", "/v1/campaigns/x/message", tokens["creator"], edit, 404},
		// Anyone may send themselves a test push (this server has no transports: 409).
		{"viewer test-pushes", "POST", "/v1/campaigns/x/test-push", tokens["viewer"], "", 409},
		{"no token test-pushes", "POST", "/v1/campaigns/x/test-push", "", "", 401},
		// Cancelling a scheduled send is the operator's, like abort.
		{"creator cancels", "POST", "/v1/campaigns/x/cancel", tokens["creator"], "", 403},
		{"operator cancels", "POST", "/v1/campaigns/x/cancel", tokens["operator"], "", 404},
		// Rules: created by creators, read by viewers, stopped by operators.
		{"viewer creates a rule", "POST", "/v1/schedules", tokens["viewer"], rule, 403},
		{"creator creates a rule", "POST", "/v1/schedules", tokens["creator"], rule, 201},
		{"viewer lists rules", "GET", "/v1/schedules", tokens["viewer"], "", 200},
		{"creator stops a rule", "DELETE", "/v1/schedules/r", tokens["creator"], "", 403},
		{"operator stops an unknown rule", "DELETE", "/v1/schedules/nope", tokens["operator"], "", 404},
		// Bodies are checked as everywhere: unknown fields refused.
		{"approve with a stray field", "POST", "/v1/campaigns/x/approve", tokens["admin"], `{"ok":true}`, 400},
	})
}

// TestApprovalAnswers: the creator approving their own campaign is 403 (whatever their
// roles), GO before the approvals is 409 saying how many are missing, a rejection needs a
// reason (400 naming it), and a send time in the past is 400 naming send_at.
func TestApprovalAnswers(t *testing.T) {
	t.Parallel()
	srv, _ := newAPI(t, 0)
	body := `{"id":"c","name":"n","approvals_required":2,"audience":{"user_ids":["u1"]},"message":{"fcm":{"title":"t"}}}`
	if code, resp := call(t, srv, "POST", "/v1/campaigns", tokens["admin"], strings.NewReader(body)); code != 202 {
		t.Fatalf("create: %d %s", code, resp)
	}
	tests := []struct {
		name, method, path, body string
		want                     int
		says                     string
	}{
		{"own approval", "POST", "/v1/campaigns/c/approve", "", 403, "may not approve"},
		{"go without approvals", "POST", "/v1/campaigns/c/go", "", 409, "missing 2 of its 2 approvals"},
		{"reject without reason", "POST", "/v1/campaigns/c/reject", `{}`, 400, `"field": "reason"`},
		{"send_at passed", "POST", "/v1/campaigns", `{"name":"n","send_at":"2020-01-01T00:00:00Z","audience":{"user_ids":["u1"]},"message":{"fcm":{"title":"t"}}}`, 400, `"field": "send_at"`},
		{"status names the approvals", "GET", "/v1/campaigns/c", "", 200, `"missing": 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rd io.Reader
			if tt.body != "" {
				rd = strings.NewReader(tt.body)
			}
			code, resp := call(t, srv, tt.method, tt.path, tokens["admin"], rd)
			if code != tt.want || !strings.Contains(resp, tt.says) {
				t.Fatalf("%d %s, want %d saying %q", code, resp, tt.want, tt.says)
			}
		})
	}
}

// TestConsoleMount: with a console, / sends browsers to /console/, which needs no token
// (its files hold no data); without one, neither route exists.
func TestConsoleMount(t *testing.T) {
	t.Parallel()
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "console") })
	tests := []struct {
		name    string
		console http.Handler
		path    string
		want    int
	}{
		{"root redirects", page, "/", http.StatusFound},
		{"console open", page, "/console/", 200},
		{"no console", nil, "/console/", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := api.New(api.Config{Console: tt.console})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != tt.want {
				t.Fatalf("GET %s: %d, want %d", tt.path, rec.Code, tt.want)
			}
			if tt.want == http.StatusFound && rec.Header().Get("Location") != "/console/" {
				t.Fatalf("redirect to %q", rec.Header().Get("Location"))
			}
		})
	}
}
