package diskregistry

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/salvopush/salvo/sender"
)

// Registry is a device registry loaded from a registry file. It implements sender.Registry
// and is safe for concurrent use. The file is mapped into memory (read whole where mapping
// is not available); nothing is allocated per user at load time. The caller owns the
// Registry and must Close it; the Devices it returned stay valid after Close.
type Registry struct {
	path    string
	data    []byte             // the whole file
	unmap   func([]byte) error // releases data; nil when data is ordinary memory
	records []byte
	table   []byte
	width   uint64
	mask    uint64
	users   uint64
	devices uint64
	strs    []string // apps and locales, all sharing one allocation

	mu      sync.RWMutex // held for reading by every lookup, for writing by Close
	closed  bool
	scratch sync.Pool     // *[]int, per-call record positions
	visits  sync.Pool     // *visitScratch
	touched atomic.Uint32 // a sink for the cache-warming loads in Devices

	// limit bounds the file's mapped pages (LimitResident; 0: no bound); mapped estimates
	// how many bytes of them lookups have mapped since they were last dropped.
	limit  atomic.Int64
	mapped atomic.Int64
	looked atomic.Int64 // users looked up since mapped was last reset
}

var _ sender.Registry = (*Registry)(nil)

// Open loads dir/FileName. It checks the header and the checksum of every section, so a
// damaged file fails here with a *CorruptError (matching ErrCorrupt) naming the file and the
// offset; record-level damage that a checksum cannot see is reported by Verify, or by the
// lookup that meets it.
func Open(dir string) (*Registry, error) {
	path := filepath.Join(dir, FileName)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("diskregistry: open: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("diskregistry: open: %w", err)
	}
	if st.Size() < headerSize {
		return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("file is %d bytes, shorter than the %d-byte header", st.Size(), headerSize)}
	}
	if st.Size() > math.MaxInt {
		return nil, fmt.Errorf("diskregistry: open %s: %d bytes do not fit in memory", path, st.Size())
	}
	data, unmap, err := loadFile(f, int(st.Size()))
	if err != nil {
		return nil, fmt.Errorf("diskregistry: open %s: %w", path, err)
	}
	r, err := newRegistry(path, data)
	if err != nil {
		if unmap != nil {
			unmap(data)
		}
		return nil, err
	}
	r.unmap = unmap
	if unmap != nil {
		// The checksums read every page of the file; none of them is needed until a lookup
		// asks for it.
		_ = dropPages(data)
	}
	return r, nil
}

// newRegistry checks data (a whole registry file read from path) and wraps it.
func newRegistry(path string, data []byte) (*Registry, error) {
	h, off, reason := decodeHeader(data, uint64(len(data)))
	if reason != "" {
		return nil, &CorruptError{Path: path, Offset: off, Reason: reason}
	}
	tab := castagnoli()
	for i, s := range h.secs {
		if got := crc32.Checksum(data[s.off:s.off+s.size], tab); got != s.crc {
			return nil, &CorruptError{Path: path, Offset: int64(s.off), Reason: fmt.Sprintf(
				"%s section (%d bytes) checksum mismatch (stored %08x, computed %08x)", sectionName(i), s.size, s.crc, got)}
		}
	}
	r := &Registry{
		path:    path,
		data:    data,
		records: data[h.secs[secRecords].off : h.secs[secRecords].off+h.secs[secRecords].size],
		table:   data[h.secs[secTable].off : h.secs[secTable].off+h.secs[secTable].size],
		width:   uint64(h.slotWidth),
		mask:    h.slots - 1,
		users:   h.users,
		devices: h.devices,
	}
	r.scratch.New = func() any { return new([]int) }
	r.visits.New = func() any { return new(visitScratch) }
	var err error
	s := h.secs[secStrings]
	if r.strs, err = parseStrings(data[s.off:s.off+s.size], int64(s.off), path); err != nil {
		return nil, err
	}
	return r, nil
}

