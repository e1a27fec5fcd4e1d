package burst

// streamRing is the size of streamTable's ring: a stream finds its slot free unless one
// started streamRing/2 streams earlier is still open (a slow answer), which goes to the
// overflow map instead.
const streamRing = 4096

// streamTable holds a connection's open streams by ID. Stream IDs are odd and given out in
// increasing order, so slot (id/2) mod streamRing is free for nearly every new stream: a
// lookup is one array index, where a Go map spent 0.7 of the sender's 8 CPU-s in a 4M send
// (hashing and probing its control words, cache misses mostly).
type streamTable struct {
	ring [streamRing]*stream
	over map[uint32]*stream // streams whose ring slot was taken when they started
	n    int
}

func streamSlot(id uint32) uint32 { return (id >> 1) & (streamRing - 1) }

// get returns the open stream id, or nil.
func (t *streamTable) get(id uint32) *stream {
	if st := t.ring[streamSlot(id)]; st != nil && st.id == id {
		return st
	}
	if len(t.over) > 0 {
		return t.over[id]
	}
	return nil
}

// put adds st, whose ID is not open.
func (t *streamTable) put(st *stream) {
	i := streamSlot(st.id)
	if t.ring[i] == nil {
		t.ring[i] = st
	} else {
		if t.over == nil {
			t.over = map[uint32]*stream{}
		}
		t.over[st.id] = st
	}
	t.n++
}

// del removes the open stream id; it does nothing if id is not open.
func (t *streamTable) del(id uint32) {
	i := streamSlot(id)
	if st := t.ring[i]; st != nil && st.id == id {
		t.ring[i] = nil
		t.n--
		return
	}
	if _, ok := t.over[id]; ok {
		delete(t.over, id)
		t.n--
	}
}

// len is the number of open streams.
func (t *streamTable) len() int { return t.n }

// appendAll appends the open streams to dst, in no particular order, so that a caller can
// go through them while it removes some.
func (t *streamTable) appendAll(dst []*stream) []*stream {
	if t.n == 0 {
		return dst
	}
	for _, st := range t.ring {
		if st != nil {
			dst = append(dst, st)
		}
	}
	for _, st := range t.over {
		dst = append(dst, st)
	}
	return dst
}
