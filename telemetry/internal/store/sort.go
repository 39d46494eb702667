package store

import "time"

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
// stable.
func mergeRun(dst []int32, dk []time.Duration, a []int32, ka []time.Duration, b []int32, kb []time.Duration) {
	i, j, k := 0, 0, 0
	for i < len(a) && j < len(b) {
		if kb[j] < ka[i] {
			dst[k], dk[k] = b[j], kb[j]
			j++
		} else {
			dst[k], dk[k] = a[i], ka[i]
			i++
		}
		k++
	}
	copy(dst[k:], a[i:])
	copy(dk[k:], ka[i:])
	k += len(a) - i
	copy(dst[k:], b[j:])
	copy(dk[k:], kb[j:])
}