// parseStrings decodes the strings section, which starts at file offset base.
func parseStrings(b []byte, base int64, path string) ([]string, error) {
	bad := func(pos int, format string, a ...any) error {
		return &CorruptError{Path: path, Offset: base + int64(pos), Reason: "strings section: " + fmt.Sprintf(format, a...)}
	}
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, bad(0, "bad string count")
	}
	all := string(b) // one allocation shared by every string
	strs := make([]string, count)
	pos := n
	for i := range strs {
		l, n := binary.Uvarint(b[pos:])
		if n <= 0 || l > maxStringLen || l > uint64(len(b)-pos-n) {
			return nil, bad(pos, "bad length of string %d", i)
		}
		pos += n
		strs[i] = all[pos : pos+int(l)]
		pos += int(l)
	}
	if pos != len(b) {
		return nil, bad(pos, "%d bytes after the last string", len(b)-pos)
	}
	return strs, nil
}

// Len returns the number of users.
func (r *Registry) Len() int { return int(r.users) }

// DeviceCount returns the number of devices of all users.
func (r *Registry) DeviceCount() int { return int(r.devices) }

// Size returns the size of the registry file in bytes.
func (r *Registry) Size() int64 { return int64(len(r.data)) }

// Devices returns, for each user ID in order, that user's devices, or nil for an unknown
// user (a known user without devices gets an empty, non-nil slice). A call allocates the
// result, one array of Devices and one buffer that every returned token shares; nothing
// else. An error means the call was cancelled, the registry is closed (ErrClosed) or a
// damaged record was met (ErrCorrupt).
func (r *Registry) Devices(ctx context.Context, userIDs []string) ([][]sender.Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return nil, ErrClosed
	}
	sp := r.scratch.Get().(*[]int)
	defer r.scratch.Put(sp)
	at, ndev, nbytes, err := r.locate(ctx, userIDs, sp, true)
	if err != nil {
		return nil, err
	}
	out := make([][]sender.Device, len(userIDs))
	devs := make([]sender.Device, ndev) // not nil even when empty: known users get non-nil slices
	buf := make([]byte, nbytes)
	for i, pos := range at {
		if pos < 0 {
			continue
		}
		c, b, _, err := r.decode(pos, devs, buf)
		if err != nil {
			return nil, err
		}
		out[i] = devs[:c:c]
		devs, buf = devs[c:], buf[b:]
	}
	return out, nil
}

// VisitDevices calls fn for each user ID in order with that user's devices, known false
// for an unknown user; it implements sender.DeviceVisitor. devs and their tokens live in
// buffers the call reuses from user to user: they are valid only until fn returns, and fn
// copies what it keeps. Apart from those buffers (pooled) nothing is allocated. Errors are
// those of Devices; fn has been called for the users before the failure.
func (r *Registry) VisitDevices(ctx context.Context, userIDs []string, fn func(i int, known bool, devs []sender.Device)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return ErrClosed
	}
	sp := r.scratch.Get().(*[]int)
	defer r.scratch.Put(sp)
	at, _, _, err := r.locate(ctx, userIDs, sp, false)
	if err != nil {
		return err
	}
	vp := r.visits.Get().(*visitScratch)
	defer r.visits.Put(vp)
	for i, pos := range at {
		if pos < 0 {
			fn(i, false, nil)
			continue
		}
		c, b, _, err := r.measure(pos)
		if err != nil {
			return err
		}
		if len(vp.devs) < c {
			vp.devs = make([]sender.Device, c)
		}
		if len(vp.buf) < b {
			vp.buf = make([]byte, max(b, 2*len(vp.buf)))
		}
		if c, _, _, err = r.decode(pos, vp.devs, vp.buf); err != nil {
			return err
		}
		fn(i, true, vp.devs[:c:c])
	}
	return nil
}

// visitScratch is the reused space of one VisitDevices call.
type visitScratch struct {
	devs []sender.Device
	buf  []byte
}

