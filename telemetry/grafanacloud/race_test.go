//go:build race

package grafanacloud

const raceEnabled = true
