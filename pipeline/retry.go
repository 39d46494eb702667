package pipeline

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// policy is the retry policy of a step: a telemetry.RetryPolicy, or none
// (a single attempt), and the decision of which errors to retry.
type policy struct {
	p         *telemetry.RetryPolicy // nil: a single attempt
	retryable func(error) bool       // never nil
}

// newPolicy returns the policy of p (nil: a single attempt) and retryable
// (nil: DefaultRetryable).
func newPolicy(p *telemetry.RetryPolicy, retryable func(error) bool) policy {
	if retryable == nil {
		retryable = DefaultRetryable
	}
	return policy{p: p, retryable: retryable}
}

// validatePolicy returns the problems of p ([telemetry.RetryPolicy.Validate]),
// one error each, to be located by the caller.
func validatePolicy(p *telemetry.RetryPolicy) []error {
	if p == nil {
		return nil
	}
	err := p.Validate()
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for i, e := range errs {
		errs[i] = errors.New(strings.TrimPrefix(e.Error(), "telemetry: "))
	}
	return errs
}

// next decides what follows attempt n (1 for the first), begun at
// first, that failed with err at now: retry after wait, or give up. The
// schedule is the policy's own ([telemetry.RetryPolicy.Wait]); a worker's
// Retry-After, or a wait the error asks for with [telemetry.RetryAfter],
// is its hint.
func (p *policy) next(n int, first, now time.Time, err error) (wait time.Duration, again bool) {
	if p.p == nil || !p.retryable(err) {
		return 0, false
	}
	hint, _ := telemetry.RetryAfterOf(err)
	if re := (*RemoteError)(nil); errors.As(err, &re) {
		hint = re.RetryAfter
	}
	return p.p.Wait(n, now.Sub(first), hint)
}

// DefaultRetryable reports whether err is worth retrying: every error
// except those marked with [telemetry.Permanent] (see
// [telemetry.IsPermanent]), context cancellation and deadline errors, a
// panic of the event ([*PanicError]), and a [*RemoteError] whose status is
// not retryable: 408, 429 and 5xx are retried, every other status is not,
// the same decision as the telemetry backends make. A [RemoteEvent]'s call
// that outlasted its own [RemoteConfig.Timeout], and any error marked by
// [AttemptTimeout], is retried, though it wraps context.DeadlineExceeded:
// it is a transient failure of that attempt, as a worker's 408 is, not the
// end of the run's context.
func DefaultRetryable(err error) bool {
	var re *RemoteError
	var pe *PanicError
	switch {
	case err == nil:
		return false
	case telemetry.IsPermanent(err), errors.As(err, &pe):
		return false
	case IsAttemptTimeout(err):
		return true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &re):
		return retry.RetryableStatus(re.StatusCode)
	}
	return true
}