// locate finds each user's record: the position of its device count, or -1 for an unknown
// user, in *sp (grown as needed). With measure, it also totals their devices and token
// bytes.
func (r *Registry) locate(ctx context.Context, userIDs []string, sp *[]int, measure bool) (at []int, ndev, nbytes int, err error) {
	if cap(*sp) < len(userIDs) {
		*sp = make([]int, len(userIDs))
	}
	at = (*sp)[:len(userIDs)] // per user: the position of its device count, or -1

	// Users are looked up in blocks. An audience in ID order (the usual export of a user
	// table) asks for the users in the order of their records: each user is first looked
	// for in the record after the last user found (the chain), which reads the records
	// front to back and the index not at all. The users of a block that are not there go
	// through the index in three passes: the home slots of all of them, then the first three cache
	// lines of each record they point to (an ID and a device or two), then the full
	// lookups. The first two passes are short loops of independent loads, so their cache
	// misses overlap instead of coming one after the other; the third finds its data in
	// cache. This saves 15-20% on large registries in random order.
	const block = 128
	var hashes [block]uint64
	var first [block]uint64 // home slot contents
	var pending [block]int  // the block's users not in the record where the chain points
	var sink byte
	win := windows{last: -1}
	next := -1 // the chain: where the record after the last user found starts; -1: none yet
	for b0 := 0; b0 < len(userIDs); b0 += block {
		if err := ctx.Err(); err != nil {
			return nil, 0, 0, err
		}
		ids := userIDs[b0:min(b0+block, len(userIDs))]
		np := 0
		for i, id := range ids {
			if next < 0 { // no user found yet: this one, through the index, may start the chain
				pos, found, err := r.find(id, &win)
				if err != nil {
					return nil, 0, 0, err
				}
				at[b0+i] = -1
				if found {
					at[b0+i] = pos
					if _, _, next, err = r.measure(pos); err != nil {
						return nil, 0, 0, err
					}
				}
				continue
			}
			if next < len(r.records) {
				win.touch(headerSize + next)
				if got, pos, err := r.userAt(next); err == nil && string(got) == id {
					at[b0+i] = pos
					if _, _, next, err = r.measure(pos); err != nil {
						return nil, 0, 0, err
					}
					continue
				}
			}
			// Not the next record: an unknown user (the one after it may be next still), a
			// repeat, or an audience out of ID order.
			pending[np] = i
			np++
		}
		for _, i := range pending[:np] {
			hashes[i] = hashID(ids[i])
			first[i] = r.slot(hashes[i] & r.mask)
			win.touch(int(r.tableOffset(hashes[i] & r.mask)))
		}
		for _, i := range pending[:np] {
			if v := first[i]; v > 0 {
				if end := v - 1 + 2*64; end < uint64(len(r.records)) {
					sink ^= r.records[v-1] ^ r.records[v-1+64] ^ r.records[end]
				}
			}
		}
		for _, i := range pending[:np] {
			pos, found, err := r.findFrom(ids[i], hashes[i]&r.mask, first[i], &win)
			if err != nil {
				return nil, 0, 0, err
			}
			if !found {
				pos = -1
			}
			at[b0+i] = pos
		}
		if last := len(ids) - 1; np > 0 && pending[np-1] == last && at[b0+last] >= 0 {
			// Found through the index: the chain goes on from there.
			if _, _, next, err = r.measure(at[b0+last]); err != nil {
				return nil, 0, 0, err
			}
		}
		win.users += int64(len(ids))
		r.noteMapped(&win)
		if !measure {
			continue
		}
		for _, pos := range at[b0 : b0+len(ids)] {
			if pos < 0 {
				continue
			}
			c, b, _, err := r.measure(pos)
			if err != nil {
				return nil, 0, 0, err
			}
			ndev += c
			nbytes += b
		}
	}
	r.touched.Store(uint32(sink)) // keeps the touching loads from being optimized away
	return at, ndev, nbytes, nil
}

// Each calls fn for every user in ID order, with freshly allocated devices that fn may keep.
// It stops at the first error from fn and returns it. fn must not call the registry.
func (r *Registry) Each(ctx context.Context, fn func(userID string, devices []sender.Device) error) error {
	return r.walk(ctx, func(id []byte, pos, _ int) error {
		c, b, _, err := r.measure(pos)
		if err != nil {
			return err
		}
		devs := make([]sender.Device, c)
		if _, _, _, err := r.decode(pos, devs, make([]byte, b)); err != nil {
			return err
		}
		return fn(string(id), devs)
	})
}

// Users calls fn with every user ID in order, without decoding devices. It stops at the
// first error from fn and returns it. fn must not call the registry.
func (r *Registry) Users(ctx context.Context, fn func(userID string) error) error {
	return r.walk(ctx, func(id []byte, _, _ int) error { return fn(string(id)) })
}

