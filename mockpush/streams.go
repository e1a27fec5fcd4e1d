package mockpush

// streamTable holds a connection's open streams by ID. Client streams have consecutive odd
// IDs and short lives, so most of them sit in a direct-mapped array indexed by ID/2; a stream
// whose slot is taken by an older one that is still open goes to a map. The array doubles
// when the map grows past an eighth of it.
type streamTable struct {
	slots    []*h2stream
	overflow map[uint32]*h2stream
	n        int
}

// maxStreamSlots bounds the array (the most streams a connection may have open is 1<<20).
const maxStreamSlots = 1 << 20

func newStreamTable() streamTable {
	return streamTable{slots: make([]*h2stream, 256)}
}

func (t *streamTable) slot(id uint32) *(*h2stream) {
	return &t.slots[int(id>>1)&(len(t.slots)-1)]
}

// get returns the open stream id, or nil.
func (t *streamTable) get(id uint32) *h2stream {
	if st := *t.slot(id); st != nil && st.id == id {
		return st
	}
	if len(t.overflow) == 0 {
		return nil
	}
	return t.overflow[id]
}

// put adds st, whose ID is not in the table.
func (t *streamTable) put(st *h2stream) {
	t.n++
	if p := t.slot(st.id); *p == nil {
		*p = st
		return
	}
	if t.overflow == nil {
		t.overflow = map[uint32]*h2stream{}
	}
	t.overflow[st.id] = st
	if len(t.overflow) > len(t.slots)/8 && len(t.slots) < maxStreamSlots {
		t.grow()
	}
}

// del removes st, which is in the table.
func (t *streamTable) del(st *h2stream) {
	t.n--
	if p := t.slot(st.id); *p == st {
		*p = nil
		return
	}
	delete(t.overflow, st.id)
}

// each calls fn for every open stream.
func (t *streamTable) each(fn func(*h2stream)) {
	for _, st := range t.slots {
		if st != nil {
			fn(st)
		}
	}
	for _, st := range t.overflow {
		fn(st)
	}
}

func (t *streamTable) grow() {
	old, over := t.slots, t.overflow
	t.slots, t.overflow, t.n = make([]*h2stream, 2*len(old)), nil, 0
	for _, st := range old {
		if st != nil {
			t.put(st)
		}
	}
	for _, st := range over {
		t.put(st)
	}
}
