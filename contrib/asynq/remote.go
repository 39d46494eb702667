package asynq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	asynqlib "github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/internal/otelspan"
	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// The defaults of [RemoteConfig].
const (
	// DefaultQueue is the queue of a remote event's tasks when
	// RemoteConfig.Queue is empty: asynq's own default queue.
	DefaultQueue = "default"
	// DefaultEventTimeout bounds the run of a remote event on its worker
	// when RemoteConfig.EventTimeout is zero: 1 minute, as the HTTP
	// worker's.
	DefaultEventTimeout = time.Minute
	// DefaultRetention is how long asynq keeps a finished task and its
	// result when RemoteConfig.Retention is zero: 10 minutes, enough for
	// the caller to read it.
	DefaultRetention = 10 * time.Minute
	// DefaultPollInterval is the longest wait between two looks at a
	// task's state when RemoteConfig.PollInterval is zero.
	DefaultPollInterval = 100 * time.Millisecond
)

// firstPoll is the wait before the first look at a task's state; each
// further wait doubles, up to the poll interval.
const firstPoll = 2 * time.Millisecond

// RemoteConfig says how a [RemoteEvent] sends its event to a [Worker]
// through asynq. Its zero fields have the defaults their comments give;
// Redis must be set.
type RemoteConfig struct {
	// Redis is the Redis server of the queue: an asynq.RedisClientOpt,
	// RedisFailoverClientOpt or RedisClusterClientOpt (or a pointer to
	// one). Its address, or its first one, is the host and port of the
	// recorded network operations. It must be set.
	Redis asynqlib.RedisConnOpt
	// Queue is the queue the tasks go to; the workers that serve it must
	// have the event. Empty means DefaultQueue ("default").
	Queue string
	// Timeout bounds each call: from the enqueue to reading the result,
	// the time the task waits in the queue included. A call that times out
	// fails with context.DeadlineExceeded, which pipeline.DefaultRetryable
	// retries (pipeline.AttemptTimeout), and its task is cancelled or
	// deleted. Zero means no bound beyond the context's.
	Timeout time.Duration
	// EventTimeout bounds the run of the event on the worker (asynq's
	// Timeout option): the run's context ends after it. It must be a
	// whole number of seconds, as asynq keeps it. Zero means
	// DefaultEventTimeout (1 minute).
	EventTimeout time.Duration
	// Retention is how long asynq keeps a finished task and its result
	// (asynq's Retention option). It must outlast the caller's reading of
	// the result, and be a whole number of seconds, as asynq keeps it.
	// Zero means DefaultRetention (10 minutes).
	Retention time.Duration
	// MaxRetry is the number of times asynq retries a task whose run
	// failed, on any worker, before the call fails. Zero means none: the
	// pipeline's retry policy retries the event, each attempt a new task,
	// as it retries an HTTP remote event. Errors marked with
	// telemetry.Permanent and panics are never retried. It must not be
	// negative.
	MaxRetry int
	// PollInterval is the longest wait between two looks at the task's
	// state while the call waits for the result (asynq tells no one when
	// a task is done); the first look comes after 2ms, and each wait
	// doubles up to PollInterval. Zero means DefaultPollInterval (100ms).
	PollInterval time.Duration
	// Operation is the operation of the recorded network operations.
	// Empty means telemetry.DefaultOperation ("remote_call").
	Operation string
	// MaxResultBytes bounds the result read from Redis; a larger one
	// fails the call. Zero means pipeline.DefaultMaxResponseBytes (8 MiB).
	MaxResultBytes int64
	// Propagator injects the caller's trace context into the task's
	// headers. Nil means otel.GetTextMapPropagator(), looked up at each
	// call.
	Propagator propagation.TextMapPropagator
	// TracerProvider, if not nil, makes a producer span for each enqueue,
	// a child of the caller's span, whose context the task carries: the
	// worker's consumer span becomes its child. Nil means no spans.
	TracerProvider trace.TracerProvider
}

