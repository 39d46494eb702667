package store

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// rec is a test record: when it started and ended.
type rec struct{ start, end time.Duration }

func startKey(r *rec) time.Duration { return r.start }
func endKey(r *rec) time.Duration   { return r.end }

// totals counts the records pushed into a partition.
type totals struct{ ended int }

func TestNewTableSplitsCapacityAndPendingLimit(t *testing.T) {
	tests := []struct {
		name               string
		capacity, pending  int
		wantParts          int
		wantPendingPerPart int
	}{
		{name: "one record", capacity: 1, pending: 1, wantParts: 1, wantPendingPerPart: 1},
		{name: "just under two partitions", capacity: 4095, pending: 10, wantParts: 1, wantPendingPerPart: 10},
		{name: "two partitions", capacity: 4096, pending: 3, wantParts: 2, wantPendingPerPart: 2},
		{name: "uneven capacity", capacity: 10_001, pending: 10_001, wantParts: 4, wantPendingPerPart: 2501},
		{name: "default", capacity: 100_000, pending: 100_000, wantParts: 16, wantPendingPerPart: 6250},
		{name: "at most 16 partitions", capacity: 1 << 22, pending: 1, wantParts: 16, wantPendingPerPart: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := NewTable[rec, totals](tc.capacity, tc.pending, nil)
			if got := tb.NumParts(); got != tc.wantParts {
				t.Fatalf("got %d partitions, want %d", got, tc.wantParts)
			}
			sum := 0
			for i := range tb.parts {
				r := &tb.parts[i].Runs
				sum += r.capacity
				if r.maxPending != tc.wantPendingPerPart {
					t.Errorf("partition %d: got pending limit %d, want %d", i, r.maxPending, tc.wantPendingPerPart)
				}
				if d := r.capacity - tc.capacity/tc.wantParts; d < 0 || d > 1 {
					t.Errorf("partition %d: got capacity %d, want %d or one more", i, r.capacity, tc.capacity/tc.wantParts)
				}
			}
			if sum != tc.capacity {
				t.Errorf("got capacities adding up to %d, want %d", sum, tc.capacity)
			}
		})
	}
}

func TestNewTableInitializesTotals(t *testing.T) {
	tb := NewTable[rec, totals](1<<16, 16, func(t *totals) { t.ended = 7 })
	tb.Locked(func(parts []Partition[rec, totals]) {
		for i := range parts {
			if parts[i].Totals.ended != 7 {
				t.Errorf("partition %d: got totals %+v, want ended 7", i, parts[i].Totals)
			}
		}
	})
}

// runs returns the Runs of a one-partition table and the hash of each id.
func runs(capacity, maxPending int) (*Runs[rec], func(string) uint64) {
	tb := NewTable[rec, totals](capacity, maxPending, nil)
	return &tb.parts[0].Runs, func(id string) uint64 { _, h := tb.Part(id); return h }
}

func TestRunsStatuses(t *testing.T) {
	s, h := runs(10, 2)
	if st := s.Start(h("a"), "a", rec{start: 1}); st != OK {
		t.Fatalf("start a: got %v, want OK", st)
	}
	if st := s.Start(h("a"), "a", rec{}); st != AlreadyStarted {
		t.Errorf("start a again: got %v, want AlreadyStarted", st)
	}
	if st := s.Start(h("b"), "b", rec{}); st != OK {
		t.Fatalf("start b: got %v, want OK", st)
	}
	if st := s.Start(h("c"), "c", rec{}); st != TooManyPending {
		t.Errorf("start c over the limit of 2: got %v, want TooManyPending", st)
	}
	if _, st := s.Take(h("x"), "x"); st != NotStarted {
		t.Errorf("take x: got %v, want NotStarted", st)
	}
	if _, st := s.Pending(h("x"), "x"); st != NotStarted {
		t.Errorf("pending x: got %v, want NotStarted", st)
	}
	r, st := s.Pending(h("a"), "a")
	if st != OK || r.start != 1 {
		t.Fatalf("pending a: got %+v, %v; want start 1, OK", r, st)
	}
	r.end = 5 // changed in place
	got, st := s.Take(h("a"), "a")
	if st != OK || got != (rec{start: 1, end: 5}) {
		t.Fatalf("take a: got %+v, %v; want {1 5}, OK", got, st)
	}
	s.Push(h("a"), "a", got)
	if _, st := s.Take(h("a"), "a"); st != AlreadyEnded {
		t.Errorf("take a after its end: got %v, want AlreadyEnded", st)
	}
	if _, st := s.Pending(h("a"), "a"); st != AlreadyEnded {
		t.Errorf("pending a after its end: got %v, want AlreadyEnded", st)
	}
	if st := s.Start(h("a"), "a", rec{start: 9}); st != OK {
		t.Errorf("start a after its end: got %v, want OK", st)
	}
	if e, ok := s.Lookup(h("a"), "a"); !ok || e.TaskID != "a" || e.Rec.start != 9 {
		t.Errorf("lookup a: got %+v, %v; want the pending run that started at 9", e, ok)
	}
	if n := s.NumPending(); n != 2 {
		t.Errorf("got %d pending, want 2", n)
	}
}

