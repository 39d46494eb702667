package oteltrace_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/nettrace"
	"github.com/eventpipeline/eventpipeline/telemetry/oteltrace"
)

// setup returns a Recorder, a Tracer on it and the recorder of the spans
// its SDK provider ended.
func setup(t *testing.T, opts ...sdktrace.TracerProviderOption) (*telemetry.Recorder, *oteltrace.Tracer, *tracetest.SpanRecorder) {
	t.Helper()
	rec, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(sr)}, opts...)...)
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	tr, err := oteltrace.New(rec, oteltrace.Config{TracerProvider: tp, Propagator: propagation.TraceContext{}})
	if err != nil {
		t.Fatal(err)
	}
	return rec, tr, sr
}

func attrs(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

func TestEventSpanMatchesRecord(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		retries int
	}{
		{name: "completed"},
		{name: "failed", err: errors.New("disk full")},
		{name: "retried then completed", retries: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, tr, sr := setup(t)
			parentCtx, parent := sdktrace.NewTracerProvider().Tracer("test").Start(context.Background(), "caller")
			ctx, err := tr.StartEvent(parentCtx, "load", "run-1/load", telemetry.WithProcessID(42), telemetry.WithPipelineID("run-1"))
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.retries {
				if err := tr.RecordRetry(ctx, "run-1/load", errors.New("try "+strconv.Itoa(i+1))); err != nil {
					t.Fatal(err)
				}
			}
			if err := tr.EndEvent(ctx, "run-1/load", tc.err); err != nil {
				t.Fatal(err)
			}
			spans := sr.Ended()
			if len(spans) != 1 {
				t.Fatalf("got %d ended spans, want 1", len(spans))
			}
			s := spans[0]
			m, ok := rec.Metrics("run-1/load")
			if !ok {
				t.Fatal("no record")
			}
			if !wallEqual(s.StartTime(), m.StartTime) || !wallEqual(s.EndTime(), m.EndTime) {
				t.Errorf("span %v-%v, record %v-%v: want equal", s.StartTime(), s.EndTime(), m.StartTime, m.EndTime)
			}
			sc := s.SpanContext()
			if m.Span.TraceID != sc.TraceID() || m.Span.SpanID != sc.SpanID() || !m.Span.Sampled {
				t.Errorf("record span %+v, want the span's %v", m.Span, sc)
			}
			if got, want := s.Parent().SpanID(), parent.SpanContext().SpanID(); got != want {
				t.Errorf("got parent %v, want %v", got, want)
			}
			if s.Parent().TraceID() != sc.TraceID() {
				t.Error("the span is not in its parent's trace")
			}
			if s.Name() != "load" || s.SpanKind() != trace.SpanKindInternal {
				t.Errorf("got name %q kind %v, want load internal", s.Name(), s.SpanKind())
			}
			a := attrs(s.Attributes())
			want := map[string]string{"eventpipeline.task.id": "run-1/load", "eventpipeline.pipeline.run_id": "run-1",
				"process.pid": "42", "eventpipeline.event.retry_count": strconv.Itoa(tc.retries)}
			if tc.retries == 0 {
				want["eventpipeline.event.retry_count"] = "" // set only if there were retries
			}
			for k, v := range want {
				if a[k] != v {
					t.Errorf("attribute %s: got %q, want %q", k, a[k], v)
				}
			}
			if tc.err != nil {
				if s.Status().Code != codes.Error || s.Status().Description != tc.err.Error() {
					t.Errorf("got status %+v, want Error %q", s.Status(), tc.err)
				}
			} else if s.Status().Code != codes.Unset {
				t.Errorf("got status %+v, want Unset", s.Status())
			}
			if len(s.Events()) != tc.retries {
				t.Fatalf("got %d span events, want %d", len(s.Events()), tc.retries)
			}
			for i, ev := range s.Events() {
				a := attrs(ev.Attributes)
				if ev.Name != "retry" || a["eventpipeline.retry.attempt"] != strconv.Itoa(i+1) || a["eventpipeline.retry.error"] != "try "+strconv.Itoa(i+1) {
					t.Errorf("event %d: got %s %v", i, ev.Name, a)
				}
			}
		})
	}
}

