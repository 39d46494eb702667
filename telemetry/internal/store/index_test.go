package store

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestIndexMatchesMap drives an index as ring.catchUp does, and a map with
// the same random runs, and checks that they always agree. Each run of a
// task id lands in the next ring slot, overwriting the oldest run: the
// index then points the task id's entry at that slot, or adds one if it
// finds none (an entry whose slot was overwritten is stale and not found),
// and is rebuilt from the latest runs when stale entries make it too
// large. Hashes are drawn from a small set, so that collisions, long probe
// runs and wrap-around are common.
func TestIndexMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const ringSize = 512
	var (
		x      index
		ring   [ringSize]string // what each ring slot holds
		hashes = map[string]uint64{}
		want   = map[string]int32{} // task id -> ring slot of its latest run
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
	index := func(id string, r int32) {
		if i := x.find(hashOf(id), same(id)); i >= 0 {
			x.slots[i].ring = r
		} else {
			x.insert(hashOf(id), r)
		}
	}
	rebuilt := 0
	for op := range 200_000 {
		r := int32(op % ringSize) // the ring overwrites its oldest run
		id := fmt.Sprint("t", rng.IntN(300))
		if old := ring[r]; old != "" && want[old] == r {
			delete(want, old) // its latest run is overwritten: none retained
		}
		ring[r] = id
		index(id, r)
		want[id] = r
		if x.n > 2*ringSize {
			clear(x.slots)
			x.n = 0
			for id, r := range want {
				index(id, r)
			}
			rebuilt++
		}
		if op%97 == 0 {
			for id, r := range want {
				if got, ok := x.get(hashOf(id), same(id)); !ok || got != r {
					t.Fatalf("op %d: get(%s) = %d, %v; want %d", op, id, got, ok, r)
				}
			}
			for id := range hashes {
				if _, ok := want[id]; !ok {
					if got, ok := x.get(hashOf(id), same(id)); ok {
						t.Fatalf("op %d: get(%s) = %d, want none (no run retained)", op, id, got)
					}
				}
			}
		}
	}
	if rebuilt == 0 {
		t.Error("the index was never rebuilt: the test misses that path")
	}
}
