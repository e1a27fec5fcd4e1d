package console_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/salvopush/salvo/sender/console"
)

// TestHandlerHeaders: the console's files come with the headers that keep the GO button
// out of other sites' frames and scripts to the console's own origin.
func TestHandlerHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path, contentType string
		status            int
	}{
		{"/console/", "text/html", 200},
		{"/console/app.js", "text/javascript", 200},
		{"/console/style.css", "text/css", 200},
		// Nothing but the embedded files.
		{"/console/secrets.json", "", 404},
	}
	srv := http.Handler(console.Handler())
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{header: http.Header{}}
			req, _ := http.NewRequest("GET", tt.path, nil)
			srv.ServeHTTP(rec, req)
			if rec.status != tt.status || !strings.HasPrefix(rec.header.Get("Content-Type"), tt.contentType) {
				t.Fatalf("status %d, type %q; want %d, %q", rec.status, rec.header.Get("Content-Type"), tt.status, tt.contentType)
			}
			for k, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
				if got := rec.header.Get(k); got != want {
					t.Fatalf("%s = %q, want %q", k, got, want)
				}
			}
			if csp := rec.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'self'") {
				t.Fatalf("Content-Security-Policy %q", csp)
			}
		})
	}
}

type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) { r.status = code }