// A RemoteEvent is a pipeline.Event that runs on a [Worker] through an
// asynq queue: its Process enqueues the input as a task of type
// [TaskType](name), waits for a worker to run the event of that name, and
// returns its output or its error, read from the task's result, which
// asynq keeps for [RemoteConfig.Retention].
//
// Run by a pipeline, each call is reported to the pipeline's hooks as a
// remote call (pipeline.StartRemoteCall), and so recorded as a network
// operation, as for an HTTP RemoteEvent: call id "<task id>/call-<n>",
// host and port of Redis, the operation of RemoteConfig, latency from the
// enqueue to the result (the wait in the queue included), the payload and
// headers as bytes sent and the result as bytes received, and the error
// if the call itself failed (Redis unreachable, timeout). The call id is
// the asynq task id, so the worker's record of the run (by the
// [Middleware]: the event's name, that task id, the caller's run id as
// pipeline id, its wait in the queue) tells which call it served, and with
// OpenTelemetry its span is a child of the call's. Called outside a
// pipeline, nothing is recorded and the task gets a random id.
//
// Inputs and outputs cross as JSON, as with HTTP. An error of the event on
// the worker comes back as a [*RemoteError]; one marked with
// telemetry.Permanent on the worker, or a panic, comes back marked too, so
// that the pipeline does not retry it. A RemoteEvent is safe for
// concurrent use; [RemoteEvent.Close] releases its connections.
type RemoteEvent struct {
	name      string
	taskType  string
	queue     string
	rdb       redis.UniversalClient
	client    *asynqlib.Client
	insp      *asynqlib.Inspector
	host      string
	port      int
	timeout   time.Duration
	opts      []asynqlib.Option // Queue, MaxRetry, Retention, Timeout
	poll      time.Duration
	operation string
	maxResult int64
	prop      propagation.TextMapPropagator
	tracer    trace.Tracer
}

var _ pipeline.Event = (*RemoteEvent)(nil)

