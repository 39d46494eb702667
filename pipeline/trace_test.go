package pipeline_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/oteltrace"
)

// TestTracedRunAcrossWorker runs a traced pipeline whose remote event runs
// on a traced worker (its own Recorder, the same SDK provider) and checks
// that the run is one trace: run → event → client call → worker's event.
func TestTracedRunAcrossWorker(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

	workerRec := newRecorder(t)
	var gotRunID atomic.Value
	addr := serveWorker(t, pipeline.WorkerConfig{Recorder: workerRec, TracerProvider: tp, Propagator: prop},
		pipeline.Func("score", func(ctx context.Context, in any) (any, error) {
			if task, ok := pipeline.TaskFrom(ctx); ok {
				gotRunID.Store(task.RunID)
			}
			if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
				return nil, errors.New("no span in the worker's ctx")
			}
			return 7, nil
		}))
	remote := remoteTo(t, "score", addr)
	attempts := 0
	flaky := pipeline.WithRetry(pipeline.Func("flaky", func(context.Context, any) (any, error) {
		if attempts++; attempts == 1 {
			return nil, errors.New("first try fails")
		}
		return 1, nil
	}), telemetry.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond})
	rec := newRecorder(t)
	p, err := pipeline.New(pipeline.Config{Recorder: rec, TracerProvider: tp, Propagator: prop},
		pipeline.Sequence(flaky, remote))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if err := p.Telemetry().Err(); err != nil {
		t.Fatalf("recording error: %v", err)
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range sr.Ended() {
		byName[s.Name()+"/"+s.SpanKind().String()] = s
	}
	run, flakySpan := byName["pipeline.run/internal"], byName["flaky/internal"]
	call := byName["remote_call/client"]
	// Both runs of "score" are internal spans: the worker's is the one
	// that is not a child of the run.
	var event, worker sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		switch {
		case s.Name() != "score":
		case s.Parent().SpanID() == run.SpanContext().SpanID():
			event = s
		default:
			worker = s
		}
	}
	for name, s := range map[string]sdktrace.ReadOnlySpan{"run": run, "flaky": flakySpan, "event": event, "call": call, "worker": worker} {
		if s == nil {
			t.Fatalf("no %s span among %d", name, len(sr.Ended()))
		}
		if s.SpanContext().TraceID() != run.SpanContext().TraceID() {
			t.Errorf("%s span in trace %v, want %v", name, s.SpanContext().TraceID(), run.SpanContext().TraceID())
		}
	}
	if run.Parent().IsValid() {
		t.Error("the run span has a parent")
	}
	for _, c := range []struct {
		name          string
		child, parent sdktrace.ReadOnlySpan
	}{{"flaky", flakySpan, run}, {"event", event, run}, {"call", call, event}, {"worker", worker, call}} {
		if c.child.Parent().SpanID() != c.parent.SpanContext().SpanID() {
			t.Errorf("%s span: got parent %v, want %v", c.name, c.child.Parent().SpanID(), c.parent.SpanContext().SpanID())
		}
	}
	if n := len(flakySpan.Events()); n != 1 {
		t.Errorf("flaky span has %d events, want 1 retry", n)
	}
	// The worker recorded the run under the caller's call id, with the
	// span, the run id and its span's times.
	callID := gotRunID.Load().(string) + "/score/2/call-1"
	if m, ok := rec.Network().Metrics(callID); !ok || m.Span.SpanID != call.SpanContext().SpanID() {
		t.Errorf("caller's operation %q: got %+v (found %v), want the client span's id", callID, m, ok)
	}
	wm, ok := workerRec.Metrics(callID)
	if !ok {
		t.Fatalf("the worker has no record of %q", callID)
	}
	if wm.Span.SpanID != worker.SpanContext().SpanID() || wm.PipelineID != gotRunID.Load() || wm.Status != telemetry.StatusCompleted {
		t.Errorf("worker record %+v, want span %v and run %v", wm, worker.SpanContext().SpanID(), gotRunID.Load())
	}
	if !wm.StartTime.Equal(worker.StartTime()) || !wm.EndTime.Equal(worker.EndTime()) {
		t.Errorf("worker record %v-%v, span %v-%v: want equal", wm.StartTime, wm.EndTime, worker.StartTime(), worker.EndTime())
	}
}

func TestWorkerTracerNeedsRecorder(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	if _, err := pipeline.NewWorker(pipeline.WorkerConfig{TracerProvider: tp}); err == nil {
		t.Error("got nil, want an error for a TracerProvider without a Recorder")
	}
}

func TestWorkerRecordsUntraced(t *testing.T) {
	rec := newRecorder(t)
	addr := serveWorker(t, pipeline.WorkerConfig{Recorder: rec},
		pipeline.Func("score", func(context.Context, any) (any, error) { return nil, errors.New("bad") }))
	code, _, _ := post(t, "POST", addr+"/events", `{"event":"score","task_id":"r/score/1","run_id":"r"}`)
	if code != 500 {
		t.Fatalf("got %d, want 500", code)
	}
	m, ok := rec.Metrics("r/score/1")
	if !ok || m.Status != telemetry.StatusFailed || m.Error != "bad" || m.PipelineID != "r" {
		t.Errorf("got %+v (found %v), want a failed record of run r", m, ok)
	}
}

