package taskrun_test

import (
	"context"
	"errors"
	"strconv"
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
	// Both pending: the next overlap of the same attempt goes further,
	// to t1#2#2, ... up to t1#2#MaxOverlapIDs; once all of those are
	// pending too, it is refused under the last.
	for n := 2; n <= taskrun.MaxOverlapIDs; n++ {
		want := taskrun.FurtherOverlapID("t1", 2, n)
		if id, err := taskrun.Start(rec, "load", "t1", 2); id != want || err != nil {
			t.Fatalf("start %d: got %q, %v; want %s, nil", n+1, id, err, want)
		}
	}
	last := "t1#2#" + strconv.Itoa(taskrun.MaxOverlapIDs)
	if id, err := taskrun.Start(rec, "load", "t1", 2); id != last || !errors.Is(err, telemetry.ErrAlreadyStarted) {
		t.Errorf("start past the bound: got %q, %v; want %s and ErrAlreadyStarted", id, err, last)
	}
	// Other errors are returned as they are, with the task id.
	if id, err := taskrun.Start(rec, "", "t2", 1); id != "t2" || !errors.Is(err, telemetry.ErrEmptyEventName) {
		t.Errorf("empty name: got %q, %v; want t2 and ErrEmptyEventName", id, err)
	}
}

// TestStartCollision checks that a run whose derived task id is pending
// too (a task of the user's own called "t#2" while "t" attempt 2
// overlaps) is recorded under a further derived id, not refused.
func TestStartCollision(t *testing.T) {
	rec, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close(context.Background())
	for _, id := range []string{"t", "t#2"} {
		if got, err := taskrun.Start(rec, "load", id, 1); got != id || err != nil {
			t.Fatalf("start %s: got %q, %v; want %s, nil", id, got, err, id)
		}
	}
	// t attempt 2 overlaps t, and its t#2 is the pending user task.
	for _, want := range []string{"t#2#2", "t#2#3"} {
		got, err := taskrun.Start(rec, "load", "t", 2, telemetry.WithPipelineID("run-1"))
		if got != want || err != nil {
			t.Fatalf("overlapping start: got %q, %v; want %s, nil", got, err, want)
		}
		if m, ok := rec.Metrics(want); !ok || m.Status != telemetry.StatusPending || m.PipelineID != "run-1" {
			t.Errorf("%s: got %+v, %v; want a pending run with its options", want, m, ok)
		}
	}
	// The user task t#2 is unchanged: one pending run, no pipeline id.
	if m, ok := rec.Metrics("t#2"); !ok || m.Status != telemetry.StatusPending || m.PipelineID != "" {
		t.Errorf("t#2: got %+v, %v; want the user's own pending run", m, ok)
	}
}
