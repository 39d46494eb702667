package store

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// rec is a test record: when it started, how long it took, whether it
// failed.
type rec struct {
	start, dur time.Duration
	failed     bool
}

var recFuncs = Funcs[rec]{
	Start:    func(r *rec) time.Duration { return r.start },
	Finished: func(r *rec) (time.Duration, time.Duration, bool) { return r.start + r.dur, r.dur, r.failed },
}

// totals counts the records finished in a shard.
type totals struct{ ended int }

func TestNewTableSplitsShards(t *testing.T) {
	tests := []struct {
		name                string
		capacity, pending   int
		wantShards          int
		wantPendingPerShard int
	}{
		{name: "one record", capacity: 1, pending: 1, wantShards: 1, wantPendingPerShard: 1},
		{name: "just under two shards", capacity: 4095, pending: 10, wantShards: 1, wantPendingPerShard: 10},
		{name: "two shards", capacity: 4096, pending: 3, wantShards: 2, wantPendingPerShard: 2},
		{name: "uneven", capacity: 10_001, pending: 10_001, wantShards: 4, wantPendingPerShard: 2501},
		{name: "default", capacity: 100_000, pending: 100_000, wantShards: 16, wantPendingPerShard: 6250},
		{name: "at most 16 shards", capacity: 1 << 22, pending: 1, wantShards: 16, wantPendingPerShard: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := NewTable[rec, totals](tc.capacity, tc.pending, recFuncs, nil)
			if got := tb.NumShards(); got != tc.wantShards {
				t.Errorf("got %d shards, want %d", got, tc.wantShards)
			}
			if got := tb.MaxPending(); got != tc.wantPendingPerShard {
				t.Errorf("got pending limit %d per shard, want %d", got, tc.wantPendingPerShard)
			}
		})
	}
}

func TestNewTableInitializesTotals(t *testing.T) {
	tb := NewTable(1<<16, 16, recFuncs, func(t *totals) { t.ended = 7 })
	n := 0
	tb.Locked(func(v *View[rec, totals]) {
		v.EachTotals(func(tt *totals) {
			n++
			if tt.ended != 7 {
				t.Errorf("got totals %+v, want ended 7", *tt)
			}
		})
	})
	if n != tb.NumShards() {
		t.Errorf("EachTotals visited %d shards, want %d", n, tb.NumShards())
	}
}

// end ends the pending run of id in tb with r, as the telemetry package
// does, and returns the status.
func end(tb *Table[rec, totals], id string, r rec) Status {
	s, h := tb.Acquire(id)
	defer tb.Release(s)
	e, _, st := tb.End(s, h, id)
	if st != OK {
		return st
	}
	start := e.Rec.start
	e.Rec = r
	e.Rec.start = start
	s.Totals.ended++
	tb.Ended(s)
	return OK
}

func TestStatuses(t *testing.T) {
	tb := NewTable[rec, totals](10, 2, recFuncs, nil)
	if st := tb.Start("a", &rec{start: 1}); st != OK {
		t.Fatalf("start a: got %v, want OK", st)
	}
	if st := tb.Start("a", &rec{}); st != AlreadyStarted {
		t.Errorf("start a again: got %v, want AlreadyStarted", st)
	}
	if st := tb.Start("b", &rec{}); st != OK {
		t.Fatalf("start b: got %v, want OK", st)
	}
	if st := tb.Start("c", &rec{}); st != TooManyPending {
		t.Errorf("start c over the limit: got %v, want TooManyPending", st)
	}
	// At the limit, a task id that is pending is already started, not one
	// too many.
	if st := tb.Start("b", &rec{}); st != AlreadyStarted {
		t.Errorf("start b again at the limit: got %v, want AlreadyStarted", st)
	}
	if st := tb.Retry("a"); st != OK {
		t.Errorf("retry a: got %v, want OK", st)
	}
	if st := end(tb, "a", rec{dur: 5}); st != OK {
		t.Fatalf("end a: got %v, want OK", st)
	}
	for _, id := range []string{"a", "zz"} {
		if st := end(tb, id, rec{}); st != NotPending {
			t.Errorf("end %s: got %v, want NotPending", id, st)
		}
		if st := tb.Retry(id); st != NotPending {
			t.Errorf("retry %s: got %v, want NotPending", id, st)
		}
	}
	if st := tb.Why("a"); st != AlreadyEnded {
		t.Errorf("why a: got %v, want AlreadyEnded", st)
	}
	if st := tb.Why("zz"); st != NotStarted {
		t.Errorf("why zz: got %v, want NotStarted", st)
	}
	// a ended, so it may start again, and its limit slot is free.
	if st := tb.Start("a", &rec{start: 9}); st != OK {
		t.Errorf("start a after its end: got %v, want OK", st)
	}
	tb.Locked(func(v *View[rec, totals]) {
		if v.NumPending() != 2 || v.Retained() != 1 || v.Retries() != 1 {
			t.Errorf("got pending %d, retained %d, retries %d; want 2, 1, 1", v.NumPending(), v.Retained(), v.Retries())
		}
		e, ok := v.Latest("a", func(r *rec, retries int32) { r.dur = time.Duration(100 + retries) })
		if !ok || e.Rec.start != 9 || e.Rec.dur != 100 {
			t.Errorf("latest a: got %+v, %v; want the pending run, started at 9, with 0 retries", e, ok)
		}
	})
}

