// Package api serves Salvo's campaign API over HTTP/JSON (documented in docs/api.md):
//
//	PUT  /v1/objects/{key...}         upload an audience file to the object store   creator
//	POST /v1/campaigns                create a campaign (202, resolves in background)  creator
//	GET  /v1/campaigns                list campaigns                                   viewer
//	GET  /v1/campaigns/{id}           status: state, resolution, readiness, progress   viewer
//	POST /v1/campaigns/{id}/prepare   ask send workers to preload it ({"workers": N})  operator
//	POST /v1/campaigns/{id}/go        the GO button (idempotent)                       operator
//	POST /v1/campaigns/{id}/abort     stop it ({"reason": "..."})                      operator
//	POST /v1/campaigns/{id}/redrive   send its failed recipients again, once           operator
//	GET  /v1/workers                  workers' heartbeats and liveness (process mode)  viewer
//	GET  /v1/whoami                   the caller's name and roles                      any user
//	(Config.Routes)                   routes served for other packages, same guard     per route
//	GET  /healthz                     no authentication
//
// The operator's workflow (workflow.go):
//
//	POST   /v1/campaigns/{id}/approve    approve (not one's own; after a test push)     approver
//	POST   /v1/campaigns/{id}/reject     reject ({"reason": "..."}) until an edit       approver
//	PUT    /v1/campaigns/{id}/message    edit the message before GO (voids approvals)   creator
//	POST   /v1/campaigns/{id}/test-push  send it to the caller's own devices            any user
//	POST   /v1/campaigns/{id}/cancel     cancel a scheduled send before its time        operator
//	POST   /v1/schedules                 create a recurring rule                        creator
//	GET    /v1/schedules                 list recurring rules                           viewer
//	DELETE /v1/schedules/{id}            stop a recurring rule                          operator
//	GET    /console/                     the operator console (Config.Console; static, no token)
//
// With an auth file (sender/auth) every route but /healthz needs "Authorization: Bearer
// <token>": 401 without a valid one, 403 when the user lacks the route's role.
//
// Usage:
//
//	svc, _ := sender.NewService(cfg)
//	h := api.New(api.Config{Service: svc, Objects: objects, Users: users})
//	srv := api.Server(h, api.Limits{})
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/auth"
)

// Default limits on request bodies.
const (
	DefaultMaxUpload = 256 << 20 // an audience file; 4M user IDs of 40 bytes fit with room
	maxBody          = 8 << 20   // a JSON request
)

// Config is what the handler serves.
type Config struct {
	Service *sender.Service
	Objects sender.ObjectStore
	// Users checks bearer tokens; nil serves without authentication (every caller is
	// "anonymous" with every role), which only a loopback listener should do.
	Users *auth.Users
	// MaxUpload bounds an uploaded object (default DefaultMaxUpload); it is enforced while
	// reading, so a larger upload is refused without being held in memory.
	MaxUpload int64
	// Uploads bounds uploads in progress at once (default 8); more get 503.
	Uploads int
	// Console, when set, serves the operator console's static files under /console/ (they
	// hold no data: the console calls the API with the token its user enters), and / sends
	// browsers there.
	Console http.Handler
	// Routes are served beside the API's own, behind the same authentication and role
	// check (routes whose code lives outside this package, such as the campaign report).
	Routes []Route
}

// Route is a route served by the handler on behalf of another package.
type Route struct {
	// Pattern is a net/http.ServeMux pattern, e.g. "GET /v1/campaigns/{id}/report".
	Pattern string
	// Role is the role a caller needs ("": any authenticated user).
	Role auth.Role
	// Serve answers the request. When it returns an error without having written anything,
	// the error is answered as the API's own are (404 for sender.ErrNotFound, 409 for
	// sender.ErrNotReady, ...).
	Serve func(w http.ResponseWriter, r *http.Request) error
}

// Handler serves the API. It holds no campaign state of its own: every process serving it
// over the same stores sees the same campaigns, and GO stays exactly-once across them.
type Handler struct {
	cfg     Config
	mux     *http.ServeMux
	uploads chan struct{}
}

