package store

import (
	"cmp"
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

// TestOrderByEndMatchesStableSort orders selections in order already,
// nearly in order, in batches and at random, with and without shards and
// many equal ends, of sizes on both sides of maxInsert, and compares with
// slices.SortStableFunc by end, then shard for a grouped selection.
func TestOrderByEndMatchesStableSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 600 {
		n := rng.IntN(300)
		if round%10 == 0 {
			n = maxInsert - 50 + rng.IntN(100)
		}
		keys := make([]time.Duration, n, 2*n)
		var shards []uint8
		k := 1 + rng.IntN(maxParts)
		if round%2 == 0 {
			shards = make([]uint8, n)
			for p := range shards {
				shards[p] = uint8(rng.IntN(k))
			}
		}
		spread := 1 + rng.IntN(2*n+1)
		for p := range keys {
			switch round % 5 {
			case 0: // in order, with equal ends
				keys[p] = time.Duration(p / (1 + round%3))
			case 1: // nearly in order
				keys[p] = time.Duration(p + rng.IntN(1+round%7))
			case 2: // batches of ascending ends
				keys[p] = time.Duration(p%(1+round%70) + rng.IntN(3))
			default:
				keys[p] = time.Duration(rng.IntN(spread))
			}
		}
		want := make([]int32, n)
		for p := range want {
			want[p] = int32(p)
		}
		orig := slices.Clone(keys)
		slices.SortStableFunc(want, func(a, b int32) int {
			if c := int(orig[a] - orig[b]); c != 0 || shards == nil {
				return c
			}
			return int(shards[a]) - int(shards[b])
		})
		if got := orderByEnd(keys, shards, k); !slices.Equal(got, want) {
			t.Fatalf("round %d (n %d, shards %v): got order %v, want %v", round, n, shards != nil, got, want)
		}
	}
}

// TestOrderByEndLargeSelections orders selections larger than maxInsert,
// which are grouped by shard and merged, with ends spanning from a few
// bits to all 64, negative ones, equal ones, with and without shards, in
// batches of ascending ends as the ring holds them and at random, and
// compares with slices.SortStableFunc.
func TestOrderByEndLargeSelections(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for round := range 60 {
		n := maxInsert + 1 + rng.IntN(5000)
		spanBits := []int{1, 8, 13, 24, 25, 36, 48, 49, 63, 64}[round%10]
		keys := make([]time.Duration, n, 2*n)
		base := time.Duration(rng.Int64()) - 1<<62
		for p := range keys {
			var off uint64
			if spanBits == 64 {
				off = rng.Uint64()
			} else {
				off = rng.Uint64N(1 << spanBits)
			}
			if round%3 == 0 { // batches of ascending ends
				off = uint64(p%64)<<max(spanBits-7, 0) + off>>7
			}
			keys[p] = base + time.Duration(off)
			if spanBits == 64 {
				keys[p] = time.Duration(off)
			}
		}
		var shards []uint8
		k := 16
		if round%2 == 0 {
			shards = make([]uint8, n)
			for p := range shards {
				shards[p] = uint8(rng.IntN(k))
			}
		}
		want := make([]int32, n)
		for p := range want {
			want[p] = int32(p)
		}
		orig := slices.Clone(keys)
		slices.SortStableFunc(want, func(a, b int32) int {
			if c := cmp.Compare(orig[a], orig[b]); c != 0 || shards == nil {
				return c
			}
			return int(shards[a]) - int(shards[b])
		})
		if got := orderByEnd(keys, shards, k); !slices.Equal(got, want) {
			t.Fatalf("round %d (n %d, %d bits, shards %v): the order differs from a stable sort", round, n, spanBits, shards != nil)
		}
	}
}
