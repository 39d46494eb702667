package store

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

// A Table holds the records of one kind (R), partitioned by a hash of the
// task id, with totals of type T kept per partition. Create one with
// [NewTable]; it must not be copied after first use.
//
// A Table's methods are safe for concurrent use unless their docs say
// otherwise; what they hand out (a [Partition], the partitions passed to
// [Table.Locked]) is used under the partition locks.
type Table[R any, T any] struct {
	parts []Partition[R, T]
	mask  uint64
	seed  maphash.Seed
}

// A Partition is one partition of a [Table]: its runs, its totals and the
// finished records waiting for each queued publisher, under one lock.
// Lock it around every use of Runs, Totals and [Partition.Offer].
type Partition[R any, T any] struct {
	mu sync.Mutex
	// Runs holds the partition's pending and retained finished runs.
	Runs Runs[R]
	// Totals are the caller's exact counts over the partition's records,
	// retained or not; the Table never reads them.
	Totals T
	out    []outBuf[R] // indexed by publisher slot; see out.go
	_      [64]byte    // keep partitions on separate cache lines
}

// Lock locks p.
func (p *Partition[R, T]) Lock() { p.mu.Lock() }

// Unlock unlocks p.
func (p *Partition[R, T]) Unlock() { p.mu.Unlock() }

// NewTable returns a Table that retains up to capacity finished records and
// holds up to about maxPending pending ones (each partition holds
// maxPending divided by the number of partitions, rounded up). If
// initTotals is not nil, it is called on the Totals of every partition.
// capacity and maxPending must be positive.
func NewTable[R any, T any](capacity, maxPending int, initTotals func(*T)) Table[R, T] {
	n := 1
	for n < maxParts && capacity/(2*n) >= partSize {
		n *= 2
	}
	t := Table[R, T]{parts: make([]Partition[R, T], n), mask: uint64(n - 1), seed: maphash.MakeSeed()}
	for i := range t.parts {
		c := capacity / n
		if i < capacity%n {
			c++
		}
		t.parts[i].Runs = newRuns[R](c, (maxPending+n-1)/n)
		if initTotals != nil {
			initTotals(&t.parts[i].Totals)
		}
	}
	return t
}

// NumParts returns the number of partitions of t, which never changes.
func (t *Table[R, T]) NumParts() int { return len(t.parts) }

// Part returns the partition of taskID, unlocked, and the hash of taskID
// that the partition's [Runs] methods take.
func (t *Table[R, T]) Part(taskID string) (*Partition[R, T], uint64) {
	h := maphash.String(t.seed, taskID)
	return &t.parts[h&t.mask], h
}

// Locked calls f with every partition locked at once, so that what f reads
// is one consistent snapshot. f must not keep parts, nor lock them.
func (t *Table[R, T]) Locked(f func(parts []Partition[R, T])) {
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
func merged[R, T any](parts []Partition[R, T], end func(*R) time.Duration, f func(*Entry[R])) {
	type cursor struct{ seq, stop uint64 }
	cur := make([]cursor, len(parts))
	for i := range parts {
		s := &parts[i].Runs
		cur[i] = cursor{s.ended - uint64(s.Retained()), s.ended}
	}
	for {
		best := -1
		var bestEnd time.Duration
		for i := range cur {
			if cur[i].seq == cur[i].stop {
				continue
			}
			if e := end(&parts[i].Runs.at(cur[i].seq).Rec); best < 0 || e < bestEnd {
				best, bestEnd = i, e
			}
		}
		if best < 0 {
			return
		}
		f(parts[best].Runs.at(cur[best].seq))
		cur[best].seq++
	}
}

// Finished returns f of every retained finished record of t for which keep
// is true, oldest end first, as end orders them. The records of each
// partition must be pushed in end order. keep and f run with every
// partition locked; f must not keep the entry it is given.
func Finished[R, T, M any](t *Table[R, T], keep func(*R) bool, end func(*R) time.Duration, f func(*Entry[R]) M) []M {
	var out []M
	t.Locked(func(parts []Partition[R, T]) {
		merged(parts, end, func(e *Entry[R]) {
			if keep(&e.Rec) {
				out = append(out, f(e))
			}
		})
	})
	return out
}

// Snapshot returns copies of the retained finished records of t, oldest end
// first, then of the pending records by start time. If also is not nil, it
// is called with every partition locked, in the same snapshot.
func (t *Table[R, T]) Snapshot(start, end func(*R) time.Duration, also func([]Partition[R, T])) []Entry[R] {
	var out []Entry[R]
	var keys []time.Duration
	t.Locked(func(parts []Partition[R, T]) {
		n := 0
		for i := range parts {
			n += parts[i].Runs.Retained() + parts[i].Runs.NumPending()
		}
		out = make([]Entry[R], 0, n)
		merged(parts, end, func(e *Entry[R]) { out = append(out, *e) })
		for i := range parts {
			parts[i].Runs.EachPending(func(e *Entry[R]) {
				out = append(out, *e)
				keys = append(keys, start(&e.Rec))
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
	sorted := make([]Entry[R], len(pend))
	for i, j := range idx {
		sorted[i] = pend[j]
	}
	copy(pend, sorted)
	return out
}