func TestRefusedStartEndsSpan(t *testing.T) {
	_, tr, sr := setup(t)
	ctx, err := tr.StartEvent(context.Background(), "load", "")
	if !errors.Is(err, telemetry.ErrEmptyTaskID) {
		t.Fatalf("got %v, want ErrEmptyTaskID", err)
	}
	if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		t.Error("the returned ctx has no span")
	}
	spans := sr.Ended()
	if len(spans) != 1 || spans[0].Status().Code != codes.Error {
		t.Fatalf("got %d spans (%v), want 1 ended with status Error", len(spans), spans)
	}
	// Ending with that ctx ends no span a second time.
	tr.EndEvent(ctx, "", nil)
	if n := len(sr.Ended()); n != 1 {
		t.Errorf("got %d ended spans, want 1", n)
	}
}

func TestRefusedEndEndsSpan(t *testing.T) {
	rec, tr, sr := setup(t)
	ctx, err := tr.StartEvent(context.Background(), "load", "t1")
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tr.EndEvent(ctx, "t1", nil); !errors.Is(err, telemetry.ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
	spans := sr.Ended()
	if len(spans) != 1 || spans[0].Status().Code != codes.Error {
		t.Fatalf("got %d spans, want 1 ended with status Error", len(spans))
	}
}

func TestUnsampled(t *testing.T) {
	rec, tr, sr := setup(t, sdktrace.WithSampler(sdktrace.NeverSample()))
	ctx, err := tr.StartEvent(context.Background(), "load", "t1")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.EndEvent(ctx, "t1", nil); err != nil {
		t.Fatal(err)
	}
	m, _ := rec.Metrics("t1")
	if m.Span.IsValid() {
		t.Errorf("got record span %+v, want none for a span that is not sampled", m.Span)
	}
	if n := len(sr.Ended()); n != 0 {
		t.Errorf("got %d spans, want 0", n)
	}
	// A run under a parent that is not sampled gets no span at all, and
	// keeps the parent in its context for what it calls.
	parent := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2},
	}))
	cctx, err := tr.StartEvent(parent, "load", "t2")
	if err != nil {
		t.Fatal(err)
	}
	if !trace.SpanContextFromContext(cctx).Equal(trace.SpanContextFromContext(parent)) {
		t.Error("the run under an unsampled parent got a span of its own")
	}
	if err := tr.EndEvent(cctx, "t2", nil); err != nil {
		t.Fatal(err)
	}
	if m, _ := rec.Metrics("t2"); m.Span.IsValid() || m.Status != telemetry.StatusCompleted {
		t.Errorf("got %+v, want a completed run without span", m)
	}
}

func TestNoopProvider(t *testing.T) {
	rec, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close(context.Background())
	tr, err := oteltrace.New(rec, oteltrace.Config{TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := tr.StartEvent(context.Background(), "load", "t1")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.EndEvent(ctx, "t1", nil); err != nil {
		t.Fatal(err)
	}
	if m, _ := rec.Metrics("t1"); m.Span.IsValid() || m.Status != telemetry.StatusCompleted {
		t.Errorf("got %+v, want a completed record without span", m)
	}
}

func TestNewErrors(t *testing.T) {
	rec, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oteltrace.New(rec, oteltrace.Config{}); !errors.Is(err, oteltrace.ErrNoTracerProvider) {
		t.Errorf("got %v, want ErrNoTracerProvider", err)
	}
	rec.Close(context.Background())
}

// TestEndEndsOnlyItsOwnSpan checks that a ctx whose span the Tracer did not
// start (the caller's) has no span ended by EndEvent, and that an
// operation's ctx ends no event span.
func TestEndEndsOnlyItsOwnSpan(t *testing.T) {
	rec, tr, sr := setup(t)
	tp := sdktrace.NewTracerProvider()
	ctx, caller := tp.Tracer("caller").Start(context.Background(), "caller")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rec.StartEvent("load", "t1"))
	must(tr.EndEvent(ctx, "t1", nil)) // recorded, no span of the Tracer in ctx
	if !caller.IsRecording() {
		t.Error("EndEvent ended the caller's span")
	}
	octx, err := tr.StartOperation(ctx, "c1", "h", 80, "")
	must(err)
	must(rec.StartEvent("load", "t2"))
	must(tr.EndEvent(octx, "t2", nil))
	if n := len(sr.Ended()); n != 0 {
		t.Errorf("EndEvent ended %d spans, want none", n)
	}
	must(tr.EndOperation(octx, "c1", 1, 2, nil))
	if n := len(sr.Ended()); n != 1 {
		t.Errorf("got %d ended spans, want the operation's", n)
	}
}

func TestTransportClientSpan(t *testing.T) {
	var gotParent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotParent = r.Header.Get("traceparent")
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "hello")
	}))
	t.Cleanup(srv.Close)
	rec, tr, sr := setup(t)
	ctx, err := tr.StartEvent(context.Background(), "fetch", "t1")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &nettrace.Transport{Network: tr.Network()}}
	req, _ := http.NewRequestWithContext(nettrace.WithTaskID(ctx, "t1/call-1"), http.MethodPost, srv.URL, stringsReader("abc"))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if req.Header.Get("traceparent") != "" {
		t.Error("the caller's request was modified")
	}
	if err := tr.EndEvent(ctx, "t1", nil); err != nil {
		t.Fatal(err)
	}
	spans := sr.Ended()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2", len(spans))
	}
	client0, event := spans[0], spans[1]
	if client0.SpanKind() != trace.SpanKindClient || client0.Parent().SpanID() != event.SpanContext().SpanID() {
		t.Errorf("got kind %v parent %v, want a client child of %v", client0.SpanKind(), client0.Parent().SpanID(), event.SpanContext().SpanID())
	}
	want := "00-" + client0.SpanContext().TraceID().String() + "-" + client0.SpanContext().SpanID().String() + "-01"
	if gotParent != want {
		t.Errorf("server got traceparent %q, want %q", gotParent, want)
	}
	m, ok := rec.Network().Metrics("t1/call-1")
	if !ok {
		t.Fatal("no network record")
	}
	if !wallEqual(client0.StartTime(), m.StartTime) || !wallEqual(client0.EndTime(), m.EndTime) {
		t.Errorf("span %v-%v, record %v-%v: want equal", client0.StartTime(), client0.EndTime(), m.StartTime, m.EndTime)
	}
	a := attrs(client0.Attributes())
	u := srv.Listener.Addr().String()
	_, port, _ := splitHostPort(u)
	for k, v := range map[string]string{"server.address": "127.0.0.1", "server.port": port,
		"eventpipeline.network.bytes_sent": "3", "eventpipeline.network.bytes_received": "5",
		"eventpipeline.network.operation": "http_request", "eventpipeline.task.id": "t1/call-1"} {
		if a[k] != v {
			t.Errorf("attribute %s: got %q, want %q", k, a[k], v)
		}
	}
}

