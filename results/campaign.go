package results

import "fmt"

// Campaign is the campaign's own account of a run, read from the campaign API, and what
// the run did to the pipeline meanwhile (an addition to the contract's fields; absent from
// runs that did not follow a campaign). Reliability scenarios judge it: the terminal state,
// the stall shown in the status, dead letters and redrives, the devices left out for want
// of a message, and what a killed process may have pushed twice.
type Campaign struct {
	// State is the terminal state the campaign ended in: done, done_with_failures, aborted
	// or failed; "" when it reached none before the run stopped waiting.
	State string `json:"state"`
	// States are the terminal states it reached, in order: a redrive takes a
	// done_with_failures campaign back to sending and on to another one.
	States []string `json:"states"`
	// DeadLettered counts the recipients given up on (failed with a reason and put on the
	// dead-letter queue) before any redrive, as the campaign's status counted them.
	DeadLettered int64 `json:"dead_lettered"`
	// DeadLetterQueue, where the run can reach the dead-letter queue, sums the recipients
	// its dead letters of the campaign name as given up on, looked at before any redrive:
	// the queue's own account of DeadLettered. Nil: not looked at.
	DeadLetterQueue *int64 `json:"dead_letter_queue,omitempty"`
	// FailedBy gives the reasons of the recipients given up on before any redrive, from the
	// campaign's status.
	FailedBy map[string]int64 `json:"failed_by,omitempty"`
	// Redriven counts the recipients the mock accepted (its own unique count) after the run
	// pressed redrive: what the redrive delivered.
	Redriven int64 `json:"redriven"`
	// NoMessage counts the devices the campaign excluded at resolution because their
	// variant has no message for their platform; NoMessageExpected is how many devices of
	// such platforms the registry holds, counted by the run on its own.
	NoMessage         int64 `json:"no_message"`
	NoMessageExpected int64 `json:"no_message_expected"`
	// Stall is the first stall the campaign's status showed while the send ran (nil: none).
	Stall *StallSeen `json:"stall,omitempty"`
	// Killed counts the sending processes the run killed with SIGKILL; InFlightBound is what
	// they may have pushed without recording it (send loops x chunk each), which the mock may
	// therefore count twice. Their figures since they last published are lost: Build counts
	// the acceptances the latency histogram lacks in the report's no_latency_sample and, when
	// there are any and the run has the mock's receipts, takes milestones_ms and the target
	// from the mock (mock.milestones_ms), which saw every acceptance.
	Killed        int   `json:"killed"`
	InFlightBound int64 `json:"in_flight_bound"`
	// Malformed counts the malformed messages the run put straight on the batch queue,
	// MalformedDeadLettered those it found on the dead-letter queue at the end, and
	// BatchQueueLeft the messages still on the batch queue then (visible or in flight).
	Malformed             int64 `json:"malformed,omitempty"`
	MalformedDeadLettered int64 `json:"malformed_dead_lettered,omitempty"`
	BatchQueueLeft        int64 `json:"batch_queue_left,omitempty"`
	// BatchesSentTwice and RangesDeliveredTwice are, in a redelivery run, the batch messages
	// the fan-out put on the batch queue twice and the range messages that came back to the
	// fan-out after a skipped delete and were fanned out again.
	BatchesSentTwice     int64 `json:"batches_sent_twice,omitempty"`
	RangesDeliveredTwice int64 `json:"ranges_delivered_twice,omitempty"`
	// Events are what the run did to the pipeline, in order.
	Events []Event `json:"events,omitempty"`
}

// StallSeen is a stall as the campaign's status showed it.
type StallSeen struct {
	// SeenMs is when the run first saw it, SinceMs when the status says it began (the last
	// progress), both from the GO press.
	SeenMs  float64 `json:"seen_ms"`
	SinceMs float64 `json:"since_ms"`
	Cause   string  `json:"cause"`
}

