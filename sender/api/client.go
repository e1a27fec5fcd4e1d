package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/salvopush/salvo/sender"
)

// Client calls the campaign API. The zero HTTP uses http.DefaultClient.
type Client struct {
	// URL is the API's base URL, e.g. "http://127.0.0.1:8080".
	URL  string
	HTTP *http.Client
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
}

// APIError is a non-2xx answer.
type APIError struct {
	Status int
	ErrorResponse
}

func (e *APIError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("api: %d: %s (field %s)", e.Status, e.ErrorResponse.Error, e.Field)
	}
	return fmt.Sprintf("api: %d: %s", e.Status, e.ErrorResponse.Error)
}

// PutObject uploads data (an audience file) under key.
func (c *Client) PutObject(ctx context.Context, key string, data []byte) error {
	return c.do(ctx, http.MethodPut, "/v1/objects/"+escapeKey(key), data, nil)
}

// Create creates a campaign; id may be empty.
func (c *Client) Create(ctx context.Context, id string, spec sender.CampaignSpec) (*CreateResponse, error) {
	body, err := json.Marshal(CreateRequest{ID: id, CampaignSpec: spec})
	if err != nil {
		return nil, fmt.Errorf("api: encode: %w", err)
	}
	var out CreateResponse
	return &out, c.do(ctx, http.MethodPost, "/v1/campaigns", body, &out)
}

// Status returns a campaign's status.
func (c *Client) Status(ctx context.Context, id string) (*sender.Status, error) {
	var out sender.Status
	return &out, c.do(ctx, http.MethodGet, "/v1/campaigns/"+url.PathEscape(id), nil, &out)
}

// Prepare asks workers workers to preload the campaign.
func (c *Client) Prepare(ctx context.Context, id string, workers int) error {
	body, _ := json.Marshal(map[string]int{"workers": workers})
	return c.do(ctx, http.MethodPost, "/v1/campaigns/"+url.PathEscape(id)+"/prepare", body, nil)
}

// Press presses GO.
func (c *Client) Press(ctx context.Context, id string) (*sender.PressResult, error) {
	var out sender.PressResult
	return &out, c.do(ctx, http.MethodPost, "/v1/campaigns/"+url.PathEscape(id)+"/go", nil, &out)
}

// Abort stops a campaign.
func (c *Client) Abort(ctx context.Context, id, reason string) (*sender.CampaignRecord, error) {
	body, _ := json.Marshal(AbortRequest{Reason: reason})
	var out sender.CampaignRecord
	return &out, c.do(ctx, http.MethodPost, "/v1/campaigns/"+url.PathEscape(id)+"/abort", body, &out)
}

// Redrive sends a finished campaign's failed recipients again.
func (c *Client) Redrive(ctx context.Context, id string) (*sender.SendInfo, error) {
	var out sender.SendInfo
	return &out, c.do(ctx, http.MethodPost, "/v1/campaigns/"+url.PathEscape(id)+"/redrive", nil, &out)
}

// List returns every campaign.
func (c *Client) List(ctx context.Context) ([]*sender.CampaignRecord, error) {
	var out struct {
		Campaigns []*sender.CampaignRecord `json:"campaigns"`
	}
	return out.Campaigns, c.do(ctx, http.MethodGet, "/v1/campaigns", nil, &out)
}

// Workers lists the workers' heartbeats.
func (c *Client) Workers(ctx context.Context) ([]sender.WorkerStatus, error) {
	var out struct {
		Workers []sender.WorkerStatus `json:"workers"`
	}
	return out.Workers, c.do(ctx, http.MethodGet, "/v1/workers", nil, &out)
}

// Get returns the body of a GET of path (e.g. "/v1/campaigns/c1/report", a route added
// through Config.Routes), or an *APIError for a non-2xx answer.
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	var out rawBody
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// rawBody takes a response body as it is.
type rawBody []byte

func escapeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.URL, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("api: %s %s: read: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(raw, &e.ErrorResponse) != nil || e.ErrorResponse.Error == "" {
			e.ErrorResponse.Error = strings.TrimSpace(string(raw))
		}
		return e
	}
	if rb, ok := out.(*rawBody); ok {
		*rb = raw
		return nil
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("api: %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}
