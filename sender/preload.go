package sender

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"
)

// Preloaded is a resolved campaign held in memory by a worker: each shard as it was read
// (token bytes end to end) and one end offset per recipient, no per-recipient pointers. It
// is read-only once loaded and safe for concurrent use.
type Preloaded struct {
	Manifest Manifest
	shards   []shardData
	per      uint32 // recipients in every shard but the last; 0 when they differ
	n        int
	resident int64
}

// shardData is one shard's recipients in memory.
type shardData struct {
	start  uint32   // the first recipient's index
	tokens []byte   // token bytes end to end (points into the shard as read)
	ends   []uint32 // each recipient's end offset in tokens
	held   int64    // bytes of the shard as read, which tokens keeps alive
}

// newPreloaded puts shards (in order, contiguous from 0) together.
func newPreloaded(m Manifest, shards []shardData) *Preloaded {
	p := &Preloaded{Manifest: m, shards: shards}
	if len(shards) > 0 {
		p.per = uint32(len(shards[0].ends))
	}
	for i, sh := range shards {
		p.n += len(sh.ends)
		p.resident += sh.held + 4*int64(cap(sh.ends))
		if n := uint32(len(sh.ends)); n > p.per || i < len(shards)-1 && n != p.per {
			p.per = 0 // uneven shards: found by binary search
		}
	}
	return p
}

// Token returns recipient i's token. The slice points into the shard as read: do not
// modify it.
func (p *Preloaded) Token(i uint32) []byte {
	var sh *shardData
	if p.per > 0 {
		sh = &p.shards[i/p.per]
	} else {
		k, _ := slices.BinarySearchFunc(p.shards, i, func(s shardData, i uint32) int {
			return cmp.Compare(s.start+uint32(len(s.ends)), i+1)
		})
		sh = &p.shards[k]
	}
	j := i - sh.start
	start := uint32(0)
	if j > 0 {
		start = sh.ends[j-1]
	}
	return sh.tokens[start:sh.ends[j]:sh.ends[j]]
}

// Len returns the number of recipients.
func (p *Preloaded) Len() int { return p.n }

// ResidentBytes is the memory the recipients hold: the shards as read (token bytes, their
// length tables and headers) plus 4 bytes per recipient.
func (p *Preloaded) ResidentBytes() int64 { return p.resident }

// Preload reads a campaign's manifest and every shard (parallel, bounded), checks their
// checksums and keeps each shard as it was read, its tokens in place: nothing is copied
// into an arena of its own, so a worker holds one copy of the campaign's tokens.
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
	var recipients uint64
	for _, sh := range m.Shards {
		if uint64(sh.Start) != recipients {
			return nil, fmt.Errorf("preload %s: shard %s starts at %d, the shards before it end at %d", campaign, sh.Key, sh.Start, recipients)
		}
		recipients += uint64(sh.Count)
	}
	if recipients != uint64(m.Recipients) {
		return nil, fmt.Errorf("preload %s: shards hold %d recipients, manifest says %d", campaign, recipients, m.Recipients)
	}
	shards := make([]shardData, len(m.Shards))
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
			if shards[i], err = decodeShard(b, sh); err != nil {
				return fmt.Errorf("shard %s: %w", sh.Key, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("preload %s: %w", campaign, err)
	}
	return newPreloaded(m, shards), nil
}
