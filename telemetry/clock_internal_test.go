package telemetry

import (
	"testing"
	"time"
)

// TestClockOffsetIsSub checks the fast path of clock.offset against
// time.Time.Sub, for times with and without a monotonic reading, in other
// locations, and far from 1970.
func TestClockOffsetIsSub(t *testing.T) {
	c := newClock()
	now := time.Now()
	wall := time.Unix(0, now.UnixNano())
	tokyo := time.FixedZone("UTC+9", 9*3600)
	for _, tc := range []struct {
		name string
		t    time.Time
	}{
		{"monotonic, later", now.Add(1500 * time.Millisecond)},
		{"monotonic, earlier", now.Add(-time.Hour)},
		{"wall clock, later", wall.Add(2*time.Second + 7)},
		{"wall clock, earlier", wall.Add(-36 * time.Hour)},
		{"wall clock, another zone", wall.In(tokyo).Add(-3)},
		{"wall clock, UTC", wall.UTC()},
		{"wall clock, Local", wall.Local()},
		{"monotonic, another zone", now.Add(time.Minute).In(tokyo)},
		{"before 1970", time.Date(1901, 3, 4, 5, 6, 7, 8, time.UTC)},
		{"just inside the fast path, past", time.Unix(-1<<32+1, 5)},
		{"just inside the fast path, future", time.Unix(1<<32-1, 999999999)},
		{"just outside, past", time.Unix(-1<<32, 0)},
		{"1700", time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"2250", time.Date(2250, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"far past", time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
		{"far future", time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{"epoch itself", c.epoch},
		{"epoch without its monotonic reading", c.epoch.Round(0)},
	} {
		if got, want := c.offset(tc.t), tc.t.Sub(c.epoch); got != want {
			t.Errorf("%s: offset %v, want %v (Sub)", tc.name, got, want)
		}
	}
}
