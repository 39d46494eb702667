//go:build race

package otelmetric

const raceEnabled = true
