// Package seriescache maps the label values of a metric (event names,
// network operations) to the series bound to them, for the publishers that
// aggregate in process (Prometheus, Grafana Cloud). Series are keyed by
// the label value as it will be sent ([metricdef.LabelValue] of the name),
// so two names that are sent alike share one series, and the memory a key
// takes is bounded. Lookups take no lock and allocate nothing for a plain
// name; the number of label values is bounded, and further ones share an
// overflow series labelled [metricdef.Overflow]. It is not part of the
// module's API.
package seriescache

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
)

// A Cache maps a label value to its series.
//
// Lookups read immutable copies through atomic pointers: no lock, no
// contention between goroutines. The first few label values are found by
// comparing them in turn, which costs less than hashing the name as a map
// does, and most pipelines have no more event names and operations than
// that; the others are found in a map. A miss takes mu, copies the map with
// the new entry and publishes the copy. Copies cost O(n) each, so O(n²) in
// all, but n is bounded by the limit and names are added once.
type Cache[S any] struct {
	// first holds the first firstLen label values and their series, in
	// order of creation; m holds every label value. Every key is valid
	// UTF-8 of at most label.MaxLen bytes and never metricdef.Overflow, so
	// a name that is found as a key is its own label value.
	first    atomic.Pointer[[]entry[S]]
	m        atomic.Pointer[map[string]*S]
	all      atomic.Pointer[[]*S] // every series, overflow included, in order of creation
	overflow atomic.Pointer[S]
	mu       sync.Mutex
	limit    int
	bind     func(labelValue string) *S
	onFull   func(labelValue string)
}

// firstLen is how many label values a Cache finds without its map: up to
// about this many, comparing names in turn costs less than hashing one.
const firstLen = 8

// An entry is a label value and its series.
type entry[S any] struct {
	value string
	s     *S
}

// New returns a Cache of at most limit label values, plus the overflow
// series. bind makes the series of a label value (the result of
// [metricdef.LabelValue], or [metricdef.Overflow]); onFull, if not nil, is
// called once, with the label value of the first name that overflows.
func New[S any](limit int, bind func(labelValue string) *S, onFull func(labelValue string)) *Cache[S] {
	c := &Cache[S]{limit: limit, bind: bind, onFull: onFull}
	c.first.Store(&[]entry[S]{})
	c.m.Store(&map[string]*S{})
	c.all.Store(&[]*S{})
	return c
}

// Get returns the series of name, binding them on first use of its label
// value, or the overflow series once the Cache is full.
func (c *Cache[S]) Get(name string) *S {
	first := *c.first.Load()
	for i := range first {
		if first[i].value == name {
			return first[i].s // name is its own label value
		}
	}
	if len(first) == firstLen { // there may be more
		if s, ok := (*c.m.Load())[name]; ok {
			return s
		}
	}
	v := metricdef.LabelValue(name)
	if v != name {
		if s, ok := (*c.m.Load())[v]; ok {
			return s
		}
	}
	if s := c.overflow.Load(); s != nil {
		return s // full: a value not in the map cannot be added any more
	}
	return c.add(v)
}

func (c *Cache[S]) add(v string) *S {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.m.Load()
	if s, ok := old[v]; ok {
		return s
	}
	if s := c.overflow.Load(); s != nil {
		return s
	}
	var s *S
	if len(old) >= c.limit {
		s = c.bind(metricdef.Overflow)
		c.overflow.Store(s)
		if c.onFull != nil {
			c.onFull(v)
		}
	} else {
		// Copy the key: the caller's string may point into a buffer it
		// reuses, and v is the caller's string when it did not change.
		v = strings.Clone(v)
		m := maps.Clone(old)
		if m == nil {
			m = map[string]*S{}
		}
		s = c.bind(v)
		m[v] = s
		if first := *c.first.Load(); len(first) < firstLen {
			first = append(slices.Clip(first), entry[S]{v, s})
			c.first.Store(&first)
		}
		c.m.Store(&m)
	}
	all := append(slices.Clip(*c.all.Load()), s)
	c.all.Store(&all)
	return s
}

// All returns every series bound so far, overflow included, in order of
// creation. The slice must not be changed.
func (c *Cache[S]) All() []*S { return *c.all.Load() }
