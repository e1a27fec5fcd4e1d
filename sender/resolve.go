package sender

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"slices"
	"sync"
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
	// SpillDir, when set, is where a resolution keeps its recipients' tokens while it looks
	// users up (in a folder named for the campaign, removed when the resolution ends), so that
	// they are in the page cache rather than on the heap: the heap holds the chunks in
	// flight, the audience and 2 bytes per recipient. Empty: the tokens stay in memory until
	// the shards are written.
	SpillDir string
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

// segBuf holds tokens end to end without a string per token: one segment's tokens from one
// registry call, or a slice of them cut to a shard. Tokens spilled to a file are not in
// tokens (it is empty) but the n bytes at off in spilled.
type segBuf struct {
	tokens  []byte
	lens    []uint16
	spilled *os.File
	off     int64
	n       int
}

// size is the length of the tokens, in memory or spilled.
func (b *segBuf) size() int {
	if b.spilled != nil {
		return b.n
	}
	return len(b.tokens)
}

// chunkSeg is one segment's tokens within one chunk.
type chunkSeg struct {
	key segKey
	buf segBuf
}

// chunkOut is what one registry call contributes, merged in audience order afterwards so
// that the same audience always resolves to the same recipient numbering.
type chunkOut struct {
	segs           []chunkSeg
	unknown        []string
	unknownCount   int
	controlUsers   int
	controlDevices int
	controlIOS     int
	// noMessage counts devices left out because their variant has no message for their
	// platform; noMessageSample names some of their users.
	noMessage       map[Platform]int
	noMessageSample []string
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
	scratch  sync.Pool // *sortScratch
	spill    *spill    // nil: tokens stay in the chunks' buffers
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
	if r.cfg.SpillDir != "" {
		if !ValidCampaignID(campaignID) { // it names the spill's folder
			return nil, fmt.Errorf("resolve %q: %w", campaignID, ErrInvalid)
		}
		var err error
		if r.spill, err = newSpill(filepath.Join(r.cfg.SpillDir, campaignID), (len(uniq)+r.cfg.Chunk-1)/r.cfg.Chunk); err != nil {
			return nil, fmt.Errorf("resolve %s: %w", campaignID, err)
		}
		defer r.spill.close()
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

// dedupe returns the user IDs without repeats, in first-seen order: userIDs itself when
// it has none (an audience file usually has none), else a new slice. The set is an
// open-addressing table of indexes into userIDs (with 32 bits of each hash beside the
// index, so that a probe rarely has to compare strings): 8 bytes per slot at most half
// full, against a map's key, hash and bucket overhead per ID.
func dedupe(userIDs []string) []string {
	size := 16
	for size < 2*len(userIDs) {
		size <<= 1
	}
	mask := uint64(size - 1)
	table := make([]uint64, size) // 0 empty, else hash>>32<<32 | index+1
	seed := maphash.MakeSeed()
	var repeats []int // positions of repeated IDs, in order
	for i, id := range userIDs {
		h := maphash.String(seed, id)
		tag := h >> 32 << 32
		for j := h & mask; ; j = (j + 1) & mask {
			e := table[j]
			if e == 0 {
				table[j] = tag | uint64(i+1)
				break
			}
			if e&^0xffffffff == tag && userIDs[uint32(e)-1] == id {
				repeats = append(repeats, i)
				break
			}
		}
	}
	if len(repeats) == 0 {
		return userIDs
	}
	uniq := make([]string, 0, len(userIDs)-len(repeats))
	for i, id := range userIDs {
		if len(repeats) > 0 && repeats[0] == i {
			repeats = repeats[1:]
			continue
		}
		uniq = append(uniq, id)
	}
	return uniq
}

// lookup asks the registry for every user, Chunk users per call and Parallel calls at a
// time, and sorts each chunk's devices by segment. A registry that can hand devices out
// without allocating them (DeviceVisitor) is asked that way.
func (r *resolution) lookup(ctx context.Context, uniq []string) ([]chunkOut, error) {
	chunk := r.cfg.Chunk
	nchunks := (len(uniq) + chunk - 1) / chunk
	outs := make([]chunkOut, nchunks)
	visitor, _ := r.reg.(DeviceVisitor)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Parallel)
	for c := 0; c < nchunks; c++ {
		ids := uniq[c*chunk : min((c+1)*chunk, len(uniq))]
		g.Go(func() error {
			var err error
			if visitor != nil {
				outs[c], err = r.sort(ids, func(fn func(int, bool, []Device)) error {
					return visitor.VisitDevices(gctx, ids, fn)
				})
			} else {
				outs[c], err = r.sort(ids, func(fn func(int, bool, []Device)) error {
					devs, err := r.reg.Devices(gctx, ids)
					if err != nil {
						return err
					}
					if len(devs) != len(ids) {
						return fmt.Errorf("%d answers for %d users", len(devs), len(ids))
					}
					for i, ds := range devs {
						fn(i, ds != nil, ds)
					}
					return nil
				})
			}
			if err != nil {
				return fmt.Errorf("registry: %w", err)
			}
			if r.spill != nil {
				if err := r.spill.add(outs, c); err != nil {
					return err
				}
			}
			if r.progress != nil {
				r.progress.UsersDone.Add(int64(len(ids)))
			}
			return nil
		})
	}
	return outs, g.Wait()
}

// sortScratch is where sort gathers one chunk's tokens before it knows each segment's
// size; it is reused from chunk to chunk.
type sortScratch struct {
	tokens []byte
	devs   []scratchDev
}

// scratchDev is one gathered token: its segment (an index into chunkOut.segs) and length.
type scratchDev struct {
	seg int32
	n   uint16
}

// sort assigns each user of one chunk a variant (or the control group) and files their
// devices by segment. each hands sort every user of ids in order (known false for one the
// registry does not have) with devices that are valid during the call only. The tokens are
// gathered in reused scratch space first, so that each segment's buffers are allocated once
// at their final size.
func (r *resolution) sort(ids []string, each func(fn func(i int, known bool, devs []Device)) error) (chunkOut, error) {
	out := chunkOut{noMessage: map[Platform]int{}}
	sc, _ := r.scratch.Get().(*sortScratch)
	if sc == nil {
		sc = &sortScratch{}
	}
	defer r.scratch.Put(sc)
	sc.tokens, sc.devs = sc.tokens[:0], sc.devs[:0]
	type size struct{ bytes, count int }
	var sizes []size
	last := -1
	find := func(k segKey) int { // segments per chunk are few: a linear search
		if last >= 0 && out.segs[last].key == k {
			return last
		}
		for i := range out.segs {
			if out.segs[i].key == k {
				last = i
				return i
			}
		}
		out.segs = append(out.segs, chunkSeg{key: k})
		sizes = append(sizes, size{})
		last = len(out.segs) - 1
		return last
	}
	err := each(func(i int, known bool, ds []Device) {
		if !known {
			out.unknownCount++
			if len(out.unknown) < r.cfg.UnknownSample {
				out.unknown = append(out.unknown, ids[i])
			}
			return
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
			return
		}
		for _, d := range ds {
			if !pushable(d) {
				continue
			}
			if !r.spec.HasMessage(v, d.Platform) {
				// No message for this platform in the user's variant: left out, counted and
				// named, rather than a batch that can never be rendered.
				out.noMessage[d.Platform]++
				if len(out.noMessageSample) < r.cfg.UnknownSample {
					out.noMessageSample = append(out.noMessageSample, ids[i])
				}
				continue
			}
			seg := find(segKey{d.Platform, d.App, v})
			sizes[seg].bytes += len(d.Token)
			sizes[seg].count++
			sc.tokens = append(sc.tokens, d.Token...)
			sc.devs = append(sc.devs, scratchDev{seg: int32(seg), n: uint16(len(d.Token))})
		}
	})
	if err != nil {
		return chunkOut{}, err
	}
	for i := range out.segs {
		out.segs[i].buf = segBuf{tokens: make([]byte, 0, sizes[i].bytes), lens: make([]uint16, 0, sizes[i].count)}
	}
	off := 0
	for _, d := range sc.devs {
		b := &out.segs[d.seg].buf
		b.tokens = append(b.tokens, sc.tokens[off:off+int(d.n)]...)
		b.lens = append(b.lens, d.n)
		off += int(d.n)
	}
	return out, nil
}

// pushable reports whether a registry entry is one a provider would take.
func pushable(d Device) bool {
	return (d.Platform == PlatformIOS || d.Platform == PlatformAndroid) && d.Token != "" && len(d.Token) <= 0xffff
}

// laidOut is the resolved recipients in their final numbering, still in the chunks'
// buffers: each segment's parts, one per chunk that had devices in it, in audience order.
// Shards are cut from it without copying every token into one merged buffer first.
type laidOut struct {
	parts []segBuf // every segment's parts, segments in manifest order
}

// shards cuts the recipients into runs of size (the last shorter) and returns, per shard,
// its parts: sub-slices of the chunks' buffers.
func (l *laidOut) shards(size int) [][]segBuf {
	var out [][]segBuf
	var cur []segBuf
	room := size
	for _, p := range l.parts {
		for len(p.lens) > 0 {
			n := min(room, len(p.lens))
			nb := 0
			for _, x := range p.lens[:n] {
				nb += int(x)
			}
			if p.spilled != nil {
				cur = append(cur, segBuf{spilled: p.spilled, off: p.off, n: nb, lens: p.lens[:n:n]})
				p = segBuf{spilled: p.spilled, off: p.off + int64(nb), n: p.n - nb, lens: p.lens[n:]}
			} else {
				cur = append(cur, segBuf{tokens: p.tokens[:nb:nb], lens: p.lens[:n:n]})
				p = segBuf{tokens: p.tokens[nb:], lens: p.lens[n:]}
			}
			if room -= n; room == 0 {
				out, cur, room = append(out, cur), nil, size
			}
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// layout merges the chunks in audience order (so the same audience always resolves to the
// same numbering), lays the segments end to end sorted by platform, app and variant, and
// returns the manifest without shards, the recipients' tokens in that order (in the chunks'
// own buffers) and the unknown-user sample.
func (r *resolution) layout(outs []chunkOut) (Manifest, *laidOut, []string) {
	names := r.spec.VariantNames()
	m := Manifest{Campaign: r.id, Counts: ManifestCounts{ByVariant: map[string]int{}}}
	var sample []string
	merged := map[segKey][]segBuf{}
	if r.spill != nil { // every chunk's segments are in it, in audience order
		for k, sg := range r.spill.segs {
			merged[k] = []segBuf{{spilled: sg.f, n: int(sg.size), lens: sg.lens}}
		}
	}
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
		m.Counts.NoMessageIOS += o.noMessage[PlatformIOS]
		m.Counts.NoMessageAndroid += o.noMessage[PlatformAndroid]
		if room := r.cfg.UnknownSample - len(m.Counts.NoMessageSample); room > 0 {
			m.Counts.NoMessageSample = append(m.Counts.NoMessageSample, o.noMessageSample[:min(room, len(o.noMessageSample))]...)
		}
		for _, cs := range o.segs {
			if len(cs.buf.lens) > 0 {
				merged[cs.key] = append(merged[cs.key], cs.buf)
			}
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
	l := &laidOut{}
	var total uint32
	for _, k := range keys {
		count, nbytes := 0, 0
		for _, p := range merged[k] {
			count += len(p.lens)
			nbytes += p.size()
		}
		l.parts = append(l.parts, merged[k]...)
		m.Segments = append(m.Segments, Segment{Platform: k.platform, App: k.app, Variant: k.variant, Start: total, Count: uint32(count)})
		total += uint32(count)
		m.Counts.TokenBytes += int64(nbytes)
		m.Counts.ByVariant[names[k.variant]] += count
		if k.platform == PlatformIOS {
			m.Counts.IOS += count
		} else {
			m.Counts.Android += count
		}
	}
	m.Recipients = total
	return m, l, sample
}

// write cuts the recipients into shards, writes them (4 at a time), then the manifest.
func (r *resolution) write(ctx context.Context, m *Manifest, l *laidOut) error {
	var start uint32
	var most shardBufs // the largest shard's sizes, to which every writer's buffers grow once
	shards := l.shards(r.cfg.ShardSize)
	for _, parts := range shards {
		n, nbytes, spilled := 0, 0, 0
		for _, p := range parts {
			n += len(p.lens)
			nbytes += p.size()
			if p.spilled != nil {
				spilled += p.n
			}
		}
		most.grow(12+2*n+nbytes+4, spilled) // encodeShard's size
		m.Shards = append(m.Shards, ShardInfo{Key: shardKey(r.id, len(m.Shards)), Start: start, Count: uint32(n)})
		start += uint32(n)
	}
	// Four shards are encoded and written at a time, each in one of four buffers reused from
	// shard to shard (Put keeps nothing of its data): the shards are not garbage for the
	// collector to find while the resolution's tokens are still live. Spilled tokens are read
	// back into a second buffer of the writer's; then only two write at a time, as the
	// buffers are what the heap holds.
	writers := 4
	if r.spill != nil {
		writers = 2
	}
	bufs := make(chan *shardBufs, writers)
	for range writers {
		bufs <- &shardBufs{encCap: most.encCap, readCap: most.readCap}
	}
	w, wctx := errgroup.WithContext(ctx)
	w.SetLimit(writers)
	for i := range m.Shards {
		sh := &m.Shards[i]
		w.Go(func() error {
			sb := <-bufs
			defer func() { bufs <- sb }()
			b, err := sb.encode(sh.Start, shards[i])
			if err != nil {
				return fmt.Errorf("shard %s: %w", sh.Key, err)
			}
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

// shardBufs is one shard writer's reused space: the shard as encoded, and the spilled
// tokens of the shard read back. Each is allocated at its first use, at encCap and readCap
// bytes (the largest shard's), so that it never grows.
type shardBufs struct {
	enc, read       []byte
	encCap, readCap int
	parts           []segBuf
}

// grow raises the capacities to enc and read bytes.
func (b *shardBufs) grow(enc, read int) {
	b.encCap, b.readCap = max(b.encCap, enc), max(b.readCap, read)
}

// encode encodes a shard of parts (spilled ones read back) into b.enc.
func (b *shardBufs) encode(start uint32, parts []segBuf) ([]byte, error) {
	parts, err := b.unspill(parts)
	if err != nil {
		return nil, err
	}
	if b.enc == nil {
		b.enc = make([]byte, 0, b.encCap)
	}
	b.enc = encodeShard(b.enc, start, parts)
	return b.enc, nil
}

// unspill returns parts with the spilled tokens read back into b.read (the returned parts
// point into it until the next call).
func (b *shardBufs) unspill(parts []segBuf) ([]segBuf, error) {
	n := 0
	for _, p := range parts {
		if p.spilled != nil {
			n += p.n
		}
	}
	if n == 0 {
		return parts, nil
	}
	if cap(b.read) < n {
		b.read = make([]byte, max(n, b.readCap))
	}
	b.parts = b.parts[:0]
	at := 0
	for _, p := range parts {
		if p.spilled != nil {
			dst := b.read[at : at+p.n : at+p.n]
			if _, err := p.spilled.ReadAt(dst, p.off); err != nil {
				return nil, fmt.Errorf("read spilled tokens: %w", err)
			}
			p = segBuf{tokens: dst, lens: p.lens}
			at += len(dst)
		}
		b.parts = append(b.parts, p)
	}
	return b.parts, nil
}

// spill keeps a resolution's tokens in files while it looks users up: each chunk's
// segments, appended to one file per segment as soon as every chunk before it is done (so
// each file is in audience order), after which the chunk's buffers are dropped.
type spill struct {
	dir  string
	mu   sync.Mutex
	done []bool // per chunk: sorted, waiting for the chunks before it
	next int    // the first chunk not spilled yet
	segs map[segKey]*spillSeg
}

// spillSeg is one segment's file and the lengths of the tokens in it.
type spillSeg struct {
	f    *os.File
	size int64
	lens []uint16
}

// newSpill creates dir (removing what a resolution cut short left there) for chunks chunks.
func newSpill(dir string, chunks int) (*spill, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	return &spill{dir: dir, done: make([]bool, chunks), segs: map[segKey]*spillSeg{}}, nil
}

// add records that outs[c] is sorted and spills every chunk from the first not spilled yet
// up to the first still being sorted, dropping their segments' buffers. outs[c] must not
// change after the call; add is safe for concurrent use.
func (s *spill) add(outs []chunkOut, c int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done[c] = true
	for ; s.next < len(s.done) && s.done[s.next]; s.next++ {
		o := &outs[s.next]
		for _, cs := range o.segs {
			if len(cs.buf.lens) == 0 {
				continue
			}
			sg := s.segs[cs.key]
			if sg == nil {
				f, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("segment-%d", len(s.segs))))
				if err != nil {
					return fmt.Errorf("spill: %w", err)
				}
				sg = &spillSeg{f: f}
				s.segs[cs.key] = sg
			}
			if _, err := sg.f.Write(cs.buf.tokens); err != nil {
				return fmt.Errorf("spill: %w", err)
			}
			sg.size += int64(len(cs.buf.tokens))
			sg.lens = append(sg.lens, cs.buf.lens...)
		}
		o.segs = nil
	}
	return nil
}

// close closes and removes the files.
func (s *spill) close() {
	for _, sg := range s.segs {
		_ = sg.f.Close()
	}
	_ = os.RemoveAll(s.dir)
}
