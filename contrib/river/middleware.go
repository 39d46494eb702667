package river

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	riverlib "github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/internal/otelspan"
	"github.com/eventpipeline/eventpipeline/internal/taskrun"
	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// instrumentation is the name of the OpenTelemetry tracer of this package.
const instrumentation = "github.com/eventpipeline/eventpipeline/contrib/river"

// MetadataKey is the key, in a job's metadata, of the object the
// [Middleware] writes at insert and reads at work: the trace context of
// the inserting code (the fields of the propagator, such as traceparent
// and tracestate) and "pipeline_id", the run id of the pipeline that
// inserted the job.
const MetadataKey = "eventpipeline"

// metadataPipelineID is the key of the pipeline id in the MetadataKey
// object.
const metadataPipelineID = "pipeline_id"

// Span attributes of this package that OpenTelemetry's semantic
// conventions do not define.
const (
	// AttrJobKind is the attribute of a span that holds the job's kind.
	AttrJobKind = attribute.Key("river.job.kind")
	// AttrJobAttempt holds the job's attempt, from 1.
	AttrJobAttempt = attribute.Key("river.job.attempt")
)

var systemRiver = semconv.MessagingSystemKey.String("river")

// Config configures a [Middleware]: the Recorder that gets the records,
// and how trace context travels with the jobs. The zero Config records
// into telemetry.Default(), carries trace context through the global
// OpenTelemetry propagator, and starts no spans.
type Config struct {
	// Recorder gets a run for each job attempt. Nil means
	// telemetry.Default(), looked up when the Middleware is made.
	Recorder *telemetry.Recorder

	// Propagator injects the inserting code's trace context into the
	// job's metadata and extracts it before the job is worked. Nil means
	// otel.GetTextMapPropagator(), looked up at each use, which carries
	// nothing until the program sets one.
	Propagator propagation.TextMapPropagator

	// TracerProvider, if not nil, makes spans: a producer span for each
	// insert, a consumer span for each attempt, a child of the extracted
	// context, whose ids go into the record. Nil means no spans and no
	// span ids in the records; the extracted context still reaches the
	// worker.
	TracerProvider trace.TracerProvider

	// EventName returns the event name a job attempt is recorded under,
	// from the job's queue and kind. Nil means the kind. Keep the set of
	// names small: each is a label value.
	EventName func(queue, kind string) string
}

// A Middleware records every attempt of a River job as an event run of a
// telemetry Recorder, and carries trace context from the code that
// inserts a job to the worker that works it. It is a
// rivertype.WorkerMiddleware and a rivertype.JobInsertMiddleware: install
// it in the client's Config.Middleware.
//
// Each attempt is one run, recorded with:
//
//   - event name: [Config.EventName] of the job's queue and kind, by
//     default the kind;
//   - task id: the job id, in decimal (the same for every attempt);
//   - retry count: the attempts before this one (River's attempt minus
//     one), so a job that fails twice and then succeeds leaves runs with
//     0, 1 and 2;
//   - process id: the worker's; pipeline id: the run id of the pipeline
//     that inserted the job, if a pipeline event inserted it;
//   - wait: from the time the job became available (River's scheduled_at:
//     the insert, the scheduled time, or the time of a retry or of the
//     end of a snooze) to the attempt (attempted_at). The database takes
//     attempted_at, and scheduled_at at an insert without a scheduled
//     time; a scheduled time, a retry's and a snooze's come from the
//     clock of the machine that set them (see the package doc). The
//     record's enqueue time is put on the worker's clock so that its
//     wait is exactly attempted_at minus scheduled_at;
//   - status: completed if the worker returned nil or snoozed the job
//     (river.JobSnooze, which ends the attempt without failing it),
//     failed otherwise (river.JobCancel included), with the error's
//     text. A worker that panics is recorded as failed before the panic
//     goes on to River; one that calls runtime.Goexit, as failed with
//     "river: job worker called runtime.Goexit" (River never sees such
//     an attempt end: the job stays running until River rescues it).
//
// An attempt that starts while an earlier attempt of its job is still
// pending in this process is recorded under the job id followed by "#"
// and its attempt number (or, if a run is pending under that id too,
// under a further one with "#2", "#3", ... added), as the package doc
// says.
//
// Recording never fails a job: errors of the Recorder are counted
// ([Middleware.Failures], [Middleware.Err]). A Middleware is safe for
// concurrent use.
type Middleware struct {
	riverlib.MiddlewareDefaults
	rec       *telemetry.Recorder
	prop      propagation.TextMapPropagator // nil: the global one, at each use
	tracer    trace.Tracer                  // nil: no spans
	eventName func(queue, kind string) string
	pid       int
	now       func() time.Time
	failures  atomic.Uint64
	first     atomic.Pointer[error]
}

