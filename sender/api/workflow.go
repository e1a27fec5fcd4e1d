package api

import (
	"net/http"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/auth"
)

// maxReason bounds a reason given with a reject, cancel or abort.
const maxReason = 1000

// ReasonRequest is the body of reject, cancel and a rule's DELETE: why.
type ReasonRequest struct {
	Reason string `json:"reason,omitempty"`
}

// decodeReason reads an optional ReasonRequest; it answers 400 itself and reports false on a
// bad body.
func decodeReason(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req ReasonRequest
	if err := decodeBody(w, r, &req, true); err != nil {
		writeJSON(w, 400, ErrorResponse{Error: err.Error()})
		return "", false
	}
	if len(req.Reason) > maxReason {
		writeJSON(w, 400, ErrorResponse{Error: "at most 1000 bytes", Field: "reason"})
		return "", false
	}
	return req.Reason, true
}

// CampaignAnswer answers approve, reject, edit and cancel: the record and where its
// approvals stand.
type CampaignAnswer struct {
	Campaign *sender.CampaignRecord `json:"campaign"`
	Approval sender.ApprovalStatus  `json:"approval"`
}

func writeCampaign(w http.ResponseWriter, rec *sender.CampaignRecord, err error) {
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 200, CampaignAnswer{Campaign: rec, Approval: rec.ApprovalStatus()})
}

func (h *Handler) approve(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decodeBody(w, r, &req, true); err != nil {
		writeJSON(w, 400, ErrorResponse{Error: err.Error()})
		return
	}
	rec, err := h.cfg.Service.Approve(r.Context(), r.PathValue("id"))
	writeCampaign(w, rec, err)
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request) {
	reason, ok := decodeReason(w, r)
	if !ok {
		return
	}
	rec, err := h.cfg.Service.Reject(r.Context(), r.PathValue("id"), reason)
	writeCampaign(w, rec, err)
}

func (h *Handler) editMessage(w http.ResponseWriter, r *http.Request) {
	var edit sender.MessageEdit
	if err := decodeBody(w, r, &edit, false); err != nil {
		writeJSON(w, 400, ErrorResponse{Error: err.Error()})
		return
	}
	rec, err := h.cfg.Service.EditMessage(r.Context(), r.PathValue("id"), edit)
	writeCampaign(w, rec, err)
}

func (h *Handler) testPush(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decodeBody(w, r, &req, true); err != nil {
		writeJSON(w, 400, ErrorResponse{Error: err.Error()})
		return
	}
	u, _ := r.Context().Value(userKey{}).(*auth.User)
	rep, err := h.cfg.Service.TestPush(r.Context(), r.PathValue("id"), u.UserID)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 200, rep)
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) {
	reason, ok := decodeReason(w, r)
	if !ok {
		return
	}
	rec, err := h.cfg.Service.Cancel(r.Context(), r.PathValue("id"), reason)
	writeCampaign(w, rec, err)
}

func (h *Handler) createRule(w http.ResponseWriter, r *http.Request) {
	var spec sender.RuleSpec
	if err := decodeBody(w, r, &spec, false); err != nil {
		writeJSON(w, 400, ErrorResponse{Error: err.Error()})
		return
	}
	rl, err := h.cfg.Service.CreateRule(r.Context(), spec)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 201, rl)
}

func (h *Handler) listRules(w http.ResponseWriter, r *http.Request) {
	rules, err := h.cfg.Service.ListRules(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 200, map[string]any{"schedules": rules})
}

func (h *Handler) cancelRule(w http.ResponseWriter, r *http.Request) {
	reason, ok := decodeReason(w, r)
	if !ok {
		return
	}
	rl, err := h.cfg.Service.CancelRule(r.Context(), r.PathValue("id"), reason)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 200, rl)
}