func TestOperationFailed(t *testing.T) {
	_, tr, sr := setup(t)
	ctx, err := tr.StartOperation(context.Background(), "t1", "db.internal", 5432, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.EndOperation(ctx, "t1", 1, 2, errors.New("reset")); err != nil {
		t.Fatal(err)
	}
	s := sr.Ended()
	if len(s) != 1 || s[0].Name() != telemetry.DefaultOperation || s[0].Status().Code != codes.Error || s[0].Status().Description != "reset" {
		t.Fatalf("got %v, want one failed span %q", s, telemetry.DefaultOperation)
	}
}

func TestTracerConcurrentSafe(t *testing.T) {
	rec, tr, sr := setup(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				id := strconv.Itoa(g) + "/" + strconv.Itoa(i)
				ctx, err := tr.StartEvent(context.Background(), "e", id)
				if err != nil {
					t.Error(err)
					return
				}
				tr.RecordRetry(ctx, id, nil)
				octx, _ := tr.StartOperation(ctx, id, "h", 1, "")
				tr.EndOperation(octx, id, 0, 0, nil)
				tr.EndEvent(ctx, id, nil)
			}
		})
	}
	wg.Wait()
	if n := len(sr.Ended()); n != 1600 {
		t.Errorf("got %d ended spans, want 1600", n)
	}
	if s := rec.Stats(); s.EventsEnded != 800 {
		t.Errorf("got %d events, want 800", s.EventsEnded)
	}
}

// TestEndTwice checks that a run's context ends its span once: of two
// EndEvent calls, after each other or at the same time, the Recorder
// refuses one, and the span ends once. After each other, the second leaves
// the span as the first ended it; at the same time, the one that ends the
// span may be the one the Recorder refuses, which the span's status then
// says.
func TestEndTwice(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		t.Run("concurrent="+strconv.FormatBool(concurrent), func(t *testing.T) {
			_, tr, sr := setup(t)
			ctx, err := tr.StartEvent(context.Background(), "load", "t1")
			if err != nil {
				t.Fatal(err)
			}
			errs := make([]error, 2)
			if concurrent {
				var wg sync.WaitGroup
				for i := range errs {
					wg.Go(func() { errs[i] = tr.EndEvent(ctx, "t1", nil) })
				}
				wg.Wait()
			} else {
				for i := range errs {
					errs[i] = tr.EndEvent(ctx, "t1", nil)
				}
			}
			refused := 0
			for _, err := range errs {
				switch {
				case errors.Is(err, telemetry.ErrAlreadyEnded):
					refused++
				case err != nil:
					t.Errorf("got %v, want nil or ErrAlreadyEnded", err)
				}
			}
			if refused != 1 {
				t.Errorf("got %d ends refused (%v), want 1", refused, errs)
			}
			spans := sr.Ended()
			if len(spans) != 1 {
				t.Fatalf("got %d ended spans, want 1", len(spans))
			}
			if st := spans[0].Status(); st.Code != codes.Unset && (!concurrent || st.Code != codes.Error) {
				t.Errorf("got status %+v, want Unset", st)
			}
		})
	}
}

