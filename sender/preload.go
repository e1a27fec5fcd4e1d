package sender

import (
	"context"
	"encoding/json"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// Preloaded is a resolved campaign held in memory by a worker: one arena of token bytes and
// one end offset per recipient, no per-recipient pointers. It is read-only once loaded and
// safe for concurrent use.
type Preloaded struct {
	Manifest Manifest
	tokens   []byte
	ends     []uint32
}

// Token returns recipient i's token. The slice points into the arena: do not modify it.
func (p *Preloaded) Token(i uint32) []byte {
	start := uint32(0)
	if i > 0 {
		start = p.ends[i-1]
	}
	return p.tokens[start:p.ends[i]:p.ends[i]]
}

// Len returns the number of recipients.
func (p *Preloaded) Len() int { return len(p.ends) }

// ResidentBytes is the memory the arena holds (token bytes plus 4 per recipient).
func (p *Preloaded) ResidentBytes() int64 { return int64(cap(p.tokens)) + 4*int64(cap(p.ends)) }

// Preload reads a campaign's manifest and every shard (parallel, bounded), checks their
// checksums and builds the arena.
func Preload(ctx context.Context, store ObjectStore, campaign string, parallel int) (*Preloaded, error) {
	raw, err := store.Get(ctx, ManifestKey(campaign))
	if err != nil {
		return nil, fmt.Errorf("preload %s: manifest: %w", campaign, err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("preload %s: manifest: %w", campaign, err)
	}
	if parallel < 1 {
		parallel = 4
	}
	blobs := make([][]byte, len(m.Shards))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i, sh := range m.Shards {
		g.Go(func() error {
			b, err := store.Get(gctx, sh.Key)
			if err != nil {
				return fmt.Errorf("shard %s: %w", sh.Key, err)
			}
			if got := sha256Hex(b); got != sh.SHA256 {
				return fmt.Errorf("shard %s: sha256 %s, manifest says %s", sh.Key, got, sh.SHA256)
			}
			blobs[i] = b
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("preload %s: %w", campaign, err)
	}
	p := &Preloaded{Manifest: m, tokens: make([]byte, 0, m.Counts.TokenBytes), ends: make([]uint32, 0, m.Recipients)}
	for i, b := range blobs {
		if p.tokens, p.ends, err = decodeShard(b, m.Shards[i], p.tokens, p.ends); err != nil {
			return nil, fmt.Errorf("preload %s: shard %s: %w", campaign, m.Shards[i].Key, err)
		}
		blobs[i] = nil
	}
	if uint32(len(p.ends)) != m.Recipients {
		return nil, fmt.Errorf("preload %s: shards hold %d recipients, manifest says %d", campaign, len(p.ends), m.Recipients)
	}
	return p, nil
}