// Verify reads every record and checks what the checksums cannot: that each record is well
// formed, that user IDs are strictly increasing, that the counts match the header and that
// the index finds every user at its own record and holds nothing else. It takes about as
// long as a full scan; Open does not call it.
func (r *Registry) Verify(ctx context.Context) error {
	prev := []byte(nil)
	win := windows{last: -1} // the index lookups' reads (walk counts the records')
	users := 0
	err := r.walk(ctx, func(id []byte, pos, rec int) error {
		if prev != nil && string(id) <= string(prev) {
			return r.corrupt(rec, "user %q is not after %q", id, prev)
		}
		prev = id
		if users++; users&4095 == 0 {
			r.noteMapped(&win)
		}
		win.users++
		at, found, err := r.find(string(id), &win)
		if err != nil {
			return err
		}
		if !found || at != pos {
			return r.corrupt(rec, "index does not lead to user %q", id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var used uint64
	for i := uint64(0); i <= r.mask; i++ {
		if r.slot(i) != 0 {
			used++
		}
	}
	if used != r.users {
		return &CorruptError{Path: r.path, Offset: r.tableOffset(0), Reason: fmt.Sprintf("index holds %d entries for %d users", used, r.users)}
	}
	return nil
}

// walk calls fn for every record with the user ID, the position of its device count and
// the position of the record, then checks the header's counts.
func (r *Registry) walk(ctx context.Context, fn func(id []byte, pos, rec int) error) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return ErrClosed
	}
	var users, devices uint64
	win := windows{last: -1}
	for rec := 0; rec < len(r.records); users++ {
		if users&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			r.noteMapped(&win)
		}
		win.touch(headerSize + rec)
		win.users++
		id, pos, err := r.userAt(rec)
		if err != nil {
			return err
		}
		c, _, end, err := r.measure(pos)
		if err != nil {
			return err
		}
		if err := fn(id, pos, rec); err != nil {
			return err
		}
		devices += uint64(c)
		rec = end
	}
	if users != r.users || devices != r.devices {
		return r.corrupt(len(r.records), "records hold %d users and %d devices, the header says %d and %d",
			users, devices, r.users, r.devices)
	}
	return nil
}

// Close releases the file's memory. Devices returned earlier stay valid; later calls return
// ErrClosed. Close is idempotent.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	data := r.data
	r.data, r.records, r.table = nil, nil, nil
	if r.unmap != nil {
		if err := r.unmap(data); err != nil {
			return fmt.Errorf("diskregistry: close %s: %w", r.path, err)
		}
	}
	return nil
}

// DropResident takes the mapped file's pages out of the process's resident set (Linux;
// elsewhere it does nothing): a caller done with a burst of lookups, such as a resolution,
// gives them back. The pages stay in the page cache, so a later lookup costs a minor page
// fault per page, not a read from disk. It is safe to call concurrently with lookups.
func (r *Registry) DropResident() error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed || r.unmap == nil {
		return nil
	}
	if err := dropPages(r.data); err != nil {
		return fmt.Errorf("diskregistry: drop resident pages of %s: %w", r.path, err)
	}
	return nil
}

// LimitResident bounds the pages of the mapped file that lookups in ID order keep in the
// process's resident set to about bytes (0, the default: no bound). Once lookups have
// mapped that much (estimated from the parts of the records and the index they read), the
// file's pages are dropped as DropResident drops them, and later lookups map what they read
// again: minor page faults, no reads from disk while the file stays in the page cache. The
// estimate counts a fault-around window (64 KiB) per part read; a fault that meets a large
// folio of the page cache maps all of it, so what is resident can exceed the bound by that.
//
// Lookups of users in ID order (an audience exported from the registry) read the records
// front to back and the index once per call, so each part of the file is mapped about once
// whatever the bound. Lookups in random order would map a part for nearly every user again
// after each drop, a page fault or two per user: when the users found since the last drop
// are few for the parts read (minUsersPerWindow), nothing is dropped and the file stays
// mapped as without a bound. It is safe to call at any time, also concurrently with lookups.
func (r *Registry) LimitResident(bytes int64) {
	r.limit.Store(max(bytes, 0))
}

// faultWindow is the span of file pages a page fault maps at once when they are in the page
// cache (Linux's fault_around_bytes, 64 KiB by default): the unit in which lookups are
// counted against LimitResident.
const faultWindow = 64 << 10

// windows counts the distinct fault windows one lookup call reads; consecutive reads of the
// same window count once.
type windows struct {
	last  int // the window read last, or -1
	n     int64
	users int64 // users looked up
}

