package oteltrace_test

import (
	"context"
	"errors"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/oteltrace"
)

// An opaqueProvider is a TracerProvider whose spans have only the methods
// of trace.Span: unlike the SDK's, they do not tell their start and end
// times (sdktrace.ReadOnlySpan), as the spans of other providers may not.
// The spans it wraps are the SDK's, so their processors still see them.
type opaqueProvider struct{ trace.TracerProvider }

func (p opaqueProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return opaqueTracer{p.TracerProvider.Tracer(name, opts...)}
}

type opaqueTracer struct{ trace.Tracer }

func (t opaqueTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	ctx, s := t.Tracer.Start(ctx, name, opts...)
	o := opaqueSpan{s}
	return trace.ContextWithSpan(ctx, o), o
}

// opaqueSpan embeds the interface, so it has its methods and no others.
type opaqueSpan struct{ trace.Span }

// TestTimesAgreeExactly checks that each record's start and end are
// exactly those of its exported span, to the nanosecond of the wall clock
// that exporters send and with the same duration, for the SDK's spans and
// for spans that do not tell their times.
func TestTimesAgreeExactly(t *testing.T) {
	if _, ok := any(opaqueSpan{}).(interface{ StartTime() time.Time }); ok {
		t.Fatal("opaqueSpan tells its start time")
	}
	providers := []struct {
		name string
		wrap func(trace.TracerProvider) trace.TracerProvider
	}{
		{"sdk", func(tp trace.TracerProvider) trace.TracerProvider { return tp }},
		{"opaque spans", func(tp trace.TracerProvider) trace.TracerProvider { return opaqueProvider{tp} }},
	}
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			rec, err := telemetry.NewRecorder()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rec.Close(context.Background()) })
			sr := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			tr, err := oteltrace.New(rec, oteltrace.Config{TracerProvider: p.wrap(tp)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, err := tr.StartEvent(context.Background(), "load", "t1", telemetry.WithPipelineID("run-1"))
			if err != nil {
				t.Fatal(err)
			}
			octx, err := tr.StartOperation(ctx, "t1/call", "db.internal", 5432, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.EndOperation(octx, "t1/call", 10, 20, nil); err != nil {
				t.Fatal(err)
			}
			if err := tr.EndEvent(ctx, "t1", errors.New("disk full")); err != nil {
				t.Fatal(err)
			}
			spans := sr.Ended()
			if len(spans) != 2 {
				t.Fatalf("got %d ended spans, want 2", len(spans))
			}
			op, _ := rec.Network().Metrics("t1/call")
			ev, _ := rec.Metrics("t1")
			for i, c := range []struct {
				kind       string
				start, end time.Time
				dur        time.Duration
			}{
				{"operation", op.StartTime, op.EndTime, op.Latency()},
				{"event", ev.StartTime, ev.EndTime, ev.Duration()},
			} {
				s := spans[i]
				if got, want := c.start.UnixNano(), s.StartTime().UnixNano(); got != want {
					t.Errorf("%s: record starts at %d, span at %d", c.kind, got, want)
				}
				if got, want := c.end.UnixNano(), s.EndTime().UnixNano(); got != want {
					t.Errorf("%s: record ends at %d, span at %d", c.kind, got, want)
				}
				if got, want := c.dur, s.EndTime().Sub(s.StartTime()); got != want || got < 0 {
					t.Errorf("%s: record lasts %v, span %v", c.kind, got, want)
				}
			}
		})
	}
}

// TestTracedRunAllocs locks in what a traced run allocates beyond a bare
// span of the same SDK with the same attributes: the two time.Time values
// boxed by trace.WithTimestamp (the span's start and end), less one. The
// context that StartEvent returns holds the span, the option slices of its
// start and end and its attributes, so that it takes the place of both the
// bare span's option slice and its attribute array; the record allocates
// nothing.
func TestTracedRunAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discard{}))
	rec, err := telemetry.NewRecorder(telemetry.WithMaxEvents(16), telemetry.WithMaxNetworkOps(16))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close(context.Background())
	tr, err := oteltrace.New(rec, oteltrace.Config{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, bare := context.Background(), tp.Tracer("bare")
	client := trace.WithSpanKind(trace.SpanKindClient) // made once, as the Tracer does

	const extra = 2 - 1 // the boxed start and end times, less the bare span's attribute array
	tests := []struct {
		name        string
		bare, trace func()
	}{
		{
			name: "event",
			bare: func() {
				_, s := bare.Start(ctx, "load", trace.WithAttributes(oteltrace.TaskIDKey.String("t1")))
				s.End()
			},
			trace: func() {
				sctx, err := tr.StartEvent(ctx, "load", "t1")
				if err != nil {
					t.Fatal(err)
				}
				if err := tr.EndEvent(sctx, "t1", nil); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "operation",
			bare: func() {
				_, s := bare.Start(ctx, telemetry.DefaultOperation, client,
					trace.WithAttributes(oteltrace.ServerAddressKey.String("h"), oteltrace.ServerPortKey.Int(1),
						oteltrace.OperationKey.String(telemetry.DefaultOperation), oteltrace.TaskIDKey.String("c1")))
				s.SetAttributes(oteltrace.BytesSentKey.Int64(1), oteltrace.BytesReceivedKey.Int64(2))
				s.End()
			},
			trace: func() {
				octx, err := tr.StartOperation(ctx, "c1", "h", 1, "")
				if err != nil {
					t.Fatal(err)
				}
				if err := tr.EndOperation(octx, "c1", 1, 2, nil); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 64 { // fill the Recorder's buffers first
				tc.trace()
			}
			b, traced := testing.AllocsPerRun(100, tc.bare), testing.AllocsPerRun(100, tc.trace)
			if traced != b+extra {
				t.Errorf("a traced run allocates %v times, a bare span %v: want %d more", traced, b, extra)
			}
		})
	}
}

// TestUnsampledRunAllocs checks that runs under a parent span that is not
// sampled allocate what runs recorded without a Tracer do: nothing, once
// the Tracer has seen the parent.
func TestUnsampledRunAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	rec, err := telemetry.NewRecorder(telemetry.WithMaxEvents(16))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close(context.Background())
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discard{}))
	tr, err := oteltrace.New(rec, oteltrace.Config{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	parent := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2},
	}))
	off := func() {
		if err := rec.StartEvent("load", "t1"); err != nil {
			t.Fatal(err)
		}
		if err := rec.EndEvent("t1", nil); err != nil {
			t.Fatal(err)
		}
	}
	unsampled := func() {
		ctx, err := tr.StartEvent(parent, "load", "t1")
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.EndEvent(ctx, "t1", nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 64 { // fill the Recorder's buffers first
		unsampled()
	}
	if o, u := testing.AllocsPerRun(100, off), testing.AllocsPerRun(100, unsampled); u != o {
		t.Errorf("a run under an unsampled parent allocates %v times, an untraced run %v", u, o)
	}
}
