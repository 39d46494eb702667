//go:build !race

package otelmetric

const raceEnabled = false
