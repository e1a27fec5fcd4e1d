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
// checksums and builds the arena. The arena is allocated once, at its final size, from the
// manifest, and each shard is decoded into its place as soon as it arrives, so at most
// parallel shards are held besides the arena.
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
	// Where each shard goes: its recipients are contiguous from Start, its token bytes
	// follow the previous shard's.
	offs := make([]int64, len(m.Shards)+1)
	var recipients uint64
	for i, sh := range m.Shards {
		n := shardTokenBytes(sh)
		if n < 0 || uint64(sh.Start) != recipients {
			return nil, fmt.Errorf("preload %s: shard %s: start %d, %d bytes for %d recipients: not where the manifest's shards leave off", campaign, sh.Key, sh.Start, sh.Bytes, sh.Count)
		}
		offs[i+1] = offs[i] + n
		recipients += uint64(sh.Count)
	}
	if recipients != uint64(m.Recipients) || offs[len(m.Shards)] != m.Counts.TokenBytes || offs[len(m.Shards)] > 1<<32-1 {
		return nil, fmt.Errorf("preload %s: shards hold %d recipients and %d token bytes, manifest says %d and %d", campaign, recipients, offs[len(m.Shards)], m.Recipients, m.Counts.TokenBytes)
	}
	p := &Preloaded{Manifest: m, tokens: make([]byte, m.Counts.TokenBytes), ends: make([]uint32, m.Recipients)}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i, sh := range m.Shards {
		g.Go(func() error {
			b, err := store.Get(gctx, sh.Key)
			if err != nil {
				return fmt.Errorf("shard %s: %w", sh.Key, err)
			}
			if len(b) != sh.Bytes {
				return fmt.Errorf("shard %s: %d bytes, manifest says %d", sh.Key, len(b), sh.Bytes)
			}
			if got := sha256Hex(b); got != sh.SHA256 {
				return fmt.Errorf("shard %s: sha256 %s, manifest says %s", sh.Key, got, sh.SHA256)
			}
			if err := decodeShard(b, sh, p.tokens[offs[i]:offs[i+1]], p.ends[sh.Start:sh.Start+sh.Count], uint32(offs[i])); err != nil {
				return fmt.Errorf("shard %s: %w", sh.Key, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("preload %s: %w", campaign, err)
	}
	return p, nil
}
