package scenarios

import (
	"context"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
)

// rig is where a run's pipeline runs: all in this process (embeddedRig) or as separate
// salvo processes over the AWS emulators (processRig). runOne walks the same sequence on
// either: start, upload and resolve, prepare, GO, wait, collect, close. A rig measures; it
// never judges (results.Build does).
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
	// extra lists the rig's own configuration entries for the report.
	extra() map[string]any
	// close stops everything the rig started; it is safe to call at any point.
	close()
}