func TestRunsEvictOldestFirst(t *testing.T) {
	const capacity = 3
	s, h := runs(capacity, 10)
	for i := range 5 {
		id := fmt.Sprint("t", i)
		s.Start(h(id), id, rec{})
		r, _ := s.Take(h(id), id)
		s.Push(h(id), id, r)
	}
	if got := s.Retained(); got != capacity {
		t.Errorf("got %d retained, want %d", got, capacity)
	}
	if got := s.Evicted(); got != 2 {
		t.Errorf("got %d evicted, want 2", got)
	}
	for i, want := range []bool{false, false, true, true, true} {
		id := fmt.Sprint("t", i)
		if _, ok := s.Lookup(h(id), id); ok != want {
			t.Errorf("lookup %s: got found %v, want %v", id, ok, want)
		}
	}
}

func TestRunsLatestRunOfATaskID(t *testing.T) {
	s, h := runs(10, 10)
	for end := range time.Duration(3) {
		s.Start(h("a"), "a", rec{})
		r, _ := s.Take(h("a"), "a")
		r.end = end
		s.Push(h("a"), "a", r)
	}
	if e, ok := s.Lookup(h("a"), "a"); !ok || e.Rec.end != 2 {
		t.Errorf("lookup a: got %+v, %v; want the run that ended at 2", e, ok)
	}
	if got := s.Retained(); got != 3 {
		t.Errorf("got %d retained, want every run: 3", got)
	}
}

// TestSnapshotOrdersAcrossPartitions records runs over every partition and
// checks that queries merge them: finished by end, then pending by start.
func TestSnapshotOrdersAcrossPartitions(t *testing.T) {
	tb := NewTable[rec, totals](1<<16, 1<<16, nil)
	if tb.NumParts() < 2 {
		t.Fatalf("got %d partitions, want several", tb.NumParts())
	}
	const n = 200
	var wantFinished, wantPending []string
	for i := range n {
		id := fmt.Sprint("t", i)
		p, h := tb.Part(id)
		p.Lock()
		// Starts run backwards, so start order is not end order.
		p.Runs.Start(h, id, rec{start: time.Duration(n - i)})
		if i%3 != 0 {
			r, _ := p.Runs.Take(h, id)
			r.end = time.Duration(i)
			p.Runs.Push(h, id, r)
			p.Totals.ended++
			wantFinished = append(wantFinished, id)
		} else {
			wantPending = append([]string{id}, wantPending...)
		}
		p.Unlock()
	}
	ids := func(es []Entry[rec]) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.TaskID)
		}
		return out
	}
	ended := 0
	got := tb.Snapshot(startKey, endKey, func(parts []Partition[rec, totals]) {
		for i := range parts {
			ended += parts[i].Totals.ended
		}
	})
	if want := append(slices.Clone(wantFinished), wantPending...); !slices.Equal(ids(got), want) {
		t.Errorf("snapshot: got %v, want %v", ids(got), want)
	}
	if ended != len(wantFinished) {
		t.Errorf("also saw %d ended, want %d", ended, len(wantFinished))
	}
	odd := Finished(&tb, func(r *rec) bool { return r.end%2 == 1 }, endKey,
		func(e *Entry[rec]) string { return e.TaskID })
	var wantOdd []string
	for _, id := range wantFinished {
		var i int
		fmt.Sscanf(id, "t%d", &i)
		if i%2 == 1 {
			wantOdd = append(wantOdd, id)
		}
	}
	if !slices.Equal(odd, wantOdd) {
		t.Errorf("finished with odd end: got %v, want %v", odd, wantOdd)
	}
}

func TestOfferAndSwapOut(t *testing.T) {
	tb := NewTable[rec, totals](1<<16, 16, nil)
	parts := tb.NumParts()
	tb.AddOut(1)           // slot 0: one record per partition at least
	tb.AddOut(2*parts + 1) // slot 1: 3 records per partition
	p, _ := tb.Part("a")
	p.Lock()
	var results [][2]bool
	for i := range 4 {
		ok, half := p.Offer(1, "a", &rec{end: time.Duration(i)})
		results = append(results, [2]bool{ok, half})
	}
	ok0, _ := p.Offer(0, "a", &rec{})
	p.Unlock()
	want := [][2]bool{{true, false}, {true, true}, {true, false}, {false, false}}
	if !slices.Equal(results, want) {
		t.Errorf("offers to a buffer of 3: got (ok, half) %v, want %v", results, want)
	}
	if !ok0 {
		t.Errorf("offer to slot 0: got refused, want accepted")
	}
	if got := tb.Queued(1); got != 3 {
		t.Errorf("queued in slot 1: got %d, want 3", got)
	}
	spare := make([][]Entry[rec], parts)
	if got := tb.SwapOut(1, spare); got != 3 {
		t.Errorf("swap out slot 1: got %d records, want 3", got)
	}
	var ends []time.Duration
	for _, es := range spare {
		for _, e := range es {
			if e.TaskID != "a" {
				t.Errorf("got task id %q, want a", e.TaskID)
			}
			ends = append(ends, e.Rec.end)
		}
	}
	if want := []time.Duration{0, 1, 2}; !slices.Equal(ends, want) {
		t.Errorf("swapped out ends %v, want %v", ends, want)
	}
	if got := tb.Queued(1); got != 0 {
		t.Errorf("queued in slot 1 after the swap: got %d, want 0", got)
	}
	if got := tb.Queued(0); got != 1 {
		t.Errorf("queued in slot 0: got %d, want 1 (slots are separate)", got)
	}
	// The emptied buffer takes records again, into the spare slice's array.
	p.Lock()
	ok, _ := p.Offer(1, "a", &rec{})
	p.Unlock()
	if !ok {
		t.Errorf("offer after the swap: got refused, want accepted")
	}
}
