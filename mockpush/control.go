package mockpush

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxFaultsBody bounds a PUT /faults body.
const maxFaultsBody = 1 << 20

// controlHandler serves the control API:
//
//	GET  /stats                  Stats as JSON
//	POST /reset                  clears counters and receipts (204)
//	PUT  /faults                 sets Faults from a JSON body (200, the faults in force)
//	GET  /faults                 the faults in force as JSON
//	GET  /receipts?platform=P    P's receipts in the binary format of Receipts.MarshalBinary
//	GET  /accepted?campaign=ID   the tokens accepted for campaign ID, one `platform,token`
//	                             line per accepted request (Accepted.WriteTo); 409 unless
//	                             the server keeps them (Config.KeepAccepted)
func (s *Server) controlHandler() http.Handler {
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Stats()) })
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Faults()) })
	mux.HandleFunc("PUT /faults", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxFaultsBody))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f, err := ParseFaults(body)
		if err == nil {
			err = s.SetFaults(f)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, s.Faults())
	})
	mux.HandleFunc("GET /receipts", func(w http.ResponseWriter, r *http.Request) {
		rc, err := s.Receipts(r.URL.Query().Get("platform"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b, _ := rc.MarshalBinary()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	})
	mux.HandleFunc("GET /accepted", func(w http.ResponseWriter, r *http.Request) {
		campaign := r.URL.Query().Get("campaign")
		if campaign == "" {
			http.Error(w, "campaign is required", http.StatusBadRequest)
			return
		}
		a, err := s.Accepted(campaign)
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		a.WriteTo(w)
	})
	return mux
}

// Control is a client of the control API at URL (the ready file's control_url). HTTP nil
// means http.DefaultClient. Its methods are safe for concurrent use.
type Control struct {
	URL  string
	HTTP *http.Client
}

func (c *Control) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.URL, "/")+path, rd)
	if err != nil {
		return nil, fmt.Errorf("mockpush control: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("mockpush control: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("mockpush control: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("mockpush control: %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// Stats fetches GET /stats.
func (c *Control) Stats(ctx context.Context) (Stats, error) {
	b, err := c.do(ctx, http.MethodGet, "/stats", nil)
	if err != nil {
		return Stats{}, err
	}
	var s Stats
	if err := json.Unmarshal(b, &s); err != nil {
		return Stats{}, fmt.Errorf("mockpush control: stats: %w", err)
	}
	return s, nil
}

// Reset calls POST /reset.
func (c *Control) Reset(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodPost, "/reset", nil)
	return err
}

// SetFaults calls PUT /faults.
func (c *Control) SetFaults(ctx context.Context, f Faults) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("mockpush control: faults: %w", err)
	}
	_, err = c.do(ctx, http.MethodPut, "/faults", b)
	return err
}

// Faults fetches GET /faults.
func (c *Control) Faults(ctx context.Context) (Faults, error) {
	b, err := c.do(ctx, http.MethodGet, "/faults", nil)
	if err != nil {
		return Faults{}, err
	}
	return ParseFaults(b)
}

// Receipts fetches GET /receipts for platform "apns" or "fcm".
func (c *Control) Receipts(ctx context.Context, platform string) (Receipts, error) {
	b, err := c.do(ctx, http.MethodGet, "/receipts?platform="+url.QueryEscape(platform), nil)
	if err != nil {
		return Receipts{}, err
	}
	var r Receipts
	if err := r.UnmarshalBinary(b); err != nil {
		return Receipts{}, fmt.Errorf("mockpush control: %w", err)
	}
	return r, nil
}

// Accepted fetches GET /accepted for campaign: the tokens the mocks accepted for it since the
// last reset. A server that does not keep them answers 409, an error naming ErrNotKept's
// remedy.
func (c *Control) Accepted(ctx context.Context, campaign string) (Accepted, error) {
	b, err := c.do(ctx, http.MethodGet, "/accepted?campaign="+url.QueryEscape(campaign), nil)
	if err != nil {
		return Accepted{}, err
	}
	return ParseAccepted(bytes.NewReader(b))
}
