package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestStartRemoteCall runs an event that reports two calls of its own
// through StartRemoteCall, the second failing, and checks what the hooks
// and the Recorder got.
func TestStartRemoteCall(t *testing.T) {
	r := newRecorder(t)
	h := &logHooks{}
	var ids []string
	ev := pipeline.Func("enqueue", func(ctx context.Context, in any) (any, error) {
		c := pipeline.StartRemoteCall(ctx, "redis.internal", 6379, "")
		ids = append(ids, c.ID())
		c.End(10, 20, nil)
		c.End(1, 1, errors.New("ended twice")) // not reported
		c = pipeline.StartRemoteCall(ctx, "redis.internal", 6379, "asynq_remote_call")
		ids = append(ids, c.ID())
		c.End(5, 0, errors.New("connection refused"))
		return in, nil
	})
	p := mustNew(t, pipeline.Config{Recorder: r, Hooks: h}, pipeline.Sequence(ev))
	if _, err := p.Run(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"start enqueue",
		"call enqueue remote_call", "call end enqueue: <nil>",
		"call enqueue asynq_remote_call", "call end enqueue: connection refused",
		"end enqueue attempt 1: <nil>",
	}
	if got := h.get(); !slices.Equal(got, want) {
		t.Errorf("hooks: got %q, want %q", got, want)
	}
	task := r.Report().Events[0].TaskID
	for i, id := range ids {
		if want := fmt.Sprintf("%s/call-%d", task, i+1); id != want {
			t.Errorf("call %d: id %q, want %q", i+1, id, want)
		}
	}
	ops := r.Report().NetworkOperations
	if len(ops) != 2 {
		t.Fatalf("got %d network operations, want 2", len(ops))
	}
	if op := ops[0]; op.TaskID != ids[0] || op.Host != "redis.internal" || op.Port != 6379 ||
		op.Operation != telemetry.DefaultOperation || op.BytesSent != 10 || op.BytesReceived != 20 || op.Status != telemetry.StatusCompleted {
		t.Errorf("first operation: got %+v", op)
	}
	if op := ops[1]; op.Operation != "asynq_remote_call" || op.Status != telemetry.StatusFailed || op.Error != "connection refused" {
		t.Errorf("second operation: got %+v", op)
	}
}

// TestStartRemoteCallOutsidePipeline checks that a call outside a pipeline
// reports nothing and that its nil *RemoteCall is usable.
func TestStartRemoteCallOutsidePipeline(t *testing.T) {
	c := pipeline.StartRemoteCall(context.Background(), "h", 1, "")
	if c != nil {
		t.Fatalf("got %v, want nil outside a pipeline", c)
	}
	if c.ID() != "" {
		t.Errorf("ID of a nil call: got %q, want empty", c.ID())
	}
	c.End(1, 2, nil) // does nothing, does not panic
}

// TestContextWithTask checks that an event run with ContextWithTask sees
// its task, and that its calls are numbered but reported to no hooks.
func TestContextWithTask(t *testing.T) {
	want := pipeline.Task{ID: "abc/score/1", Event: "score", RunID: "abc", ProcessID: 7, Attempt: 2}
	ctx := pipeline.ContextWithTask(context.Background(), want)
	got, ok := pipeline.TaskFrom(ctx)
	if !ok || got != want {
		t.Errorf("TaskFrom: got %+v, %v; want %+v, true", got, ok, want)
	}
	c := pipeline.StartRemoteCall(ctx, "h", 1, "")
	if !regexp.MustCompile(`^abc/score/1/call-1$`).MatchString(c.ID()) {
		t.Errorf("call id %q, want abc/score/1/call-1", c.ID())
	}
	c.End(0, 0, nil)
}

// TestStartRemoteCallTraced checks that the calls an event reports with
// StartRemoteCall are recorded as network operations when the pipeline is
// traced (the tracer then records what the telemetry hooks would) and when
// a traced worker runs the event.
func TestStartRemoteCallTraced(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	var ids sync.Map // event name → call id
	enqueue := func(name string) pipeline.Event {
		return pipeline.Func(name, func(ctx context.Context, in any) (any, error) {
			c := pipeline.StartRemoteCall(ctx, "redis.internal", 6379, "asynq_remote_call")
			ids.Store(name, c.ID())
			c.End(10, 20, nil)
			return in, nil
		})
	}
	workerRec := newRecorder(t)
	addr := serveWorker(t, pipeline.WorkerConfig{Recorder: workerRec, TracerProvider: tp}, enqueue("on-worker"))
	rec := newRecorder(t)
	p := mustNew(t, pipeline.Config{Recorder: rec, TracerProvider: tp},
		pipeline.Sequence(enqueue("local"), remoteTo(t, "on-worker", addr)))
	if _, err := p.Run(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		event string
		rec   *telemetry.Recorder
	}{{"local", rec}, {"on-worker", workerRec}} {
		id, _ := ids.Load(c.event)
		m, ok := c.rec.Network().Metrics(fmt.Sprint(id))
		if !ok || m.Status != telemetry.StatusCompleted || m.Host != "redis.internal" || m.Port != 6379 ||
			m.Operation != "asynq_remote_call" || m.BytesSent != 10 || m.BytesReceived != 20 {
			t.Errorf("%s: call %v: got %+v (found %v), want a completed operation to redis.internal:6379", c.event, id, m, ok)
		}
	}
	if err := p.Telemetry().Err(); err != nil {
		t.Errorf("recording error: %v", err)
	}
}
