package sender

import (
	"context"
	"encoding/json"
	"time"
)

// BatchMessage is the body of a batch message: recipients [Start, Start+Count) of a
// campaign, all in one segment.
type BatchMessage struct {
	Campaign  string `json:"c"`
	Send      string `json:"send"`
	PressedAt int64  `json:"p"` // unix nanoseconds
	Start     uint32 `json:"s"`
	Count     uint32 `json:"n"`
	// Deadline (unix nanoseconds) is when transient failures stop being tried again (0:
	// the press plus the campaign's delivery deadline).
	Deadline int64 `json:"d,omitempty"`
}

// fanoutLoop turns range messages into batch messages until stop ends; a range being cut
// when it ends is finished with work (the worker's drain).
func (w *Worker) fanoutLoop(stop, work context.Context) error {
	var out []OutMessage
	for stop.Err() == nil {
		msgs, err := w.cfg.Ranges.Receive(stop, 10, w.cfg.Wait)
		if err != nil {
			if stop.Err() == nil {
				w.cfg.Log.Warn("fanout: receive", "err", err)
				sleepCtx(stop, w.cfg.Poll)
			}
			continue
		}
		for _, m := range msgs {
			var rm RangeMessage
			if err := json.Unmarshal(m.Body, &rm); err != nil || rm.End < rm.Start || rm.Campaign == "" {
				// A range nobody can read is lost to every worker: keep it for a person.
				w.cfg.Log.Error("fanout: malformed range message moved to the dead-letter queue", "id", m.ID, "err", err)
				if w.cfg.DeadLetters != nil {
					dl, _ := json.Marshal(DeadLetter{Reason: "malformed range message", Worker: w.cfg.ID, At: time.Now().UTC(), Raw: string(m.Body)})
					if err := w.cfg.DeadLetters.Send(work, []OutMessage{{Body: dl}}); err != nil {
						w.cfg.Log.Error("fanout: dead-letter queue", "err", err)
						continue
					}
				}
				_ = w.cfg.Ranges.Delete(work, []string{m.Receipt})
				continue
			}
			c, err := w.campaign(work, rm.Campaign)
			if err != nil {
				w.cfg.Log.Warn("fanout: campaign", "campaign", rm.Campaign, "err", err)
				continue // the message comes back after its visibility timeout
			}
			if !c.aborted.Load() {
				out = w.cutBatches(out[:0], &c.manifest, rm)
				if err := w.cfg.Batches.Send(work, out); err != nil {
					w.cfg.Log.Warn("fanout: send batches", "err", err)
					continue // redelivered; the ledger makes repeated batches harmless
				}
			}
			if err := w.cfg.Ranges.Delete(work, []string{m.Receipt}); err != nil {
				w.cfg.Log.Warn("fanout: delete range", "err", err)
			}
		}
	}
	return stop.Err()
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
			body, _ := json.Marshal(BatchMessage{Campaign: rm.Campaign, Send: rm.Send, PressedAt: rm.PressedAt,
				Deadline: rm.Deadline, Start: s, Count: n})
			out = append(out, OutMessage{Body: body})
		}
	}
	return out
}
