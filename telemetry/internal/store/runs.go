package telemetry

// blockShift sets the size of the blocks the ring is allocated in (1024
// records). Allocating by block keeps a small Recorder small and a full one
// free of the slack that doubling a slice would leave.
const (
	blockShift = 10
	blockSize  = 1 << blockShift
	blockMask  = blockSize - 1
)

// An entry is a record with its task id and the task id's hash.
type entry[R any] struct {
	taskID string
	hash   uint64
	rec    R
}

// A store keeps the pending runs and the most recent finished runs of one
// kind of record. It is not safe for concurrent use: its owner locks it.
//
// Every operation on the recording path is O(1): pending runs live in a slab
// indexed by a map, finished runs in a ring of fixed capacity whose oldest
// entry is evicted when a new one arrives, and a second map gives the ring
// slot of each task id's latest finished run. Records go in and out by
// value, so that none escapes to the heap. Every method takes the hash of
// the task id, computed once by the caller.
type store[R any] struct {
	maxPending int
	pendingIdx index      // task id -> slab index
	slab       []entry[R] // pending runs; free slots listed in free
	free       []int32

	capacity int                    // maximum number of finished runs retained
	blocks   []*[blockSize]entry[R] // the ring, allocated block by block
	next     int                    // ring slot the next finished run goes to
	ended    uint64                 // finished runs ever stored; the next sequence number
	evicted  uint64                 // finished runs evicted to make room
	latest   index                  // task id -> ring slot of its latest finished run
}

func newStore[R any](capacity, maxPending int) store[R] {
	return store[R]{
		maxPending: maxPending,
		capacity:   capacity,
		blocks:     make([]*[blockSize]entry[R], (capacity+blockSize-1)/blockSize),
	}
}

// start adds a pending run.
func (s *store[R]) start(h uint64, taskID string, rec R) error {
	if _, ok := s.pendingSlot(h, taskID); ok {
		return ErrAlreadyStarted
	}
	if s.pendingIdx.n >= s.maxPending {
		return ErrTooManyPending
	}
	e := entry[R]{taskID: taskID, hash: h, rec: rec}
	var i int32
	if n := len(s.free); n > 0 {
		i = s.free[n-1]
		s.free = s.free[:n-1]
		s.slab[i] = e
	} else {
		i = int32(len(s.slab))
		s.slab = append(s.slab, e)
	}
	s.pendingIdx.insert(h, i)
	return nil
}

// pendingSlot returns the slab index of the pending run of taskID.
func (s *store[R]) pendingSlot(h uint64, taskID string) (int32, bool) {
	return s.pendingIdx.get(h, func(i int32) bool { return s.slab[i].taskID == taskID })
}

// pendingCount returns the number of pending runs.
func (s *store[R]) pendingCount() int { return s.pendingIdx.n }

// pending returns the pending run of taskID, or why there is none.
func (s *store[R]) pending(h uint64, taskID string) (*R, error) {
	if i, ok := s.pendingSlot(h, taskID); ok {
		return &s.slab[i].rec, nil
	}
	if _, ok := s.finished(h, taskID); ok {
		return nil, ErrAlreadyEnded
	}
	return nil, ErrNotStarted
}

// finished returns the latest retained finished run of taskID.
func (s *store[R]) finished(h uint64, taskID string) (*entry[R], bool) {
	r, ok := s.latest.get(h, func(r int32) bool { return s.slot(int(r)).taskID == taskID })
	if !ok {
		return nil, false
	}
	return s.slot(int(r)), true
}

// slot returns ring slot i.
func (s *store[R]) slot(i int) *entry[R] {
	return &s.blocks[i>>blockShift][i&blockMask]
}

// take removes the pending run of taskID and returns it, or why there is none.
func (s *store[R]) take(h uint64, taskID string) (R, error) {
	i, ok := s.pendingSlot(h, taskID)
	if !ok {
		var zero R
		_, err := s.pending(h, taskID)
		return zero, err
	}
	rec := s.slab[i].rec
	s.slab[i] = entry[R]{} // drop the references the slot holds
	s.free = append(s.free, i)
	s.pendingIdx.remove(h, i)
	return rec, nil
}

// push stores rec as the newest finished run, evicting the oldest if full.
func (s *store[R]) push(h uint64, taskID string, rec R) {
	b := s.blocks[s.next>>blockShift]
	if b == nil {
		b = new([blockSize]entry[R])
		s.blocks[s.next>>blockShift] = b
	}
	n := int32(s.next)
	slot := &b[s.next&blockMask]
	if s.ended >= uint64(s.capacity) {
		s.latest.remove(slot.hash, n)
		s.evicted++
	}
	*slot = entry[R]{taskID: taskID, hash: h, rec: rec}
	s.latest.put(h, n, func(r int32) bool { return s.slot(int(r)).taskID == taskID })
	s.ended++
	if s.next++; s.next == s.capacity {
		s.next = 0
	}
}

// retained returns the number of finished runs retained.
func (s *store[R]) retained() int {
	return int(min(s.ended, uint64(s.capacity)))
}

// at returns the finished run with sequence number seq, which must be retained.
func (s *store[R]) at(seq uint64) *entry[R] {
	return s.slot(int(seq % uint64(s.capacity)))
}

// lookup returns the latest run of taskID: the pending one if there is one,
// else the latest retained finished one.
func (s *store[R]) lookup(h uint64, taskID string) (*entry[R], bool) {
	if i, ok := s.pendingSlot(h, taskID); ok {
		return &s.slab[i], true
	}
	return s.finished(h, taskID)
}

// eachPending calls f on every pending run, in no particular order.
func (s *store[R]) eachPending(f func(*entry[R])) {
	for _, sl := range s.pendingIdx.slots {
		if sl.hash != 0 {
			f(&s.slab[sl.ring])
		}
	}
}
