package asynq

import (
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// instrumentation is the name of the OpenTelemetry tracer of this package.
const instrumentation = "github.com/eventpipeline/eventpipeline/contrib/asynq"

// DefaultEnqueueOperation is the operation of the network operation that
// [Client.Enqueue] records when [Config.Operation] is empty.
const DefaultEnqueueOperation = "asynq_enqueue"

// Config configures the telemetry of a [Middleware] or a [Client]: the
// Recorder that gets the records, and how trace context travels with the
// tasks. The zero Config records into telemetry.Default(), carries the
// trace context through the global OpenTelemetry propagator, and starts no
// spans.
type Config struct {
	// Recorder gets the records: task runs (Middleware) and enqueues
	// (Client). Nil means telemetry.Default(), looked up when the
	// Middleware or Client is made.
	Recorder *telemetry.Recorder

	// Propagator injects the caller's trace context into the task's
	// headers (Client) and extracts it in the worker (Middleware). Nil
	// means otel.GetTextMapPropagator(), looked up at each use, which
	// carries nothing until the program sets one, such as
	// propagation.NewCompositeTextMapPropagator(propagation.TraceContext{},
	// propagation.Baggage{}).
	Propagator propagation.TextMapPropagator

	// TracerProvider, if not nil, makes spans: a producer span for each
	// enqueue (Client), a consumer span for each task run (Middleware), a
	// child of the extracted context, so that a task's run joins its
	// caller's trace. Their ids go into the records
	// (telemetry.WithSpanContext). Nil means no spans, and no span ids in
	// the records; the extracted context still reaches the handler, so
	// that spans it starts itself join the caller's trace.
	TracerProvider trace.TracerProvider

	// EventName returns the event name a task run is recorded under, from
	// the task's queue and type (Middleware). Nil means
	// [DefaultEventName]: the type. Return queue + ":" + taskType to tell
	// the queues apart in the metrics; keep the set of names small, since
	// each is a label value.
	EventName func(queue, taskType string) string

	// Operation is the operation of the network operations recorded for
	// enqueues (Client). Empty means [DefaultEnqueueOperation]
	// ("asynq_enqueue").
	Operation string
}

// propagator returns p, or the global propagator if p is nil.
func propagator(p propagation.TextMapPropagator) propagation.TextMapPropagator {
	if p != nil {
		return p
	}
	return otel.GetTextMapPropagator()
}

// tracer returns the tracer of tp, or nil if tp is nil.
func tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(instrumentation)
}

// spanContext returns the telemetry form of an OpenTelemetry span context;
// the zero SpanContext if sc is not valid.
func spanContext(sc trace.SpanContext) telemetry.SpanContext {
	if !sc.IsValid() {
		return telemetry.SpanContext{}
	}
	return telemetry.SpanContext{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Sampled: sc.IsSampled()}
}

// recorderOrDefault returns r, or telemetry.Default() if r is nil.
func recorderOrDefault(r *telemetry.Recorder) *telemetry.Recorder {
	if r != nil {
		return r
	}
	return telemetry.Default()
}

// failures counts the recording calls the Recorder refused and keeps the
// first error: recording never fails a task or an enqueue.
type failures struct {
	n     atomic.Uint64
	first atomic.Pointer[error]
}

// check counts err, if not nil, as a refused recording call. It is the
// nil test alone, which inlines; fail does the rest.
func (f *failures) check(err error) {
	if err != nil {
		f.fail(err)
	}
}

func (f *failures) fail(err error) {
	f.n.Add(1)
	first := err // a copy, so that only a failing call allocates
	f.first.CompareAndSwap(nil, &first)
}

// Failures returns the number of recording calls the Recorder refused,
// such as starting a task id that is still pending, or recording after
// the Recorder was closed.
func (f *failures) Failures() uint64 { return f.n.Load() }

// Err returns the first error the Recorder returned, or nil.
func (f *failures) Err() error {
	if p := f.first.Load(); p != nil {
		return *p
	}
	return nil
}
