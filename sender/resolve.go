package sender

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// ResolveConfig bounds a resolution.
type ResolveConfig struct {
	// Chunk is the number of user IDs per registry call (default 1000).
	Chunk int
	// Parallel is the number of registry calls in flight (default 8).
	Parallel int
	// ShardSize is the number of recipients per shard (default DefaultShardSize).
	ShardSize int
	// UnknownSample is how many unknown user IDs to keep as a sample (default 20).
	UnknownSample int
}

func (c ResolveConfig) withDefaults() ResolveConfig {
	if c.Chunk <= 0 {
		c.Chunk = 1000
	}
	if c.Parallel <= 0 {
		c.Parallel = 8
	}
	if c.ShardSize <= 0 {
		c.ShardSize = DefaultShardSize
	}
	if c.UnknownSample <= 0 {
		c.UnknownSample = 20
	}
	return c
}

// ResolveProgress is updated atomically while a resolution runs.
type ResolveProgress struct {
	UsersTotal atomic.Int64
	UsersDone  atomic.Int64
}

// Resolved is the outcome of a resolution.
type Resolved struct {
	Manifest      Manifest
	UnknownSample []string
}

type segKey struct {
	platform Platform
	app      string
	variant  int
}

// segBuf collects the tokens of one segment without a string per token.
type segBuf struct {
	tokens []byte
	lens   []uint16
}

func (b *segBuf) add(tok string) {
	b.tokens = append(b.tokens, tok...)
	b.lens = append(b.lens, uint16(len(tok)))
}

// chunkOut is what one registry call contributes, merged in audience order afterwards so
// that the same audience always resolves to the same recipient numbering.
type chunkOut struct {
	segs           map[segKey]*segBuf
	unknown        []string
	unknownCount   int
	controlUsers   int
	controlDevices int
	controlIOS     int
}

