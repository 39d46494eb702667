package seriescache

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/eventpipeline/eventpipeline/internal/label"
	"github.com/eventpipeline/eventpipeline/internal/metricdef"
)

type series struct{ label string }

func TestCacheBindsOnceAndOverflows(t *testing.T) {
	var full []string
	binds := map[string]int{}
	var mu sync.Mutex
	c := New(3, func(v string) *series {
		mu.Lock()
		defer mu.Unlock()
		binds[v]++
		return &series{label: v}
	}, func(v string) { full = append(full, v) })

	a := c.Get("a")
	if c.Get("a") != a || a.label != "a" {
		t.Fatalf("Get(a) twice gave different series or label %q", a.label)
	}
	bad := c.Get("b\xff")
	if bad.label != metricdef.LabelValue("b\xff") {
		t.Errorf("Get(b\\xff): got label %q, want %q", bad.label, metricdef.LabelValue("b\xff"))
	}
	if c.Get("b\xff") != bad || c.Get(bad.label) != bad {
		t.Error("the same label value gave different series")
	}
	real := c.Get(metricdef.Overflow) // a real event named _overflow
	if real.label == metricdef.Overflow {
		t.Errorf("a name %q got the reserved overflow label", metricdef.Overflow)
	}
	o := c.Get("c")
	if o.label != metricdef.Overflow || c.Get("d") != o {
		t.Errorf("past the limit: got label %q, want %q shared by every new name", o.label, metricdef.Overflow)
	}
	if c.Get(metricdef.Overflow) != real || c.Get("a") != a {
		t.Error("a known name lost its series after the overflow")
	}
	if fmt.Sprint(full) != "[c]" {
		t.Errorf("onFull called with %v, want [c] once", full)
	}
	var labels []string
	for _, s := range c.All() {
		labels = append(labels, s.label)
	}
	want := []string{"a", metricdef.LabelValue("b\xff"), metricdef.LabelValue(metricdef.Overflow), metricdef.Overflow}
	if fmt.Sprint(labels) != fmt.Sprint(want) {
		t.Errorf("All: got %q, want %q", labels, want)
	}
	for v, n := range binds {
		if n != 1 {
			t.Errorf("%q bound %d times, want once", v, n)
		}
	}
}

// TestCacheKeysByLabelValue checks that series are keyed by the label
// value as sent: a long name is bound under its bounded value, and the key
// kept is that value, not the name.
func TestCacheKeysByLabelValue(t *testing.T) {
	c := New(10, func(v string) *series { return &series{label: v} }, nil)
	long := strings.Repeat("n", 256<<10)
	s := c.Get(long)
	if len(s.label) > label.MaxLen {
		t.Errorf("got a label of %d bytes, want at most %d", len(s.label), label.MaxLen)
	}
	if c.Get(long) != s || c.Get(s.label) != s {
		t.Error("the long name and its label value gave different series")
	}
	for k := range *c.m.Load() {
		if len(k) > label.MaxLen {
			t.Errorf("the cache keeps a key of %d bytes", len(k))
		}
	}
	if c.Get(long+"x") == s {
		t.Error("two long names that differ past the limit share a series")
	}
}

func TestCacheConcurrentSafe(t *testing.T) {
	c := New(50, func(v string) *series { return &series{label: v} }, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				name := fmt.Sprint("n", (i*7+g)%100)
				if s := c.Get(name); s.label != name && s.label != metricdef.Overflow {
					t.Errorf("Get(%s) gave the series of %s", name, s.label)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := len(c.All()); n != 51 {
		t.Errorf("got %d series, want 50 and the overflow", n)
	}
}

func TestGetDoesNotAllocate(t *testing.T) {
	c := New(10, func(v string) *series { return &series{label: v} }, nil)
	c.Get("known")
	c.Get("bad\xff")
	for _, name := range []string{"known", metricdef.LabelValue("bad\xff")} {
		if n := testing.AllocsPerRun(100, func() { c.Get(name) }); n != 0 {
			t.Errorf("Get(%q): %v allocations, want 0", name, n)
		}
	}
}

// TestCacheFindsEveryValue checks that the values found by comparison
// (the first firstLen) and those found in the map give the series they
// were bound to, each bound once, with names that share lengths and
// prefixes.
func TestCacheFindsEveryValue(t *testing.T) {
	binds := map[string]int{}
	c := New(3*firstLen, func(v string) *series { binds[v]++; return &series{label: v} }, nil)
	names := make([]string, 2*firstLen+1)
	for i := range names {
		names[i] = fmt.Sprintf("event_%02d", i)
	}
	got := map[string]*series{}
	for _, n := range names {
		got[n] = c.Get(n)
	}
	for round := range 2 {
		for _, n := range names {
			// A copy of the name, so that its bytes are not those bound.
			s := c.Get(strings.Clone(n))
			if s != got[n] || s.label != n {
				t.Errorf("round %d: Get(%q) gave the series labelled %q, not the one bound first", round, n, s.label)
			}
		}
	}
	for _, n := range names {
		if binds[n] != 1 {
			t.Errorf("%q bound %d times, want once", n, binds[n])
		}
	}
	if len(c.All()) != len(names) {
		t.Errorf("All: %d series, want %d", len(c.All()), len(names))
	}
}
