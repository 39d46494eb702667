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
// Lookups read an immutable map through an atomic pointer: no lock, no
// contention between goroutines. A miss takes mu, copies the map with the
// new entry and publishes the copy. Copies cost O(n) each, so O(n²) in all,
// but n is bounded by the limit and names are added once.
type Cache[S any] struct {
	// m is keyed by label value. Every key is valid UTF-8 of at most
	// label.MaxLen bytes and never metricdef.Overflow, so a name that is
	// found as a key is its own label value.
	m        atomic.Pointer[map[string]*S]
	all      atomic.Pointer[[]*S] // every series, overflow included, in order of creation
	overflow atomic.Pointer[S]
	mu       sync.Mutex
	limit    int
	bind     func(labelValue string) *S
	onFull   func(labelValue string)
}

// New returns a Cache of at most limit label values, plus the overflow
// series. bind makes the series of a label value (the result of
// [metricdef.LabelValue], or [metricdef.Overflow]); onFull, if not nil, is
// called once, with the label value of the first name that overflows.
func New[S any](limit int, bind func(labelValue string) *S, onFull func(labelValue string)) *Cache[S] {
	c := &Cache[S]{limit: limit, bind: bind, onFull: onFull}
	c.m.Store(&map[string]*S{})
	c.all.Store(&[]*S{})
	return c
}

// Get returns the series of name, binding them on first use of its label
// value, or the overflow series once the Cache is full.
func (c *Cache[S]) Get(name string) *S {
	m := *c.m.Load()
	if s, ok := m[name]; ok {
		return s // name is its own label value
	}
	v := metricdef.LabelValue(name)
	if s, ok := m[v]; ok {
		return s
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
		c.m.Store(&m)
	}
	all := append(slices.Clip(*c.all.Load()), s)
	c.all.Store(&all)
	return s
}

// All returns every series bound so far, overflow included, in order of
// creation. The slice must not be changed.
func (c *Cache[S]) All() []*S { return *c.all.Load() }