// model is what a table must hold: every finished record in the order the
// shards move them to the ring, and the pending ones.
type model struct {
	capacity int
	ring     []Entry[rec]     // records in ring order; the last capacity are retained
	stage    [][]Entry[rec]   // per shard, not moved yet
	pending  map[string]rec   // by task id
	retries  map[string]int32 // of pending runs
	started  map[string]bool  // ever started
}

func (m *model) move(s int) {
	m.ring = append(m.ring, m.stage[s]...)
	m.stage[s] = m.stage[s][:0]
}

func (m *model) retained() []Entry[rec] {
	return m.ring[max(0, len(m.ring)-m.capacity):]
}

// TestTableMatchesModel drives tables of one and of several shards with
// random starts, retries and ends, and checks every
// query against a model after each batch of operations: retained and
// evicted counts, the latest run of task ids (pending, retained, evicted
// or never seen), failed and slow records, and the snapshot order.
func TestTableMatchesModel(t *testing.T) {
	for _, tc := range []struct {
		capacity, shards int
	}{{1, 1}, {7, 1}, {1500, 1}, {7, 2}, {300, 4}, {2500, 2}} {
		t.Run(fmt.Sprintf("capacity %d, %d shards", tc.capacity, tc.shards), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tc.capacity), uint64(tc.shards)))
			tb := NewTable[rec, totals](tc.capacity, 1<<20, recFuncs, nil)
			// Give the table the shards of the test case.
			tb.shards, tb.mask = make([]Shard[rec, totals], tc.shards), uint64(tc.shards-1)
			m := &model{capacity: tc.capacity, stage: make([][]Entry[rec], tc.shards),
				pending: map[string]rec{}, retries: map[string]int32{}, started: map[string]bool{}}
			now := time.Duration(0)
			ids := 3 * tc.capacity / 2
			for round := range 60 {
				for range 200 {
					now++
					id := fmt.Sprint("t", rng.IntN(ids+2))
					switch op := rng.IntN(5); {
					case op < 2:
						r := rec{start: now}
						st := tb.Start(id, &r)
						if _, ok := m.pending[id]; ok != (st == AlreadyStarted) {
							t.Fatalf("start %s: got %v, pending in the model: %v", id, st, ok)
						}
						if st == OK {
							m.pending[id], m.retries[id], m.started[id] = r, 0, true
						}
					case op == 2:
						st := tb.Retry(id)
						if _, ok := m.pending[id]; ok != (st == OK) {
							t.Fatalf("retry %s: got %v, pending in the model: %v", id, st, ok)
						}
						if st == OK {
							m.retries[id]++
						}
					default:
						sh := int(hashString(tb.seed, id) & tb.mask)
						r := rec{dur: now - m.pending[id].start, failed: rng.IntN(4) == 0}
						st := end(tb, id, r)
						p, ok := m.pending[id]
						if ok != (st == OK) {
							t.Fatalf("end %s: got %v, pending in the model: %v", id, st, ok)
						}
						if st == OK {
							r.start = p.start
							m.stage[sh] = append(m.stage[sh], Entry[rec]{TaskID: id, Rec: r})
							if len(m.stage[sh]) == stageSize {
								m.move(sh)
							}
							delete(m.pending, id)
						}
					}
				}
				for s := range m.stage {
					m.move(s) // what Locked does
				}
				check(t, round, tb, m, rng)
			}
		})
	}
}

