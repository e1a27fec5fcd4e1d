package k6

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/burst"
)

// transportKey identifies a transport: a platform, an endpoint with its credentials, and the
// pool's options. VUs whose clients have equal keys share one transport.
type transportKey struct {
	platform               sender.Platform
	url, caFile            string
	keyFile, keyID, teamID string // APNs .p8 key; FCM service account in keyFile
	project                string
	conns, maxStreams      int
	timeout                time.Duration
}

// transportCache holds the process's push transports. k6 runs every VU in one process, each
// on its own goroutine with its own JS runtime; the burst transport is safe for concurrent
// use and already queues the tokens of concurrent Sends onto a fixed pool of HTTP/2
// connections, so one transport per endpoint serves all VUs: the connections, their HPACK
// tables and the provider token are set up once, the server sees a realistic handful of
// long-lived connections instead of VUs x connections, and concurrent VUs' pushes share
// socket writes. One transport per VU would multiply the TLS handshakes and connections by
// the VU count for no gain in concurrency.
type transportCache struct {
	mu sync.Mutex
	m  map[transportKey]*transportEntry
}

// transportEntry is one transport, opened once by the first VU that needs it.
type transportEntry struct {
	once sync.Once
	t    sender.Transport
	err  error
}

func newTransportCache() *transportCache {
	return &transportCache{m: map[transportKey]*transportEntry{}}
}

// get returns the transport of key, opening it on first use with ctx (which bounds only
// the opening: an FCM transport fetches its first access token). A failed opening is
// remembered: every later call gets the same error.
func (c *transportCache) get(ctx context.Context, key transportKey) (sender.Transport, error) {
	c.mu.Lock()
	e := c.m[key]
	if e == nil {
		e = &transportEntry{}
		c.m[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.t, e.err = openTransport(ctx, key) })
	return e.t, e.err
}

// close closes and forgets the transports of keys (zero keys are skipped).
func (c *transportCache) close(keys ...transportKey) {
	var closing []*transportEntry
	c.mu.Lock()
	for _, k := range keys {
		if e := c.m[k]; e != nil {
			closing = append(closing, e)
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
	for _, e := range closing {
		e.once.Do(func() {}) // an opening in progress finishes first
		if e.t != nil {
			_ = e.t.Close() // burst's Close always returns nil
		}
	}
}

// openTransport opens the burst transport of key.
func openTransport(ctx context.Context, key transportKey) (sender.Transport, error) {
	switch key.platform {
	case sender.PlatformIOS:
		t, err := burst.NewAPNs(burst.APNsConfig{URL: key.url, KeyFile: key.keyFile, KeyID: key.keyID,
			TeamID: key.teamID, CAFile: key.caFile, Connections: key.conns, MaxStreams: key.maxStreams,
			Timeout: key.timeout})
		if err != nil {
			return nil, fmt.Errorf("salvo: apns transport: %w", err)
		}
		return t, nil
	case sender.PlatformAndroid:
		t, err := burst.NewFCM(ctx, burst.FCMConfig{Endpoint: key.url, ServiceAccountFile: key.keyFile,
			ProjectID: key.project, CAFile: key.caFile, Connections: key.conns, MaxStreams: key.maxStreams,
			Timeout: key.timeout})
		if err != nil {
			return nil, fmt.Errorf("salvo: fcm transport: %w", err)
		}
		return t, nil
	}
	return nil, fmt.Errorf("salvo: transport: platform %v", key.platform)
}
