package store

// The delivery buffers: each partition keeps, for every queued publisher,
// the finished records that its worker has not taken yet. See the package
// doc, "Delivery buffers", for how recording and the workers share them.

// An outBuf holds finished records for one publisher until its worker swaps
// the slice for an empty one. Its capacity grows up to limit and is reused.
type outBuf[R any] struct {
	recs  []Entry[R]
	limit int
}

// AddOut gives every partition of t a buffer for one more queued
// publisher, whose slot is the number of earlier calls. The buffers of a
// slot hold queueSize records in all, split evenly between the partitions
// (at least one each). The caller serializes calls to AddOut, and makes a
// slot known to recorders only after AddOut for it has returned.
func (t *Table[R, T]) AddOut(queueSize int) {
	limit := max((queueSize+len(t.parts)-1)/len(t.parts), 1)
	t.Locked(func(parts []Partition[R, T]) {
		for i := range parts {
			parts[i].out = append(parts[i].out, outBuf[R]{limit: limit})
		}
	})
}

// Offer appends a copy of rec, finished, to the buffer of the publisher in
// slot, and reports whether there was room; a full buffer keeps what it
// has. half reports whether the buffer has just become half full, the
// moment to hurry its worker. The caller holds p's lock: the one it took to
// record rec, so that offering costs no lock of its own.
func (p *Partition[R, T]) Offer(slot int, taskID string, rec *R) (ok, half bool) {
	b := &p.out[slot]
	if len(b.recs) >= b.limit {
		return false, false
	}
	b.recs = append(b.recs, Entry[R]{TaskID: taskID, Rec: *rec})
	return true, len(b.recs) == (b.limit+1)/2
}

// SwapOut takes what waits in the buffers of slot. For each partition i it
// replaces the buffer by spare[i], emptied, and puts the buffer in
// spare[i], so that the caller owns what was offered; it locks one
// partition at a time. It returns the number of records taken. spare has
// NumParts slices, nil at first; the caller clears the entries it took
// before it passes them again, so that the buffers hold no stale
// references. Only the worker of slot calls SwapOut for it.
func (t *Table[R, T]) SwapOut(slot int, spare [][]Entry[R]) int {
	n := 0
	for i := range t.parts {
		p := &t.parts[i]
		p.mu.Lock()
		b := &p.out[slot]
		b.recs, spare[i] = spare[i][:0], b.recs
		p.mu.Unlock()
		n += len(spare[i])
	}
	return n
}

// Queued returns the number of records waiting in the buffers of slot, as
// of one consistent snapshot.
func (t *Table[R, T]) Queued(slot int) int {
	n := 0
	t.Locked(func(parts []Partition[R, T]) {
		for i := range parts {
			n += len(parts[i].out[slot].recs)
		}
	})
	return n
}
