package oteltrace

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
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
	name   string

	mu sync.Mutex
	// live holds the recording spans whose records are pending. It needs no
	// bound of its own: the Recorder bounds its pending runs
	// (telemetry.WithMaxPending), and a span is removed when its record
	// ends or when the Recorder closes.
	live map[trace.SpanID]liveSpan

	closed atomic.Bool
	net    Network
	// anchor maps a time.Now reading to the Recorder's time for it, once a
	// first run has told it; see now.
	anchor atomic.Pointer[anchor]
}

// An anchor is a time.Now reading given to the Recorder as a start time
// and the start time the Recorder recorded for it. The Recorder keeps times
// as monotonic offsets from its creation, so the time it records for t is
// rec.Add(t.Sub(mono)) exactly, while t's own wall clock reading may differ
// from it by the nanoseconds between the two clock reads of time.Now.
type anchor struct{ mono, rec time.Time }

// now returns the start of a run: the time for the Recorder, and the same
// instant as the Recorder will record it, for the span.
func (t *Tracer) now() (start, spanStart time.Time) {
	start = time.Now()
	if a := t.anchor.Load(); a != nil {
		return start, a.rec.Add(start.Sub(a.mono))
	}
	return start, start
}

// calibrate sets the anchor from the first run started, whose record's
// start time recorded tells it.
func (t *Tracer) calibrate(start time.Time, recorded func() (time.Time, bool)) {
	if t.anchor.Load() != nil {
		return
	}
	if r, ok := recorded(); ok {
		t.anchor.CompareAndSwap(nil, &anchor{mono: start, rec: r})
	}
}

// A liveSpan is a recording span whose record has not ended yet, and the
// number of retries added to it as span events.
type liveSpan struct {
	span    trace.Span
	retries int64
}

var (
	_ telemetry.SampledPublisher = (*Tracer)(nil)
	_ telemetry.Namer            = (*Tracer)(nil)
	_ telemetry.Closer           = (*Tracer)(nil)
)

// New returns a new Tracer that records into rec and traces with
// cfg.TracerProvider, and attaches it to rec as a synchronous publisher
// (see [telemetry.SyncPublisher]), through which it learns the exact end of
// every record it traces. Recording through rec directly still works; such
// runs are not traced.
//
// It returns [ErrNoTracerProvider] if cfg has no TracerProvider, or the
// error of
// rec.AddPublisher, such as one wrapping [telemetry.ErrClosed]. A nil rec
// is a programmer error: New panics.
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
		name:   cfg.Name,
		live:   make(map[trace.SpanID]liveSpan),
	}
	if t.prop == nil {
		t.prop = otel.GetTextMapPropagator()
	}
	if t.name == "" {
		t.name = DefaultName
	}
	t.net.t = t
	if err := rec.AddPublisher(t); err != nil {
		return nil, fmt.Errorf("oteltrace: %w", err)
	}
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
	start, spanStart := t.now()
	// The span's attributes, known at the start so that samplers see them.
	var abuf [3]attribute.KeyValue
	attrs := append(abuf[:0], TaskIDKey.String(taskID))
	for _, o := range opts {
		if pid, ok := o.ProcessID(); ok {
			attrs = append(attrs, ProcessPIDKey.Int(pid))
		}
		if id, ok := o.PipelineID(); ok && len(attrs) < cap(abuf) {
			attrs = append(attrs, PipelineRunIDKey.String(id))
		}
	}
	ctx, span := t.tracer.Start(ctx, eventName, trace.WithTimestamp(spanStart), trace.WithAttributes(attrs...))
	var buf [8]telemetry.StartOption
	err := t.rec.StartEvent(eventName, taskID, startOptions(buf[:0], span, start, opts)...)
	t.started(span, err)
	if err == nil {
		t.calibrate(start, func() (time.Time, bool) {
			m, ok := t.rec.Metrics(taskID)
			return m.StartTime, ok
		})
	}
	return ctx, err
}

// unsampledParent reports whether the span in ctx belongs to a trace that
// is not sampled.
func unsampledParent(ctx context.Context) bool {
	sc := trace.SpanContextFromContext(ctx)
	return sc.IsValid() && !sc.IsSampled()
}

// startOptions appends to all opts, the start time and, if the span is
// sampled, its context.
func startOptions(all []telemetry.StartOption, span trace.Span, start time.Time, opts []telemetry.StartOption) []telemetry.StartOption {
	all = append(all, opts...)
	all = append(all, telemetry.WithStartTime(start))
	if sc := span.SpanContext(); sc.IsValid() && sc.IsSampled() {
		all = append(all, telemetry.WithSpanContext(telemetry.SpanContext{
			TraceID: sc.TraceID(), SpanID: sc.SpanID(), Sampled: sc.IsSampled(),
		}))
	}
	return all
}

// started keeps span until its record ends, or ends it now if the start
// was refused.
func (t *Tracer) started(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		span.End()
		return
	}
	if !span.IsRecording() || !span.SpanContext().IsValid() {
		return // nothing to record: ended by EndEvent or EndOperation
	}
	t.mu.Lock()
	t.live[span.SpanContext().SpanID()] = liveSpan{span: span}
	t.mu.Unlock()
}

