// Package retry holds the backoff and retry classification that the
// backends share: exponential backoff with jitter, a wait that honours a
// context, the HTTP Retry-After header, which HTTP statuses are worth
// another attempt, and a transport that captures the status and
// Retry-After of responses for exporters that do not report them. It
// depends on the standard library only and is not part
// of the module's API. Package telemetry, the pipeline and every backend use
// it, so there is one backoff in the module.
package retry

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter caps what a Retry-After header may ask for.
const maxRetryAfter = 24 * time.Hour

// Backoff returns the wait before retry number n (1 for the first):
// initial, doubled for each retry after the first, capped at max, less a
// random jitter of up to half of it.
func Backoff(initial, max time.Duration, n int) time.Duration {
	return BackoffJitter(initial, max, n, rand.N[time.Duration])
}

// BackoffJitter is [Backoff] with the jitter drawn by jitter: given a
// positive bound b, it must return a value in [0, b), which is taken off
// the wait. Backoff passes [rand.N]; a test passes a fixed function to make
// waits exact. A result of jitter outside [0, b) is clamped into it.
func BackoffJitter(initial, limit time.Duration, n int, jitter func(b time.Duration) time.Duration) time.Duration {
	d := initial
	for i := 1; i < n && d < limit; i++ {
		if d > limit/2 { // doubling would pass limit, or overflow
			d = limit
			break
		}
		d *= 2
	}
	d = min(d, limit)
	if d <= 0 {
		return 0
	}
	b := d/2 + 1
	return d - min(max(jitter(b), 0), b-1)
}

// Defaults of the zero fields of a [Policy]: the waits of
// telemetry.DefaultRetryPolicy.
const (
	DefaultInitialBackoff = 100 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
	DefaultMaxElapsed     = time.Minute
)

// Policy is telemetry.RetryPolicy, which this package cannot import: the
// two have the same fields, so one converts to the other. Its zero fields
// but MaxAttempts take the Default values above.
type Policy struct {
	MaxAttempts    int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	MaxElapsed     time.Duration
}

// Next is the one retry schedule of the module: it reports whether attempt
// n (1 for the first), which failed elapsed after the first attempt began,
// may be followed by another, and how long to wait before it. The wait is
// hint, a server's Retry-After, if positive, else the backoff of retry n
// (see [BackoffJitter]; jitter nil means random); either is capped at
// MaxBackoff and cut to end when MaxElapsed has passed, so that the last
// attempt comes at that deadline exactly. Next returns false once n reaches
// MaxAttempts (if positive) or elapsed reaches MaxElapsed.
func (p Policy) Next(n int, elapsed, hint time.Duration, jitter func(b time.Duration) time.Duration) (time.Duration, bool) {
	p = p.withDefaults()
	left := p.MaxElapsed - elapsed
	if (p.MaxAttempts > 0 && n >= p.MaxAttempts) || left <= 0 {
		return 0, false
	}
	wait := hint
	if wait <= 0 {
		if jitter == nil {
			jitter = rand.N[time.Duration]
		}
		wait = BackoffJitter(p.InitialBackoff, p.MaxBackoff, n, jitter)
	}
	return min(wait, p.MaxBackoff, left), true
}

func (p Policy) withDefaults() Policy {
	if p.InitialBackoff == 0 {
		p.InitialBackoff = DefaultInitialBackoff
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	if p.MaxElapsed == 0 {
		p.MaxElapsed = DefaultMaxElapsed
	}
	return p
}

// Sleep waits d, or until ctx ends; it reports whether it waited all of d.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ParseRetryAfter returns the wait an HTTP Retry-After header value asks
// for: a whole number of seconds, or an HTTP date relative to now, capped at
// 24 hours. It returns 0 for an empty, malformed, non-positive or past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// RetryableStatus reports whether a request answered with the HTTP status
// code may succeed if sent again: 408 Request Timeout, 429 Too Many Requests
// and every 5xx. It is the one decision of the module: the pipeline's remote
// calls and every backend use it.
func RetryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code/100 == 5
}
