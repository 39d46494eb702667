package metricpush

import (
	"math"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// histogram is a classic histogram updated with atomics only: one counter
// per bucket (not cumulative; the last one is +Inf) and the sum as float
// bits. The count is the sum of the buckets, so a snapshot is always
// consistent with its buckets; the sum may lag by an observation that is
// in progress, which is harmless for a cumulative series.
type histogram struct {
	bounds  []float64 // shared, read only
	counts  []atomic.Uint64
	sumBits atomic.Uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// observe adds v (in seconds). It neither locks nor allocates.
func (h *histogram) observe(v float64) {
	// The first bound >= v is the bucket "le" v belongs to; NaN and values
	// above every bound go to +Inf.
	h.counts[sort.SearchFloat64s(h.bounds, v)].Add(1)
	for {
		old := h.sumBits.Load()
		sum := math.Float64bits(math.Float64frombits(old) + v)
		if h.sumBits.CompareAndSwap(old, sum) {
			return
		}
	}
}

// A HistogramPoint is a snapshot of a histogram.
type HistogramPoint struct {
	Counts []uint64 // per bucket, not cumulative; len(bounds)+1, +Inf last
	Count  uint64   // the sum of Counts
	Sum    float64  // the sum of the observations, in seconds
}

// read copies h into pt, reusing pt's slice.
func (h *histogram) read(pt *HistogramPoint) {
	pt.Counts = slices.Grow(pt.Counts[:0], len(h.counts))[:len(h.counts)]
	pt.Count = 0
	for i := range h.counts {
		n := h.counts[i].Load()
		pt.Counts[i] = n
		pt.Count += n
	}
	pt.Sum = math.Float64frombits(h.sumBits.Load())
}

// eventSeries are the series of one event name.
type eventSeries struct {
	name              string // label value, valid UTF-8
	completed, failed *histogram
	retries           atomic.Uint64
	// wait is bound on the first run with an enqueue time, so that event
	// names that never wait in a queue have no event_wait_seconds series.
	wait atomic.Pointer[histogram]
}

// waitHistogram returns the event_wait_seconds histogram of s, binding it
// with bounds (shared, read only) on the first call.
func (s *eventSeries) waitHistogram(bounds []float64) *histogram {
	if h := s.wait.Load(); h != nil {
		return h
	}
	s.wait.CompareAndSwap(nil, newHistogram(bounds))
	return s.wait.Load()
}

// opSeries are the series of one network operation.
type opSeries struct {
	name           string // label value, valid UTF-8
	latency        *histogram
	sent, received atomic.Uint64
}

// A Snapshot is what one push sends: the state of every series at one
// time. Values are cumulative since the Pusher was created.
type Snapshot struct {
	Time   time.Time // when it was taken
	Events []EventPoint
	Ops    []OpPoint
	// Delivery are the delivery counters of the Recorder the Pusher is
	// attached to, names bounded as label values; nil if not attached.
	Delivery []telemetry.PublisherStats
}

// DeliverySeries is the number of self-metric series of one publisher:
// published, failed attempts, dropped (three reasons), panics, queue length
// and capacity.
const DeliverySeries = 8

// An EventPoint holds the series of one event name.
type EventPoint struct {
	Name              string // the event_name label value
	Completed, Failed HistogramPoint
	Retries           uint64
	// Waited reports whether a run of the name had an enqueue time; Wait
	// is then its event_wait_seconds histogram, with Options.WaitBuckets.
	Waited bool
	Wait   HistogramPoint
}

// An OpPoint holds the series of one network operation.
type OpPoint struct {
	Name           string // the operation label value
	Latency        HistogramPoint
	Sent, Received uint64
}

// Series returns the number of series s makes in Prometheus terms, with
// eventBuckets, latencyBuckets and waitBuckets bounds (+Inf not included).
func (s *Snapshot) Series(eventBuckets, latencyBuckets, waitBuckets int) int {
	n := len(s.Events)*(2*(eventBuckets+1+2)+1) + len(s.Ops)*(latencyBuckets+1+2+2) + len(s.Delivery)*DeliverySeries
	for i := range s.Events {
		if s.Events[i].Waited {
			n += waitBuckets + 1 + 2
		}
	}
	return n
}
