package taskrun_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eventpipeline/eventpipeline/internal/taskrun"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

func TestStart(t *testing.T) {
	rec, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close(context.Background())
	// No run pending: the task id itself.
	if id, err := taskrun.Start(rec, "load", "t1", 1); id != "t1" || err != nil {
		t.Fatalf("first start: got %q, %v; want t1, nil", id, err)
	}
	// t1 still pending: attempt 2 goes under t1#2.
	if id, err := taskrun.Start(rec, "load", "t1", 2, telemetry.WithPipelineID("run-1")); id != "t1#2" || err != nil {
		t.Fatalf("overlapping start: got %q, %v; want t1#2, nil", id, err)
	}
	if m, ok := rec.Metrics("t1#2"); !ok || m.Status != telemetry.StatusPending || m.EventName != "load" || m.PipelineID != "run-1" {
		t.Errorf("the overlapping run: got %+v, %v; want a pending run of load with its options", m, ok)
	}
	// Both pending: the second overlap of the same attempt is refused.
	if id, err := taskrun.Start(rec, "load", "t1", 2); id != "t1#2" || !errors.Is(err, telemetry.ErrAlreadyStarted) {
		t.Errorf("third start: got %q, %v; want t1#2 and ErrAlreadyStarted", id, err)
	}
	// Other errors are returned as they are, with the task id.
	if id, err := taskrun.Start(rec, "", "t2", 1); id != "t2" || !errors.Is(err, telemetry.ErrEmptyEventName) {
		t.Errorf("empty name: got %q, %v; want t2 and ErrEmptyEventName", id, err)
	}
}
