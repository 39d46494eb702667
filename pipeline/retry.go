package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// RetryPolicy says how often, and after how long a wait, a failed event is
// attempted again: the original's max_attempts, backoff_factor,
// max_backoff and retryable errors. The wait before retry n (1, 2, ...) is
// BackoffFactor × 2^(n-1), capped at MaxBackoff. The zero RetryPolicy makes
// a single attempt.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts, the first included. Zero (or
	// 1) means a single attempt, no retry.
	MaxAttempts int
	// BackoffFactor is the wait before the first retry; each later wait
	// doubles it. Zero means 100ms.
	BackoffFactor time.Duration
	// MaxBackoff caps every wait. Zero means 10s.
	MaxBackoff time.Duration
	// Retryable reports whether an attempt that failed with err may be
	// retried. Nil means [DefaultRetryable].
	Retryable func(err error) bool
}

// DefaultRetryPolicy makes 3 attempts, waiting 100ms then 200ms, and
// retries the errors [DefaultRetryable] accepts. A pipeline whose
// [Config.Retry] is zero makes a single attempt: set Config.Retry to
// DefaultRetryPolicy to retry every event.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 3, BackoffFactor: 100 * time.Millisecond, MaxBackoff: 10 * time.Second}

// validate returns the problems of p, each to be located by the caller.
func (p RetryPolicy) validate() []error {
	var errs []error
	if p.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("retry: max attempts must not be negative, got %d", p.MaxAttempts))
	}
	if p.BackoffFactor < 0 {
		errs = append(errs, fmt.Errorf("retry: backoff factor must not be negative, got %v", p.BackoffFactor))
	}
	if p.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("retry: max backoff must not be negative, got %v", p.MaxBackoff))
	}
	return errs
}

// Backoff returns the wait before retry n (1 for the first retry).
func (p RetryPolicy) Backoff(n int) time.Duration {
	factor, limit := p.BackoffFactor, p.MaxBackoff
	if factor == 0 {
		factor = 100 * time.Millisecond
	}
	if limit == 0 {
		limit = 10 * time.Second
	}
	d := factor
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

func (p RetryPolicy) attempts() int { return max(p.MaxAttempts, 1) }

func (p RetryPolicy) retryable(err error) bool {
	if p.Retryable != nil {
		return p.Retryable(err)
	}
	return DefaultRetryable(err)
}

// DefaultRetryable reports whether err is worth retrying: every error
// except those marked with [Permanent], context cancellation and deadline
// errors, a [*RemoteError] of a 4xx status other than 408 and 429, and a
// panic of the event.
func DefaultRetryable(err error) bool {
	var perm *permanentError
	var re *RemoteError
	var pe *PanicError
	switch {
	case err == nil:
		return false
	case errors.As(err, &perm), errors.As(err, &pe),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &re):
		c := re.StatusCode
		return c >= 500 || c == http.StatusRequestTimeout || c == http.StatusTooManyRequests
	}
	return true
}

// Permanent returns an error that wraps err and tells [DefaultRetryable]
// that it is not worth retrying. Its message is that of err. Permanent(nil)
// is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// [Permanent].
func IsPermanent(err error) bool {
	var perm *permanentError
	return errors.As(err, &perm)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// sleep waits d, or until ctx ends, when it returns ctx.Err().
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
