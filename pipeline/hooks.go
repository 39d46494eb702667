package pipeline

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/oteltrace"
)

// A Task is one execution of an event in a pipeline run. Its ID is unique
// among the executions of the run, and the run's ID is random, so task ids
// are unique across runs too.
type Task struct {
	// ID is the task id, "<run id>/<event name>/<n>", n counting the
	// executions of the run from 1. Every attempt of an execution has it.
	ID string
	// Event is the name of the event.
	Event string
	// RunID identifies the pipeline run: 16 hexadecimal digits.
	RunID string
	// ProcessID is the id of the process running the pipeline.
	ProcessID int
	// Attempt is the attempt being made, from 1.
	Attempt int
}

// Hooks are told what a pipeline does, as it does it: the signals from
// which the telemetry of a run is recorded ([TelemetryHooks]), and through
// which other runtimes or progress displays can observe runs the same way.
//
// A pipeline calls the hooks of a task in order (started, then retried zero
// or more times, then ended), from the goroutine that runs the task; hooks of
// different tasks may be called at once, so implementations must be safe for
// concurrent use. They must return quickly: the pipeline waits for them.
// A hook that panics or calls runtime.Goexit (as testing's FailNow does)
// ends the goroutine of its task, which the telemetry still records as
// failed, with the error "pipeline: a hook panicked or called
// runtime.Goexit"; the hooks are not called again for that task.
type Hooks interface {
	// EventStarted is called before the first attempt of a task.
	EventStarted(t Task)
	// EventRetried is called when attempt t.Attempt failed with err and
	// the next attempt is to follow after wait. If the run's context ends
	// during the wait, none follows: EventEnded is called next, with an
	// error wrapping ctx.Err() and err, and the record keeps the retry.
	EventRetried(t Task, err error, wait time.Duration)
	// EventEnded is called once per task, after its last attempt: err is
	// nil if the task succeeded, else the error it failed with.
	EventEnded(t Task, err error)
	// RemoteCallStarted is called when the task starts a network call to
	// host:port; callID identifies the call among pending calls ("<task
	// id>/call-<n>"). Operation is its kind, such as "remote_call".
	RemoteCallStarted(t Task, callID, host string, port int, operation string)
	// RemoteCallEnded is called when the call callID ends, with the bytes
	// sent and received and its error (nil for success).
	RemoteCallEnded(t Task, callID string, bytesSent, bytesReceived int64, err error)
}

// TelemetryHooks are Hooks that record into a telemetry Recorder: every
// task as an event run (with its retries, process id and run id as pipeline
// id), every remote call as a network operation.
//
// Recording errors (a closed Recorder, too many pending tasks) never fail
// the pipeline: they are counted, and the first is kept, see
// [TelemetryHooks.Err].
type TelemetryHooks struct {
	r        *telemetry.Recorder
	failures atomic.Uint64
	first    atomic.Pointer[error]
}

var _ Hooks = (*TelemetryHooks)(nil)

// NewTelemetryHooks returns Hooks that record into r. It panics if r is
// nil, a programming error.
func NewTelemetryHooks(r *telemetry.Recorder) *TelemetryHooks {
	if r == nil {
		panic("pipeline: NewTelemetryHooks(nil)")
	}
	return &TelemetryHooks{r: r}
}

// Recorder returns the Recorder h records into.
func (h *TelemetryHooks) Recorder() *telemetry.Recorder { return h.r }

// Err returns the first error the Recorder returned, or nil.
func (h *TelemetryHooks) Err() error {
	if p := h.first.Load(); p != nil {
		return *p
	}
	return nil
}

// Failures returns the number of recording calls the Recorder refused.
func (h *TelemetryHooks) Failures() uint64 { return h.failures.Load() }

// check counts err, if not nil, as a refused recording call. It is the
// nil test alone, which inlines; fail does the rest.
func (h *TelemetryHooks) check(err error) {
	if err != nil {
		h.fail(err)
	}
}

func (h *TelemetryHooks) fail(err error) {
	h.failures.Add(1)
	first := err // a copy, so that only a failing call allocates
	h.first.CompareAndSwap(nil, &first)
}

