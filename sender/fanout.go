package sender

import (
	"context"
	"encoding/json"
)

// BatchMessage is the body of a batch message: recipients [Start, Start+Count) of a
// campaign, all in one segment.
type BatchMessage struct {
	Campaign  string `json:"c"`
	Send      string `json:"send"`
	PressedAt int64  `json:"p"` // unix nanoseconds
	Start     uint32 `json:"s"`
	Count     uint32 `json:"n"`
}

// fanoutLoop turns range messages into batch messages.
func (w *Worker) fanoutLoop(ctx context.Context) error {
	var out []OutMessage
	for ctx.Err() == nil {
		msgs, err := w.cfg.Ranges.Receive(ctx, 10, w.cfg.Wait)
		if err != nil {
			if ctx.Err() == nil {
				w.cfg.Log.Warn("fanout: receive", "err", err)
				sleepCtx(ctx, w.cfg.Poll)
			}
			continue
		}
		for _, m := range msgs {
			var rm RangeMessage
			if err := json.Unmarshal(m.Body, &rm); err != nil || rm.End < rm.Start {
				w.cfg.Log.Error("fanout: dropping malformed range message", "id", m.ID, "err", err)
				_ = w.cfg.Ranges.Delete(ctx, []string{m.Receipt})
				continue
			}
			c, err := w.campaign(ctx, rm.Campaign)
			if err != nil {
				w.cfg.Log.Warn("fanout: campaign", "campaign", rm.Campaign, "err", err)
				continue // the message comes back after its visibility timeout
			}
			out = w.cutBatches(out[:0], &c.manifest, rm)
			if err := w.cfg.Batches.Send(ctx, out); err != nil {
				w.cfg.Log.Warn("fanout: send batches", "err", err)
				continue // redelivered; the ledger makes repeated batches harmless
			}
			if err := w.cfg.Ranges.Delete(ctx, []string{m.Receipt}); err != nil {
				w.cfg.Log.Warn("fanout: delete range", "err", err)
			}
		}
	}
	return ctx.Err()
}

// cutBatches appends the batch messages of a range: its intersection with each segment, cut
// into batches of the platform's size.
func (w *Worker) cutBatches(out []OutMessage, m *Manifest, rm RangeMessage) []OutMessage {
	for _, seg := range m.Segments {
		lo, hi := max(rm.Start, seg.Start), min(rm.End, seg.Start+seg.Count)
		if lo >= hi {
			continue
		}
		size := uint32(w.cfg.BatchAndroid)
		if seg.Platform == PlatformIOS {
			size = uint32(w.cfg.BatchIOS)
		}
		for s := lo; s < hi; s += size {
			n := min(size, hi-s)
			body, _ := json.Marshal(BatchMessage{Campaign: rm.Campaign, Send: rm.Send, PressedAt: rm.PressedAt, Start: s, Count: n})
			out = append(out, OutMessage{Body: body})
		}
	}
	return out
}
