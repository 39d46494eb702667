// Package seriescache maps the label values of a metric (event names,
// network operations) to the series bound to them, for the publishers that
// aggregate in process (Prometheus, Grafana Cloud). Lookups take no lock
// and allocate nothing; the number of label values is bounded, and further
// ones share an overflow series. It is not part of the module's API.
package seriescache

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Overflow is the label value under which the records of names beyond a
// Cache's limit are counted.
const Overflow = "_overflow"

// A Cache maps a label value to its series.
//
// Lookups read an immutable map through an atomic pointer: no lock, no
// contention between goroutines. A miss takes mu, copies the map with the
// new entry and publishes the copy. Copies cost O(n) each, so O(n²) in all,
// but n is bounded by the limit and names are added once.
type Cache[S any] struct {
	m        atomic.Pointer[map[string]*S]
	all      atomic.Pointer[[]*S] // every series, overflow included, in order of creation
	overflow atomic.Pointer[S]
	mu       sync.Mutex
	limit    int
	bind     func(labelValue string) *S
	onFull   func(name string)
}

// New returns a Cache of at most limit names, plus the overflow series.
// bind makes the series of a label value (valid UTF-8, or [Overflow]);
// onFull, if not nil, is called once, with the first name that overflows.
func New[S any](limit int, bind func(labelValue string) *S, onFull func(name string)) *Cache[S] {
	c := &Cache[S]{limit: limit, bind: bind, onFull: onFull}
	c.m.Store(&map[string]*S{})
	c.all.Store(&[]*S{})
	return c
}

// Get returns the series of name, binding them on first use, or the
// overflow series once the Cache is full.
func (c *Cache[S]) Get(name string) *S {
	if s, ok := (*c.m.Load())[name]; ok {
		return s
	}
	if s := c.overflow.Load(); s != nil {
		return s // full: a name not in the map cannot be added any more
	}
	return c.add(name)
}

func (c *Cache[S]) add(name string) *S {
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
	if len(old) >= c.limit {
		s = c.bind(Overflow)
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
		s = c.bind(LabelValue(name))
		m[strings.Clone(name)] = s
		c.m.Store(&m)
	}
	all := append(slices.Clip(*c.all.Load()), s)
	c.all.Store(&all)
	return s
}

// All returns every series bound so far, overflow included, in order of
// creation. The slice must not be changed.
func (c *Cache[S]) All() []*S { return *c.all.Load() }

// LabelValue returns s as a valid label value, in memory of its own:
// invalid UTF-8 sequences are replaced by U+FFFD, which Prometheus would
// otherwise reject.
func LabelValue(s string) string {
	if utf8.ValidString(s) {
		return strings.Clone(s)
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
