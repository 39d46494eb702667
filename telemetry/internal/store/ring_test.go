package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// srec is a test record with strings, which the ring keeps in its slabs.
type srec struct {
	name, pipeline, err string
	start, dur          time.Duration
	failed              bool
}

var srecFuncs = Funcs[srec]{
	Start:    func(r *srec) time.Duration { return r.start },
	Finished: func(r *srec) (time.Duration, time.Duration, bool) { return r.start + r.dur, r.dur, r.failed },
}

// TestRingKeepsStrings records many passes over the ring's blocks, with
// strings of every length, repeated and not, and checks after each batch
// that every query returns the strings each record was given: a record
// whose slab was reused for a later pass would show another's bytes. It
// also keeps an early result and checks that it is unchanged after the
// ring has reused the memory it was read from.
func TestRingKeepsStrings(t *testing.T) {
	for _, capacity := range []int{1, 5, 1000, 1024, 2500, 5000} {
		t.Run(fmt.Sprint("capacity ", capacity), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(capacity), 7))
			tb := NewTable[srec, totals](capacity, 1<<20, srecFuncs, nil)
			word := func() string { return randomWord(rng, "x") }
			var all []Entry[srec] // every record ended, in end order
			byID := map[string]Entry[srec]{}
			var early []Entry[srec]
			var earlyWant []Entry[srec]
			n := 5*capacity + 37
			for i := range n {
				id := fmt.Sprintf("task-%d-%s", i, strings.Repeat("i", rng.IntN(40)))
				r := srec{name: word(), pipeline: word(), start: time.Duration(2 * i)}
				if st := tb.Start(id, &r); st != OK {
					t.Fatalf("start %s: %v", id, st)
				}
				r.dur, r.failed = 1, rng.IntN(3) == 0
				if r.failed {
					r.err = word()
				}
				if st := endS(tb, id, r); st != OK {
					t.Fatalf("end %s: %v", id, st)
				}
				all = append(all, Entry[srec]{TaskID: id, Rec: r})
				byID[id] = all[len(all)-1]
				if i%max(capacity/3, 1) != 0 && i != n-1 {
					continue
				}
				tb.Locked(func(v *View[srec, totals]) {
					// With several shards the ring evicts by batches, not
					// strictly the oldest: what it retains is checked
					// against what was recorded under each task id.
					snap := v.Snapshot(nil)
					if len(snap) != min(len(all), capacity) || !recorded(snap, byID) {
						t.Fatalf("after %d records: the snapshot of %d records differs from what was recorded", i+1, len(snap))
					}
					var failed []Entry[srec]
					for _, e := range snap {
						if e.Rec.failed {
							failed = append(failed, e)
						}
					}
					if got := Failed(v, func(dst *Entry[srec], e Entry[srec]) { *dst = e }); !sameEntries(got, failed) {
						t.Fatalf("after %d records: the failed records differ from what was recorded", i+1)
					}
					if got := Finished(v, func(r *srec) bool { return r.name == "load" }, func(dst *string, e Entry[srec]) { *dst = e.TaskID }); len(got) != count(snap, "load") {
						t.Fatalf("after %d records: got %d records named load, want %d", i+1, len(got), count(snap, "load"))
					}
					for range 5 {
						want := snap[rng.IntN(len(snap))]
						if got, ok := v.Latest(want.TaskID, nil); !ok || got.TaskID != want.TaskID || got.Rec != want.Rec {
							t.Fatalf("after %d records: latest %s: got %+v, %v; want %+v", i+1, want.TaskID, got, ok, want)
						}
					}
					if early == nil && i >= capacity {
						early, earlyWant = snap, deepCopy(snap)
					}
				})
				runtime.GC()
			}
			if early != nil && !sameEntries(early, earlyWant) {
				t.Fatal("a snapshot changed after the ring reused the memory it was read from")
			}
		})
	}
}

// randomWord returns a string of a record for the ring tests: empty, long
// and unique (fill repeated, then a random number), or one of a few that
// recur, as event names do.
func randomWord(rng *rand.Rand, fill string) string {
	switch rng.IntN(6) {
	case 0:
		return ""
	case 1:
		return strings.Repeat(fill, rng.IntN(300)) + fmt.Sprint(rng.Uint64())
	default:
		return []string{"load", "transform", "save"}[rng.IntN(3)]
	}
}

// endS ends the pending run of id with the record r, as end does for rec.
func endS(tb *Table[srec, totals], id string, r srec) Status {
	s, h := tb.Acquire(id)
	defer tb.Release(s)
	e, _, st := tb.End(s, h, id)
	if st != OK {
		return st
	}
	e.Rec = r
	tb.Ended(s)
	return OK
}

// recorded reports whether es are records in end order, each as it was
// recorded under its task id.
func recorded(es []Entry[srec], byID map[string]Entry[srec]) bool {
	for i, e := range es {
		want, ok := byID[e.TaskID]
		if !ok || want.Rec != e.Rec || (i > 0 && e.Rec.start < es[i-1].Rec.start) {
			return false
		}
	}
	return true
}

