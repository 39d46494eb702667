package store

import (
	"cmp"
	"hash/maphash"
	"slices"
	"sync"
	"time"
)

// maxParts is the most shards a table is split into, and partSize the
// fewest records each shard must stand for: below 2*partSize records a
// table has one shard, and evicts strictly oldest first. stageSize is how
// many finished records a shard gathers before it moves them into the
// ring.
const (
	maxParts  = 16
	partSize  = 2048
	stageSize = 64
)

// A Status says why a recording call was refused, or that it was not.
type Status uint8

// The statuses of recording calls. The telemetry package maps each refusal
// to its sentinel error of the same name.
const (
	OK             Status = iota // done
	AlreadyStarted               // the task id has a pending run
	TooManyPending               // the shard holds its limit of pending runs
	NotStarted                   // the task id has no run, pending or retained
	AlreadyEnded                 // the task id's latest retained run has ended
	NotPending                   // the task id has no pending run (see [Table.Why])
)

// Funcs tell a [Table] what it needs to know of a record. The table calls
// them on records it holds as they are (pending, or moving into the ring),
// never on one read back from the ring.
type Funcs[R any] struct {
	// Start returns when the run started, as an offset on one monotonic
	// clock; it orders the pending records of queries.
	Start func(*R) time.Duration
	// Finished returns, of a finished run, when it ended, as an offset on
	// the clock of Start (it orders the finished records of queries), how
	// long it took, and whether it failed: one call, not three, for each
	// record that moves into the ring.
	Finished func(*R) (end, dur time.Duration, failed bool)
}

// A Table holds the runs of one kind (R), with totals of type T kept per
// shard. Create one with [NewTable]; it must not be copied after first use.
// See the package doc for its layout. Its methods are safe for concurrent
// use unless their docs say otherwise.
type Table[R any, T any] struct {
	seed       maphash.Seed
	shards     []Shard[R, T]
	mask       uint64 // picks a task id's shard from its hash
	maxPending int    // per shard
	fn         Funcs[R]

	mu   sync.Mutex // guards ring (with one shard, its lock does); taken last
	ring ring[R]
}

// A Shard holds the runs of the task ids whose hash selects it: the
// pending ones, in an index whose slots hold the records themselves; the
// finished ones not moved to the ring yet; the caller's totals over those
// that ended in it; and its part of the delivery buffers. Lock it
// ([Table.Acquire] does) around every use.
type Shard[R any, T any] struct {
	mu      sync.Mutex
	idx     pindex[R]
	retries uint64 // retries recorded in this shard, ever
	// Totals are the caller's exact counts over the records finished in
	// this shard, retained or not; the Table never reads them.
	Totals T
	stage  []Entry[R]  // finished, not moved to the ring yet
	out    []outBuf[R] // indexed by publisher slot; see out.go
	_      [64]byte    // keep shards on separate cache lines
}

// NewTable returns a Table that retains up to capacity finished records and
// holds up to about maxPending pending ones (each shard holds maxPending
// divided by the number of shards, rounded up). If initTotals is not nil,
// it is called on the Totals of every shard. capacity and maxPending must
// be positive. R must be a struct that begins with its string fields, at
// most three, and holds no other pointer (see the package doc, Memory):
// NewTable panics otherwise.
func NewTable[R any, T any](capacity, maxPending int, fn Funcs[R], initTotals func(*T)) *Table[R, T] {
	n := 1
	for n < maxParts && capacity/(2*n) >= partSize {
		n *= 2
	}
	t := &Table[R, T]{
		seed:       maphash.MakeSeed(),
		shards:     make([]Shard[R, T], n),
		mask:       uint64(n - 1),
		maxPending: (maxPending + n - 1) / n,
		fn:         fn,
		ring:       newRing[R](capacity),
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.stage = make([]Entry[R], 0, stageSize)
		if initTotals != nil {
			initTotals(&s.Totals)
		}
	}
	return t
}

// NumShards returns the number of shards of t, which never changes.
func (t *Table[R, T]) NumShards() int { return len(t.shards) }

// MaxPending returns the limit of pending runs of each shard.
func (t *Table[R, T]) MaxPending() int { return t.maxPending }

// hashString returns the hash of taskID; every hash of a task id in a
// table comes from it. maphash.Comparable of a string reaches the
// runtime's string hasher, the one maphash.String uses, through fewer
// calls; in a function that is not generic, the compiler resolves its
// type at compile time.
func hashString(seed maphash.Seed, taskID string) uint64 {
	return maphash.Comparable(seed, taskID)
}

