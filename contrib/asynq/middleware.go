package asynq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	asynqlib "github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/internal/otelspan"
	"github.com/eventpipeline/eventpipeline/internal/taskrun"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// Span attributes of this package that OpenTelemetry's semantic
// conventions do not define.
const (
	// AttrRetryCount is the attribute of a consumer span that holds the
	// task's retry count, asynq.GetRetryCount.
	AttrRetryCount = attribute.Key("asynq.task.retry_count")
	// AttrMaxRetry holds the task's asynq.GetMaxRetry.
	AttrMaxRetry = attribute.Key("asynq.task.max_retry")
	// AttrTaskType holds the task type.
	AttrTaskType = attribute.Key("asynq.task.type")
)

// systemAsynq is the messaging.system of the spans.
var systemAsynq = semconv.MessagingSystemKey.String("asynq")

// A Middleware records every task run of an asynq server as an event run
// of a telemetry Recorder. Install it on the server's mux:
//
//	mux.Use(asynq.NewMiddleware(cfg).Wrap)
//
// Each call of the handler is one run (one attempt of the task), recorded
// with:
//
//   - event name: [Config.EventName] of the task's queue and type, by
//     default the type ([DefaultEventName]);
//   - task id: asynq's task id (the same for every attempt of the task);
//   - retry count: asynq's retry count of the task at this attempt
//     (asynq.GetRetryCount: 0 on the first attempt, 1 on the first
//     retry, and so on), so the attempt is the retry count plus one;
//   - process id: the worker's;
//   - pipeline id: the run id of the pipeline that enqueued the task
//     ([HeaderPipelineID]), if a pipeline event enqueued it;
//   - enqueue time: on a first attempt, the time the task became ready
//     to run ([HeaderEnqueueTime], written by [Client.Enqueue] and
//     [RemoteEvent]), so that the record tells how long it waited;
//   - status: completed if the handler returned nil, else failed with the
//     error's text (asynq.SkipRetry and asynq.RevokeTask included); a
//     handler that returns nil after its context ended (its deadline
//     passed, or the task was cancelled) is failed with the context's
//     error, as asynq, which stops waiting for it then, fails the attempt
//     with it. A
//     handler that panics is recorded as failed before the panic goes on
//     to asynq, which recovers it; one that calls runtime.Goexit, as
//     failed with "asynq: task handler called runtime.Goexit" (asynq
//     never gets its result, and fails the attempt when its context
//     ends).
//
// The trace context in the task's headers is extracted through
// [Config.Propagator] into the handler's context. With a
// [Config.TracerProvider], each run is a consumer span, a child of that
// context, named "process " and the task type, with the messaging
// attributes of the OpenTelemetry semantic conventions (system "asynq",
// the queue as destination, the task id as message id, the payload size)
// and [AttrTaskType], [AttrRetryCount] and [AttrMaxRetry]; it ends with
// an error status when the handler fails, and its ids go into the record.
//
// The queue is not part of the record, which has no such field: it is an
// attribute of the span, and Config.EventName can put it into the name.
//
// An attempt that starts while an earlier run of its task is still
// pending in this process (a handler that outlived its deadline) is
// recorded under the task id followed by "#" and its attempt number (or,
// if a run is pending under that id too, under a further one with "#2",
// "#3", ... added), as the package doc says.
//
// Recording never fails a task: errors of the Recorder (a closed
// Recorder, say) are counted ([Middleware.Failures],
// [Middleware.Err]) and the task runs as usual. A Middleware is safe for
// concurrent use.
type Middleware struct {
	failures
	rec       *telemetry.Recorder
	prop      propagation.TextMapPropagator // nil: the global one, at each use
	tracer    trace.Tracer                  // nil: no spans
	eventName func(queue, taskType string) string
	full      bool // eventName or the spans use the queue: startFull
	// pidOpt is telemetry.WithProcessID of the worker's process id, made
	// once: StartEvent only reads its options, so that every run can
	// pass this one.
	pidOpt [1]telemetry.StartOption
}