// New returns the API handler.
func New(cfg Config) *Handler {
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = DefaultMaxUpload
	}
	if cfg.Uploads <= 0 {
		cfg.Uploads = 8
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), uploads: make(chan struct{}, cfg.Uploads)}
	route := func(pattern string, role auth.Role, fn http.HandlerFunc) { h.mux.Handle(pattern, h.guard(role, fn)) }
	route("PUT /v1/objects/{key...}", auth.Creator, h.putObject)
	route("POST /v1/campaigns", auth.Creator, h.create)
	route("GET /v1/campaigns", auth.Viewer, h.list)
	route("GET /v1/campaigns/{id}", auth.Viewer, h.status)
	route("POST /v1/campaigns/{id}/prepare", auth.Operator, h.prepare)
	route("POST /v1/campaigns/{id}/go", auth.Operator, h.press)
	route("POST /v1/campaigns/{id}/abort", auth.Operator, h.abort)
	route("POST /v1/campaigns/{id}/redrive", auth.Operator, h.redrive)
	route("GET /v1/workers", auth.Viewer, h.workers)
	route("GET /v1/whoami", "", h.whoami)
	// The operator's workflow (workflow.go) and the console.
	route("POST /v1/campaigns/{id}/approve", auth.Approver, h.approve)
	route("POST /v1/campaigns/{id}/reject", auth.Approver, h.reject)
	route("PUT /v1/campaigns/{id}/message", auth.Creator, h.editMessage)
	route("POST /v1/campaigns/{id}/test-push", "", h.testPush)
	route("POST /v1/campaigns/{id}/cancel", auth.Operator, h.cancel)
	route("POST /v1/schedules", auth.Creator, h.createRule)
	route("GET /v1/schedules", auth.Viewer, h.listRules)
	route("DELETE /v1/schedules/{id}", auth.Operator, h.cancelRule)
	if cfg.Console != nil {
		h.mux.Handle("GET /console/", cfg.Console)
		h.mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
	}
	for _, rt := range cfg.Routes {
		route(rt.Pattern, rt.Role, serveRoute(rt.Serve))
	}
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// userKey carries the authenticated user in a request's context.
type userKey struct{}

