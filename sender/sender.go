// Package sender holds Salvo's production pipeline: the domain types every stage shares and
// the interfaces at each dependency seam (device registry, object store, queues, campaign
// records, the delivery ledger, push transports). Backends live in one small package each
// (sender/memqueue, sender/localstore, sender/sqs, sender/s3, sender/dynamodb, ...), and the
// push transports in sender/apns and sender/fcm.
package sender

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Platform is a push platform.
type Platform uint8

// Platforms. The zero value is invalid so that a forgotten field is caught.
const (
	PlatformIOS     Platform = 1 // Apple Push Notification service
	PlatformAndroid Platform = 2 // Firebase Cloud Messaging
)

// String returns "ios" or "android".
func (p Platform) String() string {
	switch p {
	case PlatformIOS:
		return "ios"
	case PlatformAndroid:
		return "android"
	}
	return fmt.Sprintf("platform(%d)", uint8(p))
}

// MarshalText encodes the platform as "ios" or "android" (manifests and JSON records).
func (p Platform) MarshalText() ([]byte, error) {
	if p != PlatformIOS && p != PlatformAndroid {
		return nil, fmt.Errorf("invalid platform %d", uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText decodes what MarshalText wrote (and the aliases ParsePlatform takes).
func (p *Platform) UnmarshalText(b []byte) error {
	v, err := ParsePlatform(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ParsePlatform parses "ios" / "apns" or "android" / "fcm".
func ParsePlatform(s string) (Platform, error) {
	switch s {
	case "ios", "apns":
		return PlatformIOS, nil
	case "android", "fcm":
		return PlatformAndroid, nil
	}
	return 0, fmt.Errorf("unknown platform %q (want ios or android)", s)
}

// Device is one device registered to a user.
type Device struct {
	Platform Platform
	// Token is the APNs device token (hex) or the FCM registration token.
	Token string
	// App is the APNs topic (bundle ID) for iOS and the FCM project ID for Android.
	App string
	// Locale is the device's locale, e.g. "en-US"; may be empty.
	Locale string
}

// Registry resolves user IDs to their devices (DynamoDB in production, a file on disk in the
// embedded default).
type Registry interface {
	// Devices returns, for each user ID in order, that user's devices; a nil entry means the
	// user is unknown. Implementations batch and retry internally; an error means the whole
	// call failed and may be retried.
	Devices(ctx context.Context, userIDs []string) ([][]Device, error)
}

// DeviceVisitor is a Registry that can also hand each user's devices to a function without
// allocating them. Resolution uses it when the registry has it: a resolution of millions
// of users then makes no garbage per device, which keeps its heap near what it keeps.
type DeviceVisitor interface {
	// VisitDevices calls fn once for each user ID, in order, with that user's devices;
	// known is false for a user the registry does not have. devs and their tokens are
	// valid only until fn returns (the registry reuses their memory): fn copies what it
	// keeps. Errors are as Devices'.
	VisitDevices(ctx context.Context, userIDs []string, fn func(i int, known bool, devs []Device)) error
}

// ErrNotFound is returned by stores when a key or record does not exist.
var ErrNotFound = errors.New("not found")

// ObjectStore holds resolved campaigns, manifests, feedback files and run results (S3 in
// production, a local directory in the embedded default). Keys use "/" as separator.
type ObjectStore interface {
	// Put writes data under key, replacing any previous object. It keeps nothing of data
	// once it returns: the caller may reuse the buffer.
	Put(ctx context.Context, key string, data []byte) error
	// Get reads the object at key; a missing key gives an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns the keys that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// StreamPutter is implemented by object stores that take an object as a stream (the API's
// audience uploads), so that a large upload is never held in memory whole. PutStream
// replaces the object only once r is read to its end, and returns the bytes written.
type StreamPutter interface {
	PutStream(ctx context.Context, key string, r io.Reader) (int64, error)
}

// OutMessage is a message to put on a queue.
type OutMessage struct {
	Body []byte
	// GroupID is the FIFO message group; ignored by standard queues.
	GroupID string
	// DedupID is the FIFO deduplication ID: a second message with the same ID within the
	// queue's deduplication window (5 minutes) is accepted and dropped. Ignored by standard
	// queues.
	DedupID string
}

// Message is a message received from a queue. It stays invisible to other receivers until
// its visibility timeout runs out, then comes back unless deleted.
type Message struct {
	ID      string
	Body    []byte
	Receipt string // handle for Delete and ExtendVisibility
	// ReceiveCount is how many times the message has been received, this time included.
	ReceiveCount int
}

// Queue is an SQS-like queue (SQS in production, sender/memqueue in the embedded default).
// All methods are safe for concurrent use.
type Queue interface {
	// Send puts msgs on the queue, any number of them (implementations cut them into batches
	// of 10 and retry partial failures). It returns when every message is accepted or with
	// an error.
	Send(ctx context.Context, msgs []OutMessage) error
	// Receive waits up to wait (long polling) for at most max (1..10) messages.
	Receive(ctx context.Context, max int, wait time.Duration) ([]Message, error)
	// Delete removes received messages by their receipt handles.
	Delete(ctx context.Context, receipts []string) error
	// ExtendVisibility keeps a received message invisible for d from now.
	ExtendVisibility(ctx context.Context, receipt string, d time.Duration) error
}

// Record is a versioned JSON record (campaign records, worker readiness, send records).
type Record struct {
	Key     string
	Version int64 // 0 means "does not exist yet" for CompareAndSwap
	Data    []byte
}

// ErrConflict is returned by RecordStore.CompareAndSwap when the stored version is not the
// expected one (someone else won the race).
var ErrConflict = errors.New("version conflict")

// RecordStore keeps small records with compare-and-set (DynamoDB conditional writes in
// production, memory or a local directory in the embedded default).
type RecordStore interface {
	// Get returns the record at key, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) (Record, error)
	// CompareAndSwap writes data at key if the stored version equals expected (0: the key
	// must not exist) and returns the new version; otherwise it returns ErrConflict.
	CompareAndSwap(ctx context.Context, key string, expected int64, data []byte) (int64, error)
	// List returns the records whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Record, error)
}

// Ledger records, per campaign, the fate of every recipient, so that a batch delivered twice
// never pushes a recipient twice and so that the campaign's counts come from one place.
// Recipients are indices in the resolved campaign. A recipient is
//
//   - pending: nobody holds it and it is not finished (the start state);
//   - claimed: held by one owner (one send loop) until its lease runs out;
//   - accepted or rejected: final; never claimed again;
//   - failed: given up on (the delivery deadline passed); not claimed again until Redrive
//     makes it pending.
//
// Owners name send loops, not processes: two loops of one worker are two owners. Callers
// always cut the same ranges (the same start and n for a given recipient): batch boundaries
// are deterministic. A recipient is never held by two owners under live leases.
type Ledger interface {
	// Claim takes, for owner, the pending recipients in [start, start+n) that nobody (owner
	// included) holds under a live lease, marks them claimed until lease from now, and
	// appends them to dst.
	Claim(ctx context.Context, campaign, owner string, start, n uint32, lease time.Duration, dst []uint32) ([]uint32, error)
	// Renew extends owner's live claims in [start, start+n) to lease from now. A claim whose
	// lease already ran out is not revived: the recipient may have been claimed by another
	// owner since, and Renew then returns an error wrapping ErrLeaseLost.
	Renew(ctx context.Context, campaign, owner string, start, n uint32, lease time.Duration) error
	// Finish records recipients as final (RecipientAccepted or RecipientRejected) or as
	// RecipientFailed, and drops owner's claims on them. A final state is never overwritten:
	// a recipient recorded accepted stays accepted even if a later call says failed. It
	// records what happened even when owner's lease ran out meanwhile (the push was made).
	// A RecipientAccepted for a recipient already accepted marks it repeated (Counts'
	// Repeated), so callers call it once per accepted push, never again for the same answer.
	Finish(ctx context.Context, campaign, owner string, state RecipientState, recipients []uint32) error
	// Release gives owner's claims on recipients back: they are pending again.
	Release(ctx context.Context, campaign, owner string, recipients []uint32) error
	// Remaining counts the recipients in [start, start+n) that are neither final nor failed,
	// whether claimed by someone or not. A worker that could claim only part of a batch
	// keeps the batch message (it comes back after its visibility timeout) while Remaining
	// says that others still hold recipients of it, so that a claimer that died loses
	// nothing.
	Remaining(ctx context.Context, campaign string, start, n uint32) (int, error)
	// Redrive makes the failed recipients in [start, start+n) pending again and returns how
	// many it changed; a second Redrive of the same range changes none.
	Redrive(ctx context.Context, campaign string, start, n uint32) (int, error)
	// Counts returns the campaign's totals by state (an unknown campaign has all zero).
	Counts(ctx context.Context, campaign string) (LedgerCounts, error)
}

// RecipientState is what Ledger.Finish records.
type RecipientState uint8

// Recipient states.
const (
	RecipientAccepted RecipientState = iota + 1 // the provider took the notification
	RecipientRejected                           // rejected for good (Unregistered, ...)
	RecipientFailed                             // given up on; pending again only by Redrive
)

// String names the state.
func (s RecipientState) String() string {
	switch s {
	case RecipientAccepted:
		return "accepted"
	case RecipientRejected:
		return "rejected"
	case RecipientFailed:
		return "failed"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// LedgerCounts are a campaign's recipients by state in the ledger. Pending and claimed
// recipients are the rest of the campaign's total.
type LedgerCounts struct {
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
	Failed   int64 `json:"failed"`
	// Repeated counts the accepted recipients whose acceptance was recorded more than once
	// (a Finish(RecipientAccepted) of a recipient already accepted): each was pushed again and
	// accepted again, a duplicate the sender itself saw (a lease that ran out while its push
	// was in flight, a batch pushed by two owners). It is not a state, and not part of
	// Finished. It misses the repeats whose first answer was never recorded (a worker killed
	// between the push and its Finish): only the receiving side can count those.
	Repeated int64 `json:"repeated"`
}

// Finished is accepted + rejected + failed.
func (c LedgerCounts) Finished() int64 { return c.Accepted + c.Rejected + c.Failed }

// ErrLeaseLost is returned by Ledger.Renew when a claim's lease ran out before it was renewed.
var ErrLeaseLost = errors.New("lease lost")

// Outcome classifies the answer to one push.
type Outcome uint8

// Outcomes.
const (
	// Accepted: the provider took the notification.
	Accepted Outcome = iota + 1
	// Permanent: rejected for good (Unregistered, BadDeviceToken, ...); never retried, and
	// the token is reported to the invalid-token feedback.
	Permanent
	// Transient: may succeed later (429, 500, 503, connection loss); retried with backoff.
	Transient
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Accepted:
		return "accepted"
	case Permanent:
		return "permanent"
	case Transient:
		return "transient"
	}
	return "unknown"
}

// Result is the answer to one push. Provider rejections are results, not errors.
type Result struct {
	Outcome Outcome
	// Status is the HTTP status (0 when the request never got an answer).
	Status int
	// Reason is the provider's reason (APNs "Unregistered", FCM "UNREGISTERED", ...) or a
	// short transport cause ("connection reset").
	Reason string
	// RetryAfter is the provider's Retry-After for transient results, 0 if none.
	RetryAfter time.Duration
	// InvalidToken is set on permanent results that condemn the device token itself
	// (Unregistered, BadDeviceToken, UNREGISTERED...): the token goes to the invalid-token
	// feedback so the registry can be pruned. Other permanent results are about the message.
	InvalidToken bool
	// At is when the answer arrived (for accepted results: the acceptance time).
	At time.Time
}

// APNsMessage is the rendered APNs request for a campaign variant: headers and payload, with
// only the device token left to splice in.
type APNsMessage struct {
	Topic      string    // apns-topic
	PushType   string    // apns-push-type: "alert" or "background" (silent)
	Priority   int       // apns-priority: 10, or 5 (required for background)
	Expiration time.Time // apns-expiration; zero means "0" (deliver once or drop)
	CollapseID string    // apns-collapse-id; the campaign ID
	Payload    []byte    // JSON, <= 4096 bytes
}

// FCMMessage is the rendered FCM HTTP v1 message for a campaign variant, token left out.
type FCMMessage struct {
	Project     string            // FCM project ID
	Title       string            // notification title; empty with Body for data-only
	Body        string            // notification body
	Data        map[string]string // data payload
	CollapseKey string            // android.collapse_key; the campaign ID
	Priority    string            // android.priority: "high" or "normal"
	TTL         time.Duration     // android.ttl; 0 means provider default
}

// Batch is one call to a Transport: notifications for one platform and one message.
type Batch struct {
	Campaign string
	Platform Platform
	APNs     *APNsMessage // set for PlatformIOS
	FCM      *FCMMessage  // set for PlatformAndroid
	// Tokens are the device tokens; they point into the worker's preloaded arena and must
	// not be kept after Send returns.
	Tokens [][]byte
	// Results has len(Tokens) entries; Send fills Results[i] for Tokens[i].
	Results []Result
}

// ErrCannotSend is wrapped by a Transport's Send error for a batch it can never send,
// however often it is tried: a batch for another FCM project than the transport's (the
// registry's devices and the provider configuration disagree), for the other platform, or
// without a message for the platform. The send loop fails such a batch's recipients at once
// with the error as the reason (dead-lettered, redrivable once the configuration is fixed)
// instead of retrying them until the delivery deadline.
var ErrCannotSend = errors.New("cannot be sent by this transport")

// Transport pushes batches to a provider. Implementations are safe for concurrent use and
// bound their own connections and goroutines.
type Transport interface {
	// Send pushes every notification of b once and fills b.Results. It returns an error only
	// when it could not try at all (closed transport, cancelled context; wrapping
	// ErrCannotSend when trying again cannot help); per-notification failures are Results
	// with Outcome Transient or Permanent.
	Send(ctx context.Context, b *Batch) error
	// Close releases connections; Send must not be called after.
	Close() error
}
