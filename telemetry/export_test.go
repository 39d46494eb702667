package telemetry

import "time"

// WithJitter replaces the random jitter of retry waits: given a bound b,
// jitter returns what is taken off the wait, in [0, b). Tests pass a fixed
// function to make waits, and so attempt times, exact.
func WithJitter(jitter func(b time.Duration) time.Duration) Option {
	return optionFunc(func(c *config) { c.jitter = jitter })
}
