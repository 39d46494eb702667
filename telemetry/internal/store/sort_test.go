package store

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestSortRunsMatchesStableSort sorts selections made of sorted runs, of
// random runs and of equal keys, and compares with slices.SortStableFunc.
func TestSortRunsMatchesStableSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		n := rng.IntN(300)
		keys := make([]time.Duration, n, 2*n)
		runLen := 1 + rng.IntN(70)
		for i := range keys {
			keys[i] = time.Duration(rng.IntN(40))
			if round%3 == 0 { // batches of ascending keys, as the ring holds
				keys[i] = time.Duration(i%runLen + rng.IntN(3))
			}
		}
		want := make([]int32, n)
		for i := range want {
			want[i] = int32(i)
		}
		orig := slices.Clone(keys)
		slices.SortStableFunc(want, func(a, b int32) int { return int(orig[a] - orig[b]) })
		order := make([]int32, n, 3*n+1)
		for i := range order {
			order[i] = int32(i)
		}
		got := sortRuns(keys, order)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d (n %d): got order %v, want %v", round, n, got, want)
		}
		for i, p := range got {
			if keys[i] != orig[p] {
				t.Fatalf("round %d: keys[%d] = %v, want %v", round, i, keys[i], orig[p])
			}
		}
	}
}