func check(t *testing.T, round int, tb *Table[rec, totals], m *model, rng *rand.Rand) {
	t.Helper()
	kept := m.retained()
	byEnd := slices.Clone(kept)
	slices.SortStableFunc(byEnd, func(a, b Entry[rec]) int { return int(a.Rec.start + a.Rec.dur - b.Rec.start - b.Rec.dur) })
	ids := func(es []Entry[rec]) []string {
		out := []string{}
		for _, e := range es {
			out = append(out, e.TaskID)
		}
		return out
	}
	tb.Locked(func(v *View[rec, totals]) {
		if v.Retained() != len(kept) || v.Evicted() != uint64(len(m.ring)-len(kept)) || v.NumPending() != len(m.pending) {
			t.Fatalf("round %d: got retained %d, evicted %d, pending %d; want %d, %d, %d", round,
				v.Retained(), v.Evicted(), v.NumPending(), len(kept), len(m.ring)-len(kept), len(m.pending))
		}
		// Failed and slow records, oldest end first.
		var wantFailed, wantSlow []Entry[rec]
		threshold := time.Duration(rng.IntN(400))
		for _, e := range byEnd {
			if e.Rec.failed {
				wantFailed = append(wantFailed, e)
			}
			if e.Rec.dur > threshold {
				wantSlow = append(wantSlow, e)
			}
		}
		id := func(dst *string, e Entry[rec]) { *dst = e.TaskID }
		if got := Failed(v, id); !slices.Equal(got, ids(wantFailed)) && len(got)+len(wantFailed) > 0 {
			t.Fatalf("round %d: failed: got %v, want %v", round, got, ids(wantFailed))
		}
		if got := Slower(v, threshold, id); !slices.Equal(got, ids(wantSlow)) && len(got)+len(wantSlow) > 0 {
			t.Fatalf("round %d: slower than %v: got %v, want %v", round, threshold, got, ids(wantSlow))
		}
		if got := Finished(v, nil, id); !slices.Equal(got, ids(byEnd)) && len(got)+len(byEnd) > 0 {
			t.Fatalf("round %d: finished: got %v, want %v", round, got, ids(byEnd))
		}
		// The snapshot: finished by end, then pending by start.
		snap := v.Snapshot(nil)
		if len(snap) != len(byEnd)+len(m.pending) {
			t.Fatalf("round %d: snapshot has %d records, want %d", round, len(snap), len(byEnd)+len(m.pending))
		}
		for i := len(byEnd) + 1; i < len(snap); i++ {
			if snap[i].Rec.start < snap[i-1].Rec.start {
				t.Fatalf("round %d: pending records not by start at %d", round, i)
			}
		}
		// The latest run of every task id: the newest in the ring, as
		// its runs reach the ring in the order they ended.
		latest := map[string]Entry[rec]{}
		for _, e := range kept {
			latest[e.TaskID] = e
		}
		for tid := range m.started {
			e, ok := v.Latest(tid, nil)
			if p, pend := m.pending[tid]; pend {
				if !ok || e.Rec.start != p.start {
					t.Fatalf("round %d: latest %s: got %+v, %v; want pending %+v", round, tid, e, ok, p)
				}
				continue
			}
			want, wok := latest[tid]
			if ok != wok || (ok && e.Rec != want.Rec) {
				t.Fatalf("round %d: latest %s: got %+v, %v; want %+v, %v", round, tid, e, ok, want, wok)
			}
		}
		if _, ok := v.Latest("never", nil); ok {
			t.Fatalf("round %d: found a run of a task id never started", round)
		}
	})
}