// Event is one thing a run did to the pipeline (a signal, a restart, a fault cleared, a
// redrive), at a time from the GO press.
type Event struct {
	AtMs float64 `json:"at_ms"`
	What string  `json:"what"`
}

// VersusFirst compares a run with the scenario's first arm (an addition to the contract's
// fields): the cost of a fault or a kill against the same send without it.
type VersusFirst struct {
	Arm string `json:"arm"`
	// Source says whose milestones are compared: "mock" (mock.milestones_ms, when both runs
	// have them) or "sender" (milestones_ms).
	Source string `json:"source"`
	// AllMs is the first arm's last acceptance; AllDelayMs this run's minus it.
	AllMs      float64 `json:"all_ms"`
	AllDelayMs float64 `json:"all_delay_ms"`
}

// FirstArm is what Build needs of a scenario's first arm to judge a later one against it:
// its milestones, and the mock's (nil when it has none).
type FirstArm struct {
	Name           string
	Milestones     Milestones
	MockMilestones *Milestones
}

// FirstArmOf is what a later arm is compared with of the report of a first arm.
func FirstArmOf(name string, r *Report) *FirstArm {
	f := &FirstArm{Name: name, Milestones: r.Milestones}
	if r.Mock != nil && r.Mock.Milestones != nil {
		m := *r.Mock.Milestones
		f.MockMilestones = &m
	}
	return f
}

// campaignFailures judges the campaign's account against the criteria.
func campaignFailures(r *Report) []string {
	c, crit := r.Campaign, r.Criteria
	var fails []string
	fail := func(format string, a ...any) { fails = append(fails, fmt.Sprintf(format, a...)) }
	if c == nil {
		if crit.ExpectState != "" || crit.RequireStall || crit.RequireRedrive || crit.RequireRedelivery {
			fail("campaign: the run did not follow the campaign, but its criteria need the campaign's states")
		}
		return fails
	}
	switch {
	case crit.ExpectState == "":
	case c.State == "":
		fail("state: the campaign reached no terminal state, want %s", crit.ExpectState)
	case c.State != crit.ExpectState:
		fail("state: the campaign ended %s, want %s", c.State, crit.ExpectState)
	}
	if crit.RequireStall && c.Stall == nil {
		fail("stall: the campaign's status never showed the send stalled while the fault lasted")
	}
	if crit.RequireRedrive {
		switch {
		case c.DeadLettered == 0:
			fail("redrive: nothing was dead-lettered, so the redrive was not tried")
		case c.Redriven != c.DeadLettered:
			fail("redrive: %d recipients were dead-lettered but the mock accepted %d after the redrive", c.DeadLettered, c.Redriven)
		}
	}
	if q := c.DeadLetterQueue; q != nil && *q != c.DeadLettered {
		fail("dead letters: the campaign counted %d recipients given up on, its dead letters on the queue name %d", c.DeadLettered, *q)
	}
	if crit.RequireRedelivery && (c.BatchesSentTwice == 0 || c.RangesDeliveredTwice == 0) {
		fail("redelivery: %d batch messages were sent twice and %d ranges delivered twice; the run forced no redelivery of both kinds",
			c.BatchesSentTwice, c.RangesDeliveredTwice)
	}
	if c.NoMessage != c.NoMessageExpected {
		fail("audience: the campaign excluded %d devices for want of a message; the registry holds %d devices of the platforms the message leaves out",
			c.NoMessage, c.NoMessageExpected)
	}
	if c.Malformed > 0 && c.MalformedDeadLettered != c.Malformed {
		fail("poison: %d malformed batch messages were put on the batch queue, %d reached the dead-letter queue",
			c.Malformed, c.MalformedDeadLettered)
	}
	if c.BatchQueueLeft > 0 {
		fail("poison: %d messages were left on the batch queue after the campaign ended (a message that cannot be sent loops)", c.BatchQueueLeft)
	}
	return fails
}
