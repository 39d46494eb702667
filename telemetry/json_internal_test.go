package telemetry

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// TestAppendTimeMatchesAppendFormat checks the fast time formatting of the
// JSON documents against time.AppendFormat across the years the record
// contract allows, leap days and the ends of the range included.
func TestAppendTimeMatchesAppendFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	lo := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	times := []time.Time{
		time.Unix(lo, 0), time.Unix(hi, 999_999_999), time.Unix(0, 0), time.Unix(-1, 5),
		time.Date(2024, 2, 29, 23, 59, 59, 1, time.UTC), time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC),
		time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Now(),
		time.Date(2026, 11, 25, 10, 0, 0, 0, time.FixedZone("x", 5*3600+1800)),
	}
	for range 100_000 {
		times = append(times, time.Unix(lo+rng.Int64N(hi-lo+1), rng.Int64N(1e9)))
	}
	for _, tm := range times {
		got := string(appendTime(nil, tm))
		want := tm.UTC().Format(timeLayout)
		if got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

// TestAppendSecondsMatchesAppendFloat checks the fast formatting of
// durations against strconv.AppendFloat, which it must equal byte for byte.
func TestAppendSecondsMatchesAppendFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ds := []time.Duration{0, 1, 999, time.Second, 1500 * time.Millisecond, 1e15 - 1, 1e15, 1<<53 + 1, 1<<63 - 1, -1, -time.Second}
	for range 200_000 {
		ds = append(ds, time.Duration(rng.Int64N(1e12)), time.Duration(rng.Int64N(1e15)), time.Duration(rng.Int64N(1e6)))
	}
	fast := 0
	for _, d := range ds {
		got := string(appendSeconds(nil, d))
		want := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
		if got != want {
			t.Fatalf("appendSeconds(%d) = %s, want %s", int64(d), got, want)
		}
		if d >= 0 && d < 1e15 && d.Seconds() == float64(d)/1e9 {
			fast++
		}
	}
	if fast < len(ds)*9/10 {
		t.Errorf("only %d of %d durations took the fast path", fast, len(ds))
	}
}
