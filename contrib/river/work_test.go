package river_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	epriver "github.com/eventpipeline/eventpipeline/contrib/river"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestRefusedRecordingIsCounted checks that a recording call the Recorder
// refuses (here: it is closed) does not fail the job, and is counted in
// Failures with the first error in Err.
func TestRefusedRecordingIsCounted(t *testing.T) {
	rec := newRecorder(t)
	mw := epriver.NewMiddleware(epriver.Config{Recorder: rec})
	if mw.Err() != nil || mw.Failures() != 0 {
		t.Fatalf("new Middleware: got %d failures, %v; want none", mw.Failures(), mw.Err())
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	called := false
	err := mw.Work(context.Background(), benchJob(1), func(context.Context) error { called = true; return nil })
	if err != nil || !called {
		t.Errorf("Work: got %v, called %v; want the job run and its nil error", err, called)
	}
	if mw.Failures() != 1 || !errors.Is(mw.Err(), telemetry.ErrClosed) {
		t.Errorf("got %d failures, first %v; want 1, wrapping ErrClosed", mw.Failures(), mw.Err())
	}
}

// TestAttemptBeforeScheduledTime checks a job attempted before its
// scheduled time, as clocks that disagree can make it: its wait is
// recorded as clamped, not as a negative time.
func TestAttemptBeforeScheduledTime(t *testing.T) {
	rec := newRecorder(t)
	mw := epriver.NewMiddleware(epriver.Config{Recorder: rec})
	job := benchJob(2)
	early := job.ScheduledAt.Add(-2 * time.Second)
	job.AttemptedAt = &early
	if err := mw.Work(context.Background(), job, work); err != nil {
		t.Fatal(err)
	}
	m, ok := rec.Metrics("2")
	if !ok || m.Status != telemetry.StatusCompleted || m.EnqueueTime.IsZero() || !m.EnqueueTime.After(m.StartTime) {
		t.Errorf("got %+v, %v; want a completed run with an enqueue time after its start", m, ok)
	}
	if s := rec.Stats(); s.EventsWaitClamped != 1 || mw.Failures() != 0 {
		t.Errorf("got %d waits clamped, %d refused recordings; want 1, 0", s.EventsWaitClamped, mw.Failures())
	}
}

// TestMalformedMetadata checks that a job whose metadata has the
// Middleware's key with a value that is not its object is recorded, without
// a pipeline id or a parent span.
func TestMalformedMetadata(t *testing.T) {
	rec := newRecorder(t)
	mw := epriver.NewMiddleware(epriver.Config{Recorder: rec})
	job := benchJob(3)
	job.Metadata = []byte(`{"eventpipeline":5}`)
	if err := mw.Work(context.Background(), job, work); err != nil {
		t.Fatal(err)
	}
	if m, ok := rec.Metrics("3"); !ok || m.Status != telemetry.StatusCompleted || m.PipelineID != "" || mw.Failures() != 0 {
		t.Errorf("got %+v, %v, %d refused; want a completed run without pipeline id", m, ok, mw.Failures())
	}
}

// TestInsertKeepsMetadataThatIsNotAnObject checks that a job inserted with
// metadata that is not a JSON object keeps it as it is, without the trace
// context that cannot be added to it.
func TestInsertKeepsMetadataThatIsNotAnObject(t *testing.T) {
	mw := epriver.NewMiddleware(epriver.Config{Recorder: newRecorder(t), Propagator: propagation.TraceContext{}})
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled}))
	for _, md := range []string{`[1]`, `null`} {
		p := &rivertype.JobInsertParams{Kind: "ok", Queue: "default", Metadata: []byte(md)}
		if _, err := mw.InsertMany(ctx, []*rivertype.JobInsertParams{p}, func(context.Context) ([]*rivertype.JobInsertResult, error) {
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
		if string(p.Metadata) != md {
			t.Errorf("metadata %s: got %s, want it unchanged", md, p.Metadata)
		}
	}
}
