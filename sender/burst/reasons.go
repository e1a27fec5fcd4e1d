package burst

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/salvopush/salvo/sender/apns"
)

// Reasons for notifications that got no answer, as put in Result.Reason: the same strings as
// the stock transports (sender/apns and sender/fcm), so that results compare equal.
const (
	ReasonCanceled          = apns.ReasonCanceled
	ReasonTimeout           = apns.ReasonTimeout
	ReasonGoAway            = apns.ReasonGoAway
	ReasonConnectionReset   = apns.ReasonConnectionReset
	ReasonConnectionRefused = apns.ReasonConnectionRefused
	ReasonConnectionClosed  = apns.ReasonConnectionClosed
	ReasonStreamReset       = apns.ReasonStreamReset
	ReasonTLS               = apns.ReasonTLS
	ReasonBadResponse       = apns.ReasonBadResponse
	ReasonTransport         = apns.ReasonTransport
)

// transportReason names the cause of a notification that got no answer.
func transportReason(err error) string {
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var alert tls.AlertError
	switch {
	case errors.Is(err, context.Canceled):
		return ReasonCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ReasonTimeout
	case errors.Is(err, syscall.ECONNRESET):
		return ReasonConnectionReset
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonConnectionRefused
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &alert):
		return ReasonTLS
	case errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, errGoAwayDone):
		return ReasonConnectionClosed
	case errors.Is(err, errHPACK), errors.Is(err, errProtocol), errors.Is(err, errPush),
		errors.Is(err, errFrameSize), errors.Is(err, errPadding):
		return ReasonConnectionClosed
	}
	if strings.Contains(err.Error(), "tls:") {
		return ReasonTLS
	}
	return ReasonTransport
}

// maxRetryAfterSeconds caps a Retry-After (a day), as the stock transports do.
const maxRetryAfterSeconds = 24 * 60 * 60

// parseRetryAfter reads a Retry-After header, delay seconds or an HTTP date relative to now,
// with the stock transports' rules: 0 for empty, malformed or past, capped at a day.
func parseRetryAfter(v []byte, now time.Time) time.Duration {
	if len(v) == 0 {
		return 0
	}
	if s, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		return time.Duration(min(max(s, 0), maxRetryAfterSeconds)) * time.Second
	}
	if t, err := http.ParseTime(string(v)); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfterSeconds*time.Second)
	}
	return 0
}