// EventStarted starts the event run t.ID.
func (h *TelemetryHooks) EventStarted(t Task) {
	h.check(h.r.StartEvent(t.Event, t.ID, telemetry.WithProcessID(t.ProcessID), telemetry.WithPipelineID(t.RunID)))
}

// EventRetried records a retry of t.ID.
func (h *TelemetryHooks) EventRetried(t Task, _ error, _ time.Duration) {
	h.check(h.r.RecordRetry(t.ID))
}

// EventEnded ends the event run t.ID with err.
func (h *TelemetryHooks) EventEnded(t Task, err error) { h.check(h.r.EndEvent(t.ID, err)) }

// RemoteCallStarted starts the network operation callID.
func (h *TelemetryHooks) RemoteCallStarted(_ Task, callID, host string, port int, operation string) {
	h.check(h.r.Network().StartOperation(callID, host, port, operation))
}

// RemoteCallEnded ends the network operation callID.
func (h *TelemetryHooks) RemoteCallEnded(_ Task, callID string, sent, received int64, err error) {
	h.check(h.r.Network().EndOperation(callID, sent, received, err))
}

// JoinHooks returns Hooks that call each of hs in order. Nil elements are
// skipped; with none left it returns nil.
func JoinHooks(hs ...Hooks) Hooks {
	var list multiHooks
	for _, h := range hs {
		if h != nil {
			list = append(list, h)
		}
	}
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	return list
}

type multiHooks []Hooks

func (m multiHooks) EventStarted(t Task) {
	for _, h := range m {
		h.EventStarted(t)
	}
}

func (m multiHooks) EventRetried(t Task, err error, wait time.Duration) {
	for _, h := range m {
		h.EventRetried(t, err, wait)
	}
}

func (m multiHooks) EventEnded(t Task, err error) {
	for _, h := range m {
		h.EventEnded(t, err)
	}
}

func (m multiHooks) RemoteCallStarted(t Task, callID, host string, port int, operation string) {
	for _, h := range m {
		h.RemoteCallStarted(t, callID, host, port, operation)
	}
}

func (m multiHooks) RemoteCallEnded(t Task, callID string, sent, received int64, err error) {
	for _, h := range m {
		h.RemoteCallEnded(t, callID, sent, received, err)
	}
}

// NopHooks are Hooks that do nothing; embed them to implement only some
// of the methods.
type NopHooks struct{}

var _ Hooks = NopHooks{}

// EventStarted does nothing.
func (NopHooks) EventStarted(Task) {}

// EventRetried does nothing.
func (NopHooks) EventRetried(Task, error, time.Duration) {}

// EventEnded does nothing.
func (NopHooks) EventEnded(Task, error) {}

// RemoteCallStarted does nothing.
func (NopHooks) RemoteCallStarted(Task, string, string, int, string) {}

// RemoteCallEnded does nothing.
func (NopHooks) RemoteCallEnded(Task, string, int64, int64, error) {}

// execution is what a running task carries in its context.
type execution struct {
	task  Task
	hooks Hooks          // never nil
	calls *atomic.Uint64 // numbers the remote calls of the task, across attempts
	// tracer records and traces the remote calls when the pipeline is
	// traced (hooks then lack the telemetry hooks); nil otherwise.
	tracer *oteltrace.Tracer
	// prop injects the trace context into remote calls; nil: none.
	prop propagation.TextMapPropagator
	// tel counts the recording errors of the tracer; nil if not traced.
	tel *TelemetryHooks
}

// telemetryFailed counts a recording error of the tracer.
func (e *execution) telemetryFailed(err error) {
	if e.tel != nil {
		e.tel.check(err)
	}
}

type executionKey struct{}

// TaskFrom returns the task whose attempt ctx belongs to, and whether ctx
// is the context given to [Event.Process] by a pipeline (or by a [Worker],
// whose tasks carry the caller's task id and run id).
func TaskFrom(ctx context.Context) (Task, bool) {
	if ex, ok := ctx.Value(executionKey{}).(*execution); ok {
		return ex.task, true
	}
	return Task{}, false
}

func executionFrom(ctx context.Context) *execution {
	ex, _ := ctx.Value(executionKey{}).(*execution)
	return ex
}

func withExecution(ctx context.Context, ex *execution) context.Context {
	return context.WithValue(ctx, executionKey{}, ex)
}