// touch counts the window of file offset off.
func (w *windows) touch(off int) {
	if v := off / faultWindow; v != w.last {
		w.last = v
		w.n++
	}
}

// minUsersPerWindow is how many users lookups must have found per window they read for a
// drop to pay: in ID order they find hundreds (a record is about a hundred bytes), in random
// order less than one, and each window dropped would be read again soon.
const minUsersPerWindow = 16

// noteMapped adds the windows and users a call has read since it last noted them to the
// estimates, and once the windows pass the limit starts the count again, dropping the file's
// pages if the lookups read it in order (minUsersPerWindow). One caller drops at a time; the
// others go on reading (the pages map again as they are read). It is called with r.mu held
// for reading.
func (r *Registry) noteMapped(w *windows) {
	n, users := w.n*faultWindow, w.users
	w.n, w.users = 0, 0
	limit := r.limit.Load()
	if limit <= 0 || r.unmap == nil || n == 0 {
		return
	}
	r.looked.Add(users)
	if v := r.mapped.Add(n); v > limit && r.mapped.CompareAndSwap(v, 0) {
		if r.looked.Swap(0) >= v/faultWindow*minUsersPerWindow {
			// A failure leaves pages resident, which costs memory only.
			_ = dropPages(r.data)
		}
	}
}

// find looks id up in the index and returns the position of its device count; it counts
// the parts of the file it reads in w.
func (r *Registry) find(id string, w *windows) (int, bool, error) {
	i := hashID(id) & r.mask
	w.touch(int(r.tableOffset(i)))
	return r.findFrom(id, i, r.slot(i), w)
}

// findFrom is find with id's home slot i and its content v already read; it counts the
// records it reads in w.
func (r *Registry) findFrom(id string, i, v uint64, w *windows) (int, bool, error) {
	for probes := uint64(0); probes <= r.mask; probes++ {
		if probes > 0 {
			v = r.slot(i)
			w.touch(int(r.tableOffset(i)))
		}
		if v == 0 {
			return 0, false, nil
		}
		if v > uint64(len(r.records)) {
			return 0, false, &CorruptError{Path: r.path, Offset: r.tableOffset(i), Reason: fmt.Sprintf("index slot %d points past the records", i)}
		}
		w.touch(headerSize + int(v-1))
		got, pos, err := r.userAt(int(v - 1))
		if err != nil {
			return 0, false, err
		}
		if string(got) == id {
			return pos, true, nil
		}
		i = (i + 1) & r.mask
	}
	return 0, false, &CorruptError{Path: r.path, Offset: r.tableOffset(0), Reason: "index has no empty slot"}
}

func (r *Registry) slot(i uint64) uint64 {
	if r.width == 4 {
		return uint64(binary.LittleEndian.Uint32(r.table[i*4:]))
	}
	return binary.LittleEndian.Uint64(r.table[i*8:])
}

func (r *Registry) tableOffset(i uint64) int64 {
	return int64(len(r.data)-len(r.table)) + int64(i*r.width)
}

// userAt parses the user ID of the record at rec and returns it with the position of the
// device count that follows.
func (r *Registry) userAt(rec int) ([]byte, int, error) {
	l, pos, err := r.uvarint(rec)
	if err != nil {
		return nil, 0, err
	}
	if l == 0 || l > MaxUserIDLen || l > uint64(len(r.records)-pos) {
		return nil, 0, r.corrupt(rec, "bad user ID length %d", l)
	}
	return r.records[pos : pos+int(l)], pos + int(l), nil
}

// measure parses the devices at pos (the device count) and returns how many there are, the
// total length of their tokens and where the record ends.
func (r *Registry) measure(pos int) (count, tokenBytes, end int, err error) {
	c, pos, err := r.deviceCount(pos)
	if err != nil {
		return 0, 0, 0, err
	}
	for range c {
		var d device
		if d, pos, err = r.deviceAt(pos); err != nil {
			return 0, 0, 0, err
		}
		tokenBytes += d.n
	}
	return c, tokenBytes, pos, nil
}

