package mockpush

// hashSet is a set of non-zero 64-bit hashes (0 is stored as 1) made for millions of random
// ones: extendible hashing over 4 KiB blocks. A directory indexed by the top bits of a hash
// points to the block that holds it; inside a block, slots are probed linearly from a place
// given by the low bits. A full block splits in two by one more top bit, so growing touches
// one new block and rehashes only the 408 hashes of the old one, all in cache: there is never
// a rehash of the whole set, nor a second copy of it in memory, and the memory the set
// touches grows with it (10-20 bytes per hash: blocks are 40-80% full; about 17 at 4 million in
// TestReceiptMemory). The cache miss of a large set remains; see
// addGroup. Hashes are random (maphash), so blocks split evenly; a block of hashes that share
// maxSetDepth top bits, which only a deliberate choice of hashes could make, does not split:
// its extra hashes go to a map.
type hashSet struct {
	dir   []*setBlock // 1<<depth entries
	depth uint
	n     int
	over  map[uint64]struct{}
	free  []*setBlock // cleared blocks kept by reset
	// touched sums the slots addGroup read ahead, so that the reads are not optimized away.
	touched uint64
}

// maxSetDepth bounds the directory at 1<<18 entries (2 MiB), room for about 80 million hashes.
const maxSetDepth = 18

const (
	// setBlockSlots is the number of slots in a block: with its counts, 4 KiB.
	setBlockSlots = 510
	// setBlockMax is how many hashes a block takes before it splits (80%: linear probing
	// stays short).
	setBlockMax = setBlockSlots * 4 / 5
)

// setBlock is one block of a hashSet: the hashes whose top depth bits are the same.
type setBlock struct {
	slots [setBlockSlots]uint64
	n     int32
	depth int32
}

// slotOf is where probing for h starts in its block, from its low 32 bits.
func slotOf(h uint64) int {
	return int(uint64(uint32(h)) * setBlockSlots >> 32)
}

// block returns the block that holds h, creating the first one.
func (s *hashSet) block(h uint64) *setBlock {
	if s.dir == nil {
		s.dir = []*setBlock{s.newBlock(0)}
	}
	return s.dir[h>>(64-s.depth)] // a shift by 64 is 0
}

// newBlock returns an empty block of the given depth, reusing one kept by reset.
func (s *hashSet) newBlock(depth int32) *setBlock {
	if n := len(s.free); n > 0 {
		b := s.free[n-1]
		s.free = s.free[:n-1]
		b.depth = depth
		return b
	}
	return &setBlock{depth: depth}
}

// reset empties the set and keeps its blocks, cleared, for the next hashes.
func (s *hashSet) reset() {
	for i, b := range s.dir {
		if i > 0 && s.dir[i-1] == b {
			continue // a block is at a run of consecutive entries
		}
		*b = setBlock{}
		s.free = append(s.free, b)
	}
	s.dir, s.depth, s.n, s.over = nil, 0, 0, nil
}

// add inserts h and reports whether it was new.
func (s *hashSet) add(h uint64) bool {
	if h == 0 {
		h = 1
	}
	for {
		b := s.block(h)
		i := slotOf(h)
		for b.slots[i] != 0 {
			if b.slots[i] == h {
				return false
			}
			if i++; i == setBlockSlots {
				i = 0
			}
		}
		switch {
		case b.n < setBlockMax:
			b.slots[i] = h
			b.n++
		case b.depth >= maxSetDepth:
			if _, ok := s.over[h]; ok {
				return false
			}
			if s.over == nil {
				s.over = map[uint64]struct{}{}
			}
			s.over[h] = struct{}{}
		default:
			s.split(b)
			continue
		}
		s.n++
		return true
	}
}

// has reports whether h is in the set.
func (s *hashSet) has(h uint64) bool {
	if h == 0 {
		h = 1
	}
	if s.dir == nil {
		return false
	}
	b := s.block(h)
	for i := slotOf(h); b.slots[i] != 0; {
		if b.slots[i] == h {
			return true
		}
		if i++; i == setBlockSlots {
			i = 0
		}
	}
	_, ok := s.over[h]
	return ok
}

// addGroup inserts a few hashes and returns how many were new. It first reads the slot of
// each one, so that the cache misses of a large set overlap instead of following each other,
// then inserts them one by one.
func (s *hashSet) addGroup(hs []uint64) int {
	var touch uint64
	for _, h := range hs {
		touch += s.block(h).slots[slotOf(h)]
	}
	s.touched += touch
	added := 0
	for _, h := range hs {
		if s.add(h) {
			added++
		}
	}
	return added
}

// split moves the hashes of b whose next top bit is 1 to a new block, doubling the
// directory first when b is as deep as it.
func (s *hashSet) split(b *setBlock) {
	if uint(b.depth) == s.depth {
		dir := make([]*setBlock, 2*len(s.dir))
		for i, x := range s.dir {
			dir[2*i], dir[2*i+1] = x, x
		}
		s.dir = dir
		s.depth++
	}
	// b is at a run of 1<<(s.depth-b.depth) directory entries; the upper half of the run
	// goes to the new block.
	var any uint64
	for _, h := range b.slots {
		if h != 0 {
			any = h
			break
		}
	}
	run := 1 << (s.depth - uint(b.depth))
	first := int(any>>(64-s.depth)) &^ (run - 1)
	b.depth++
	nb := s.newBlock(b.depth)
	for i := first + run/2; i < first+run; i++ {
		s.dir[i] = nb
	}
	old := b.slots
	b.slots, b.n = [setBlockSlots]uint64{}, 0
	bit := uint64(1) << (64 - uint(b.depth))
	for _, h := range old {
		if h == 0 {
			continue
		}
		dst := b
		if h&bit != 0 {
			dst = nb
		}
		i := slotOf(h)
		for dst.slots[i] != 0 {
			if i++; i == setBlockSlots {
				i = 0
			}
		}
		dst.slots[i] = h
		dst.n++
	}
}
