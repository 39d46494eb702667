//go:build !race

package grafanacloud

const raceEnabled = false
