package mockpush

import "strings"

// UnregisteredMarker starts every device token that the mock servers treat as unregistered:
// APNs answers 410 Unregistered and FCM answers 404 UNREGISTERED for it. The synthetic
// registry generator (loadgen) writes its invalid tokens with this prefix and never gives a
// valid token this prefix, so a test knows in advance which tokens will be rejected.
const UnregisteredMarker = "dead0410"

// IsUnregistered reports whether token is one the mocks reject as unregistered.
func IsUnregistered(token string) bool { return strings.HasPrefix(token, UnregisteredMarker) }
