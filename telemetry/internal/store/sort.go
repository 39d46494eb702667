package store

import (
	"time"
	"unsafe"
)

// orderByEnd returns the order of n records by end, given their ends in
// keys and, for the records of a table of several shards, their shards
// (of k) in shards, else nil: indexes into keys, the one that ended first
// first. Records of equal ends come in the order of keys, except that
// with shards they come by shard first: the order that grouping the
// records by shard, then merging the groups stably, gives. Every query
// and every Copy of a table of several shards gives shards, so that ties
// come in one order in all of them. keys must have a capacity of 2n; its
// contents are lost.
//
// A selection in order already costs one pass; a small one that is
// nearly in order (each record a few places from its own) is put in order
// in place, as long as that takes fewer than insertBudget moves a record;
// any other is grouped by shard, which leaves one sorted run per shard,
// and the runs are merged by sortRuns.
func orderByEnd(keys []time.Duration, shards []uint8, k int) []int32 {
	n := len(keys)
	room := n // a small selection most likely needs no more
	if n > maxInsert {
		room = 3*n + 1 // the room sortRuns needs
	}
	order := make([]int32, n, room)
	for p := range order {
		order[p] = int32(p)
	}
	if inOrder(keys, shards) {
		return order
	}
	if n <= maxInsert {
		if insertSort(keys[n:2*n], order, keys, shards) {
			return order
		}
		order = append(make([]int32, 0, 3*n+1), order...)
	}
	if shards != nil {
		var next [maxParts + 1]int // where the next index of each shard goes
		for _, s := range shards {
			next[int(s)+1]++
		}
		for s := 1; s <= k; s++ {
			next[s] += next[s-1]
		}
		for p, s := range shards {
			order[next[s]] = int32(p)
			next[s]++
		}
		grouped := keys[n : 2*n]
		for q, p := range order {
			grouped[q] = keys[p]
		}
		copy(keys, grouped)
	}
	return sortRuns(keys, order)
}

// maxInsert is the largest selection orderByEnd tries to put in order in
// place, and insertBudget the moves a record it may take for it.
const (
	maxInsert    = 1024
	insertBudget = 8
)

// inOrder reports whether the selection of keys and shards (see
// orderByEnd) is in order already.
func inOrder(keys []time.Duration, shards []uint8) bool {
	for p := 1; p < len(keys); p++ {
		if keys[p] < keys[p-1] || keys[p] == keys[p-1] && shards != nil && shards[p] < shards[p-1] {
			return false
		}
	}
	return true
}

// insertSort sorts order, the identity, by keys and shards (see
// orderByEnd) with an insertion sort in scratch, which has the length of
// keys, and reports whether it did so within insertBudget moves a record;
// if not, it leaves order as it was. keys is unchanged.
func insertSort(scratch []time.Duration, order []int32, keys []time.Duration, shards []uint8) bool {
	copy(scratch, keys)
	budget := insertBudget * len(keys)
	for p := 1; p < len(scratch); p++ {
		x, o := scratch[p], order[p]
		q := p
		for q > 0 && (x < scratch[q-1] || x == scratch[q-1] && shards != nil && shards[o] < shards[order[q-1]]) {
			scratch[q], order[q] = scratch[q-1], order[q-1]
			q--
		}
		if budget -= p - q; budget < 0 {
			for p := range order {
				order[p] = int32(p)
			}
			return false
		}
		scratch[q], order[q] = x, o
	}
	return true
}

// sortRuns sorts order, positions of elements whose keys are keys
// (keys[i] is the key of the element at order[i]), by key, elements of
// equal keys in the order they have in order, and returns it. It merges
// the ascending runs that keys already holds, bottom-up, in O(n log r) for
// r runs, moving positions and keys only (no pointers, so no write
// barriers), so that keys in a few sorted runs cost little and sorted
// keys a single pass. keys is reordered too.
//
// order must have a capacity of at least 3*len(order)+1 and keys of
// 2*len(keys): the merges use the room beyond their lengths, so that a
// sort allocates nothing of its own.
func sortRuns(keys []time.Duration, order []int32) []int32 {
	n := len(keys)
	starts := order[2*n : 2*n : cap(order)] // the start of every ascending run
	for i := 1; i < n; i++ {
		if keys[i] < keys[i-1] {
			if len(starts) == 0 {
				starts = append(starts, 0)
			}
			starts = append(starts, int32(i))
		}
	}
	if len(starts) == 0 {
		return order // one run: sorted already
	}
	src, dst := order, order[n:2*n]
	skeys, dkeys := keys, keys[n:2*n]
	for len(starts) > 1 {
		merged := starts[:0] // the merged runs' starts, written over the read ones
		for r := 0; r < len(starts); r += 2 {
			lo, mid, hi := int(starts[r]), n, n
			if r+1 < len(starts) {
				mid = int(starts[r+1])
			}
			if r+2 < len(starts) {
				hi = int(starts[r+2])
			}
			mergeRun(dst[lo:hi], dkeys[lo:hi], src[lo:mid], skeys[lo:mid], src[mid:hi], skeys[mid:hi])
			merged = append(merged, int32(lo))
		}
		starts = merged
		src, dst, skeys, dkeys = dst, src, dkeys, skeys
	}
	if &skeys[0] != &keys[0] {
		copy(keys, skeys)
	}
	return src
}

// mergeRun merges the sorted runs a and b (keys ka and kb) into dst (keys
// dk), taking from a first when keys are equal, so that the merge is
// stable. dst and dk have the length of a and b together. Its loop has
// no branch on the keys (the records of shards interleave about at
// random, so a branch would be mispredicted half the time) and no bounds
// checks.
func mergeRun(dst []int32, dk []time.Duration, a []int32, ka []time.Duration, b []int32, kb []time.Duration) {
	na, nb := len(a), len(b)
	if na == 0 || nb == 0 {
		copy(dst, a)
		copy(dk, ka)
		copy(dst[na:], b)
		copy(dk[na:], kb)
		return
	}
	_, _ = dst[na+nb-1], dk[na+nb-1] // so k = i+j < na+nb is in bounds below
	// i < na and j < nb in the loop: the elements are read without bounds
	// checks.
	pa, pka := unsafe.Pointer(&a[0]), unsafe.Pointer(&ka[0])
	pb, pkb := unsafe.Pointer(&b[0]), unsafe.Pointer(&kb[0])
	pd, pdk := unsafe.Pointer(&dst[0]), unsafe.Pointer(&dk[0])
	i, j := 0, 0
	for i < na && j < nb {
		// Neither run can run out in fewer steps than the shorter has left.
		for m := min(na-i, nb-j); m > 0; m-- {
			x := *(*time.Duration)(unsafe.Add(pka, i*8))
			y := *(*time.Duration)(unsafe.Add(pkb, j*8))
			va, vb := *(*int32)(unsafe.Add(pa, i*4)), *(*int32)(unsafe.Add(pb, j*4))
			v, key, takeB := va, x, 0
			if y < x { // compiled to conditional moves
				v, key, takeB = vb, y, 1
			}
			*(*int32)(unsafe.Add(pd, (i+j)*4)) = v
			*(*time.Duration)(unsafe.Add(pdk, (i+j)*8)) = key
			i += 1 - takeB
			j += takeB
		}
	}
	k := i + j
	copy(dst[k:], a[i:])
	copy(dk[k:], ka[i:])
	k += na - i
	copy(dst[k:], b[j:])
	copy(dk[k:], kb[j:])
}