// NewMiddleware returns a Middleware configured by cfg.
func NewMiddleware(cfg Config) *Middleware {
	m := &Middleware{
		rec:       recorderOrDefault(cfg.Recorder),
		prop:      cfg.Propagator,
		tracer:    tracer(cfg.TracerProvider),
		eventName: cfg.EventName,
	}
	if m.eventName == nil {
		m.eventName = DefaultEventName
	}
	m.full = cfg.EventName != nil || m.tracer != nil
	m.pidOpt[0] = telemetry.WithProcessID(os.Getpid())
	return m
}

// Wrap returns a handler that records each call of next, as the
// Middleware's doc says: an asynq.MiddlewareFunc, for
// asynq.ServeMux.Use. A task without an asynq task id (a handler called
// outside an asynq server, with a task of its own and a context without
// asynq's data), or a nil task, is passed to next unrecorded.
func (m *Middleware) Wrap(next asynqlib.Handler) asynqlib.Handler {
	return &handler{m, next}
}

// handler is the handler Wrap returns, whose ProcessTask records the
// run: a type of its own rather than an asynq.HandlerFunc, so that
// asynq's call reaches the recording without a closure between.
type handler struct {
	m    *Middleware
	next asynqlib.Handler
}

// ctxTaskID returns the asynq task id in ctx, or "".
func ctxTaskID(ctx context.Context) string {
	id, _ := asynqlib.GetTaskID(ctx)
	return id
}

// ProcessTask records the run of t by hd.next.
func (hd *handler) ProcessTask(ctx context.Context, t *asynqlib.Task) error {
	m, next := hd.m, hd.next
	// The task id: its result writer's, which an asynq server gives every
	// task it runs and which costs no search of ctx, else the one in ctx.
	if t == nil { // never from asynq: nothing to record
		return next.ProcessTask(ctx, t)
	}
	var id string
	if w := t.ResultWriter(); w != nil {
		id = w.TaskID()
	}
	if id == "" {
		if id = ctxTaskID(ctx); id == "" {
			return next.ProcessTask(ctx, t)
		}
	}
	retried, _ := asynqlib.GetRetryCount(ctx)
	h := t.Headers()
	var enq time.Time // zero: not known
	ours := 0         // headers of this package in h
	if v, ok := h[HeaderEnqueueTime]; ok {
		ours++
		// A retry's wait is not known: asynq keeps no time of its
		// return to the queue, so a retry does not parse the header.
		if retried == 0 {
			enq, _ = parseTime(v)
		}
	}
	var span trace.Span
	var startErr error
	if len(h) > ours || m.full {
		ctx, id, span, startErr = m.startFull(ctx, id, t, h, ours, retried, enq)
	} else {
		// The common case, a task with no header but the enqueue time
		// and a Middleware without spans or Config.EventName. The
		// options are built in place (an option is large: a composite
		// literal of them is copied over and over), or not at all.
		name := DefaultEventName("", t.Type())
		if enq.IsZero() {
			id, startErr = taskrun.Start(m.rec, name, id, retried+1, m.pidOpt[:]...)
		} else {
			var opts [2]telemetry.StartOption
			opts[0] = m.pidOpt[0]
			opts[1] = telemetry.WithEnqueueTime(enq)
			id, startErr = taskrun.Start(m.rec, name, id, retried+1, opts[:]...)
		}
		m.check(startErr)
		if retried > 0 && startErr == nil {
			m.recordRetries(id, retried)
		}
	}
	// The deferred function has work only when next did not return: a
	// panic, or runtime.Goexit. A returning handler spares it the
	// recover.
	returned := false
	defer func() {
		if returned {
			return
		}
		if v := recover(); v != nil {
			m.end(id, startErr, span, fmt.Errorf("asynq: task handler panicked: %v", v))
			panic(v) // asynq recovers it and fails the attempt
		}
		// runtime.Goexit: asynq never gets a result, and fails the
		// attempt when its context ends. Not a completion.
		m.end(id, startErr, span, errGoexit)
	}()
	err := next.ProcessTask(ctx, t)
	returned = true
	if err == nil && ctx.Err() != nil {
		// Returned after the run's context ended (its deadline, a
		// cancellation, a lease lost): asynq stopped waiting for the
		// handler then and failed the attempt with the context's error.
		m.end(id, startErr, span, fmt.Errorf("asynq: task handler returned after its context ended: %w", ctx.Err()))
		return err
	}
	m.end(id, startErr, span, err)
	return err
}