// TestEndThroughDerivedContext checks that a context derived from the one
// StartEvent returned, with values and cancellation of its own, still
// ends the run's span, and that the run's context behaves as its parent.
func TestEndThroughDerivedContext(t *testing.T) {
	rec, tr, sr := setup(t)
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "parent value"))
	ctx, err := tr.StartEvent(parent, "load", "t1")
	if err != nil {
		t.Fatal(err)
	}
	if got := ctx.Value(key{}); got != "parent value" {
		t.Errorf("got value %v, want the parent's", got)
	}
	child, stop := context.WithCancel(context.WithValue(ctx, key{}, "child value"))
	defer stop()
	cancel()
	<-child.Done() // the parent's cancellation reaches through the run's context
	if !errors.Is(child.Err(), context.Canceled) {
		t.Errorf("got %v, want context.Canceled", child.Err())
	}
	if err := tr.EndEvent(child, "t1", nil); err != nil {
		t.Fatal(err)
	}
	spans := sr.Ended()
	if len(spans) != 1 || spans[0].Name() != "load" {
		t.Fatalf("got %v, want the run's span ended", spans)
	}
	if m, _ := rec.Metrics("t1"); !wallEqual(m.EndTime, spans[0].EndTime()) {
		t.Errorf("record ends at %v, span at %v", m.EndTime, spans[0].EndTime())
	}
}

// sliceCtx is a context of a type that == cannot compare (it panics).
type sliceCtx struct {
	context.Context
	s []int
}

// TestUnsampledParentsInTurn checks that runs under parents that are not
// sampled, in turn with runs under a sampled one and with each other, each
// get no span and keep their parent, however often the same parent comes
// back, and that the runs under the sampled parent are traced; a parent of
// a type that == cannot compare is no trouble.
func TestUnsampledParentsInTurn(t *testing.T) {
	rec, tr, sr := setup(t)
	withSpan := func(span byte, flags trace.TraceFlags) context.Context {
		return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{span}, SpanID: trace.SpanID{span}, TraceFlags: flags,
		}))
	}
	a, b, sampled := withSpan(1, 0), withSpan(2, 0), withSpan(3, trace.FlagsSampled)
	parents := []context.Context{a, a, b, sampled, sliceCtx{a, []int{1}}, sliceCtx{a, []int{2}}, a, sampled, b, b}
	wantSpans := 0
	for i, parent := range append(parents, parents...) {
		id := "t" + strconv.Itoa(i)
		ctx, err := tr.StartEvent(parent, "load", id)
		if err != nil {
			t.Fatal(err)
		}
		psc, sc := trace.SpanContextFromContext(parent), trace.SpanContextFromContext(ctx)
		if psc.IsSampled() {
			wantSpans++
			if sc.TraceID() != psc.TraceID() || sc.SpanID() == psc.SpanID() {
				t.Errorf("run %d: got span context %v under the sampled parent %v, want a child", i, sc, psc)
			}
		} else if !sc.Equal(psc) {
			t.Errorf("run %d: got span context %v under the unsampled parent %v, want the parent's", i, sc, psc)
		}
		if err := tr.EndEvent(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
		m, _ := rec.Metrics(id)
		if m.Status != telemetry.StatusCompleted || m.Span.IsValid() != psc.IsSampled() {
			t.Errorf("run %d: got %+v, want a completed run, traced only under the sampled parent", i, m)
		}
		if n := len(sr.Ended()); n != wantSpans {
			t.Fatalf("run %d: got %d ended spans, want %d", i, n, wantSpans)
		}
	}
}

