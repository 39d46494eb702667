//go:build race

package telemetry_test

// raceEnabled reports whether the race detector is on: it adds allocations
// and memory of its own, so the tests that measure those skip.
const raceEnabled = true