// Resolve turns an audience into a resolved campaign: it removes repeated user IDs, looks
// every user up in the registry (bounded concurrency), assigns variants and the control
// group, sorts recipients into segments and writes shards and then the manifest to the
// store. The manifest is written last, so its presence means the campaign is complete.
func Resolve(ctx context.Context, reg Registry, store ObjectStore, campaignID string, spec *CampaignSpec,
	userIDs []string, cfg ResolveConfig, progress *ResolveProgress) (*Resolved, error) {
	cfg = cfg.withDefaults()
	seen := make(map[string]struct{}, len(userIDs))
	uniq := make([]string, 0, len(userIDs))
	for _, id := range userIDs {
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			uniq = append(uniq, id)
		}
	}
	seen = nil
	if progress != nil {
		progress.UsersTotal.Store(int64(len(uniq)))
	}

	nchunks := (len(uniq) + cfg.Chunk - 1) / cfg.Chunk
	outs := make([]chunkOut, nchunks)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Parallel)
	for c := 0; c < nchunks; c++ {
		ids := uniq[c*cfg.Chunk : min((c+1)*cfg.Chunk, len(uniq))]
		g.Go(func() error {
			devs, err := reg.Devices(gctx, ids)
			if err != nil {
				return fmt.Errorf("registry: %w", err)
			}
			if len(devs) != len(ids) {
				return fmt.Errorf("registry: %d answers for %d users", len(devs), len(ids))
			}
			out := chunkOut{segs: map[segKey]*segBuf{}}
			for i, ds := range devs {
				if ds == nil {
					out.unknownCount++
					if len(out.unknown) < cfg.UnknownSample {
						out.unknown = append(out.unknown, ids[i])
					}
					continue
				}
				v := spec.Assign(campaignID, ids[i])
				if v == Control {
					out.controlUsers++
					out.controlDevices += len(ds)
					for _, d := range ds {
						if d.Platform == PlatformIOS {
							out.controlIOS++
						}
					}
					continue
				}
				for _, d := range ds {
					if d.Platform != PlatformIOS && d.Platform != PlatformAndroid || d.Token == "" || len(d.Token) > 0xffff {
						continue // a registry entry no provider would take
					}
					k := segKey{d.Platform, d.App, v}
					b := out.segs[k]
					if b == nil {
						b = &segBuf{}
						out.segs[k] = b
					}
					b.add(d.Token)
				}
			}
			outs[c] = out
			if progress != nil {
				progress.UsersDone.Add(int64(len(ids)))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", campaignID, err)
	}

	names := spec.VariantNames()
	m := Manifest{Campaign: campaignID, Counts: ManifestCounts{
		Users: len(uniq), DuplicatesRemoved: len(userIDs) - len(uniq), ByVariant: map[string]int{}}}
	var sample []string
	merged := map[segKey]*segBuf{}
	for i := range outs {
		o := &outs[i]
		m.Counts.UnknownUsers += o.unknownCount
		m.Counts.ControlUsers += o.controlUsers
		m.Counts.ControlDevices += o.controlDevices
		m.Counts.ControlIOS += o.controlIOS
		m.Counts.ControlAndroid += o.controlDevices - o.controlIOS
		if room := cfg.UnknownSample - len(sample); room > 0 {
			sample = append(sample, o.unknown[:min(room, len(o.unknown))]...)
		}
		for k, b := range o.segs {
			dst := merged[k]
			if dst == nil {
				dst = &segBuf{}
				merged[k] = dst
			}
			dst.tokens = append(dst.tokens, b.tokens...)
			dst.lens = append(dst.lens, b.lens...)
		}
		outs[i] = chunkOut{}
	}
	keys := make([]segKey, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b segKey) int {
		return cmp.Or(cmp.Compare(a.platform, b.platform), cmp.Compare(a.app, b.app), cmp.Compare(a.variant, b.variant))
	})

	// Lay the segments end to end and cut the sequence into shards.
	var all [][]byte
	for _, k := range keys {
		b := merged[k]
		seg := Segment{Platform: k.platform.String(), App: k.app, Variant: k.variant, Start: uint32(len(all)), Count: uint32(len(b.lens))}
		m.Segments = append(m.Segments, seg)
		off := 0
		for _, n := range b.lens {
			all = append(all, b.tokens[off:off+int(n)])
			off += int(n)
		}
		m.Counts.TokenBytes += int64(len(b.tokens))
		m.Counts.ByVariant[names[k.variant]] += len(b.lens)
		if k.platform == PlatformIOS {
			m.Counts.IOS += len(b.lens)
		} else {
			m.Counts.Android += len(b.lens)
		}
	}
	m.Recipients = uint32(len(all))
	for start := 0; start < len(all); start += cfg.ShardSize {
		end := min(start+cfg.ShardSize, len(all))
		m.Shards = append(m.Shards, ShardInfo{Key: shardKey(campaignID, len(m.Shards)), Start: uint32(start), Count: uint32(end - start)})
	}
	w, wctx := errgroup.WithContext(ctx)
	w.SetLimit(4)
	for i := range m.Shards {
		sh := &m.Shards[i]
		w.Go(func() error {
			b := encodeShard(sh.Start, all[sh.Start:sh.Start+sh.Count])
			sh.Bytes, sh.SHA256 = len(b), sha256Hex(b)
			if err := store.Put(wctx, sh.Key, b); err != nil {
				return fmt.Errorf("put %s: %w", sh.Key, err)
			}
			return nil
		})
	}
	if err := w.Wait(); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", campaignID, err)
	}
	raw, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, fmt.Errorf("resolve %s: manifest: %w", campaignID, err)
	}
	if err := store.Put(ctx, ManifestKey(campaignID), raw); err != nil {
		return nil, fmt.Errorf("resolve %s: put manifest: %w", campaignID, err)
	}
	return &Resolved{Manifest: m, UnknownSample: sample}, nil
}
