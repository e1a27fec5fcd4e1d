package scenarios

import (
	"context"

	"github.com/salvopush/salvo/results"
)

// runProcess plays one run with the API, fan-out and send workers as separate processes
// over the AWS emulators.
func runProcess(ctx context.Context, name string, p Params, out string, opts Options) (*results.Report, error) {
	return nil, setupErr("scenario %s: process mode is not available in this build", name)
}
