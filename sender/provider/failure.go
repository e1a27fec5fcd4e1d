package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/salvopush/salvo/sender"
)

// Reasons for pushes that got no answer from the provider, as put in Result.Reason by every
// transport.
const (
	ReasonCanceled          = "canceled"           // the caller's context ended
	ReasonTimeout           = "timeout"            // the transport's timeout or a network timeout
	ReasonGoAway            = "GOAWAY"             // the server closed the connection with GOAWAY
	ReasonConnectionReset   = "connection reset"   // TCP reset
	ReasonConnectionRefused = "connection refused" // nothing listens
	ReasonConnectionClosed  = "connection closed"  // EOF, broken pipe or a lost HTTP/2 connection
	ReasonStreamReset       = "stream reset"       // RST_STREAM on the request's stream
	ReasonTLS               = "tls"                // handshake or certificate failure
	ReasonBadResponse       = "bad response"       // an answer that could not be decoded
	ReasonTransport         = "transport error"    // any other failure before an answer
)

// Failed is the Result of a push that got no answer because of err: Transient, Status 0,
// Reason TransportReason(err), At at. The send worker retries it.
func Failed(err error, at time.Time) sender.Result {
	return sender.Result{Outcome: sender.Transient, Reason: TransportReason(err), At: at}
}

// TransportReason names the cause of a push that got no answer: one of the Reason*
// constants. It knows the standard library's network, TLS and JSON errors and the texts of
// net/http's HTTP/2 errors (unexported types whose text is stable); anything else is
// ReasonTransport.
func TransportReason(err error) string {
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var alert tls.AlertError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, context.Canceled):
		return ReasonCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ReasonTimeout
	case errors.Is(err, syscall.ECONNRESET):
		return ReasonConnectionReset
	case errors.Is(err, syscall.EPIPE):
		return ReasonConnectionClosed
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonConnectionRefused
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &alert):
		return ReasonTLS
	case errors.As(err, &syntaxErr), errors.As(err, &typeErr):
		return ReasonBadResponse
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "GOAWAY"):
		return ReasonGoAway
	case strings.Contains(msg, "stream error"):
		return ReasonStreamReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		strings.Contains(msg, "connection lost"), strings.Contains(msg, "connection closed"),
		strings.Contains(msg, "force closed"):
		return ReasonConnectionClosed
	case strings.Contains(msg, "tls:"):
		return ReasonTLS
	}
	return ReasonTransport
}
