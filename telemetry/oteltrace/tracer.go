package oteltrace

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// Attribute keys of the spans, beside the semantic conventions'
// server.address, server.port and process.pid. The package doc lists which
// span carries which.
const (
	TaskIDKey        = attribute.Key("eventpipeline.task.id")
	PipelineRunIDKey = attribute.Key("eventpipeline.pipeline.run_id")
	RetryCountKey    = attribute.Key("eventpipeline.event.retry_count")
	OperationKey     = attribute.Key("eventpipeline.network.operation")
	BytesSentKey     = attribute.Key("eventpipeline.network.bytes_sent")
	BytesReceivedKey = attribute.Key("eventpipeline.network.bytes_received")
	RetryAttemptKey  = attribute.Key("eventpipeline.retry.attempt")
	RetryErrorKey    = attribute.Key("eventpipeline.retry.error")
	ProcessPIDKey    = attribute.Key("process.pid")
	ServerAddressKey = attribute.Key("server.address")
	ServerPortKey    = attribute.Key("server.port")
)

// RetryEventName is the name of the span event that [Tracer.RecordRetry]
// adds.
const RetryEventName = "retry"

// A Tracer records event runs and network operations into a
// [telemetry.Recorder] and traces each with an OpenTelemetry span whose
// start and end are the record's. Make one with [New].
type Tracer struct {
	rec    *telemetry.Recorder
	tp     trace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	net    Network
}

// New returns a new Tracer that records into rec and traces with
// cfg.TracerProvider. Recording through rec directly still works; such
// runs are not traced.
//
// It returns an error wrapping [ErrNoTracerProvider] if cfg has no
// TracerProvider. A nil rec is a programmer error: New panics.
func New(rec *telemetry.Recorder, cfg Config) (*Tracer, error) {
	if rec == nil {
		panic("oteltrace: New(nil, ...)")
	}
	if cfg.TracerProvider == nil {
		return nil, ErrNoTracerProvider
	}
	t := &Tracer{
		rec:    rec,
		tp:     cfg.TracerProvider,
		tracer: cfg.TracerProvider.Tracer(ScopeName),
		prop:   cfg.Propagator,
	}
	if t.prop == nil {
		t.prop = otel.GetTextMapPropagator()
	}
	t.net.t = t
	return t, nil
}

// Recorder returns the Recorder t records into.
func (t *Tracer) Recorder() *telemetry.Recorder { return t.rec }

// TracerProvider returns the provider t traces with.
func (t *Tracer) TracerProvider() trace.TracerProvider { return t.tp }

// Propagator returns the propagator t injects with.
func (t *Tracer) Propagator() propagation.TextMapPropagator { return t.prop }

// StartEvent starts a span named eventName, a child of the span in ctx (a
// root span if there is none), and records the start of the run of
// eventName identified by taskID into the Recorder, with the span's start
// time and span context added to opts. It returns ctx with the span, to
// pass to the run's code, to [Tracer.RecordRetry] and [Tracer.EndEvent].
// The span's attributes include the task id and, if opts give them, the
// pipeline run id and the process id.
//
// A run whose parent span in ctx is not sampled gets no span (the
// decision of OpenTelemetry's default, parent-based sampler, taken here
// without asking the sampler): it is only recorded, at the cost of an
// untraced run, and ctx is returned as it is. A run whose new span the
// sampler does not sample is recorded without a span context.
//
// It returns the errors of [telemetry.Recorder.StartEvent]; the span is
// then ended at once with status Error, and the returned ctx still carries
// it, so that the run's own spans have a parent.
func (t *Tracer) StartEvent(ctx context.Context, eventName, taskID string, opts ...telemetry.StartOption) (context.Context, error) {
	if unsampledParent(ctx) {
		return ctx, t.rec.StartEvent(eventName, taskID, opts...)
	}
	// The span gets the Recorder's time, boxed by WithTimestamp, rather
	// than taking its own to give to the record: a record's time is the
	// Recorder's epoch plus the monotonic clock since, while the SDK's
	// time.Now reading carries the wall clock, and the two differ by
	// nanoseconds (more after a step of the wall clock), so they would not
	// agree exactly. The end is given likewise, because the span's status
	// depends on whether the Recorder accepts the end (EndEvent).
	start := t.rec.Now()
	rc, attrs := newRunCtx(numEventAttrs(opts))
	rc.start[0] = trace.WithTimestamp(start)
	rc.start[1] = trace.WithAttributes(eventAttrs(attrs, taskID, opts)...)
	ctx, span := rc.startSpan(t.tracer, ctx, eventName, 2)
	sc := span.SpanContext()
	err := t.recordStart(eventName, taskID, opts, start, recordSpan(sc))
	return started(rc, ctx, span, sc.IsSampled(), eventSpanKey, taskID, err), err
}