// TestUnsampledRunContext checks that the context StartEvent returns for a
// run under an unsampled parent behaves as the parent (values, span,
// deadline, cancellation), and that the run's operations and nested runs,
// started in it or in a context derived from it, get no span either, and
// end, as the run does, through it or a derived context.
func TestUnsampledRunContext(t *testing.T) {
	rec, tr, sr := setup(t)
	type key struct{}
	psc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}})
	parent, cancel := context.WithDeadline(
		trace.ContextWithSpanContext(context.WithValue(context.Background(), key{}, "v"), psc),
		time.Now().Add(time.Hour))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 { // the same parent twice
		id := strconv.Itoa(round)
		ctx, err := tr.StartEvent(parent, "load", "run"+id)
		must(err)
		if ctx.Value(key{}) != "v" || !trace.SpanContextFromContext(ctx).Equal(psc) {
			t.Errorf("round %d: the run's context lacks the parent's value or span", round)
		}
		d, ok := ctx.Deadline()
		if pd, _ := parent.Deadline(); !ok || !d.Equal(pd) {
			t.Errorf("round %d: got deadline %v, want the parent's %v", round, d, pd)
		}
		derived := context.WithValue(ctx, key{}, "derived")
		octx, err := tr.StartOperation(derived, "call"+id, "h", 80, "")
		must(err)
		nctx, err := tr.StartEvent(ctx, "nested", "nested"+id)
		must(err)
		must(tr.EndEvent(nctx, "nested"+id, nil))
		must(tr.EndOperation(octx, "call"+id, 1, 2, nil))
		must(tr.EndEvent(derived, "run"+id, errors.New("failed")))
		for _, task := range []string{"run" + id, "nested" + id} {
			if m, _ := rec.Metrics(task); m.Span.IsValid() || m.Status == telemetry.StatusPending {
				t.Errorf("round %d: got %+v, want an ended run without span", round, m)
			}
		}
		if m, _ := rec.Network().Metrics("call" + id); m.Span.IsValid() || m.Status != telemetry.StatusCompleted {
			t.Errorf("round %d: got %+v, want a completed operation without span", round, m)
		}
	}
	if n := len(sr.Ended()); n != 0 {
		t.Errorf("got %d ended spans, want none", n)
	}
	ctx, err := tr.StartEvent(parent, "load", "last")
	must(err)
	cancel()
	<-ctx.Done() // the parent's cancellation reaches the run's context
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("got %v, want context.Canceled", ctx.Err())
	}
	must(tr.EndEvent(ctx, "last", nil))
}

// dropNamed is a sampler that drops the spans of one name and samples
// the others.
type dropNamed string

func (d dropNamed) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if p.Name == string(d) {
		return sdktrace.SamplingResult{Decision: sdktrace.Drop}
	}
	return sdktrace.AlwaysSample().ShouldSample(p)
}

func (d dropNamed) Description() string { return "drop " + string(d) }

// TestNestedRunEndsOnlyItsOwnSpan checks that a run nested in another,
// whose start made no span of its own (the sampler dropped it, or the
// Recorder refused the start), neither ends nor adds retries to the span
// of the run it is nested in, whose context it carries; and that a run
// ended through the context of a run nested in it ends its own span.
func TestNestedRunEndsOnlyItsOwnSpan(t *testing.T) {
	rec, tr, sr := setup(t, sdktrace.WithSampler(dropNamed("dropped")))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	octx, err := tr.StartEvent(context.Background(), "outer", "o1")
	must(err)

	// A nested run whose span the sampler dropped.
	dctx, err := tr.StartEvent(octx, "dropped", "d1")
	must(err)
	must(tr.RecordRetry(dctx, "d1", errors.New("try again")))
	must(tr.EndEvent(dctx, "d1", errors.New("failed")))
	// A nested run whose start the Recorder refused: its span ends at
	// once, with status Error.
	must(rec.StartEvent("direct", "pending"))
	rctx, err := tr.StartEvent(octx, "refused", "pending")
	if !errors.Is(err, telemetry.ErrAlreadyStarted) {
		t.Fatalf("got %v, want ErrAlreadyStarted", err)
	}
	must(tr.EndEvent(rctx, "pending", nil)) // ends the run recorded directly
	// A nested operation whose span the sampler dropped.
	opctx, err := tr.StartOperation(octx, "c1", "h", 80, "dropped")
	must(err)
	must(tr.EndOperation(opctx, "c1", 1, 2, nil))
	if spans := sr.Ended(); len(spans) != 1 || spans[0].Name() != "refused" {
		t.Fatalf("got %d ended spans (%v), want the refused start's alone", len(spans), spans)
	}

	// The outer run, ended through the context of a run nested in it that
	// has a span of its own, still open.
	ictx, err := tr.StartEvent(octx, "inner", "i1")
	must(err)
	must(tr.EndEvent(ictx, "o1", nil))
	spans := sr.Ended()
	if len(spans) != 2 || spans[1].Name() != "outer" {
		t.Fatalf("got %d ended spans (%v), want the outer run's second", len(spans), spans)
	}
	outer := spans[1]
	if n := len(outer.Events()); n != 0 {
		t.Errorf("the outer span has %d events, want none (the retry was the dropped run's)", n)
	}
	if outer.Status().Code != codes.Unset {
		t.Errorf("the outer span has status %+v, want Unset", outer.Status())
	}
	if m, _ := rec.Metrics("o1"); !wallEqual(m.EndTime, outer.EndTime()) {
		t.Errorf("the outer record ends at %v, its span at %v", m.EndTime, outer.EndTime())
	}
	must(tr.EndEvent(ictx, "i1", nil))
	if spans := sr.Ended(); len(spans) != 3 || spans[2].Name() != "inner" {
		t.Fatalf("got %d ended spans (%v), want the inner run's third", len(spans), spans)
	}
}

