// Package api serves Salvo's campaign API over HTTP/JSON (documented in docs/api.md):
//
//	PUT  /v1/objects/{key...}         upload an audience file to the object store
//	POST /v1/campaigns                create a campaign (202, resolution runs in the background)
//	GET  /v1/campaigns                list campaigns
//	GET  /v1/campaigns/{id}           status: state, resolution progress, workers ready
//	POST /v1/campaigns/{id}/prepare   ask send workers to preload it ({"workers": N})
//	POST /v1/campaigns/{id}/go        the GO button (idempotent)
//	GET  /v1/workers                  workers' heartbeats and liveness (process mode)
//	GET  /healthz
//
// Usage:
//
//	svc, _ := sender.NewService(cfg)
//	srv := &http.Server{Handler: api.New(svc, objects)}
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/salvopush/salvo/sender"
)

// maxUpload bounds an uploaded audience file; maxBody a JSON request.
const (
	maxUpload = 1 << 30
	maxBody   = 64 << 20
)

// Handler serves the API. It holds no state of its own: every process serving it over the
// same stores sees the same campaigns, and GO stays exactly-once across them.
type Handler struct {
	svc     *sender.Service
	objects sender.ObjectStore
	mux     *http.ServeMux
}

// New returns the API handler.
func New(svc *sender.Service, objects sender.ObjectStore) *Handler {
	h := &Handler{svc: svc, objects: objects, mux: http.NewServeMux()}
	h.mux.HandleFunc("PUT /v1/objects/{key...}", h.putObject)
	h.mux.HandleFunc("POST /v1/campaigns", h.create)
	h.mux.HandleFunc("GET /v1/campaigns", h.list)
	h.mux.HandleFunc("GET /v1/campaigns/{id}", h.status)
	h.mux.HandleFunc("POST /v1/campaigns/{id}/prepare", h.prepare)
	h.mux.HandleFunc("POST /v1/campaigns/{id}/go", h.press)
	h.mux.HandleFunc("GET /v1/workers", h.workers)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

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
}

// ErrorResponse is every error's body.
type ErrorResponse struct {
	Error string `json:"error"`
	// Field names the offending field or audience line, when there is one.
	Field string `json:"field,omitempty"`
}

func (h *Handler) putObject(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if key == "" || strings.Contains(key, "..") || strings.HasPrefix(key, "campaigns/") {
		writeJSON(w, 400, ErrorResponse{Error: "bad object key (empty, has .., or under campaigns/)", Field: "key"})
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxUpload))
	if err != nil {
		writeJSON(w, 400, ErrorResponse{Error: "read body: " + err.Error()})
		return
	}
	if err := h.objects.Put(r.Context(), key, data); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 201, map[string]any{"key": key, "bytes": len(data)})
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var req CreateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, 400, ErrorResponse{Error: "body: " + err.Error()})
		return
	}
	rec, err := h.svc.Create(r.Context(), req.ID, req.CampaignSpec)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 202, CreateResponse{ID: rec.ID, State: rec.State, Users: rec.Resolution.UsersTotal, StatusURL: "/v1/campaigns/" + rec.ID})
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	recs, err := h.svc.List(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 200, map[string]any{"campaigns": recs})
}

func (h *Handler) workers(w http.ResponseWriter, r *http.Request) {
	ws, err := h.svc.Workers(r.Context())
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

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.svc.Status(r.Context(), r.PathValue("id"))
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
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			writeJSON(w, 400, ErrorResponse{Error: "body: " + err.Error()})
			return
		}
	}
	if req.Workers < 0 {
		writeJSON(w, 400, ErrorResponse{Error: "must not be negative", Field: "workers"})
		return
	}
	rec, err := h.svc.Prepare(r.Context(), r.PathValue("id"), req.Workers)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 202, rec)
}

func (h *Handler) press(w http.ResponseWriter, r *http.Request) {
	res, err := h.svc.Press(r.Context(), r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 200, res)
}

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
	case errors.Is(err, sender.ErrNotReady):
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
