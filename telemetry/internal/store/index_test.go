package store

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestIndexMatchesMap drives an index and a map with the same random puts
// and removes, with hashes drawn from a small set so that collisions, long
// probe runs and wrap-around are common, and checks they always agree.
func TestIndexMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const ringSize = 512
	var (
		x      index
		ring   [ringSize]string // what each ring slot holds
		hashes = map[string]uint64{}
		want   = map[string]int32{} // task id -> ring slot of its entry
	)
	hashOf := func(id string) uint64 {
		if h, ok := hashes[id]; ok {
			return h
		}
		h := uint64(rng.IntN(8)) << 8 // few homes: many collisions
		if rng.IntN(2) == 0 {
			h |= 0xffff << 8 // homes at the end of the table: wrap-around
		}
		hashes[id] = h
		return h
	}
	same := func(id string) func(r int32) bool { return func(r int32) bool { return ring[r] == id } }
	// evict empties ring slot r as the store does when the ring wraps.
	evict := func(r int32) {
		if old := ring[r]; old != "" {
			x.remove(hashOf(old), r)
			if want[old] == r {
				delete(want, old)
			}
			ring[r] = ""
		}
	}
	for op := range 200_000 {
		r := int32(rng.IntN(ringSize))
		if rng.IntN(3) == 0 {
			evict(r)
		} else { // a run of id ends and lands in slot r
			id := fmt.Sprint("t", rng.IntN(300))
			evict(r)
			ring[r] = id
			x.put(hashOf(id), r, same(id))
			want[id] = r
		}
		if x.n != len(want) {
			t.Fatalf("op %d: index holds %d entries, want %d", op, x.n, len(want))
		}
		if op%97 == 0 {
			for id, r := range want {
				if got, ok := x.get(hashOf(id), same(id)); !ok || got != r {
					t.Fatalf("op %d: get(%s) = %d, %v; want %d", op, id, got, ok, r)
				}
			}
		}
	}
}
