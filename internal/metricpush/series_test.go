package metricpush

import (
	"math"
	"slices"
	"testing"
)

func TestHistogram(t *testing.T) {
	h := newHistogram([]float64{1, 2, 5})
	for _, v := range []float64{0.5, 1, 1.5, 2, 4, 5, 6, math.Inf(1)} {
		h.observe(v)
	}
	var pt HistogramPoint
	h.read(&pt)
	if got, want := pt.Counts, []uint64{2, 2, 2, 2}; !slices.Equal(got, want) {
		t.Errorf("got bucket counts %v, want %v (le semantics: v <= bound)", got, want)
	}
	if pt.Count != 8 || !math.IsInf(pt.Sum, 1) {
		t.Errorf("got count %d, sum %v, want 8, +Inf", pt.Count, pt.Sum)
	}
}

func TestSnapshotSeries(t *testing.T) {
	s := Snapshot{Events: make([]EventPoint, 2), Ops: make([]OpPoint, 1)}
	s.Events[1].Waited = true
	// An event name: 2 statuses × (3 bounds + +Inf + _sum + _count), and
	// its retries; the one that waited: 4 wait bounds + +Inf + _sum +
	// _count more; an operation: 2 bounds + +Inf + _sum + _count, and 2
	// directions of bytes.
	if got, want := s.Series(3, 2, 4), 2*(2*6+1)+7+(5+2); got != want {
		t.Errorf("got %d series, want %d", got, want)
	}
}