// shard returns the shard of the task id whose hash is h.
func (t *Table[R, T]) shard(h uint64) *Shard[R, T] { return &t.shards[h&t.mask] }

// Acquire returns the shard of taskID, locked, and the task id's hash, to
// give to [Table.End]. Give the shard back with [Table.Release].
func (t *Table[R, T]) Acquire(taskID string) (*Shard[R, T], uint64) {
	h := hashString(t.seed, taskID)
	s := t.shard(h)
	s.mu.Lock()
	return s, h
}

// Release unlocks s.
func (t *Table[R, T]) Release(s *Shard[R, T]) { s.mu.Unlock() }

// Start adds rec as the pending run of taskID. It returns
// [AlreadyStarted] if taskID has a pending run and [TooManyPending] if its
// shard holds its limit of pending runs.
func (t *Table[R, T]) Start(taskID string, rec *R) Status {
	h := hashString(t.seed, taskID)
	s := t.shard(h)
	s.mu.Lock()
	st := OK
	switch {
	case s.idx.n < t.maxPending:
		if !s.idx.insert(h, taskID, rec) {
			st = AlreadyStarted
		}
	case s.idx.find(h, taskID) >= 0:
		st = AlreadyStarted
	default:
		st = TooManyPending
	}
	s.mu.Unlock()
	return st
}

// End moves the pending run of taskID, whose hash h and shard s
// [Table.Acquire] returned, out of the pending index, as s's newest
// finished record, and returns it to be completed in place while s stays
// locked, with the retries recorded for it. Without a pending run it
// returns [NotPending]; [Table.Why] then tells whether the task id has
// ended or never started. Call [Table.Ended] after the caller has
// completed the record.
func (t *Table[R, T]) End(s *Shard[R, T], h uint64, taskID string) (*Entry[R], int32, Status) {
	i := s.idx.find(h, taskID)
	if i < 0 {
		return nil, 0, NotPending
	}
	p := &s.idx.slots[i]
	if n := len(s.stage); n < cap(s.stage) {
		s.stage = s.stage[:n+1] // every field is written below: no zeroing
	} else {
		s.stage = append(s.stage, Entry[R]{})
	}
	e := &s.stage[len(s.stage)-1]
	// One field a statement, so that p.rec is copied once, not through a
	// temporary as a tuple assignment would.
	e.TaskID = p.id
	e.hash = h
	e.Rec = p.rec
	retries := p.retries
	s.idx.removeAt(i)
	return e, retries, OK
}

// Ended finishes what [Table.End] began, once the caller has completed the
// record, with s still acquired: in a table of one shard it makes the
// record the ring's newest; otherwise it moves the finished records
// gathered in s into the ring once there are stageSize of them (the
// queries move the rest).
func (t *Table[R, T]) Ended(s *Shard[R, T]) {
	if len(t.shards) == 1 || len(s.stage) >= stageSize { // small, to be inlined
		t.flush(s)
	}
}

// flush moves the finished records gathered in s, which is locked, into
// the ring, for [Table.Ended].
func (t *Table[R, T]) flush(s *Shard[R, T]) {
	if len(t.shards) == 1 {
		t.moveStage(s) // the one shard's lock guards the ring too
		return
	}
	t.mu.Lock()
	t.moveStage(s)
	t.mu.Unlock()
}

// moveStage moves the finished records gathered in s into the ring. s and
// t.mu are locked.
func (t *Table[R, T]) moveStage(s *Shard[R, T]) {
	for i := range s.stage {
		e := &s.stage[i]
		end, dur, failed := t.fn.Finished(&e.Rec)
		t.ring.push(e, end, dur, failed)
	}
	clear(s.stage)
	s.stage = s.stage[:0]
}

// Retry adds one to the retries of the pending run of taskID. Without one
// it returns [NotPending].
func (t *Table[R, T]) Retry(taskID string) Status {
	h := hashString(t.seed, taskID)
	s := t.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.idx.find(h, taskID)
	if i < 0 {
		return NotPending
	}
	s.idx.slots[i].retries++
	s.retries++
	return OK
}

// Why tells why taskID has no pending run: [AlreadyEnded] if its latest
// retained run has ended, else [NotStarted]. Call it with no shard acquired.
func (t *Table[R, T]) Why(taskID string) Status {
	st := NotStarted
	t.Locked(func(v *View[R, T]) {
		if _, ok := v.Latest(taskID, nil); ok {
			st = AlreadyEnded
		}
	})
	return st
}