var (
	_ rivertype.WorkerMiddleware    = (*Middleware)(nil)
	_ rivertype.JobInsertMiddleware = (*Middleware)(nil)
)

// NewMiddleware returns a Middleware configured by cfg.
func NewMiddleware(cfg Config) *Middleware {
	m := &Middleware{
		rec:       cfg.Recorder,
		prop:      cfg.Propagator,
		eventName: cfg.EventName,
		pid:       os.Getpid(),
		now:       time.Now,
	}
	if m.rec == nil {
		m.rec = telemetry.Default()
	}
	if cfg.TracerProvider != nil {
		m.tracer = cfg.TracerProvider.Tracer(instrumentation)
	}
	return m
}

func (m *Middleware) propagator() propagation.TextMapPropagator {
	if m.prop != nil {
		return m.prop
	}
	return otel.GetTextMapPropagator()
}

// check counts err, if not nil, as a refused recording call. It is the
// nil test alone, which inlines; fail does the rest.
func (m *Middleware) check(err error) {
	if err != nil {
		m.fail(err)
	}
}

func (m *Middleware) fail(err error) {
	m.failures.Add(1)
	first := err // a copy, so that only a failing call allocates
	m.first.CompareAndSwap(nil, &first)
}

// Failures returns the number of recording calls the Recorder refused.
func (m *Middleware) Failures() uint64 { return m.failures.Load() }

// Err returns the first error the Recorder returned, or nil.
func (m *Middleware) Err() error {
	if p := m.first.Load(); p != nil {
		return *p
	}
	return nil
}

// metadataKeyJSON finds the Middleware's object in a job's metadata
// without decoding it.
var metadataKeyJSON = []byte(`"` + MetadataKey + `"`)

// carrier returns the Middleware's object of a job's metadata, or nil.
func carrier(metadata []byte) propagation.MapCarrier {
	if !bytes.Contains(metadata, metadataKeyJSON) {
		return nil
	}
	var md struct {
		EP map[string]string `json:"eventpipeline"`
	}
	if json.Unmarshal(metadata, &md) != nil {
		return nil
	}
	return md.EP
}

// Work records the attempt of job around doInner, as the type's doc
// says. It returns doInner's error. A nil job (never one from River) is
// passed on unrecorded.
func (m *Middleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) (err error) {
	if job == nil {
		return doInner(ctx)
	}
	var start time.Time // read only when a span or a skewed wait needs it
	if m.tracer != nil {
		start = m.now()
	}
	c := carrier(job.Metadata)
	if c != nil {
		ctx = m.propagator().Extract(ctx, c)
	}
	var opts [5]telemetry.StartOption
	opts[0] = telemetry.WithProcessID(m.pid)
	n := 1
	if id := c[metadataPipelineID]; id != "" {
		opts[n] = telemetry.WithPipelineID(id)
		n++
	}
	if job.AttemptedAt != nil && !job.ScheduledAt.IsZero() {
		// attempted_at - scheduled_at: a wait of exactly the job's,
		// whatever the offset between this clock and the database's.
		if wait := job.AttemptedAt.Sub(job.ScheduledAt); wait >= 0 {
			opts[n] = telemetry.WithWait(wait)
		} else {
			// Attempted before its scheduled time, as clocks that
			// disagree can make it: an enqueue time after the start,
			// which the core counts as a clamped wait.
			if start.IsZero() {
				start = m.now()
			}
			opts[n] = telemetry.WithEnqueueTime(start.Add(-wait))
		}
		n++
	}
	if !start.IsZero() {
		opts[n] = telemetry.WithStartTime(start)
		n++
	}
	// The name first: a Config.EventName that panics then leaves no span
	// started that nothing would end.
	name := job.Kind
	if m.eventName != nil {
		name = m.eventName(job.Queue, job.Kind)
	}
	var span trace.Span
	if m.tracer != nil {
		ctx, span = m.tracer.Start(ctx, "process "+job.Kind,
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithTimestamp(start),
			trace.WithAttributes(
				systemRiver,
				semconv.MessagingOperationTypeProcess,
				semconv.MessagingOperationName("process"),
				semconv.MessagingDestinationName(job.Queue),
				semconv.MessagingMessageID(strconv.FormatInt(job.ID, 10)),
				semconv.MessagingMessageBodySize(len(job.EncodedArgs)),
				AttrJobKind.String(job.Kind),
				AttrJobAttempt.Int(job.Attempt),
			))
		opts[n] = telemetry.WithSpanContext(telemetry.SpanContext{
			TraceID: span.SpanContext().TraceID(), SpanID: span.SpanContext().SpanID(), Sampled: span.SpanContext().IsSampled(),
		})
		n++
	}
	id, startErr := taskrun.Start(m.rec, name, strconv.FormatInt(job.ID, 10), job.Attempt, opts[:n]...)
	m.check(startErr)
	if startErr == nil {
		for range job.Attempt - 1 {
			m.check(m.rec.RecordRetry(id))
		}
	}
	returned := false
	defer func() {
		if returned {
			m.end(id, startErr, span, err)
			return
		}
		if v := recover(); v != nil {
			m.end(id, startErr, span, fmt.Errorf("river: job worker panicked: %v", v))
			panic(v) // River recovers it and fails the attempt
		}
		// runtime.Goexit: River never sees the attempt end, and its
		// rescuer fails the job once it is stuck. Not a completion.
		m.end(id, startErr, span, errGoexit)
	}()
	err = doInner(ctx)
	returned = true
	return err
}

