package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestAttemptTimeout checks which errors AttemptTimeout marks, and that
// DefaultRetryable retries exactly those of them that are deadline errors
// of a run still going on.
func TestAttemptTimeout(t *testing.T) {
	alive := context.Background()
	ended, cancel := context.WithCancel(alive)
	cancel()
	deadline := fmt.Errorf("call: %w", context.DeadlineExceeded)
	other := errors.New("refused")
	for _, tc := range []struct {
		name          string
		run           context.Context
		err           error
		wantMarked    bool
		wantRetryable bool
	}{
		{"deadline, run alive", alive, deadline, true, true},
		{"deadline, run ended", ended, deadline, false, false},
		{"deadline, no run context", nil, deadline, false, false},
		{"cancelled, run alive", alive, context.Canceled, false, false},
		{"other error", alive, other, false, true},
		{"permanent deadline", alive, telemetry.Permanent(deadline), true, false},
		{"nil", alive, nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := pipeline.AttemptTimeout(tc.run, tc.err)
			if marked := got != tc.err; marked != tc.wantMarked {
				t.Errorf("marked %v, want %v", marked, tc.wantMarked)
			}
			if tc.err != nil && (got.Error() != tc.err.Error() || !errors.Is(got, tc.err)) {
				t.Errorf("got %q, which must have the text of %q and wrap it", got, tc.err)
			}
			if r := pipeline.DefaultRetryable(got); r != tc.wantRetryable {
				t.Errorf("DefaultRetryable = %v, want %v", r, tc.wantRetryable)
			}
			if is := pipeline.IsAttemptTimeout(got); is != tc.wantMarked {
				t.Errorf("IsAttemptTimeout = %v, want %v", is, tc.wantMarked)
			}
			if wrapped := fmt.Errorf("stage: %w", got); pipeline.IsAttemptTimeout(wrapped) != tc.wantMarked {
				t.Errorf("IsAttemptTimeout of the error wrapped = %v, want %v", !tc.wantMarked, tc.wantMarked)
			}
		})
	}
}