// TestUnsampledRunRecordedUntraced runs a traced pipeline whose run the
// sampler drops, with a retried event, a failing one and a remote one on
// a traced worker, and checks that no span is ended anywhere while every
// run is recorded as an untraced pipeline records it: retries, errors,
// run id and process id, and no span context.
func TestUnsampledRunRecordedUntraced(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithSampler(sdktrace.NeverSample()))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	prop := propagation.TraceContext{}

	workerRec := newRecorder(t)
	addr := serveWorker(t, pipeline.WorkerConfig{Recorder: workerRec, TracerProvider: tp, Propagator: prop},
		pipeline.Func("score", func(context.Context, any) (any, error) { return 7, nil }))
	remote := remoteTo(t, "score", addr)
	var runID atomic.Value
	attempts := 0
	flaky := pipeline.WithRetry(pipeline.Func("flaky", func(ctx context.Context, _ any) (any, error) {
		if task, ok := pipeline.TaskFrom(ctx); ok {
			runID.Store(task.RunID)
		}
		if attempts++; attempts == 1 {
			return nil, errors.New("first try fails")
		}
		return 1, nil
	}), telemetry.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond})
	failing := pipeline.Func("failing", func(context.Context, any) (any, error) { return nil, errors.New("broken") })
	rec := newRecorder(t)
	p, err := pipeline.New(pipeline.Config{Recorder: rec, TracerProvider: tp, Propagator: prop, ProcessID: 42},
		pipeline.Sequence(flaky, remote, failing))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(context.Background(), 1); err == nil {
		t.Fatal("got nil, want the failing event's error")
	}
	if err := p.Telemetry().Err(); err != nil {
		t.Fatalf("recording error: %v", err)
	}
	if n := len(sr.Ended()); n != 0 {
		t.Errorf("got %d ended spans, want none in a run the sampler dropped", n)
	}
	id, _ := runID.Load().(string)
	for _, c := range []struct {
		task    string
		status  telemetry.Status
		retries int
		errText string
	}{
		{id + "/flaky/1", telemetry.StatusCompleted, 1, ""},
		{id + "/score/2", telemetry.StatusCompleted, 0, ""},
		{id + "/failing/3", telemetry.StatusFailed, 0, "broken"},
	} {
		m, ok := rec.Metrics(c.task)
		if !ok || m.Status != c.status || m.RetryCount != c.retries || m.Error != c.errText ||
			m.PipelineID != id || m.ProcessID != 42 || m.Span.IsValid() {
			t.Errorf("%s: got %+v (found %v), want status %v, %d retries, error %q, run %s, process 42, no span",
				c.task, m, ok, c.status, c.retries, c.errText, id)
		}
	}
	callID := id + "/score/2/call-1"
	if m, ok := rec.Network().Metrics(callID); !ok || m.Status != telemetry.StatusCompleted || m.Span.IsValid() {
		t.Errorf("caller's operation %q: got %+v (found %v), want a completed one without span", callID, m, ok)
	}
	if m, ok := workerRec.Metrics(callID); !ok || m.Status != telemetry.StatusCompleted || m.PipelineID != id || m.Span.IsValid() {
		t.Errorf("worker record %q: got %+v (found %v), want a completed run of %s without span", callID, m, ok, id)
	}
}

