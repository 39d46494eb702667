package seriescache

import (
	"fmt"
	"sync"
	"testing"
)

type series struct{ label string }

func TestCacheBindsOnceAndOverflows(t *testing.T) {
	var full []string
	binds := map[string]int{}
	var mu sync.Mutex
	c := New(2, func(v string) *series {
		mu.Lock()
		defer mu.Unlock()
		binds[v]++
		return &series{label: v}
	}, func(name string) { full = append(full, name) })

	a := c.Get("a")
	if c.Get("a") != a || a.label != "a" {
		t.Fatalf("Get(a) twice gave different series or label %q", a.label)
	}
	c.Get("b\xff") // invalid UTF-8 becomes U+FFFD
	o := c.Get("c")
	if o.label != Overflow || c.Get("d") != o {
		t.Errorf("past the limit: got label %q, want %q shared by every new name", o.label, Overflow)
	}
	if c.Get("a") != a {
		t.Error("a known name lost its series after the overflow")
	}
	if fmt.Sprint(full) != "[c]" {
		t.Errorf("onFull called with %v, want [c] once", full)
	}
	var labels []string
	for _, s := range c.All() {
		labels = append(labels, s.label)
	}
	if fmt.Sprint(labels) != "[a b\uFFFD _overflow]" {
		t.Errorf("All: got %q", labels)
	}
	for v, n := range binds {
		if n != 1 {
			t.Errorf("%q bound %d times, want once", v, n)
		}
	}
}

func TestCacheConcurrentSafe(t *testing.T) {
	c := New(50, func(v string) *series { return &series{label: v} }, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				name := fmt.Sprint("n", (i*7+g)%100)
				if s := c.Get(name); s.label != name && s.label != Overflow {
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
	if n := testing.AllocsPerRun(100, func() { c.Get("known") }); n != 0 {
		t.Errorf("Get of a known name: %v allocations, want 0", n)
	}
}