// Locked calls f with everything in t locked, every shard's finished
// records moved to the ring, so that what f reads through v is one
// consistent snapshot. f must not keep v. Locks are taken shards first,
// then the ring, the order recording takes them in.
func (t *Table[R, T]) Locked(f func(v *View[R, T])) {
	for i := range t.shards {
		t.shards[i].mu.Lock()
	}
	t.mu.Lock()
	defer func() {
		t.mu.Unlock()
		for i := range t.shards {
			t.shards[i].mu.Unlock()
		}
	}()
	for i := range t.shards {
		t.moveStage(&t.shards[i])
	}
	f(&View[R, T]{t: t})
}

// A View reads a [Table] inside [Table.Locked].
type View[R any, T any] struct{ t *Table[R, T] }

// EachTotals calls f on the Totals of every shard.
func (v *View[R, T]) EachTotals(f func(*T)) {
	for i := range v.t.shards {
		f(&v.t.shards[i].Totals)
	}
}

// NumPending returns the number of pending runs.
func (v *View[R, T]) NumPending() int {
	n := 0
	for i := range v.t.shards {
		n += v.t.shards[i].idx.n
	}
	return n
}

// Retries returns the number of retries ever recorded.
func (v *View[R, T]) Retries() uint64 {
	var n uint64
	for i := range v.t.shards {
		n += v.t.shards[i].retries
	}
	return n
}

// Retained returns the number of finished runs retained.
func (v *View[R, T]) Retained() int { return v.t.ring.retained() }

// Evicted returns the number of finished runs evicted to make room.
func (v *View[R, T]) Evicted() uint64 { return v.t.ring.evicted }

// EachPending calls f on every pending run, in no particular order, with
// its task id and retries.
func (v *View[R, T]) EachPending(f func(taskID string, retries int32, rec *R)) {
	for i := range v.t.shards {
		for j := range v.t.shards[i].idx.slots {
			if e := &v.t.shards[i].idx.slots[j]; e.hash != 0 {
				f(e.id, e.retries, &e.rec)
			}
		}
	}
}

// Pending returns copies of at most limit pending runs, oldest start
// first, each given to pending with its retries, and the number of pending
// runs. It costs O(pending), whatever the number of records retained.
func (v *View[R, T]) Pending(limit int, pending func(rec *R, retries int32)) ([]Entry[R], int) {
	n := v.NumPending()
	if limit <= 0 {
		return nil, n
	}
	all := make([]Entry[R], 0, n)
	v.EachPending(func(taskID string, retries int32, rec *R) {
		all = append(all, Entry[R]{TaskID: taskID, Rec: *rec})
		if pending != nil {
			pending(&all[len(all)-1].Rec, retries)
		}
	})
	start := v.t.fn.Start
	slices.SortStableFunc(all, func(a, b Entry[R]) int { return cmp.Compare(start(&a.Rec), start(&b.Rec)) })
	return all[:min(limit, len(all)):min(limit, len(all))], n
}

// Latest returns a copy of the latest run of taskID, the pending one if
// there is one, and whether there is one. A pending record is given to
// pending, if not nil, with its retries.
func (v *View[R, T]) Latest(taskID string, pending func(rec *R, retries int32)) (Entry[R], bool) {
	t := v.t
	h := hashString(t.seed, taskID)
	s := t.shard(h)
	if i := s.idx.find(h, taskID); i >= 0 {
		e := &s.idx.slots[i]
		out := Entry[R]{TaskID: e.id, Rec: e.rec}
		if pending != nil {
			pending(&out.Rec, e.retries)
		}
		return out, true
	}
	if i, ok := t.ring.lookup(h, taskID); ok {
		var (
			a arena
			e Entry[R]
		)
		one := [1]int32{int32(i)}
		a.grow(t.ring.size(one[:])) // one record's strings, not a whole chunk
		t.ring.read(i, &a, &e)
		return e, true
	}
	return Entry[R]{}, false
}

