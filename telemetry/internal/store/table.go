package telemetry

import (
	"cmp"
	"hash/maphash"
	"slices"
	"sync"
	"time"
)

// maxParts is the most partitions a table is split into, and partSize the
// fewest records each partition must be able to retain: below 2*partSize
// records a table has one partition, and evicts strictly oldest first.
const (
	maxParts = 16
	partSize = 2048
)

// A table holds the records of one kind, partitioned by a hash of the task
// id so that recording from several goroutines rarely waits on one lock.
// Each partition evicts its own oldest record first; the capacities of the
// partitions add up to the limit.
type table[R any, T any] struct {
	parts []part[R, T]
	mask  uint64
	seed  maphash.Seed
}

// A part is one partition: a store, its exact totals, and the finished
// records waiting for each queued publisher, under one lock.
type part[R any, T any] struct {
	mu     sync.Mutex
	s      store[R]
	totals T
	out    []outBuf[R] // indexed by outlet.slot
	_      [64]byte    // keep partitions on separate cache lines
}

// An outBuf holds finished records for one publisher until its worker swaps
// the slice for an empty one. Its capacity grows up to limit and is reused.
type outBuf[R any] struct {
	recs  []entry[R]
	limit int
}

// add appends e, or reports false if the buffer is full. It reports half
// when the buffer has just become half full.
func (b *outBuf[R]) add(e entry[R]) (ok, half bool) {
	if len(b.recs) >= b.limit {
		return false, false
	}
	b.recs = append(b.recs, e)
	return true, len(b.recs) == (b.limit+1)/2
}

// addOut gives every partition a buffer for one more publisher, able to
// hold queueSize records in all.
func (t *table[R, T]) addOut(queueSize int) {
	limit := max((queueSize+len(t.parts)-1)/len(t.parts), 1)
	t.locked(func(parts []part[R, T]) {
		for i := range parts {
			parts[i].out = append(parts[i].out, outBuf[R]{limit: limit})
		}
	})
}

// swapOut replaces the buffers of the publisher in slot by the slices of
// spare, emptied, and returns the buffers' slices in spare, so the caller
// owns what was queued. It returns the number of records taken.
func (t *table[R, T]) swapOut(slot int, spare [][]entry[R]) int {
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

// queued returns the number of records waiting in the buffers of slot.
func (t *table[R, T]) queued(slot int) int {
	n := 0
	t.locked(func(parts []part[R, T]) {
		for i := range parts {
			n += len(parts[i].out[slot].recs)
		}
	})
	return n
}

func newTable[R any, T any](capacity, maxPending int, initTotals func(*T)) table[R, T] {
	n := 1
	for n < maxParts && capacity/(2*n) >= partSize {
		n *= 2
	}
	t := table[R, T]{parts: make([]part[R, T], n), mask: uint64(n - 1), seed: maphash.MakeSeed()}
	for i := range t.parts {
		c := capacity / n
		if i < capacity%n {
			c++
		}
		t.parts[i].s = newStore[R](c, (maxPending+n-1)/n)
		if initTotals != nil {
			initTotals(&t.parts[i].totals)
		}
	}
	return t
}

// part returns the partition of taskID and the hash of taskID that the
// partition's store takes.
func (t *table[R, T]) part(taskID string) (*part[R, T], uint64) {
	h := maphash.String(t.seed, taskID)
	return &t.parts[h&t.mask], h
}

// locked calls f with every partition locked at once, so that what f reads
// is one consistent snapshot.
func (t *table[R, T]) locked(f func(parts []part[R, T])) {
	for i := range t.parts {
		t.parts[i].mu.Lock()
	}
	defer func() {
		for i := range t.parts {
			t.parts[i].mu.Unlock()
		}
	}()
	f(t.parts)
}

// merged calls f on every retained finished record of the locked parts,
// oldest end first. Each part holds its records in end order, so a k-way
// merge over them replaces a sort.
func merged[R, T any](parts []part[R, T], end func(*R) time.Duration, f func(*entry[R])) {
	type cursor struct{ seq, stop uint64 }
	cur := make([]cursor, len(parts))
	for i := range parts {
		s := &parts[i].s
		cur[i] = cursor{s.ended - uint64(s.retained()), s.ended}
	}
	for {
		best := -1
		var bestEnd time.Duration
		for i := range cur {
			if cur[i].seq == cur[i].stop {
				continue
			}
			if e := end(&parts[i].s.at(cur[i].seq).rec); best < 0 || e < bestEnd {
				best, bestEnd = i, e
			}
		}
		if best < 0 {
			return
		}
		f(parts[best].s.at(cur[best].seq))
		cur[best].seq++
	}
}

// finished returns f of every retained finished record for which keep is
// true, oldest end first.
func finished[R, T, M any](t *table[R, T], keep func(*R) bool, end func(*R) time.Duration, f func(*entry[R]) M) []M {
	var out []M
	t.locked(func(parts []part[R, T]) {
		merged(parts, end, func(e *entry[R]) {
			if keep(&e.rec) {
				out = append(out, f(e))
			}
		})
	})
	return out
}

// snapshot returns copies of the retained finished records, oldest end
// first, then of the pending records by start time. It calls also, if not
// nil, in the same snapshot.
func snapshot[R, T any](t *table[R, T], start, end func(*R) time.Duration, also func([]part[R, T])) []entry[R] {
	var out []entry[R]
	var keys []time.Duration
	t.locked(func(parts []part[R, T]) {
		n := 0
		for i := range parts {
			n += parts[i].s.retained() + parts[i].s.pendingCount()
		}
		out = make([]entry[R], 0, n)
		merged(parts, end, func(e *entry[R]) { out = append(out, *e) })
		for i := range parts {
			parts[i].s.eachPending(func(e *entry[R]) {
				out = append(out, *e)
				keys = append(keys, start(&e.rec))
			})
		}
		if also != nil {
			also(parts)
		}
	})
	// Order the pending records by start time.
	pend := out[len(out)-len(keys):]
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(keys[a], keys[b]) })
	sorted := make([]entry[R], len(pend))
	for i, j := range idx {
		sorted[i] = pend[j]
	}
	copy(pend, sorted)
	return out
}