// A failed run's and a failed operation's span has the record's error
// text as its status description, as the package doc says: the text the
// Recorder keeps, cut at WithMaxErrorLength, or "unknown error" for an
// error without text.
func TestFailedSpanHasRecordErrorText(t *testing.T) {
	long := errors.New(strings.Repeat("disk full; ", 1000))
	tests := []struct {
		name string
		err  error
	}{
		{name: "empty text", err: errors.New("")},
		{name: "long text", err: long},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, tr, sr := setup(t)
			ctx, err := tr.StartEvent(context.Background(), "load", "t1")
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.EndEvent(ctx, "t1", tc.err); err != nil {
				t.Fatal(err)
			}
			ctx, err = tr.StartOperation(context.Background(), "t1/call-1", "db.internal", 5432, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.EndOperation(ctx, "t1/call-1", 1, 2, tc.err); err != nil {
				t.Fatal(err)
			}
			m, _ := rec.Metrics("t1")
			op, _ := rec.Network().Metrics("t1/call-1")
			if m.Error == "" || op.Error == "" {
				t.Fatalf("the records have error texts %q and %q", m.Error, op.Error)
			}
			spans := sr.Ended()
			if len(spans) != 2 {
				t.Fatalf("got %d spans, want 2", len(spans))
			}
			for i, want := range []string{m.Error, op.Error} {
				if s := spans[i].Status(); s.Code != codes.Error || s.Description != want {
					t.Errorf("span %q: got status %v with %d bytes %.40q..., want Error with the record's %d bytes %.40q...",
						spans[i].Name(), s.Code, len(s.Description), s.Description, len(want), want)
				}
			}
		})
	}
}

// A retry's span event carries the error text cut as a record's is, at
// telemetry.DefaultMaxErrorLength with the same marker, not the whole text
// however long: the retry event of an 11,000-byte error has the text that
// the failed run's record keeps of it.
func TestRetryEventErrorTextCut(t *testing.T) {
	long := errors.New(strings.Repeat("0123456789", 1100)) // 11,000 bytes
	rec, tr, sr := setup(t)
	ctx, err := tr.StartEvent(context.Background(), "load", "t1")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.RecordRetry(ctx, "t1", long); err != nil {
		t.Fatal(err)
	}
	if err := tr.EndEvent(ctx, "t1", long); err != nil {
		t.Fatal(err)
	}
	m, _ := rec.Metrics("t1")
	if len(m.Error) > telemetry.DefaultMaxErrorLength || !strings.HasSuffix(m.Error, "[truncated, 11000 bytes]") {
		t.Fatalf("the record keeps %d bytes %q...", len(m.Error), m.Error[len(m.Error)-40:])
	}
	spans := sr.Ended()
	if len(spans) != 1 || len(spans[0].Events()) != 1 {
		t.Fatalf("got %d spans, want 1 with 1 event", len(spans))
	}
	var got string
	for _, a := range spans[0].Events()[0].Attributes {
		if a.Key == oteltrace.RetryErrorKey {
			got = a.Value.AsString()
		}
	}
	if got != m.Error {
		t.Errorf("got retry error of %d bytes ending %q, want the record's %d bytes ending %q",
			len(got), got[max(0, len(got)-40):], len(m.Error), m.Error[len(m.Error)-40:])
	}
}
