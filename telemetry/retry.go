package telemetry

import (
	"errors"
	"fmt"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/retry"
)

// RetryPolicy says how a failed publish attempt is retried. Errors marked
// with [Permanent] are never retried. Waits grow exponentially from
// InitialBackoff, doubling each time, up to MaxBackoff, each less a random
// jitter of up to half its length; a [RetryAfter] hint replaces the computed
// wait (still capped at MaxBackoff). Retries go on until MaxAttempts
// attempts were made or MaxElapsed has passed since the first attempt
// began, whichever comes first; a wait that would end after that deadline
// is shortened to end at it, so that the last attempt is made at the
// deadline itself. Then the records are dropped and counted. While a
// publisher retries, its buffer keeps filling, up to [WithQueueSize], so
// what was recorded during an outage that ends by the deadline is delivered
// when the backend comes back.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts, the first included. Zero
	// means no limit but MaxElapsed; 1 means no retry.
	MaxAttempts int
	// InitialBackoff is the wait before the first retry. Zero means 100ms.
	InitialBackoff time.Duration
	// MaxBackoff caps every wait. Zero means 5s.
	MaxBackoff time.Duration
	// MaxElapsed is how long after the start of the first attempt retries
	// go on: a wait that would end later is cut short, and the last attempt
	// starts at exactly that deadline (unless MaxAttempts came first). Zero
	// means one minute.
	MaxElapsed time.Duration
}

// DefaultRetryPolicy is the retry policy of a Recorder given no [WithRetry]:
// retries for up to a minute, waiting 100ms, then 200ms, and so on up to 5s.
var DefaultRetryPolicy = RetryPolicy{InitialBackoff: retry.DefaultInitialBackoff, MaxBackoff: retry.DefaultMaxBackoff, MaxElapsed: retry.DefaultMaxElapsed}

// Validate returns an error naming each negative field of p, or nil. Zero
// fields are valid: they take their defaults.
func (p RetryPolicy) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		bad  bool
		v    any
	}{
		{"max attempts", p.MaxAttempts < 0, p.MaxAttempts},
		{"initial backoff", p.InitialBackoff < 0, p.InitialBackoff},
		{"max backoff", p.MaxBackoff < 0, p.MaxBackoff},
		{"max elapsed", p.MaxElapsed < 0, p.MaxElapsed},
	} {
		if f.bad {
			errs = append(errs, fmt.Errorf("telemetry: retry policy: %s must not be negative, got %v", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

// Wait is the retry schedule of p, the one the Recorder, the pipeline and
// the backends follow. Given that attempt number attempt (1 for the first)
// failed elapsed after the first attempt began, it reports whether another
// attempt may follow and how long to wait before it: hint (a server's
// Retry-After) if positive, else the jittered backoff of p; either capped
// at MaxBackoff and cut to end at the MaxElapsed deadline. It returns false
// once attempt reaches MaxAttempts (if positive) or elapsed reaches
// MaxElapsed. Zero fields take their defaults.
func (p RetryPolicy) Wait(attempt int, elapsed, hint time.Duration) (wait time.Duration, again bool) {
	return retry.Policy(p).Next(attempt, elapsed, hint, nil)
}

// Permanent marks err as not worth retrying: the delivery that returned it is
// dropped at once (and counted). Use it for errors that another attempt
// cannot fix, such as an HTTP 400 or 401. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &retryError{err: err, permanent: true}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// [Permanent]. An error that joins several (see [errors.Join]) is permanent
// only if each of them is: one transient failure is worth a retry.
func IsPermanent(err error) bool {
	for err != nil {
		switch e := err.(type) {
		case *retryError:
			return e.permanent
		case interface{ Unwrap() []error }:
			errs := e.Unwrap()
			for _, err := range errs {
				if !IsPermanent(err) {
					return false
				}
			}
			return len(errs) > 0
		case interface{ Unwrap() error }:
			err = e.Unwrap()
		default:
			return false
		}
	}
	return false
}

// RetryAfter marks err as transient and asks for the next attempt to wait d,
// as an HTTP Retry-After header does. RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryError{err: err, after: d}
}

// retryError carries how an error should be retried, and unwraps to it.
type retryError struct {
	err       error
	permanent bool
	after     time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }

func (e *retryError) Unwrap() error { return e.err }

// RetryAfterOf returns the wait that err, or an error it wraps, asks for
// with [RetryAfter], and whether it asks for one: the hint that the
// Recorder's delivery gives its retry policy ([RetryPolicy.Wait]), as do
// the retries of package pipeline.
func RetryAfterOf(err error) (time.Duration, bool) {
	var re *retryError
	if errors.As(err, &re) && !re.permanent {
		return re.after, true
	}
	return 0, false
}
