package store

// blockShift sets the size of the blocks the ring is allocated in (1024
// records). Allocating by block keeps a small Recorder small and a full one
// free of the slack that doubling a slice would leave.
const (
	blockShift = 10
	blockSize  = 1 << blockShift
	blockMask  = blockSize - 1
)

// An Entry is a record with its task id.
type Entry[R any] struct {
	// TaskID is the task id of the run.
	TaskID string
	// hash is the task id's hash, kept to remove the entry from an index;
	// 0 in the delivery buffers, which have no index.
	hash uint64
	// Rec is the record of the run.
	Rec R
}

// A Status says why a [Runs] call was refused, or that it was not.
type Status uint8

// The statuses of [Runs] calls. The telemetry package maps each refusal to
// its sentinel error of the same name.
const (
	OK             Status = iota // done
	AlreadyStarted               // the task id has a pending run
	TooManyPending               // the partition holds its limit of pending runs
	NotStarted                   // the task id has no run, pending or retained
	AlreadyEnded                 // the task id's latest retained run has ended
)

// Runs keeps the pending runs and the most recent finished runs of one
// partition. It is not safe for concurrent use: every call is made with its
// [Partition] locked. Each method takes the hash of the task id that
// [Table.Part] returned with the partition.
//
// Every operation on the recording path is O(1) and allocates nothing once
// the structures have grown to their steady size.
type Runs[R any] struct {
	// Pending runs live in a slab indexed by pendingIdx. Records go in and
	// out by value, so that none escapes to the heap.
	maxPending int
	pendingIdx index      // task id -> slab index
	slab       []Entry[R] // pending runs; free slots listed in free
	free       []int32

	// Finished runs live in a ring of fixed capacity whose oldest entry is
	// evicted when a new one arrives; latest gives the ring slot of each
	// task id's latest finished run.
	capacity int                    // maximum number of finished runs retained
	blocks   []*[blockSize]Entry[R] // the ring, allocated block by block
	next     int                    // ring slot the next finished run goes to
	ended    uint64                 // finished runs ever stored; the next sequence number
	evicted  uint64                 // finished runs evicted to make room
	latest   index                  // task id -> ring slot of its latest finished run
}

func newRuns[R any](capacity, maxPending int) Runs[R] {
	return Runs[R]{
		maxPending: maxPending,
		capacity:   capacity,
		blocks:     make([]*[blockSize]Entry[R], (capacity+blockSize-1)/blockSize),
	}
}

// Start adds rec as the pending run of taskID. It returns [AlreadyStarted]
// if taskID has a pending run and [TooManyPending] if the partition holds
// its limit of pending runs.
func (s *Runs[R]) Start(h uint64, taskID string, rec R) Status {
	if _, ok := s.pendingSlot(h, taskID); ok {
		return AlreadyStarted
	}
	if s.pendingIdx.n >= s.maxPending {
		return TooManyPending
	}
	e := Entry[R]{TaskID: taskID, hash: h, Rec: rec}
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
	return OK
}

// pendingSlot returns the slab index of the pending run of taskID.
func (s *Runs[R]) pendingSlot(h uint64, taskID string) (int32, bool) {
	return s.pendingIdx.get(h, func(i int32) bool { return s.slab[i].TaskID == taskID })
}

// NumPending returns the number of pending runs.
func (s *Runs[R]) NumPending() int { return s.pendingIdx.n }

// Pending returns the pending run of taskID, to be changed in place while
// the partition is locked. Without one it returns [AlreadyEnded] if the
// latest retained run of taskID has ended, else [NotStarted].
func (s *Runs[R]) Pending(h uint64, taskID string) (*R, Status) {
	if i, ok := s.pendingSlot(h, taskID); ok {
		return &s.slab[i].Rec, OK
	}
	if _, ok := s.finished(h, taskID); ok {
		return nil, AlreadyEnded
	}
	return nil, NotStarted
}

// finished returns the latest retained finished run of taskID.
func (s *Runs[R]) finished(h uint64, taskID string) (*Entry[R], bool) {
	r, ok := s.latest.get(h, func(r int32) bool { return s.slot(int(r)).TaskID == taskID })
	if !ok {
		return nil, false
	}
	return s.slot(int(r)), true
}

// slot returns ring slot i.
func (s *Runs[R]) slot(i int) *Entry[R] {
	return &s.blocks[i>>blockShift][i&blockMask]
}

// Take removes the pending run of taskID and returns it. Without one it
// returns the zero R and the status of [Runs.Pending].
func (s *Runs[R]) Take(h uint64, taskID string) (R, Status) {
	i, ok := s.pendingSlot(h, taskID)
	if !ok {
		var zero R
		_, st := s.Pending(h, taskID)
		return zero, st
	}
	rec := s.slab[i].Rec
	s.slab[i] = Entry[R]{} // drop the references the slot holds
	s.free = append(s.free, i)
	s.pendingIdx.remove(h, i)
	return rec, OK
}

// Push stores rec as the newest finished run of taskID, evicting the
// partition's oldest finished run if the ring is full.
func (s *Runs[R]) Push(h uint64, taskID string, rec R) {
	b := s.blocks[s.next>>blockShift]
	if b == nil {
		b = new([blockSize]Entry[R])
		s.blocks[s.next>>blockShift] = b
	}
	n := int32(s.next)
	slot := &b[s.next&blockMask]
	if s.ended >= uint64(s.capacity) {
		s.latest.remove(slot.hash, n)
		s.evicted++
	}
	*slot = Entry[R]{TaskID: taskID, hash: h, Rec: rec}
	s.latest.put(h, n, func(r int32) bool { return s.slot(int(r)).TaskID == taskID })
	s.ended++
	if s.next++; s.next == s.capacity {
		s.next = 0
	}
}

// Retained returns the number of finished runs retained.
func (s *Runs[R]) Retained() int {
	return int(min(s.ended, uint64(s.capacity)))
}

// Evicted returns the number of finished runs evicted to make room.
func (s *Runs[R]) Evicted() uint64 { return s.evicted }

// at returns the finished run with sequence number seq, which must be retained.
func (s *Runs[R]) at(seq uint64) *Entry[R] {
	return s.slot(int(seq % uint64(s.capacity)))
}

// Lookup returns the latest run of taskID, to be read while the partition
// is locked: the pending one if there is one, else the latest retained
// finished one.
func (s *Runs[R]) Lookup(h uint64, taskID string) (*Entry[R], bool) {
	if i, ok := s.pendingSlot(h, taskID); ok {
		return &s.slab[i], true
	}
	return s.finished(h, taskID)
}

// EachPending calls f on every pending run, in no particular order.
func (s *Runs[R]) EachPending(f func(*Entry[R])) {
	for _, sl := range s.pendingIdx.slots {
		if sl.hash != 0 {
			f(&s.slab[sl.ring])
		}
	}
}
