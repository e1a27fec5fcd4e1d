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

// Resolver resolves campaigns: it reads the device registry and writes resolved campaigns
// to the object store.
type Resolver struct {
	Registry Registry
	Objects  ObjectStore
	Config   ResolveConfig
}

// resolution is one campaign being resolved.
type resolution struct {
	reg      Registry
	store    ObjectStore
	cfg      ResolveConfig
	id       string
	spec     *CampaignSpec
	progress *ResolveProgress
}

// Resolve turns an audience into a resolved campaign: it removes repeated user IDs, looks
// every user up in the registry (bounded concurrency), assigns variants and the control
// group, sorts recipients into segments and writes shards and then the manifest to the
// store. The manifest is written last, so its presence means the campaign is complete.
// progress may be nil.
func (rv *Resolver) Resolve(ctx context.Context, campaignID string, spec *CampaignSpec, userIDs []string, progress *ResolveProgress) (*Resolved, error) {
	r := &resolution{reg: rv.Registry, store: rv.Objects, cfg: rv.Config.withDefaults(), id: campaignID, spec: spec, progress: progress}
	uniq := dedupe(userIDs)
	if progress != nil {
		progress.UsersTotal.Store(int64(len(uniq)))
	}
	outs, err := r.lookup(ctx, uniq)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", campaignID, err)
	}
	m, all, sample := r.layout(outs)
	m.Counts.Users, m.Counts.DuplicatesRemoved = len(uniq), len(userIDs)-len(uniq)
	if err := r.write(ctx, &m, all); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", campaignID, err)
	}
	return &Resolved{Manifest: m, UnknownSample: sample}, nil
}

// dedupe returns the user IDs without repeats, in first-seen order.
func dedupe(userIDs []string) []string {
	seen := make(map[string]struct{}, len(userIDs))
	uniq := make([]string, 0, len(userIDs))
	for _, id := range userIDs {
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			uniq = append(uniq, id)
		}
	}
	return uniq
}

// lookup asks the registry for every user, Chunk users per call and Parallel calls at a
// time, and sorts each chunk's devices by segment.
func (r *resolution) lookup(ctx context.Context, uniq []string) ([]chunkOut, error) {
	chunk := r.cfg.Chunk
	nchunks := (len(uniq) + chunk - 1) / chunk
	outs := make([]chunkOut, nchunks)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Parallel)
	for c := 0; c < nchunks; c++ {
		ids := uniq[c*chunk : min((c+1)*chunk, len(uniq))]
		g.Go(func() error {
			devs, err := r.reg.Devices(gctx, ids)
			if err != nil {
				return fmt.Errorf("registry: %w", err)
			}
			if len(devs) != len(ids) {
				return fmt.Errorf("registry: %d answers for %d users", len(devs), len(ids))
			}
			outs[c] = r.sort(ids, devs)
			if r.progress != nil {
				r.progress.UsersDone.Add(int64(len(ids)))
			}
			return nil
		})
	}
	return outs, g.Wait()
}

// sort assigns each user of one chunk a variant (or the control group) and files their
// devices by segment.
func (r *resolution) sort(ids []string, devs [][]Device) chunkOut {
	out := chunkOut{segs: map[segKey]*segBuf{}}
	for i, ds := range devs {
		if ds == nil {
			out.unknownCount++
			if len(out.unknown) < r.cfg.UnknownSample {
				out.unknown = append(out.unknown, ids[i])
			}
			continue
		}
		v := r.spec.Assign(r.id, ids[i])
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
	return out
}

// layout merges the chunks in audience order (so the same audience always resolves to the
// same numbering), lays the segments end to end sorted by platform, app and variant, and
// returns the manifest without shards, every recipient's token, and the unknown-user sample.
func (r *resolution) layout(outs []chunkOut) (Manifest, [][]byte, []string) {
	names := r.spec.VariantNames()
	m := Manifest{Campaign: r.id, Counts: ManifestCounts{ByVariant: map[string]int{}}}
	var sample []string
	merged := map[segKey]*segBuf{}
	for i := range outs {
		o := &outs[i]
		m.Counts.UnknownUsers += o.unknownCount
		m.Counts.ControlUsers += o.controlUsers
		m.Counts.ControlDevices += o.controlDevices
		m.Counts.ControlIOS += o.controlIOS
		m.Counts.ControlAndroid += o.controlDevices - o.controlIOS
		if room := r.cfg.UnknownSample - len(sample); room > 0 {
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
	var all [][]byte
	for _, k := range keys {
		b := merged[k]
		seg := Segment{Platform: k.platform, App: k.app, Variant: k.variant, Start: uint32(len(all)), Count: uint32(len(b.lens))}
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
	return m, all, sample
}

// write cuts the recipients into shards, writes them (4 at a time), then the manifest.
func (r *resolution) write(ctx context.Context, m *Manifest, all [][]byte) error {
	for start := 0; start < len(all); start += r.cfg.ShardSize {
		end := min(start+r.cfg.ShardSize, len(all))
		m.Shards = append(m.Shards, ShardInfo{Key: shardKey(r.id, len(m.Shards)), Start: uint32(start), Count: uint32(end - start)})
	}
	w, wctx := errgroup.WithContext(ctx)
	w.SetLimit(4)
	for i := range m.Shards {
		sh := &m.Shards[i]
		w.Go(func() error {
			b := encodeShard(sh.Start, all[sh.Start:sh.Start+sh.Count])
			sh.Bytes, sh.SHA256 = len(b), sha256Hex(b)
			if err := r.store.Put(wctx, sh.Key, b); err != nil {
				return fmt.Errorf("put %s: %w", sh.Key, err)
			}
			return nil
		})
	}
	if err := w.Wait(); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := r.store.Put(ctx, ManifestKey(r.id), raw); err != nil {
		return fmt.Errorf("put manifest: %w", err)
	}
	return nil
}