func TestOfferAndSwapOut(t *testing.T) {
	tb := NewTable[rec, totals](1<<14, 16, recFuncs, nil)
	tb.AddOut(600)
	n := tb.NumShards()
	limit := (600 + n - 1) / n
	s := &tb.shards[0]
	var halves []int
	for i := range limit + 1 {
		ok, half := s.Offer(0, "t", &rec{start: time.Duration(i)})
		if ok != (i < limit) {
			t.Fatalf("offer %d: got ok %v with a limit of %d", i, ok, limit)
		}
		if half {
			halves = append(halves, i+1)
		}
	}
	want := []int{}
	for k := (limit + 1) / 2; k <= limit; k += pressureStep {
		want = append(want, k)
	}
	if !slices.Equal(halves, want) {
		t.Errorf("pressure reported at %v records, want %v", halves, want)
	}
	if q := tb.Queued(0); q != limit {
		t.Errorf("queued: got %d, want %d", q, limit)
	}
	spare := make([][]Entry[rec], n)
	if got := tb.SwapOut(0, spare); got != limit || len(spare[0]) != limit || spare[0][limit-1].Rec.start != time.Duration(limit-1) {
		t.Errorf("swap out: got %d records, want %d in offer order", got, limit)
	}
	if q := tb.Queued(0); q != 0 {
		t.Errorf("queued after the swap: got %d, want 0", q)
	}
}

// TestLatestIndexRebuilds checks the index of latest runs when more than
// the capacity arrived since the last query, and when stale entries pile
// up: queries between ends and none at all must give the same answers.
func TestLatestIndexRebuilds(t *testing.T) {
	tb := NewTable[rec, totals](100, 1000, recFuncs, nil)
	for i := range 10_000 {
		id := fmt.Sprint("t", i)
		tb.Start(id, &rec{start: time.Duration(i)})
		end(tb, id, rec{dur: 1})
		if i%37 == 0 || i > 9_950 {
			tb.Locked(func(v *View[rec, totals]) {
				if _, ok := v.Latest(id, nil); !ok {
					t.Fatalf("the newest run %s is not found", id)
				}
				if _, ok := v.Latest(fmt.Sprint("t", i-100), nil); ok && i >= 100 {
					t.Fatalf("evicted run t%d is still found", i-100)
				}
			})
		}
	}
	tb.Locked(func(v *View[rec, totals]) {
		if n := v.t.ring.latest.n; n > 2*100+stageSize {
			t.Errorf("the index holds %d entries for a capacity of 100", n)
		}
	})
}

// TestConcurrentRecording records from several goroutines into tables of
// one shard (whose lock guards the ring) and of several, through
// Acquire as the telemetry package does, with queries running beside;
// under the race detector it checks the locking, and after it the counts.
func TestConcurrentRecording(t *testing.T) {
	for _, capacity := range []int{100, 1 << 15} {
		t.Run(fmt.Sprint("capacity ", capacity), func(t *testing.T) {
			tb := NewTable[rec, totals](capacity, 1<<20, recFuncs, nil)
			const workers, per = 4, 3000
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := range 50 {
					tb.Locked(func(v *View[rec, totals]) {
						Failed(v, func(dst *string, e Entry[rec]) { *dst = e.TaskID })
						v.Latest(fmt.Sprint("w0-", i%per), nil)
					})
				}
			}()
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range per {
						id := fmt.Sprint("w", w, "-", i)
						if st := tb.Start(id, &rec{start: time.Duration(i)}); st != OK {
							t.Errorf("start %s: %v", id, st)
							return
						}
						tb.Retry(id)
						s, h := tb.Acquire(id)
						e, retries, st := tb.End(s, h, id)
						if st != OK || retries != 1 {
							t.Errorf("end %s: %v, %d retries", id, st, retries)
						} else {
							e.Rec.dur, e.Rec.failed = 1, i%3 == 0
							s.Totals.ended++
							tb.Ended(s)
						}
						tb.Release(s)
					}
				})
			}
			wg.Wait()
			<-done
			tb.Locked(func(v *View[rec, totals]) {
				ended := 0
				v.EachTotals(func(tt *totals) { ended += tt.ended })
				if ended != workers*per || v.Retained() != min(capacity, workers*per) || v.NumPending() != 0 || v.Retries() != workers*per {
					t.Errorf("got ended %d, retained %d, pending %d, retries %d", ended, v.Retained(), v.NumPending(), v.Retries())
				}
			})
		})
	}
}