// numEventAttrs returns the number of attributes of the span of a run
// started with opts.
func numEventAttrs(opts []telemetry.StartOption) int {
	n := 1
	for _, o := range opts {
		_, pid := o.ProcessID()
		_, run := o.PipelineID()
		if pid || run {
			n++
		}
	}
	return n
}

// eventAttrs appends to attrs the attributes of the span of a run of
// taskID started with opts, and returns the result.
func eventAttrs(attrs []attribute.KeyValue, taskID string, opts []telemetry.StartOption) []attribute.KeyValue {
	attrs = append(attrs, TaskIDKey.String(taskID))
	for _, o := range opts {
		if pid, ok := o.ProcessID(); ok {
			attrs = append(attrs, ProcessPIDKey.Int(pid))
		}
		if id, ok := o.PipelineID(); ok {
			attrs = append(attrs, PipelineRunIDKey.String(id))
		}
	}
	return attrs
}

// recordSpan returns the span context of a record traced by a span whose
// context is sc: sc's ids if it is sampled, else the zero SpanContext
// (not traced).
func recordSpan(sc trace.SpanContext) telemetry.SpanContext {
	if sc.IsSampled() && sc.IsValid() {
		return telemetry.SpanContext{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Sampled: true}
	}
	return telemetry.SpanContext{}
}

// recordStart records the start of a run at start, traced by span, with
// opts followed by the Tracer's own options, which win over the caller's.
// The options are made in the call, not passed in, and the common lengths
// of opts are spelled out, so that the options are not copied again.
func (t *Tracer) recordStart(eventName, taskID string, opts []telemetry.StartOption, start time.Time, span telemetry.SpanContext) error {
	switch len(opts) {
	case 0:
		return t.rec.StartEvent(eventName, taskID, telemetry.WithStartTime(start), telemetry.WithSpanContext(span))
	case 1:
		return t.rec.StartEvent(eventName, taskID, opts[0], telemetry.WithStartTime(start), telemetry.WithSpanContext(span))
	case 2:
		return t.rec.StartEvent(eventName, taskID, opts[0], opts[1], telemetry.WithStartTime(start), telemetry.WithSpanContext(span))
	}
	return t.rec.StartEvent(eventName, taskID, append(opts[:len(opts):len(opts)], telemetry.WithStartTime(start), telemetry.WithSpanContext(span))...)
}

// RecordRetry records one more retry of the pending run of taskID, and
// adds a span event [RetryEventName] to the run's span in ctx (the one
// StartEvent started for taskID; none if there is none), with the
// retry's number ([RetryAttemptKey]) and err's text ([RetryErrorKey];
// omitted if err is nil; cut as a record's is, by
// [telemetry.Recorder.ErrorText]), and sets [RetryCountKey] on the span.
// It returns the errors of [telemetry.Recorder.RecordRetry].
func (t *Tracer) RecordRetry(ctx context.Context, taskID string, err error) error {
	rerr := t.rec.RecordRetry(taskID)
	span := spanOf(ctx, eventSpanKey, taskID)
	if rerr != nil || span == nil || !span.IsRecording() {
		return rerr
	}
	n := int64(1)
	if m, ok := t.rec.Metrics(taskID); ok { // a retry is rare: a lookup is fine
		n = int64(m.RetryCount)
	}
	attrs := []attribute.KeyValue{RetryAttemptKey.Int64(n)}
	if err != nil {
		attrs = append(attrs, RetryErrorKey.String(t.rec.ErrorText(err)))
	}
	span.AddEvent(RetryEventName, trace.WithAttributes(attrs...))
	span.SetAttributes(RetryCountKey.Int64(n))
	return nil
}

// EndEvent records the end of the pending run of taskID (failed if err is
// not nil) and ends its span, the one StartEvent put in ctx, at the same
// instant ([telemetry.Recorder.EndEventAt] with [telemetry.Recorder.Now]),
// with status Error and the record's error text if it failed
// ([telemetry.Recorder.ErrorText]). If the Recorder refuses
// the end, the span ends with status Error and the refusal's text. A ctx
// without a span that StartEvent started for taskID ends no span, nor does
// one whose span an earlier EndEvent ended; ctx may be derived from the
// one StartEvent returned, as the context of a run nested in this one is.
//
// It returns the errors of [telemetry.Recorder.EndEvent].
func (t *Tracer) EndEvent(ctx context.Context, taskID string, err error) error {
	rc := claim(ctx, eventSpanKey, taskID)
	if rc == nil {
		return t.rec.EndEvent(taskID, err)
	}
	end := t.rec.Now()
	eerr := t.rec.EndEventAt(taskID, err, end)
	rc.endSpan(end, t.rec.ErrorText(err), eerr)
	return eerr
}