// guard authenticates the caller and checks role ("" : any authenticated user), then puts
// the caller's name in the request's context for the service's audit log.
func (h *Handler) guard(role auth.Role, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := &auth.User{Name: "anonymous", Roles: []auth.Role{auth.Admin}}
		if h.cfg.Users != nil {
			var err error
			if u, err = h.cfg.Users.Authenticate(r.Header.Get("Authorization")); err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="salvo"`)
				w.Header().Set("Connection", "close") // do not wait for a body nobody will read
				writeJSON(w, http.StatusUnauthorized, ErrorResponse{Error: err.Error()})
				return
			}
			if role != "" && !u.Can(role) {
				w.Header().Set("Connection", "close")
				writeJSON(w, http.StatusForbidden, ErrorResponse{Error: fmt.Sprintf("user %s lacks the %s role this needs", u.Name, role)})
				return
			}
		}
		ctx := sender.WithActor(r.Context(), u.Name)
		next(w, r.WithContext(context.WithValue(ctx, userKey{}, u)))
	})
}

// CreateRequest is the body of POST /v1/campaigns: a campaign spec plus an optional ID.
type CreateRequest struct {
	ID string `json:"id,omitempty"`
	sender.CampaignSpec
}

// CreateResponse answers a create.
type CreateResponse struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Users     int64  `json:"users"`
	StatusURL string `json:"status_url"`
	// Warnings say what the campaign will leave out (e.g. devices of a platform the message
	// has no part for), counted in its status once resolved.
	Warnings []string `json:"warnings,omitempty"`
}

// ErrorResponse is every error's body.
type ErrorResponse struct {
	Error string `json:"error"`
	// Field names the offending field or audience line, when there is one.
	Field string `json:"field,omitempty"`
}

func (h *Handler) putObject(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if key == "" || strings.Contains(key, "..") || strings.HasPrefix(key, "campaigns/") || strings.HasPrefix(key, "runs/") {
		writeJSON(w, 400, ErrorResponse{Error: "bad object key (empty, has .., or under campaigns/ or runs/)", Field: "key"})
		return
	}
	if r.ContentLength > h.cfg.MaxUpload {
		writeJSON(w, http.StatusRequestEntityTooLarge, ErrorResponse{Error: fmt.Sprintf("upload of %d bytes exceeds the limit of %d", r.ContentLength, h.cfg.MaxUpload)})
		return
	}
	select {
	case h.uploads <- struct{}{}:
		defer func() { <-h.uploads }()
	default:
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: fmt.Sprintf("%d uploads in progress; try again shortly", cap(h.uploads))})
		return
	}
	body := http.MaxBytesReader(w, r.Body, h.cfg.MaxUpload)
	var n int64
	var err error
	if sp, ok := h.cfg.Objects.(sender.StreamPutter); ok {
		n, err = sp.PutStream(r.Context(), key, body)
	} else {
		var data []byte
		if data, err = io.ReadAll(body); err == nil {
			n, err = int64(len(data)), h.cfg.Objects.Put(r.Context(), key, data)
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, errSlowBody):
		writeJSON(w, http.StatusRequestTimeout, ErrorResponse{Error: err.Error() + "; nothing was stored"})
	case errors.As(err, &tooBig):
		writeJSON(w, http.StatusRequestEntityTooLarge, ErrorResponse{Error: fmt.Sprintf("upload exceeds the limit of %d bytes; nothing was stored", h.cfg.MaxUpload)})
	case err != nil:
		writeErr(w, err)
	default:
		writeJSON(w, 201, map[string]any{"key": key, "bytes": n})
	}
}

// decodeBody reads exactly one JSON value of at most maxBody bytes into v, refusing unknown
// fields and anything after the value. An empty body is allowed when optional is set.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if optional {
			return nil
		}
		return errors.New("body: empty; want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("body: data after the JSON value at byte %d", dec.InputOffset())
	}
	return nil
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var req CreateRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		writeJSON(w, 400, ErrorResponse{Error: err.Error()})
		return
	}
	rec, err := h.cfg.Service.Create(r.Context(), req.ID, req.CampaignSpec)
	if err != nil {
		writeErr(w, err)
		return
	}
	resp := CreateResponse{ID: rec.ID, State: rec.State, Users: rec.Resolution.UsersTotal, StatusURL: "/v1/campaigns/" + rec.ID}
	for _, p := range req.CampaignSpec.MissingPlatforms() {
		resp.Warnings = append(resp.Warnings, fmt.Sprintf("no %s message for every variant: those users' %s devices are left out and counted in resolution.no_message", p, p))
	}
	writeJSON(w, 202, resp)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	recs, err := h.cfg.Service.List(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 200, map[string]any{"campaigns": recs})
}

func (h *Handler) workers(w http.ResponseWriter, r *http.Request) {
	ws, err := h.cfg.Service.Workers(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	alive := 0
	for _, x := range ws {
		if x.Alive {
			alive++
		}
	}
	writeJSON(w, 200, map[string]any{"workers": ws, "alive": alive})
}

func (h *Handler) whoami(w http.ResponseWriter, r *http.Request) {
	u, _ := r.Context().Value(userKey{}).(*auth.User)
	writeJSON(w, 200, map[string]any{"name": u.Name, "roles": u.Roles, "user_id": u.UserID})
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.cfg.Service.Status(r.Context(), r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 200, st)
}

func (h *Handler) prepare(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Workers int `json:"workers"`
	}
	if err := decodeBody(w, r, &req, true); err != nil {
		writeJSON(w, 400, ErrorResponse{Error: err.Error()})
		return
	}
	if req.Workers < 0 || req.Workers > 10000 {
		writeJSON(w, 400, ErrorResponse{Error: "want 0 (one) to 10000", Field: "workers"})
		return
	}
	rec, err := h.cfg.Service.Prepare(r.Context(), r.PathValue("id"), req.Workers)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 202, rec)
}

func (h *Handler) press(w http.ResponseWriter, r *http.Request) {
	res, err := h.cfg.Service.Press(r.Context(), r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 200, res)
}

// AbortRequest is the body of POST /v1/campaigns/{id}/abort (optional).
type AbortRequest struct {
	Reason string `json:"reason,omitempty"`
}

func (h *Handler) abort(w http.ResponseWriter, r *http.Request) {
	reason, ok := decodeReason(w, r)
	if !ok {
		return
	}
	rec, err := h.cfg.Service.Abort(r.Context(), r.PathValue("id"), reason)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 202, rec)
}

func (h *Handler) redrive(w http.ResponseWriter, r *http.Request) {
	snd, err := h.cfg.Service.Redrive(r.Context(), r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 202, snd)
}

// serveRoute runs an extra route's Serve and answers its error, if it wrote nothing.
func serveRoute(serve func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ww := &wroteWriter{ResponseWriter: w}
		if err := serve(ww, r); err != nil && !ww.wrote {
			writeErr(w, err)
		}
	}
}

// wroteWriter remembers whether anything was written.
type wroteWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *wroteWriter) WriteHeader(code int) { w.wrote = true; w.ResponseWriter.WriteHeader(code) }
func (w *wroteWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}
func (w *wroteWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writeErr maps the service's errors to status codes.
func writeErr(w http.ResponseWriter, err error) {
	resp := ErrorResponse{Error: err.Error()}
	var fe *sender.FieldError
	if errors.As(err, &fe) {
		resp.Field = fe.Field
	}
	code := 500
	switch {
	case errors.Is(err, sender.ErrInvalid):
		code = 400
	case errors.Is(err, sender.ErrNotFound):
		code = 404
	case errors.Is(err, sender.ErrForbidden):
		code = 403
	case errors.Is(err, sender.ErrNotReady), errors.Is(err, sender.ErrFinished):
		code = 409
	}
	writeJSON(w, code, resp)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(w, "\n")
	}
}