// errGoexit is the error of an attempt whose worker called
// runtime.Goexit.
var errGoexit = errors.New("river: job worker called runtime.Goexit")

// end records the end of an attempt started with the error startErr, and
// ends its span. A snooze is not a failure.
func (m *Middleware) end(id string, startErr error, span trace.Span, err error) {
	if err != nil {
		// Only here: errors.As's target escapes, an allocation that a
		// job that succeeded would pay for nothing.
		var snooze *rivertype.JobSnoozeError
		if errors.As(err, &snooze) {
			err = nil
		}
	}
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

// InsertMany writes into the metadata of every job inserted, under
// [MetadataKey], the trace context of ctx (through the propagator; with
// a TracerProvider, that of a producer span around the insert) and the
// run id of the pipeline task ctx belongs to (pipeline.TaskFrom), if any.
// Jobs whose metadata is not a JSON object, and nil params, are passed
// on unchanged.
func (m *Middleware) InsertMany(ctx context.Context, params []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	var first *rivertype.JobInsertParams
	for _, p := range params {
		if p != nil {
			first = p
			break
		}
	}
	var span trace.Span
	if m.tracer != nil && first != nil {
		ctx, span = m.tracer.Start(ctx, "send "+first.Kind,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				systemRiver,
				semconv.MessagingOperationTypeSend,
				semconv.MessagingOperationName("send"),
				semconv.MessagingDestinationName(first.Queue),
				semconv.MessagingBatchMessageCount(len(params)),
				AttrJobKind.String(first.Kind),
			))
	}
	c := propagation.MapCarrier{}
	m.propagator().Inject(ctx, c)
	if t, ok := pipeline.TaskFrom(ctx); ok && t.RunID != "" {
		c[metadataPipelineID] = t.RunID
	}
	if len(c) > 0 {
		for _, p := range params {
			if p == nil {
				continue
			}
			if md, ok := withCarrier(p.Metadata, c); ok {
				p.Metadata = md
			}
		}
	}
	res, err := doInner(ctx)
	if span != nil {
		if err != nil {
			otelspan.Fail(span, err, m.rec.ErrorText(err))
		}
		span.End()
	}
	return res, err
}

// withCarrier returns the metadata object md with c under MetadataKey.
func withCarrier(md []byte, c propagation.MapCarrier) ([]byte, bool) {
	obj := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(md)) > 0 {
		if err := json.Unmarshal(md, &obj); err != nil || obj == nil {
			return nil, false
		}
	}
	v, _ := json.Marshal(map[string]string(c)) // cannot fail: strings
	obj[MetadataKey] = v
	out, err := json.Marshal(obj) // cannot fail: valid raw JSON, checked when decoded
	return out, err == nil
}
