//go:build race

package telemetry

// raceEnabled reports whether the race detector is on, which makes the
// model tests run fewer seeds.
const raceEnabled = true
