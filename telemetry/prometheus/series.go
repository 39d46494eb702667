package prometheus

import (
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// seriesCache maps a label value (an event name or an operation) to the
// series bound to it, so that the publish path finds them without hashing
// label values in client_golang and without allocating.
//
// Lookups read an immutable map through an atomic pointer: no lock, no
// contention between goroutines. A miss takes mu, copies the map with the
// new entry and publishes the copy. Copies cost O(n) each, so O(n²) in all,
// but n is bounded by max and names are added once.
//
// Once the map holds max names, further names share the overflow entry
// (made on first need) and are not added.
type seriesCache[S any] struct {
	m        atomic.Pointer[map[string]*S]
	mu       sync.Mutex
	max      int
	bind     func(labelValue string) *S // binds the series of a label value
	overflow atomic.Pointer[S]
	onFull   func(name string) // called once, on the first overflow
}

func newSeriesCache[S any](limit int, bind func(string) *S, onFull func(string)) *seriesCache[S] {
	c := &seriesCache[S]{max: limit, bind: bind, onFull: onFull}
	c.m.Store(&map[string]*S{})
	return c
}

// get returns the series of name, binding them on first use.
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
	if len(old) >= c.max {
		s := c.bind(OverflowLabelValue)
		c.overflow.Store(s)
		if c.onFull != nil {
			c.onFull(name)
		}
		return s
	}
	m := make(map[string]*S, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	// Copy the key: the caller's string may point into a buffer it reuses.
	s := c.bind(labelValue(name))
	m[strings.Clone(name)] = s
	c.m.Store(&m)
	return s
}

// labelValue returns s as a valid label value: invalid UTF-8 sequences are
// replaced by U+FFFD, which client_golang would otherwise reject.
func labelValue(s string) string {
	if utf8.ValidString(s) {
		return strings.Clone(s)
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// validUTF8 reports whether s is valid UTF-8.
func validUTF8(s string) bool { return utf8.ValidString(s) }
