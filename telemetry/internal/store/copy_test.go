package store

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// copyEntries returns the records of c, in order.
func copyEntries(c *Copy[srec]) []Entry[srec] {
	out := make([]Entry[srec], c.Len())
	for k := range out {
		out[k] = c.At(k)
	}
	return out
}

// TestCopyMatchesSnapshot records many passes over the ring's blocks, with
// strings of every length, ends out of order and runs left pending, and
// checks after each batch that a Copy holds what Snapshot returns, in the
// same order, with the right count of string bytes; and that a Copy taken
// early is unchanged after the ring has reused the memory it was taken
// from.
func TestCopyMatchesSnapshot(t *testing.T) {
	for _, capacity := range []int{1, 5, 1000, 1024, 2500, 5000, 9000} {
		t.Run(fmt.Sprint("capacity ", capacity), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(capacity), 8))
			tb := NewTable[srec, totals](capacity, 1<<20, srecFuncs, nil)
			word := func() string { return randomWord(rng, "y") }
			var early *Copy[srec]
			var earlyWant []Entry[srec]
			n := 3*capacity + 41
			for i := range n {
				id := fmt.Sprintf("task-%d-%s", i, strings.Repeat("i", rng.IntN(40)))
				r := srec{name: word(), pipeline: word(), start: time.Duration(rng.IntN(4 * n))}
				if st := tb.Start(id, &r); st != OK {
					t.Fatalf("start %s: %v", id, st)
				}
				if rng.IntN(20) == 0 {
					continue // pending
				}
				r.dur, r.failed = time.Duration(rng.IntN(3)), rng.IntN(3) == 0
				if r.failed {
					r.err = word()
				}
				if st := endS(tb, id, r); st != OK {
					t.Fatalf("end %s: %v", id, st)
				}
				if i%max(capacity/3, 1) != 0 && i != n-1 {
					continue
				}
				tb.Locked(func(v *View[srec, totals]) {
					snap := v.Snapshot(nil)
					c := v.Copy(nil)
					if got := copyEntries(c); !sameEntries(got, snap) {
						t.Fatalf("after %d records: the copy of %d records differs from the snapshot of %d", i+1, len(got), len(snap))
					}
					bytes := 0
					for _, e := range snap {
						bytes += len(e.TaskID) + len(e.Rec.name) + len(e.Rec.pipeline) + len(e.Rec.err)
					}
					if c.StringBytes() != bytes {
						t.Fatalf("after %d records: StringBytes = %d, want %d", i+1, c.StringBytes(), bytes)
					}
					if early == nil && i >= capacity/2 {
						early, earlyWant = c, deepCopy(snap)
					}
				})
			}
			if early != nil && !sameEntries(copyEntries(early), earlyWant) {
				t.Fatal("a copy changed after the ring reused the memory it was taken from")
			}
		})
	}
}
