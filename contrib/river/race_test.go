//go:build race

package river_test

const raceEnabled = true