// Remote returns an Event named name that runs on the asynq workers of
// cfg.Queue. It returns the problems of cfg joined in one error, and then
// holds no connection. The connection to Redis is made on first use.
func Remote(name string, cfg RemoteConfig) (*RemoteEvent, error) {
	var errs []error
	if name == "" {
		errs = append(errs, pipeline.ErrEmptyEventName)
	}
	var host string
	var port int
	if cfg.Redis == nil {
		errs = append(errs, errors.New("asynq: remote: Redis is not set"))
	} else {
		var err error
		if host, port, err = redisAddr(cfg.Redis); err != nil {
			errs = append(errs, fmt.Errorf("asynq: remote: %w", err))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Timeout", cfg.Timeout}, {"EventTimeout", cfg.EventTimeout}, {"Retention", cfg.Retention}, {"PollInterval", cfg.PollInterval}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("asynq: remote: %s must not be negative, got %v", d.name, d.v))
		}
	}
	// asynq keeps a task's timeout and retention in whole seconds, cut:
	// 500ms would be none at all (asynq's default timeout of 30 minutes,
	// or no retention), 1.5s one second.
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"EventTimeout", cfg.EventTimeout}, {"Retention", cfg.Retention}} {
		if d.v > 0 && d.v%time.Second != 0 {
			errs = append(errs, fmt.Errorf("asynq: remote: %s must be a whole number of seconds (asynq keeps it in seconds), got %v", d.name, d.v))
		}
	}
	if cfg.MaxRetry < 0 {
		errs = append(errs, fmt.Errorf("asynq: remote: MaxRetry must not be negative, got %d", cfg.MaxRetry))
	}
	if cfg.MaxResultBytes < 0 {
		errs = append(errs, fmt.Errorf("asynq: remote: MaxResultBytes must not be negative, got %d", cfg.MaxResultBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rdb, ok := cfg.Redis.MakeRedisClient().(redis.UniversalClient)
	if !ok { // cannot happen for the types redisAddr accepts
		return nil, fmt.Errorf("asynq: remote: %T makes no Redis client", cfg.Redis)
	}
	e := &RemoteEvent{
		name:      name,
		taskType:  TaskType(name),
		queue:     cmpOr(cfg.Queue, DefaultQueue),
		rdb:       rdb,
		client:    asynqlib.NewClientFromRedisClient(rdb),
		insp:      asynqlib.NewInspectorFromRedisClient(rdb),
		host:      host,
		port:      port,
		timeout:   cfg.Timeout,
		poll:      cmpOr(cfg.PollInterval, DefaultPollInterval),
		operation: cmpOr(cfg.Operation, telemetry.DefaultOperation),
		maxResult: cmpOr(cfg.MaxResultBytes, pipeline.DefaultMaxResponseBytes),
		prop:      cfg.Propagator,
		tracer:    tracer(cfg.TracerProvider),
	}
	e.opts = []asynqlib.Option{
		asynqlib.Queue(e.queue),
		asynqlib.MaxRetry(cfg.MaxRetry),
		asynqlib.Retention(cmpOr(cfg.Retention, DefaultRetention)),
		asynqlib.Timeout(cmpOr(cfg.EventTimeout, DefaultEventTimeout)),
	}
	return e, nil
}

func cmpOr[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

// Name returns the name of the event, the one the worker runs.
func (e *RemoteEvent) Name() string { return e.name }

// Close closes the connections to Redis. Calls after Close fail.
func (e *RemoteEvent) Close() error { return e.rdb.Close() }

// Process runs the event on a worker, as the type's doc says. It returns
// the decoded output, a [*RemoteError] when the event failed on the worker
// (marked with telemetry.Permanent when the worker marked it or the event
// panicked), or another error when the task could not be enqueued, or its
// result not read, wrapped with the event's name. It honours ctx and
// [RemoteConfig.Timeout]: when either ends first, the task is cancelled on
// its worker (or deleted if it has not started) and the error wraps
// ctx.Err(). The error of the call's own timeout is marked with
// pipeline.AttemptTimeout, so that pipeline.DefaultRetryable retries it,
// as it retries the HTTP remote event's; the end of ctx is not retried.
func (e *RemoteEvent) Process(ctx context.Context, in any) (any, error) {
	input, err := json.Marshal(in)
	if err != nil {
		return nil, telemetry.Permanent(fmt.Errorf("asynq: remote event %q: cannot encode input: %w", e.name, err))
	}
	req := callRequest{Event: e.name, Input: input}
	headers := make(map[string]string, 5)
	var taskID string
	var call *pipeline.RemoteCall
	if t, ok := pipeline.TaskFrom(ctx); ok {
		req.TaskID, req.RunID, req.Attempt = t.ID, t.RunID, t.Attempt
		call = pipeline.StartRemoteCall(ctx, e.host, e.port, e.operation)
		taskID = call.ID()
		if t.RunID != "" {
			headers[HeaderPipelineID] = t.RunID
		}
	}
	if taskID == "" {
		taskID = newTaskID()
	}
	payload, err := json.Marshal(req)
	if err != nil { // cannot happen: strings, an int and valid raw JSON
		call.End(0, 0, err)
		return nil, fmt.Errorf("asynq: remote event %q: %w", e.name, err)
	}
	run := ctx // the run's context, for pipeline.AttemptTimeout
	if e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	headers[HeaderEnqueueTime] = formatTime(time.Now())
	var span trace.Span
	sendCtx := ctx
	if e.tracer != nil {
		sendCtx, span = e.tracer.Start(ctx, "send "+e.taskType,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				systemAsynq,
				semconv.MessagingOperationTypeSend,
				semconv.MessagingOperationName("send"),
				semconv.MessagingDestinationName(e.queue),
				semconv.MessagingMessageID(taskID),
				semconv.MessagingMessageBodySize(len(payload)),
				semconv.ServerAddress(e.host),
				semconv.ServerPort(e.port),
				AttrTaskType.String(e.taskType),
			))
	}
	propagator(e.prop).Inject(sendCtx, propagation.MapCarrier(headers))
	sent := int64(len(payload)) + headerBytes(headers)
	opts := append(e.opts[:len(e.opts):len(e.opts)], asynqlib.TaskID(taskID))
	_, err = e.client.EnqueueContext(sendCtx, asynqlib.NewTaskWithHeaders(e.taskType, payload, headers), opts...)
	if span != nil {
		if err != nil {
			otelspan.Fail(span, err, otelspan.ErrorText(err))
		}
		span.End()
	}
	if err != nil {
		call.End(0, 0, err)
		return nil, pipeline.AttemptTimeout(run, fmt.Errorf("asynq: remote event %q: enqueue: %w", e.name, err))
	}
	info, err := e.await(ctx, taskID)
	if err != nil {
		call.End(sent, 0, err)
		return nil, pipeline.AttemptTimeout(run, fmt.Errorf("asynq: remote event %q (task %s): %w", e.name, taskID, err))
	}
	call.End(sent, int64(len(info.Result)), nil)
	return e.decode(taskID, info)
}

// await polls the state of task id until it is completed or archived, or
// ctx ends; then it cancels the task on its worker and deletes it.
func (e *RemoteEvent) await(ctx context.Context, id string) (*asynqlib.TaskInfo, error) {
	wait := firstPoll
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			e.abandon(id)
			if lastErr != nil {
				return nil, fmt.Errorf("%w (last look at the task: %w)", ctx.Err(), lastErr)
			}
			return nil, ctx.Err()
		case <-timer.C:
		}
		info, err := e.insp.GetTaskInfo(e.queue, id)
		switch {
		case errors.Is(err, asynqlib.ErrTaskNotFound):
			return nil, errors.New("the task is gone from the queue (deleted, or kept for less than RemoteConfig.Retention)")
		case err != nil:
			lastErr = err // Redis may come back before ctx ends
		case info.State == asynqlib.TaskStateCompleted || info.State == asynqlib.TaskStateArchived:
			return info, nil
		}
		wait = min(2*wait, e.poll)
		timer.Reset(wait)
	}
}

