package store

// An index maps task ids to the ring slots that hold their latest finished
// runs. It is an open-addressing table with linear probing, kept at most
// half full, keyed by the 64-bit hash of the task id kept with each record,
// so building it hashes nothing. A slot holds only the hash and the ring
// slot: the task id itself is compared in the ring, and only when the
// hashes match, so an entry whose ring slot has been overwritten by another
// task id is simply not found (see ring.catchUp). Deletion shifts later
// entries back, so no tombstones build up.
type index struct {
	slots []islot // length a power of two, or 0 before the first insert
	n     int     // slots in use
}

type islot struct {
	hash uint64 // the task id's hash with bit 0 set; 0 means empty
	ring int32  // ring slot of the run
}

// key returns the stored form of a hash: never 0, so 0 can mean empty.
func key(h uint64) uint64 { return h | 1 }

// home returns the slot a hash would occupy in an empty table. It uses bits
// above those that pick the shard.
func (x *index) home(hk uint64) int { return int(hk>>8) & (len(x.slots) - 1) }

// find returns the position of the entry for hash h whose ring slot holds a
// run of taskID, or -1. same reports whether ring slot r holds taskID.
func (x *index) find(h uint64, same func(r int32) bool) int {
	if len(x.slots) == 0 {
		return -1
	}
	hk, mask := key(h), len(x.slots)-1
	for i := x.home(hk); ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.hash == 0 {
			return -1
		}
		if s.hash == hk && same(s.ring) {
			return i
		}
	}
}

// get returns the ring slot of taskID's latest finished run.
func (x *index) get(h uint64, same func(r int32) bool) (int32, bool) {
	if i := x.find(h, same); i >= 0 {
		return x.slots[i].ring, true
	}
	return 0, false
}

// insert adds an entry for hash h and slot r, which must not be there yet.
func (x *index) insert(h uint64, r int32) {
	if 2*(x.n+1) > len(x.slots) {
		x.grow()
	}
	hk, mask := key(h), len(x.slots)-1
	i := x.home(hk)
	for x.slots[i].hash != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = islot{hash: hk, ring: r}
	x.n++
}

// grow doubles the table (64 slots at first) and reinserts every entry.
func (x *index) grow() {
	old := x.slots
	x.slots = make([]islot, max(2*len(old), 64))
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