// deepCopy returns a copy of es whose strings share no memory with es.
func deepCopy(es []Entry[srec]) []Entry[srec] {
	out := make([]Entry[srec], len(es))
	for i, e := range es {
		out[i] = Entry[srec]{TaskID: strings.Clone(e.TaskID), Rec: e.Rec}
		out[i].Rec.name, out[i].Rec.pipeline, out[i].Rec.err = strings.Clone(e.Rec.name), strings.Clone(e.Rec.pipeline), strings.Clone(e.Rec.err)
	}
	return out
}

func sameEntries(got, want []Entry[srec]) bool {
	return slices.EqualFunc(got, want, func(a, b Entry[srec]) bool { return a.TaskID == b.TaskID && a.Rec == b.Rec })
}

func count(es []Entry[srec], name string) int {
	n := 0
	for _, e := range es {
		if e.Rec.name == name {
			n++
		}
	}
	return n
}

// TestLayoutRejectsPointers checks that a table refuses a record type it
// could not keep without pointers.
func TestLayoutRejectsPointers(t *testing.T) {
	// Exported fields: the test only gives the types to layoutOf.
	type late struct {
		Start time.Duration
		Name  string
	}
	type many struct{ A, B, C, D string }
	type slice struct {
		Name string
		IDs  []int
	}
	type nested struct {
		Name string
		In   struct{ P *int }
	}
	for name, f := range map[string]func(){
		"string after a plain field": func() { layoutOf[late]() },
		"four strings":               func() { layoutOf[many]() },
		"a slice":                    func() { layoutOf[slice]() },
		"a pointer in a struct":      func() { layoutOf[nested]() },
		"not a struct":               func() { layoutOf[string]() },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("layoutOf did not panic")
				}
			}()
			f()
		})
	}
	if l := layoutOf[srec](); l.nstr != 3 || l.plainOff != 48 || l.plainSize != 24 {
		t.Errorf("layout of srec: got %+v, want 3 strings and 24 plain bytes from 48", l)
	}
}

// TestLatestCopiesOnlyItsStrings checks that looking up one finished record
// allocates room for its strings alone, not a chunk meant for many.
func TestLatestCopiesOnlyItsStrings(t *testing.T) {
	tb := NewTable[srec, totals](100, 100, srecFuncs, nil)
	r := srec{name: "load", start: 1}
	if st := tb.Start("task-1", &r); st != OK {
		t.Fatal(st)
	}
	r.dur = 1
	if st := endS(tb, "task-1", r); st != OK {
		t.Fatal(st)
	}
	var got Entry[srec]
	var ms runtime.MemStats
	tb.Locked(func(v *View[srec, totals]) {
		v.Latest("task-1", nil) // builds the index of latest runs
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		got, _ = v.Latest("task-1", nil)
		runtime.ReadMemStats(&ms)
		if n := ms.TotalAlloc - before; n > 256 {
			t.Errorf("looking up one record allocated %d bytes, want at most 256", n)
		}
	})
	if got.TaskID != "task-1" || got.Rec.name != "load" {
		t.Errorf("got %+v", got)
	}
}

// TestCopyPlain checks copyPlain against copy for every size from 0 to
// past three chunks of 32 bytes: the n bytes are copied, none after them.
// Each size also copies between allocations of exactly n bytes, so that
// under the race detector its pointer checks see any pointer made past
// their end.
func TestCopyPlain(t *testing.T) {
	src := make([]byte, 100)
	for i := range src {
		src[i] = byte(i + 1)
	}
	for n := range len(src) {
		dst := make([]byte, len(src)+8)
		copyPlain(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), uintptr(n))
		want := make([]byte, len(dst))
		copy(want, src[:n])
		if !bytes.Equal(dst, want) {
			t.Fatalf("copyPlain of %d bytes: got %v, want %v", n, dst, want)
		}
		if n == 0 {
			continue
		}
		exact, into := bytes.Clone(src[:n]), make([]byte, n)
		copyPlain(unsafe.Pointer(&into[0]), unsafe.Pointer(&exact[0]), uintptr(n))
		if !bytes.Equal(into, src[:n]) {
			t.Fatalf("copyPlain of %d bytes between allocations of that size: got %v, want %v", n, into, src[:n])
		}
	}
}

// TestSameString checks sameString against ==, for strings that share
// their bytes, in whole or in part, and strings that do not.
func TestSameString(t *testing.T) {
	s := "transform-transform"
	other := strings.Clone(s[:9])
	for _, tc := range []struct{ a, b string }{
		{"", ""},
		{s[:9], s[:9]},      // the same bytes
		{s[:9], other},      // equal, other bytes
		{s[:9], s[:10]},     // the same start, other lengths
		{s[:9], s[10:]},     // equal, other bytes of one string
		{s[:9], "transfor"}, // shorter
		{s[:9], "transforn"},
		{"", s[:0]},
	} {
		if got, want := sameString(tc.a, tc.b), tc.a == tc.b; got != want {
			t.Errorf("sameString(%q, %q) = %v, want %v", tc.a, tc.b, got, want)
		}
		if got, want := sameString(tc.b, tc.a), tc.a == tc.b; got != want {
			t.Errorf("sameString(%q, %q) = %v, want %v", tc.b, tc.a, got, want)
		}
	}
}
