//go:build !race

package oteltrace_test

const raceEnabled = false