// remoteTo returns the remote event name run by the worker at addr, a URL
// that serveWorker returned.
func remoteTo(t *testing.T, name, addr string) pipeline.Event {
	t.Helper()
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	remote, err := pipeline.Remote(name, pipeline.RemoteConfig{Host: u.Hostname(), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	return remote
}

// TestTracerWithAnotherPropagator runs a pipeline sharing a Tracer whose
// propagator sends the trace context only, with a Config.Propagator that
// also sends baggage, and checks that the remote calls carry the baggage
// to the worker: Config.Propagator injects into the requests of remote
// events, the Tracer's only when it is nil.
func TestTracerWithAnotherPropagator(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	addr := serveWorker(t, pipeline.WorkerConfig{Propagator: prop},
		pipeline.Func("region", func(ctx context.Context, _ any) (any, error) {
			return baggage.FromContext(ctx).Member("region").Value(), nil
		}))
	rec := newRecorder(t)
	tr, err := oteltrace.New(rec, oteltrace.Config{TracerProvider: tp, Propagator: propagation.TraceContext{}})
	if err != nil {
		t.Fatal(err)
	}
	p := mustNew(t, pipeline.Config{Tracer: tr, Propagator: prop}, pipeline.Sequence(remoteTo(t, "region", addr)))
	m, err := baggage.NewMember("region", "eu-west")
	if err != nil {
		t.Fatal(err)
	}
	b, err := baggage.New(m)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(baggage.ContextWithBaggage(context.Background(), b), nil)
	if err != nil || out != "eu-west" {
		t.Errorf("got %v, %v; want the baggage member eu-west, sent by Config.Propagator", out, err)
	}
	if n := len(rec.Report().NetworkOperations); n != 1 {
		t.Errorf("got %d network operations, want the traced call recorded once", n)
	}
}

// TestFailedRunSpanStatusIsCut checks that the span of a run that failed
// with a long error has status Error with Run's error text cut as a
// record's is, not the whole text.
func TestFailedRunSpanStatusIsCut(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	long := strings.Repeat("x", 11_000)
	failing := pipeline.Func("failing", func(context.Context, any) (any, error) { return nil, errors.New(long) })
	p := mustNew(t, pipeline.Config{Recorder: newRecorder(t), TracerProvider: tp}, pipeline.Sequence(failing))
	_, err := p.Run(context.Background(), 1)
	if err == nil {
		t.Fatal("got nil, want the failing event's error")
	}
	var run sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == pipeline.RunSpanName {
			run = s
		}
	}
	if run == nil {
		t.Fatalf("no span named %q among %d", pipeline.RunSpanName, len(sr.Ended()))
	}
	st := run.Status()
	want := err.Error()[:telemetry.DefaultMaxErrorLength-len("… [truncated, 00000 bytes]")]
	if st.Code != codes.Error || len(st.Description) != telemetry.DefaultMaxErrorLength || !strings.HasPrefix(st.Description, want) ||
		!strings.HasSuffix(st.Description, "… [truncated, "+strconv.Itoa(len(err.Error()))+" bytes]") {
		t.Errorf("got status %v with %d bytes of description, want Error with Run's error text cut at %d bytes", st.Code, len(st.Description), telemetry.DefaultMaxErrorLength)
	}
}

// TestWorkerDuplicateCallID sends a recording worker, traced and not, a
// request whose call id is that of a run still in progress (a caller of
// another runtime retrying a call while the first is still running, or
// one that chose its ids badly), and checks that each run keeps a record
// of its own: the second is recorded under the id followed by "#N", and
// neither ends the other's record.
func TestWorkerDuplicateCallID(t *testing.T) {
	for _, traced := range []bool{false, true} {
		t.Run("traced "+strconv.FormatBool(traced), func(t *testing.T) {
			rec := newRecorder(t)
			cfg := pipeline.WorkerConfig{Recorder: rec}
			sr := tracetest.NewSpanRecorder()
			if traced {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
				t.Cleanup(func() { tp.Shutdown(context.Background()) })
				cfg.TracerProvider = tp
			}
			entered, release := make(chan struct{}), make(chan struct{})
			var ids []string
			w, err := pipeline.NewWorker(cfg,
				pipeline.Func("block", func(ctx context.Context, in any) (any, error) {
					entered <- struct{}{}
					<-release
					return nil, errors.New("first failed")
				}),
				pipeline.Func("echo", func(ctx context.Context, in any) (any, error) {
					task, _ := pipeline.TaskFrom(ctx)
					ids = append(ids, task.ID)
					return in, nil
				}))
			if err != nil {
				t.Fatal(err)
			}
			send := func(event string) int {
				rw := httptest.NewRecorder()
				w.ServeHTTP(rw, httptest.NewRequest("POST", "/events", strings.NewReader(`{"event":"`+event+`","call_id":"r/x/1/call-1"}`)))
				return rw.Code
			}
			first := make(chan int)
			go func() { first <- send("block") }()
			<-entered
			if code := send("echo"); code != 200 {
				t.Errorf("second run: got %d, want 200", code)
			}
			if m, ok := rec.Metrics("r/x/1/call-1"); !ok || m.Status != telemetry.StatusPending || m.EventName != "block" {
				t.Errorf("while the first runs, its record is %+v (found %v), want it pending", m, ok)
			}
			close(release)
			if code := <-first; code != 500 {
				t.Errorf("first run: got %d, want 500", code)
			}
			if m, ok := rec.Metrics("r/x/1/call-1"); !ok || m.Status != telemetry.StatusFailed || m.EventName != "block" || m.Error != "first failed" {
				t.Errorf("the first run's record is %+v (found %v), want it failed with its own error", m, ok)
			}
			if len(ids) != 1 || !strings.HasPrefix(ids[0], "r/x/1/call-1#") {
				t.Fatalf("the second run had the task ids %q, want one that starts with r/x/1/call-1#", ids)
			}
			if m, ok := rec.Metrics(ids[0]); !ok || m.Status != telemetry.StatusCompleted || m.EventName != "echo" {
				t.Errorf("the second run's record is %+v (found %v), want it completed", m, ok)
			}
			if n := w.Telemetry().Failures(); n != 0 {
				t.Errorf("%d recording calls refused (first: %v), want none", n, w.Telemetry().Err())
			}
			// One span per run: the second run's start under the id in
			// use must not leave a span of its own, failed, in the trace.
			if traced {
				var echo []string
				for _, s := range sr.Ended() {
					if s.Name() == "echo" {
						echo = append(echo, s.Status().Code.String()+" "+s.Status().Description)
					}
				}
				if len(echo) != 1 || echo[0] != "Unset " {
					t.Errorf("got the echo spans (status) %q, want one, not failed", echo)
				}
			}
		})
	}
}
