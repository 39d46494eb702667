package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// policy is a retry policy of a step: a telemetry.RetryPolicy with its
// defaults applied, or none (a single attempt).
type policy struct {
	retry     bool // false: a single attempt
	p         telemetry.RetryPolicy
	retryable func(error) bool // never nil
}

// newPolicy returns the policy of p (nil: a single attempt), with the
// zero fields of p set to those of telemetry.DefaultRetryPolicy.
func newPolicy(p *telemetry.RetryPolicy, retryable func(error) bool) policy {
	if retryable == nil {
		retryable = DefaultRetryable
	}
	if p == nil {
		return policy{retryable: retryable}
	}
	q := *p
	d := telemetry.DefaultRetryPolicy
	if q.InitialBackoff == 0 {
		q.InitialBackoff = d.InitialBackoff
	}
	if q.MaxBackoff == 0 {
		q.MaxBackoff = d.MaxBackoff
	}
	if q.MaxElapsed == 0 {
		q.MaxElapsed = d.MaxElapsed
	}
	return policy{retry: true, p: q, retryable: retryable}
}

// validatePolicy returns the problems of p, each to be located by the
// caller.
func validatePolicy(p *telemetry.RetryPolicy) []error {
	if p == nil {
		return nil
	}
	var errs []error
	if p.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("retry: max attempts must not be negative, got %d", p.MaxAttempts))
	}
	if p.InitialBackoff < 0 {
		errs = append(errs, fmt.Errorf("retry: initial backoff must not be negative, got %v", p.InitialBackoff))
	}
	if p.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("retry: max backoff must not be negative, got %v", p.MaxBackoff))
	}
	if p.MaxElapsed < 0 {
		errs = append(errs, fmt.Errorf("retry: max elapsed must not be negative, got %v", p.MaxElapsed))
	}
	return errs
}

// next decides what follows attempt n (1 for the first), begun at
// first, that failed with err at now: retry after wait, or give up.
func (p *policy) next(n int, first, now time.Time, err error) (wait time.Duration, again bool) {
	if !p.retry || (p.p.MaxAttempts > 0 && n >= p.p.MaxAttempts) || !p.retryable(err) {
		return 0, false
	}
	left := first.Add(p.p.MaxElapsed).Sub(now)
	if left <= 0 {
		return 0, false
	}
	wait = retry.Backoff(p.p.InitialBackoff, p.p.MaxBackoff, n)
	var re *RemoteError
	if errors.As(err, &re) && re.RetryAfter > 0 {
		wait = min(re.RetryAfter, p.p.MaxBackoff)
	}
	return min(wait, left), true
}

// DefaultRetryable reports whether err is worth retrying: every error
// except those marked with [telemetry.Permanent] (see
// [telemetry.IsPermanent]), context cancellation and deadline errors, a
// panic of the event ([*PanicError]), and a [*RemoteError] whose status is
// not retryable: 408, 429 and 5xx are retried, every other status is not,
// the same decision as the telemetry backends make.
func DefaultRetryable(err error) bool {
	var re *RemoteError
	var pe *PanicError
	switch {
	case err == nil:
		return false
	case telemetry.IsPermanent(err), errors.As(err, &pe),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &re):
		return retry.RetryableStatus(re.StatusCode)
	}
	return true
}