// errGoexit is the error of a run whose handler called runtime.Goexit.
var errGoexit = errors.New("asynq: task handler called runtime.Goexit")

// recordRetries records n retries of the pending run of id.
func (m *Middleware) recordRetries(id string, n int) {
	for range n {
		m.check(m.rec.RecordRetry(id))
	}
}

// startFull records the start of a run of task t, and its retries, for a
// task whose headers h have more than the ours headers of this package
// that ProcessTask found (a pipeline id, a trace context), or for a Middleware
// with spans or Config.EventName: it returns the handler's context, the
// task id of the record (taskrun.Start's), the run's span (nil if none)
// and the error of StartEvent.
func (m *Middleware) startFull(ctx context.Context, id string, t *asynqlib.Task, h map[string]string, ours int,
	retried int, enq time.Time) (context.Context, string, trace.Span, error) {
	var queue string
	if m.full { // DefaultEventName does not use it
		queue, _ = asynqlib.GetQueueName(ctx)
	}
	// The name before the span: a Config.EventName that panics then leaves
	// no span started that nothing would end.
	name := m.eventName(queue, t.Type())
	var opts [4]telemetry.StartOption
	n := 0
	opts[n] = m.pidOpt[0]
	n++
	if !enq.IsZero() {
		opts[n] = telemetry.WithEnqueueTime(enq)
		n++
	}
	// Each lookup costs: the pipeline id and the trace context are looked
	// for only if h has headers besides those already found.
	if len(h) > ours {
		if pipelineID, ok := h[HeaderPipelineID]; ok {
			ours++
			if pipelineID != "" {
				opts[n] = telemetry.WithPipelineID(pipelineID)
				n++
			}
		}
	}
	if len(h) > ours {
		// Only other headers can carry a trace context: a task with none
		// spares the propagator's work (the global one takes a lock).
		ctx = propagator(m.prop).Extract(ctx, propagation.MapCarrier(h))
	}
	var span trace.Span
	if m.tracer != nil {
		maxRetry, _ := asynqlib.GetMaxRetry(ctx)
		ctx, span = m.tracer.Start(ctx, "process "+t.Type(),
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(
				systemAsynq,
				semconv.MessagingOperationTypeProcess,
				semconv.MessagingOperationName("process"),
				semconv.MessagingDestinationName(queue),
				semconv.MessagingMessageID(id),
				semconv.MessagingMessageBodySize(len(t.Payload())),
				AttrTaskType.String(t.Type()),
				AttrRetryCount.Int(retried),
				AttrMaxRetry.Int(maxRetry),
			))
		opts[n] = telemetry.WithSpanContext(spanContext(span.SpanContext()))
		n++
	}
	id, err := taskrun.Start(m.rec, name, id, retried+1, opts[:n]...)
	m.check(err)
	if retried > 0 && err == nil {
		m.recordRetries(id, retried)
	}
	return ctx, id, span, err
}

// end records the end of a run started with the error startErr, and ends
// its span.
func (m *Middleware) end(id string, startErr error, span trace.Span, err error) {
	if startErr == nil {
		m.check(m.rec.EndEvent(id, err))
	}
	if span != nil {
		if err != nil {
			otelspan.Fail(span, err, m.rec.ErrorText(err))
		}
		span.End()
	}
}
