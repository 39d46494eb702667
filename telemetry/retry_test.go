package telemetry_test

import (
	"errors"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

func TestRetryPolicyWait(t *testing.T) {
	p := telemetry.RetryPolicy{MaxAttempts: 5, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second, MaxElapsed: 10 * time.Second}
	for _, tc := range []struct {
		name             string
		p                telemetry.RetryPolicy
		attempt          int
		elapsed, hint    time.Duration
		again            bool
		minWait, maxWait time.Duration // the jitter takes off at most half
	}{
		{name: "first retry", p: p, attempt: 1, again: true, minWait: 50 * time.Millisecond, maxWait: 100 * time.Millisecond},
		{name: "third retry doubles twice", p: p, attempt: 3, again: true, minWait: 200 * time.Millisecond, maxWait: 400 * time.Millisecond},
		{name: "capped at MaxBackoff", p: p, attempt: 4, elapsed: time.Second, hint: time.Minute, again: true, minWait: 2 * time.Second, maxWait: 2 * time.Second},
		{name: "hint is followed", p: p, attempt: 1, hint: 1500 * time.Millisecond, again: true, minWait: 1500 * time.Millisecond, maxWait: 1500 * time.Millisecond},
		{name: "cut at the MaxElapsed deadline", p: p, attempt: 2, elapsed: 9700 * time.Millisecond, hint: time.Second, again: true, minWait: 300 * time.Millisecond, maxWait: 300 * time.Millisecond},
		{name: "MaxAttempts reached", p: p, attempt: 5},
		{name: "MaxElapsed reached", p: p, attempt: 1, elapsed: 10 * time.Second},
		{name: "zero policy takes the defaults", attempt: 100, elapsed: 59 * time.Second, again: true, minWait: time.Second, maxWait: time.Second},
		{name: "zero policy stops after a minute", attempt: 1, elapsed: time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait, again := tc.p.Wait(tc.attempt, tc.elapsed, tc.hint)
			if again != tc.again || wait < tc.minWait || wait > tc.maxWait {
				t.Errorf("Wait(%d, %v, %v) = %v, %v; want %v, a wait in [%v, %v]", tc.attempt, tc.elapsed, tc.hint,
					wait, again, tc.again, tc.minWait, tc.maxWait)
			}
		})
	}
}

func TestRetryMarksOfNil(t *testing.T) {
	if err := telemetry.Permanent(nil); err != nil {
		t.Errorf("Permanent(nil) = %v, want nil", err)
	}
	if err := telemetry.RetryAfter(nil, time.Second); err != nil {
		t.Errorf("RetryAfter(nil, 1s) = %v, want nil", err)
	}
	base := errors.New("503")
	if err := telemetry.RetryAfter(base, time.Second); !errors.Is(err, base) || telemetry.IsPermanent(err) {
		t.Errorf("RetryAfter(err, 1s) = %v: want it to wrap err and not be permanent", err)
	}
}
