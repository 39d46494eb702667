package store

import (
	"bytes"
	"cmp"
	"slices"
	"time"
	"unsafe"
)

// A Copy holds copies of every record of a table as of one [View]: the
// retained finished records, oldest end first, then the pending runs by
// start time. The finished records are kept as the ring keeps them,
// without pointers: their slots and plain bytes copied in a few large
// moves, and the string slabs of their blocks copied whole, so that taking
// the copy under the table's lock costs little more than one pass over
// memory, and the garbage collector does not scan it. The finished
// records are put in end order at the first [Copy.At], after the lock is
// released. A Copy is not safe for concurrent use; the strings At returns
// share its memory, which nothing overwrites.
type Copy[R any] struct {
	lay layout
	// recs holds the finished records in ring order, oldest first,
	// lay.stride bytes each; in a record's slot, hash is replaced by the
	// index of the block it was read from.
	recs   []byte
	n      int             // the number of finished records
	order  []int32         // indexes into recs, oldest end first; nil until At sorts
	keys   []time.Duration // the ends of the records in recs, for the sort
	shards []uint8         // their shards, if the sort groups them by shard
	slabs  [][]byte        // the copied slabs of block k at 2k and 2k+1
	pend   []Entry[R]      // the pending runs, by start time
	strs   int             // bytes of the strings of the records, task ids included
}

// Copy returns a copy of every record of the table, finished and pending,
// each pending record given to pending (if not nil) with its retries
// first, as [View.Snapshot] orders them.
func (v *View[R, T]) Copy(pending func(rec *R, retries int32)) *Copy[R] {
	g := &v.t.ring
	n := g.retained()
	c := &Copy[R]{lay: g.lay, n: n, keys: make([]time.Duration, n, 2*n)}
	if len(v.t.shards) > 1 && n > stageSize { // as View.sorted groups them
		c.shards = make([]uint8, n)
	}
	// bytes.Join allocates what it returns without zeroing it first: the
	// records and the slabs are written once, by the copy.
	stride := g.lay.stride
	var segs [][]byte
	g.segments(func(lo, hi int) {
		segs = append(segs, g.blocks[lo>>blockShift].recs[uintptr(lo&blockMask)*stride:uintptr((hi-1)&blockMask+1)*stride])
	})
	c.recs = bytes.Join(segs, nil)
	read := make([]bool, len(g.blocks)) // the blocks that hold retained records
	k := 0
	g.segments(func(lo, hi int) {
		bi := lo >> blockShift
		read[bi] = true
		for j := k; j < k+hi-lo; j++ {
			s := (*slot)(unsafe.Pointer(&c.recs[uintptr(j)*stride]))
			c.keys[j] = s.end
			if c.shards != nil {
				c.shards[j] = uint8(s.hash & v.t.mask)
			}
			s.hash = uint64(bi)
			c.strs += int(s.task.n) + int(s.strs[0].n) + int(s.strs[1].n) + int(s.strs[2].n)
		}
		k += hi - lo
	})
	segs = segs[:0]
	for bi, b := range g.blocks {
		if read[bi] {
			segs = append(segs, b.slabs[0][:b.used[0]], b.slabs[1][:b.used[1]])
		}
	}
	all := bytes.Join(segs, nil)
	c.slabs = make([][]byte, 2*len(g.blocks))
	for bi, b := range g.blocks {
		if read[bi] {
			for gen := range 2 {
				m := b.used[gen]
				c.slabs[2*bi+gen], all = all[:m:m], all[m:]
			}
		}
	}
	c.pend = make([]Entry[R], 0, v.NumPending())
	v.EachPending(func(taskID string, retries int32, rec *R) {
		c.pend = append(c.pend, Entry[R]{TaskID: taskID, Rec: *rec})
		if pending != nil {
			pending(&c.pend[len(c.pend)-1].Rec, retries)
		}
		c.strs += len(taskID)
		for _, s := range g.lay.strings(unsafe.Pointer(rec)) {
			c.strs += len(s)
		}
	})
	start := v.t.fn.Start
	slices.SortStableFunc(c.pend, func(a, b Entry[R]) int { return cmp.Compare(start(&a.Rec), start(&b.Rec)) })
	return c
}

// Len returns the number of records in c, finished and pending.
func (c *Copy[R]) Len() int { return c.n + len(c.pend) }

// StringBytes returns the bytes of the strings of the records in c, task
// ids included.
func (c *Copy[R]) StringBytes() int { return c.strs }

// At returns record k of c, 0 <= k < c.Len(): the finished records
// first, oldest end first, then the pending ones by start time. Its
// strings share c's memory. It builds the record in a variable of its own,
// on the stack, so that setting its strings costs no write barriers while
// the garbage collector marks.
func (c *Copy[R]) At(k int) (e Entry[R]) {
	if k >= c.n {
		return c.pend[k-c.n]
	}
	if c.order == nil {
		c.sort()
	}
	p := unsafe.Pointer(&c.recs[uintptr(c.order[k])*c.lay.stride])
	s := (*slot)(p)
	sl := c.slabs[2*s.hash+uint64(s.gen&1)]
	copy(c.lay.plain(unsafe.Pointer(&e.Rec)), unsafe.Slice((*byte)(unsafe.Add(p, slotSize)), c.lay.plainSize))
	e.TaskID = slabString(sl, s.task)
	strs := c.lay.strings(unsafe.Pointer(&e.Rec))
	for i := range strs {
		strs[i] = slabString(sl, s.strs[i])
	}
	return e
}

// sort puts the finished records of c in end order, as [View.sorted]
// would have in the table.
func (c *Copy[R]) sort() {
	c.order = orderByEnd(c.keys, c.shards, maxParts)
	c.keys, c.shards = nil, nil
}

// slabString returns the string ref locates in sl.
func slabString(sl []byte, ref strRef) string {
	if ref.n == 0 {
		return ""
	}
	b := sl[ref.off : ref.off+ref.n]
	return unsafe.String(&b[0], len(b))
}
