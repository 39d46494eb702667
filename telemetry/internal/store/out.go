package store

// The delivery buffers: each shard keeps, for every queued publisher, the
// finished records that its worker has not taken yet. See the package doc,
// "Delivery buffers", for how recording and the workers share them.

// An outBuf holds finished records for one publisher until its worker swaps
// the slice for an empty one. Its capacity grows up to limit and is reused.
type outBuf[R any] struct {
	recs  []Entry[R]
	limit int
}

// AddOut gives every shard of t a buffer for one more queued publisher,
// whose slot is the number of earlier calls. The buffers of a slot hold
// queueSize records in all, split evenly between the shards (at least one
// each). The caller serializes calls to AddOut, and makes a slot known to
// recorders only after AddOut for it has returned.
func (t *Table[R, T]) AddOut(queueSize int) {
	limit := t.outLimit(queueSize)
	t.Locked(func(*View[R, T]) {
		for i := range t.shards {
			t.shards[i].out = append(t.shards[i].out, outBuf[R]{limit: limit})
		}
	})
}

// outLimit returns the records each shard's buffer holds for queueSize:
// an equal share, rounded up, and at least one.
func (t *Table[R, T]) outLimit(queueSize int) int {
	return max((queueSize+len(t.shards)-1)/len(t.shards), 1)
}

// OutCapacity returns the records that the buffers [Table.AddOut] makes
// for queueSize hold in all, over every shard: queueSize, or a little more
// where it does not divide among the shards.
func (t *Table[R, T]) OutCapacity(queueSize int) int {
	return len(t.shards) * t.outLimit(queueSize)
}

// Offer appends a copy of rec, finished, to the buffer of the publisher in
// slot, and reports whether there was room; a full buffer keeps what it
// has. half reports whether the buffer has just become half full, or
// taken another pressureStep records since: the moments to hurry its
// worker. The caller has acquired s, to record rec, so
// that offering costs no lock of its own.
func (s *Shard[R, T]) Offer(slot int, taskID string, rec *R) (ok, half bool) {
	b := &s.out[slot]
	if len(b.recs) >= b.limit {
		return false, false
	}
	b.recs = append(b.recs, Entry[R]{TaskID: taskID, Rec: *rec})
	n := len(b.recs)
	return true, n >= (b.limit+1)/2 && (n-(b.limit+1)/2)%pressureStep == 0
}

// pressureStep is how many records a buffer that is half full or more
// takes between two reports of pressure to the caller, so that a worker
// that did not get to run at the first report is hurried again.
const pressureStep = 256

// SwapOut takes what waits in the buffers of slot. For each shard i it
// replaces the buffer by spare[i], emptied, and puts the buffer in
// spare[i], so that the caller owns what was offered; it locks one shard
// at a time. It returns the number of records taken. spare has NumShards
// slices, nil at first; the caller clears the entries it took before it
// passes them again, so that the buffers hold no stale references. Only
// the worker of slot calls SwapOut for it.
func (t *Table[R, T]) SwapOut(slot int, spare [][]Entry[R]) int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		b := &s.out[slot]
		b.recs, spare[i] = spare[i][:0], b.recs
		s.mu.Unlock()
		n += len(spare[i])
	}
	return n
}

// Queued returns the number of records waiting in the buffers of slot, as
// of one consistent snapshot.
func (t *Table[R, T]) Queued(slot int) int {
	for i := range t.shards {
		t.shards[i].mu.Lock()
	}
	n := 0
	for i := range t.shards {
		n += len(t.shards[i].out[slot].recs)
		t.shards[i].mu.Unlock()
	}
	return n
}
