package grafanacloud

import (
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
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

// histogramPoint is a snapshot of a histogram.
type histogramPoint struct {
	counts []uint64 // per bucket, not cumulative; len(bounds)+1
	count  uint64
	sum    float64
}

// read copies h into pt, reusing pt's slice.
func (h *histogram) read(pt *histogramPoint) {
	pt.counts = slices.Grow(pt.counts[:0], len(h.counts))[:len(h.counts)]
	pt.count = 0
	for i := range h.counts {
		n := h.counts[i].Load()
		pt.counts[i] = n
		pt.count += n
	}
	pt.sum = math.Float64frombits(h.sumBits.Load())
}

// eventSeries are the series of one event name.
type eventSeries struct {
	name              string // label value, valid UTF-8
	completed, failed *histogram
	retries           atomic.Uint64
}

// opSeries are the series of one network operation.
type opSeries struct {
	name           string // label value, valid UTF-8
	latency        *histogram
	sent, received atomic.Uint64
}

// seriesCache maps a label value (an event name or an operation) to its
// series, so that the publish path finds them without allocating.
//
// Lookups read an immutable map through an atomic pointer: no lock. A miss
// takes mu, copies the map with the new entry and publishes the copy; names
// are added once and their number is bounded by max, so the copies cost
// little in all. Once the map holds max names, further names share the
// overflow entry. all lists every entry, overflow included, in order of
// creation, for snapshots.
type seriesCache[S any] struct {
	m        atomic.Pointer[map[string]*S]
	all      atomic.Pointer[[]*S]
	overflow atomic.Pointer[S]
	mu       sync.Mutex
	max      int
	bind     func(labelValue string) *S
	onFull   func(name string) // called once, on the first overflow
}

func newSeriesCache[S any](limit int, bind func(string) *S, onFull func(string)) *seriesCache[S] {
	c := &seriesCache[S]{max: limit, bind: bind, onFull: onFull}
	c.m.Store(&map[string]*S{})
	c.all.Store(&[]*S{})
	return c
}

// get returns the series of name, making them on first use.
func (c *seriesCache[S]) get(name string) *S {
	if s, ok := (*c.m.Load())[name]; ok {
		return s
	}
	if s := c.overflow.Load(); s != nil {
		return s // full: a name not in the map cannot be added any more
	}
	return c.add(name)
}

func (c *seriesCache[S]) add(name string) *S {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.m.Load()
	if s, ok := old[name]; ok {
		return s
	}
	if s := c.overflow.Load(); s != nil {
		return s
	}
	var s *S
	if len(old) >= c.max {
		s = c.bind(OverflowLabelValue)
		c.overflow.Store(s)
		if c.onFull != nil {
			c.onFull(name)
		}
	} else {
		m := make(map[string]*S, len(old)+1)
		for k, v := range old {
			m[k] = v
		}
		// Copy the key: the caller's string may point into a buffer it reuses.
		s = c.bind(labelValue(name))
		m[strings.Clone(name)] = s
		c.m.Store(&m)
	}
	all := append(slices.Clip(*c.all.Load()), s)
	c.all.Store(&all)
	return s
}

// list returns every series made so far. The slice must not be changed.
func (c *seriesCache[S]) list() []*S { return *c.all.Load() }

// labelValue returns s as a valid label value: invalid UTF-8 sequences are
// replaced by U+FFFD, which Prometheus would otherwise reject.
func labelValue(s string) string {
	if utf8.ValidString(s) {
		return strings.Clone(s)
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// snapshot is what one push sends: the state of every series at one time.
type snapshot struct {
	time   time.Time // when it was taken
	events []eventPoint
	ops    []opPoint
}

type eventPoint struct {
	name              string
	completed, failed histogramPoint
	retries           uint64
}

type opPoint struct {
	name           string
	latency        histogramPoint
	sent, received uint64
}

// series returns the number of series s makes in Prometheus terms.
func (s *snapshot) series(eventBuckets, latencyBuckets int) int {
	return len(s.events)*(2*(eventBuckets+1+2)+1) + len(s.ops)*(latencyBuckets+1+2+2)
}