// abandon cancels task id if a worker runs it, and deletes it if not:
// the caller has stopped waiting.
func (e *RemoteEvent) abandon(id string) {
	e.insp.CancelProcessing(id)    // tells the workers; harmless if none runs it
	e.insp.DeleteTask(e.queue, id) // fails for a task still active: it ends cancelled
}

// decode returns the output or the error of a finished task.
func (e *RemoteEvent) decode(id string, info *asynqlib.TaskInfo) (any, error) {
	if int64(len(info.Result)) > e.maxResult {
		return nil, fmt.Errorf("asynq: remote event %q (task %s): result larger than %d bytes", e.name, id, e.maxResult)
	}
	if len(info.Result) == 0 {
		// Archived without a result: no worker ran the event (no handler
		// for the type, a lease that expired), or it could not write it.
		msg := visible(info.LastErr)
		if msg == "" {
			msg = "the task failed without a result"
		}
		return nil, &RemoteError{Event: e.name, TaskID: id, Queue: e.queue, Message: msg}
	}
	var res callResult
	if err := json.Unmarshal(info.Result, &res); err != nil {
		return nil, fmt.Errorf("asynq: remote event %q (task %s): bad result: %w", e.name, id, err)
	}
	if info.State == asynqlib.TaskStateArchived || res.Error != "" {
		msg := visible(res.Error)
		if msg == "" {
			msg = visible(info.LastErr)
		}
		if msg == "" {
			msg = "the task failed without an error text"
		}
		re := &RemoteError{Event: e.name, TaskID: id, Queue: e.queue, Message: msg, Permanent: res.Permanent}
		if re.Permanent {
			return nil, telemetry.Permanent(re)
		}
		return nil, re
	}
	var out any
	if len(res.Output) > 0 {
		// Cannot fail: decoding info.Result checked that Output is valid
		// JSON. Kept so that a change of callResult cannot go unnoticed.
		if err := json.Unmarshal(res.Output, &out); err != nil {
			return nil, fmt.Errorf("asynq: remote event %q (task %s): bad output: %w", e.name, id, err)
		}
	}
	return out, nil
}

// maxRemoteErrorBytes bounds the [RemoteError.Message] of a task.
const maxRemoteErrorBytes = 8 << 10

// visible returns the error text msg of a task, from a worker or asynq,
// as a RemoteError keeps it: trimmed of white space (asynq's and many
// errors' texts end in a newline), on one line, its control, format and
// bidirectional characters escaped, cut to maxRemoteErrorBytes; "" if
// msg is blank.
func visible(msg string) string {
	return safetext.Cut(safetext.Visible(strings.TrimSpace(msg), false), maxRemoteErrorBytes)
}

// A RemoteError is the error a [Worker] reported for the task of a
// [RemoteEvent]: the event failed there, or no worker could run it.
// Permanent tells whether the worker marked the error with
// telemetry.Permanent (or the event panicked); such an error also comes
// wrapped with telemetry.Permanent, so that pipeline.DefaultRetryable
// does not retry it. Message comes from the worker (or from asynq): it
// is trimmed of white space and kept on one line, with its control,
// format and bidirectional characters escaped, and cut to 8 KiB, so that
// it can neither forge log lines nor rewrite a terminal; a blank one is
// replaced by a text saying so.
type RemoteError struct {
	Event     string // name of the event
	TaskID    string // the asynq task id
	Queue     string // the queue of the task
	Message   string // the worker's error text
	Permanent bool   // the worker marked the error as permanent
}

// Error returns a message such as
// `asynq: remote event "score" failed on the worker (task abc/score/1/call-1): model not loaded`.
func (e *RemoteError) Error() string {
	return "asynq: remote event " + strconv.Quote(e.Event) + " failed on the worker (task " + e.TaskID + "): " + e.Message
}
