package oteltrace_test

import (
	"net"
	"strings"
	"sync/atomic"
	"time"
)

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

func splitHostPort(a string) (string, string, error) { return net.SplitHostPort(a) }

// wallEqual reports whether a and b are the same instant on the wall
// clock, as exported spans carry it (Equal compares monotonic readings
// when both have one).
func wallEqual(a, b time.Time) bool { return a.Round(0).Equal(b.Round(0)) }

// atomicInt numbers goroutines.
type atomicInt struct{ v atomic.Int64 }

func (a *atomicInt) next() int { return int(a.v.Add(1)) }
