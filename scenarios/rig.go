package scenarios

import (
	"context"
	"syscall"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
)

// rig is where a run's pipeline runs: all in this process (embeddedRig), as one `salvo all`
// child process on a data folder that outlives it (allRig), or as separate salvo processes
// over the AWS emulators (processRig). runOne walks the same sequence on each: start, upload
// and resolve, prepare, GO, wait (interrupting when the scenario says so), collect, close.
// A rig measures; it never judges (results.Build does).
type rig interface {
	// start brings the API and the fan-out up, the send path pointed at the mock servers of
	// ready, and returns a client of the campaign API (with its token) and the audience file
	// to upload.
	start(ctx context.Context, ready mockpush.Ready) (client *api.Client, audience []byte, err error)
	// startSenders runs when the campaign is to be prepared: the process rig starts its send
	// workers now, so that prepare counts their start-up and preload. id is the campaign.
	startSenders(ctx context.Context, id string) error
	// resetStats clears the sender's counters before GO.
	resetStats()
	// cpuSeconds is the CPU time the sender has used so far.
	cpuSeconds() float64
	// progress says how far the send is: finished counts what the rig can see finished
	// (recipients answered, or requests the mock received) and line describes it for a
	// progress line.
	progress(ctx context.Context) (finished int64, line string, err error)
	// collect ends the send side once the send is over or timed out and returns the merged
	// send statistics, how many send workers reported them and the sender's peak resident
	// set in bytes. id is the campaign.
	collect(ctx context.Context, id string) (stats *sender.SendStats, reporting int, peakRSS int64, err error)
	// interrupt sends sig to the pipeline's sending process mid-send and starts it (mode
	// all) or a replacement (mode process) again; note stamps each step for the report's
	// events. It returns the API client to use from then on (a restarted `salvo all` listens
	// on a new port).
	interrupt(ctx context.Context, sig syscall.Signal, note func(string)) (*api.Client, error)
	// queues returns the batch and dead-letter queues for the run to put messages on and
	// look at; nil when the rig cannot reach them (they live inside a child process).
	queues(ctx context.Context) (batches, deadLetters sender.Queue, err error)
	// batchesLeft counts the messages on the batch queue, visible or in flight; -1 when the
	// rig cannot see the queue.
	batchesLeft(ctx context.Context) (int64, error)
	// redelivered says, in a redelivery run, how many batch messages the fan-out put on the
	// queue twice and how many range messages it fanned out again after a skipped delete.
	redelivered() (batchesTwice, rangesAgain int64)
	// extra lists the rig's own configuration entries for the report.
	extra() map[string]any
	// close stops everything the rig started; it is safe to call at any point.
	close()
}
