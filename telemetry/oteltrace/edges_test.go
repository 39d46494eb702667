package oteltrace_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// A run nested in a run of the same task id: the Recorder refuses the
// inner start, whose span ends at once; the inner end ends the record of
// the task (the Recorder knows one run per task id), and the span that
// ends with it is the outer one, at the record's end; the outer end is
// refused and ends no span again. Every span ends once.
func TestNestedSameTaskID(t *testing.T) {
	rec, tr, sr := setup(t)
	octx, err := tr.StartEvent(context.Background(), "outer", "t1")
	if err != nil {
		t.Fatal(err)
	}
	ictx, err := tr.StartEvent(octx, "inner", "t1")
	if !errors.Is(err, telemetry.ErrAlreadyStarted) {
		t.Fatalf("got %v, want ErrAlreadyStarted", err)
	}
	if err := tr.RecordRetry(ictx, "t1", errors.New("again")); err != nil {
		t.Fatal(err)
	}
	if err := tr.EndEvent(ictx, "t1", errors.New("inner failed")); err != nil {
		t.Fatal(err)
	}
	if err := tr.EndEvent(octx, "t1", nil); err == nil {
		t.Error("the outer end: got nil, want a refusal (the task's run has ended)")
	}
	ended := sr.Ended()
	if len(ended) != 2 || len(sr.Started()) != 2 {
		t.Fatalf("got %d spans ended of %d, want 2 of 2", len(ended), len(sr.Started()))
	}
	inner, outer := ended[0], ended[1]
	if inner.Name() != "inner" || inner.Status().Code != codes.Error || inner.Parent().SpanID() != outer.SpanContext().SpanID() {
		t.Errorf("inner span %s %+v parent %v, want the refused start's, Error, under outer", inner.Name(), inner.Status(), inner.Parent().SpanID())
	}
	m, _ := rec.Metrics("t1")
	if outer.Name() != "outer" || !wallEqual(outer.EndTime(), m.EndTime) || !wallEqual(outer.StartTime(), m.StartTime) ||
		outer.Status().Description != m.Error || len(outer.Events()) != m.RetryCount || m.Span.SpanID != outer.SpanContext().SpanID() {
		t.Errorf("outer span %s %v..%v %+v %d events; record %v..%v %q %d retries", outer.Name(), outer.StartTime(), outer.EndTime(),
			outer.Status(), len(outer.Events()), m.StartTime, m.EndTime, m.Error, m.RetryCount)
	}
}

// A refused start under a sampled parent: its span ends, status Error, a
// child of the parent; the parent ends normally; nothing is left unended.
// A retry or end after the run's end adds nothing to the ended span.
func TestRefusedStartUnderParentLeaksNothing(t *testing.T) {
	rec, tr, sr := setup(t)
	pctx, err := tr.StartEvent(context.Background(), "parent", "p")
	if err != nil {
		t.Fatal(err)
	}
	cctx, err := tr.StartEvent(pctx, "child", "")
	if !errors.Is(err, telemetry.ErrEmptyTaskID) {
		t.Fatalf("got %v, want ErrEmptyTaskID", err)
	}
	if got, want := trace.SpanContextFromContext(cctx).SpanID(), sr.Ended()[0].SpanContext().SpanID(); got != want {
		t.Errorf("the refused start's ctx carries span %v, want its own ended one %v", got, want)
	}
	if err := tr.EndEvent(cctx, "", errors.New("x")); err == nil {
		t.Error("end of a refused start: got nil, want an error")
	}
	if err := tr.EndEvent(pctx, "p", nil); err != nil {
		t.Fatal(err)
	}
	if err := tr.RecordRetry(pctx, "p", errors.New("late")); err == nil {
		t.Error("retry after the end: got nil, want an error")
	}
	if err := tr.EndEvent(pctx, "p", nil); err == nil {
		t.Error("second end: got nil, want an error")
	}
	ended := sr.Ended()
	if len(ended) != 2 || len(sr.Started()) != 2 {
		t.Fatalf("got %d spans ended of %d, want 2 of 2", len(ended), len(sr.Started()))
	}
	child, parent := ended[0], ended[1]
	if child.Status().Code != codes.Error || child.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("child %+v parent %v", child.Status(), child.Parent().SpanID())
	}
	if parent.Status().Code != codes.Unset || len(parent.Events()) != 0 {
		t.Errorf("parent %+v with %d events, want Unset and none", parent.Status(), len(parent.Events()))
	}
	if m, _ := rec.Metrics("p"); m.Status != telemetry.StatusCompleted || m.RetryCount != 0 {
		t.Errorf("record %+v", m)
	}
}

// An operation started in a run's context is a client span child of the
// run's span, with the network record's times, attributes and status.
func TestOperationUnderEventMatchesRecord(t *testing.T) {
	rec, tr, sr := setup(t)
	ectx, err := tr.StartEvent(context.Background(), "load", "t1")
	if err != nil {
		t.Fatal(err)
	}
	octx, err := tr.StartOperation(ectx, "t1/call-1", "db.internal", 5432, "query")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.EndOperation(octx, "t1/call-1", 10, 20, errors.New("reset")); err != nil {
		t.Fatal(err)
	}
	if err := tr.EndOperation(octx, "t1/call-1", 1, 2, nil); err == nil {
		t.Error("second end: got nil, want an error")
	}
	if err := tr.EndEvent(ectx, "t1", nil); err != nil {
		t.Fatal(err)
	}
	ended := sr.Ended()
	if len(ended) != 2 {
		t.Fatalf("got %d spans, want 2", len(ended))
	}
	op, ev := ended[0], ended[1]
	m, ok := rec.Network().Metrics("t1/call-1")
	if !ok {
		t.Fatal("no network record")
	}
	if op.Name() != "query" || op.SpanKind() != trace.SpanKindClient || op.Parent().SpanID() != ev.SpanContext().SpanID() {
		t.Errorf("op span %s %v parent %v", op.Name(), op.SpanKind(), op.Parent().SpanID())
	}
	if !wallEqual(op.StartTime(), m.StartTime) || !wallEqual(op.EndTime(), m.EndTime) {
		t.Errorf("op span %v..%v, record %v..%v", op.StartTime(), op.EndTime(), m.StartTime, m.EndTime)
	}
	if op.Status().Code != codes.Error || op.Status().Description != m.Error || m.Error != "reset" {
		t.Errorf("op status %+v, record %q", op.Status(), m.Error)
	}
	a := attrs(op.Attributes())
	for k, v := range map[string]string{"server.address": "db.internal", "server.port": "5432", "eventpipeline.network.operation": "query",
		"eventpipeline.task.id": "t1/call-1", "eventpipeline.network.bytes_sent": "10", "eventpipeline.network.bytes_received": "20"} {
		if a[k] != v {
			t.Errorf("attribute %s: got %q, want %q", k, a[k], v)
		}
	}
	if m.Span.SpanID != op.SpanContext().SpanID() {
		t.Errorf("record span %v, op span %v", m.Span.SpanID, op.SpanContext().SpanID())
	}
}
