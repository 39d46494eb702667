//go:build race

package oteltrace_test

// raceEnabled reports whether the race detector is on: it adds allocations
// of its own, so the tests that count allocations skip.
const raceEnabled = true
