package store

// A pindex holds the pending runs of one shard: an open-addressing table
// with linear probing, kept at most half full, whose slots hold the pending
// runs themselves, so that starting or ending a run touches only the
// shard's lock and one slot. A slot holds the task id, the record, and the
// retries recorded for the run (so that recording one takes only the
// shard's lock). Deletion shifts later entries back, so no tombstones
// build up. It is used only with its shard locked.
type pindex[R any] struct {
	slots []pslot[R] // length a power of two, or 0 before the first insert
	n     int        // slots in use
}

type pslot[R any] struct {
	hash    uint64 // the task id's hash with bit 0 set; 0 means empty
	id      string // the task id
	retries int32  // retries recorded for the run
	rec     R
}

// home returns the slot a hash would occupy in an empty table. It uses bits
// above those that pick the shard.
func (x *pindex[R]) home(hk uint64) int { return int(hk>>8) & (len(x.slots) - 1) }

// find returns the position of the entry of taskID, or -1.
func (x *pindex[R]) find(h uint64, taskID string) int {
	if len(x.slots) == 0 {
		return -1
	}
	hk, mask := key(h), len(x.slots)-1
	for i := x.home(hk); ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.hash == 0 {
			return -1
		}
		if s.hash == hk && sameString(s.id, taskID) {
			return i
		}
	}
}

// insert adds the run of taskID unless it is there already, in one probe,
// and reports whether it added it.
func (x *pindex[R]) insert(h uint64, taskID string, rec *R) bool {
	if 2*(x.n+1) > len(x.slots) {
		x.grow()
	}
	hk, mask := key(h), len(x.slots)-1
	i := x.home(hk)
	for ; x.slots[i].hash != 0; i = (i + 1) & mask {
		if s := &x.slots[i]; s.hash == hk && s.id == taskID {
			return false
		}
	}
	p := &x.slots[i] // empty: only the fields that are not zero are set
	// One field a statement: a tuple assignment would copy *rec to a
	// temporary first, in case it overlaps the slot.
	p.hash = hk
	p.id = taskID
	p.rec = *rec
	x.n++
	return true
}

// removeAt deletes the entry at position i.
func (x *pindex[R]) removeAt(i int) {
	mask := len(x.slots) - 1
	// Shift back the entries after i that may not stay past the hole.
	for j := i; ; {
		j = (j + 1) & mask
		s := &x.slots[j]
		if s.hash == 0 {
			break
		}
		// Move s into the hole at i unless its home lies cyclically in (i, j].
		if k := x.home(s.hash); (j-k)&mask >= (j-i)&mask {
			x.slots[i] = *s
			i = j
		}
	}
	x.slots[i] = pslot[R]{}
	x.n--
}

// grow doubles the table (16 slots at first) and reinserts every entry.
func (x *pindex[R]) grow() {
	old := x.slots
	x.slots = make([]pslot[R], max(2*len(old), 16))
	mask := len(x.slots) - 1
	for _, s := range old {
		if s.hash == 0 {
			continue
		}
		i := x.home(s.hash)
		for x.slots[i].hash != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = s
	}
}
