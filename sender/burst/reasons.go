package burst

import (
	"errors"

	"github.com/salvopush/salvo/sender/provider"
)

// transportReason names the cause of a notification that got no answer: this package's own
// connection failures (a malformed frame or header block, a protocol error, a connection
// drained after GOAWAY) are provider.ReasonConnectionClosed; everything else is named by
// provider.TransportReason, as for the stock transports.
func transportReason(err error) string {
	switch {
	case errors.Is(err, errGoAwayDone), errors.Is(err, errHPACK), errors.Is(err, errProtocol),
		errors.Is(err, errPush), errors.Is(err, errFrameSize), errors.Is(err, errPadding):
		return provider.ReasonConnectionClosed
	}
	return provider.TransportReason(err)
}