// decode fills devs and buf (large enough, per measure) with the devices at pos.
func (r *Registry) decode(pos int, devs []sender.Device, buf []byte) (count, tokenBytes, end int, err error) {
	c, pos, err := r.deviceCount(pos)
	if err != nil {
		return 0, 0, 0, err
	}
	if c > len(devs) {
		return 0, 0, 0, r.corrupt(pos, "record changed while read")
	}
	for k := range c {
		var d device
		if d, pos, err = r.deviceAt(pos); err != nil {
			return 0, 0, 0, err
		}
		if d.n > len(buf)-tokenBytes {
			return 0, 0, 0, r.corrupt(pos, "record changed while read")
		}
		tok := buf[tokenBytes : tokenBytes+d.n]
		if !decodeToken(tok, d.enc, d.kind, d.n) {
			return 0, 0, 0, r.corrupt(pos, "bad token")
		}
		tokenBytes += d.n
		devs[k] = sender.Device{
			Platform: d.platform,
			Token:    unsafe.String(&tok[0], len(tok)), // buf is never written again
			App:      r.strs[d.app],
			Locale:   r.strs[d.locale],
		}
	}
	return c, tokenBytes, pos, nil
}

func (r *Registry) deviceCount(pos int) (int, int, error) {
	c, next, err := r.uvarint(pos)
	if err != nil {
		return 0, 0, err
	}
	if c > MaxDevicesPerUser {
		return 0, 0, r.corrupt(pos, "%d devices, at most %d", c, MaxDevicesPerUser)
	}
	return int(c), next, nil
}

// device is one parsed device record; enc is the token in its stored encoding.
type device struct {
	platform    sender.Platform
	kind        int
	app, locale uint64
	n           int // token length in characters
	enc         []byte
}

// deviceAt parses the device record at pos and returns it with the position after it.
func (r *Registry) deviceAt(pos int) (device, int, error) {
	var d device
	start := pos
	if pos >= len(r.records) {
		return d, 0, r.corrupt(pos, "record cut short")
	}
	meta := r.records[pos]
	pos++
	d.platform, d.kind = sender.Platform(meta&0x0f), int(meta>>4)
	if d.platform != sender.PlatformIOS && d.platform != sender.PlatformAndroid {
		return d, 0, r.corrupt(start, "unknown platform %d", d.platform)
	}
	var err error
	if d.app, pos, err = r.uvarint(pos); err != nil {
		return d, 0, err
	}
	if d.locale, pos, err = r.uvarint(pos); err != nil {
		return d, 0, err
	}
	if d.app >= uint64(len(r.strs)) || d.locale >= uint64(len(r.strs)) {
		return d, 0, r.corrupt(start, "app or locale index out of the %d strings", len(r.strs))
	}
	n, pos, err := r.uvarint(pos)
	if err != nil {
		return d, 0, err
	}
	if n == 0 || n > MaxTokenLen {
		return d, 0, r.corrupt(start, "bad token length %d", n)
	}
	d.n = int(n)
	hasColon := false
	if d.kind == kindB64 {
		if pos >= len(r.records) {
			return d, 0, r.corrupt(pos, "record cut short")
		}
		c := r.records[pos]
		hasColon = c != noColon
		if hasColon && int(c) >= d.n {
			return d, 0, r.corrupt(pos, "separator at %d in a %d-character token", c, d.n)
		}
	}
	el, ok := encodedLen(d.kind, d.n, hasColon)
	if !ok {
		return d, 0, r.corrupt(start, "token kind %d cannot hold %d characters", d.kind, d.n)
	}
	if el > len(r.records)-pos {
		return d, 0, r.corrupt(pos, "token runs past the records")
	}
	d.enc = r.records[pos : pos+el]
	return d, pos + el, nil
}

func (r *Registry) uvarint(pos int) (uint64, int, error) {
	if pos < len(r.records) && r.records[pos] < 0x80 { // one byte: most lengths and counts
		return uint64(r.records[pos]), pos + 1, nil
	}
	if pos >= len(r.records) {
		return 0, 0, r.corrupt(pos, "record cut short")
	}
	v, n := binary.Uvarint(r.records[pos:])
	if n <= 0 {
		return 0, 0, r.corrupt(pos, "bad varint")
	}
	return v, pos + n, nil
}

// corrupt reports damage at position pos of the records section.
func (r *Registry) corrupt(pos int, format string, a ...any) error {
	return &CorruptError{Path: r.path, Offset: headerSize + int64(pos), Reason: fmt.Sprintf(format, a...)}
}
