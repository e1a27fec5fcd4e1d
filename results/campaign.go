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
	// Redriven counts the recipients a redrive sent again.
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
	// therefore count twice. Their figures since they last published are lost, so the
	// latency histogram may lack up to a second of their acceptances (NoLatencySample).
	Killed        int   `json:"killed"`
	InFlightBound int64 `json:"in_flight_bound"`
	// NoLatencySample counts acceptances the ledger has and no published histogram does.
	NoLatencySample int64 `json:"no_latency_sample"`
	// Malformed counts the malformed messages the run put straight on the batch queue,
	// MalformedDeadLettered those it found on the dead-letter queue at the end, and
	// BatchQueueLeft the messages still on the batch queue then (visible or in flight).
	Malformed             int64 `json:"malformed,omitempty"`
	MalformedDeadLettered int64 `json:"malformed_dead_lettered,omitempty"`
	BatchQueueLeft        int64 `json:"batch_queue_left,omitempty"`
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
	// AllMs is the first arm's milestones_ms.all; AllDelayMs this run's minus it.
	AllMs      float64 `json:"all_ms"`
	AllDelayMs float64 `json:"all_delay_ms"`
}

// FirstArm is what Build needs of a scenario's first arm to judge a later one against it.
type FirstArm struct {
	Name       string
	Milestones Milestones
}

// campaignFailures judges the campaign's account against the criteria.
func campaignFailures(r *Report) []string {
	c, crit := r.Campaign, r.Criteria
	var fails []string
	fail := func(format string, a ...any) { fails = append(fails, fmt.Sprintf(format, a...)) }
	if c == nil {
		if crit.ExpectState != "" || crit.RequireStall || crit.RequireRedrive {
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
			fail("redrive: %d recipients were dead-lettered but the redrive sent %d again", c.DeadLettered, c.Redriven)
		}
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