// Finished returns f of every retained finished record for which keep is
// true (all of them if keep is nil), oldest end first. keep must not keep
// the record it is given: its strings are views of the ring's memory. f,
// here and in [Failed] and [Slower], is given a copy of each record, with
// strings of its own, and the element of the result to set from it, zero:
// it must not keep the pointer.
func Finished[R, T, M any](v *View[R, T], keep func(*R) bool, f func(dst *M, e Entry[R])) []M {
	g := &v.t.ring
	var sel []int32
	e := new(Entry[R]) // one for all: a pointer given to keep escapes
	g.each(func(i int) {
		if keep != nil {
			if g.read(i, nil, e); !keep(&e.Rec) {
				return
			}
		}
		sel = append(sel, int32(i))
	})
	return collect(v, sel, f)
}

// Failed returns f of every retained finished record that failed, oldest
// end first. It reads only the failed records.
func Failed[R, T, M any](v *View[R, T], f func(dst *M, e Entry[R])) []M {
	sel := make([]int32, 0, len(v.t.ring.failed)-v.t.ring.failedHead)
	v.t.ring.eachFailed(func(i int) { sel = append(sel, int32(i)) })
	return collect(v, sel, f)
}

// Slower returns f of every retained finished record that took longer than
// d, oldest end first. It reads only the durations of the others.
func Slower[R, T, M any](v *View[R, T], d time.Duration, f func(dst *M, e Entry[R])) []M {
	var sel []int32
	v.t.ring.eachSlower(d, func(i int) { sel = append(sel, int32(i)) })
	return collect(v, sel, f)
}

// sorted returns the order of sel, ring positions, by end: the indexes in
// sel of its records, the one that ended first first (see [orderByEnd]
// for the order of equal ends); and the bytes of their strings, task ids
// included, what copying them takes in an arena at most. The ring holds
// the shards' batches one after the other, and each shard's records in
// about end order (two goroutines may take a shard's lock in the other
// order than they read the clock): so a large selection that is not in
// order already is grouped by shard, keeping its order within each, which
// leaves about one sorted run per shard to merge.
func (v *View[R, T]) sorted(sel []int32) ([]int32, int) {
	g := &v.t.ring
	n := len(sel)
	keys := make([]time.Duration, n, 2*n)
	// The shards order equal ends, as they do in a Copy: a selection of
	// any size has them, so that ties come in one order everywhere.
	var shards []uint8
	var small [stageSize]uint8
	switch {
	case len(v.t.shards) == 1:
	case n <= len(small):
		shards = small[:n]
	default:
		shards = make([]uint8, n)
	}
	bytes := 0
	for p, i := range sel {
		_, s := g.slot(int(i))
		keys[p] = s.end
		if shards != nil {
			shards[p] = uint8(s.hash & v.t.mask)
		}
		bytes += int(s.task.n) + int(s.strs[0].n) + int(s.strs[1].n) + int(s.strs[2].n)
	}
	return orderByEnd(keys, shards, len(v.t.shards)), bytes
}

// collect returns f of the records at the ring positions sel, oldest end
// first. The records are built and given to f on the stack, so that only
// f's writes to the result cost write barriers while the garbage collector
// marks.
func collect[R, T, M any](v *View[R, T], sel []int32, f func(dst *M, e Entry[R])) []M {
	if len(sel) == 0 {
		return nil
	}
	order, bytes := v.sorted(sel)
	var a arena
	a.grow(bytes)
	out := make([]M, len(sel))
	for i, p := range order {
		f(&out[i], v.t.ring.get(int(sel[p]), &a))
	}
	return out
}

// Snapshot returns copies of the retained finished records, oldest end
// first, then of the pending records by start time, each given to pending
// with its retries first.
func (v *View[R, T]) Snapshot(pending func(rec *R, retries int32)) []Entry[R] {
	g := &v.t.ring
	sel := make([]int32, 0, v.Retained())
	g.each(func(i int) { sel = append(sel, int32(i)) })
	out := make([]Entry[R], 0, len(sel)+v.NumPending())
	order, bytes := v.sorted(sel)
	var a arena
	a.grow(bytes)
	for _, p := range order {
		out = out[:len(out)+1]
		g.read(int(sel[p]), &a, &out[len(out)-1])
	}
	n := len(out)
	v.EachPending(func(taskID string, retries int32, rec *R) {
		out = append(out, Entry[R]{TaskID: taskID, Rec: *rec})
		if pending != nil {
			pending(&out[len(out)-1].Rec, retries)
		}
	})
	start := v.t.fn.Start
	slices.SortStableFunc(out[n:], func(a, b Entry[R]) int { return cmp.Compare(start(&a.Rec), start(&b.Rec)) })
	return out
}