// take removes and returns the live span of id, and whether there was one.
func (t *Tracer) take(id trace.SpanID) (liveSpan, bool) {
	t.mu.Lock()
	l, ok := t.live[id]
	if ok {
		delete(t.live, id)
	}
	t.mu.Unlock()
	return l, ok
}

// RecordRetry records one more retry of the pending run of taskID, and
// adds a span event [RetryEventName] to the span in ctx, with the retry's
// number ([RetryAttemptKey]) and err's text ([RetryErrorKey]; omitted if
// err is nil). It returns the errors of [telemetry.Recorder.RecordRetry].
func (t *Tracer) RecordRetry(ctx context.Context, taskID string, err error) error {
	rerr := t.rec.RecordRetry(taskID)
	span := trace.SpanFromContext(ctx)
	if rerr != nil || !span.IsRecording() {
		return rerr
	}
	n := int64(1)
	id := span.SpanContext().SpanID()
	t.mu.Lock()
	if l, ok := t.live[id]; ok {
		l.retries++
		n = l.retries
		t.live[id] = l
	}
	t.mu.Unlock()
	attrs := []attribute.KeyValue{RetryAttemptKey.Int64(n)}
	if err != nil {
		attrs = append(attrs, RetryErrorKey.String(err.Error()))
	}
	span.AddEvent(RetryEventName, trace.WithAttributes(attrs...))
	return nil
}

// EndEvent records the end of the pending run of taskID (failed if err is
// not nil); its span, the one in ctx, ends at the record's end time, with
// status Error and the record's error text if it failed. If the Recorder
// refuses the end, the span of ctx, if t started it, ends now with status
// Error, and EndEvent returns the errors of [telemetry.Recorder.EndEvent].
func (t *Tracer) EndEvent(ctx context.Context, taskID string, err error) error {
	eerr := t.rec.EndEvent(taskID, err)
	if eerr != nil {
		t.endRefused(ctx, eerr)
	}
	return eerr
}

// endRefused ends the span of ctx, if t keeps it, after its record's end
// was refused. A span t does not keep is left alone: it is not t's, or
// it has ended.
func (t *Tracer) endRefused(ctx context.Context, refused error) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if l, ok := t.take(span.SpanContext().SpanID()); ok {
		l.span.SetStatus(codes.Error, refused.Error())
		l.span.End()
	}
}

// PublishEventMetrics ends the span of m, if t started it, at m.EndTime.
// The Recorder calls it when a run ends; it never blocks.
func (t *Tracer) PublishEventMetrics(_ context.Context, m telemetry.EventMetrics) error {
	if !m.Span.IsValid() {
		return nil
	}
	l, ok := t.take(m.Span.SpanID)
	if !ok {
		return nil
	}
	if m.RetryCount > 0 {
		l.span.SetAttributes(RetryCountKey.Int(m.RetryCount))
	}
	if m.Status == telemetry.StatusFailed {
		l.span.SetStatus(codes.Error, m.Error)
	}
	l.span.End(trace.WithTimestamp(m.EndTime))
	if t.closed.Load() {
		return telemetry.ErrClosed
	}
	return nil
}

// PublishNetworkMetrics ends the client span of m, if t started it, at
// m.EndTime, with the bytes sent and received. The Recorder calls it when
// an operation ends; it never blocks.
func (t *Tracer) PublishNetworkMetrics(_ context.Context, m telemetry.NetworkMetrics) error {
	if !m.Span.IsValid() {
		return nil
	}
	l, ok := t.take(m.Span.SpanID)
	if !ok {
		return nil
	}
	l.span.SetAttributes(BytesSentKey.Int64(m.BytesSent), BytesReceivedKey.Int64(m.BytesReceived))
	if m.Status == telemetry.StatusFailed {
		l.span.SetStatus(codes.Error, m.Error)
	}
	l.span.End(trace.WithTimestamp(m.EndTime))
	if t.closed.Load() {
		return telemetry.ErrClosed
	}
	return nil
}

// Synchronous reports true: t is called on the recording path.
func (t *Tracer) Synchronous() bool { return true }

// SampledOnly reports true: the Recorder hands t the records of sampled
// traced runs only, the ones whose spans it ends, so that other runs cost
// it nothing.
func (t *Tracer) SampledOnly() bool { return true }

// Name returns the Tracer's name as a publisher ([Config.Name]).
func (t *Tracer) Name() string { return t.name }

// Close ends the spans of the runs still pending, now and with status
// Error, so that none is lost. The Recorder calls it when it closes; runs
// that end after it are still recorded, and their spans end as usual when
// they were not ended by Close. It never fails and never blocks.
func (t *Tracer) Close(context.Context) error {
	t.closed.Store(true)
	t.mu.Lock()
	live := t.live
	t.live = make(map[trace.SpanID]liveSpan)
	t.mu.Unlock()
	for _, l := range live {
		l.span.SetStatus(codes.Error, "oteltrace: the Recorder closed before the run ended")
		l.span.End()
	}
	return nil
}

// Live returns the number of spans waiting for their record to end.
func (t *Tracer) Live() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.live)
}
