package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/salvopush/salvo/sender"
)

// campaignPath is the path of a campaign's action.
func campaignPath(id, action string) string {
	return "/v1/campaigns/" + url.PathEscape(id) + "/" + action
}

// jsonBody encodes v for a request.
func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("api: encode: %w", err)
	}
	return b, nil
}

// Approve approves a campaign as the client's user.
func (c *Client) Approve(ctx context.Context, id string) (*CampaignAnswer, error) {
	var out CampaignAnswer
	return &out, c.do(ctx, http.MethodPost, campaignPath(id, "approve"), []byte("{}"), &out)
}

// Reject rejects a campaign with a reason.
func (c *Client) Reject(ctx context.Context, id, reason string) (*CampaignAnswer, error) {
	return c.withReason(ctx, http.MethodPost, campaignPath(id, "reject"), reason)
}

// Cancel cancels a scheduled campaign before its time.
func (c *Client) Cancel(ctx context.Context, id, reason string) (*CampaignAnswer, error) {
	return c.withReason(ctx, http.MethodPost, campaignPath(id, "cancel"), reason)
}

func (c *Client) withReason(ctx context.Context, method, path, reason string) (*CampaignAnswer, error) {
	body, err := jsonBody(ReasonRequest{Reason: reason})
	if err != nil {
		return nil, err
	}
	var out CampaignAnswer
	return &out, c.do(ctx, method, path, body, &out)
}

// EditMessage replaces a campaign's message before GO.
func (c *Client) EditMessage(ctx context.Context, id string, edit sender.MessageEdit) (*CampaignAnswer, error) {
	body, err := jsonBody(edit)
	if err != nil {
		return nil, err
	}
	var out CampaignAnswer
	return &out, c.do(ctx, http.MethodPut, campaignPath(id, "message"), body, &out)
}

// TestPush sends the campaign's message to the client's user's own devices.
func (c *Client) TestPush(ctx context.Context, id string) (*sender.TestPushReport, error) {
	var out sender.TestPushReport
	return &out, c.do(ctx, http.MethodPost, campaignPath(id, "test-push"), []byte("{}"), &out)
}

// CreateRule creates a recurring rule.
func (c *Client) CreateRule(ctx context.Context, spec sender.RuleSpec) (*sender.Rule, error) {
	body, err := jsonBody(spec)
	if err != nil {
		return nil, err
	}
	var out sender.Rule
	return &out, c.do(ctx, http.MethodPost, "/v1/schedules", body, &out)
}

// Rules lists the recurring rules.
func (c *Client) Rules(ctx context.Context) ([]*sender.Rule, error) {
	var out struct {
		Schedules []*sender.Rule `json:"schedules"`
	}
	return out.Schedules, c.do(ctx, http.MethodGet, "/v1/schedules", nil, &out)
}

// CancelRule stops a recurring rule.
func (c *Client) CancelRule(ctx context.Context, id, reason string) (*sender.Rule, error) {
	body, err := jsonBody(ReasonRequest{Reason: reason})
	if err != nil {
		return nil, err
	}
	var out sender.Rule
	return &out, c.do(ctx, http.MethodDelete, "/v1/schedules/"+url.PathEscape(id), body, &out)
}
