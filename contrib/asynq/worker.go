package asynq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	asynqlib "github.com/hibiken/asynq"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// ErrDuplicateEvent is returned by [NewWorker] when two events have the
// same name.
var ErrDuplicateEvent = errors.New("asynq: duplicate event name")

// WorkerConfig configures a [Worker]. The zero WorkerConfig is valid.
type WorkerConfig struct {
	// MaxPayloadBytes is the largest task payload (the input, as JSON,
	// and the caller's ids) a worker accepts; a larger task fails at once,
	// not retried. Zero means pipeline.DefaultMaxBodyBytes (1 MiB).
	MaxPayloadBytes int
	// ErrorText returns the text written to the result, for the caller,
	// for an event that failed with err; use it to keep internal details
	// on the worker. Nil means pipeline.DefaultErrorText (the error's text
	// cut to 1 KiB). A panic is never sent back: the caller gets a fixed
	// text, and the panic is logged.
	ErrorText func(err error) string
	// Logger receives the worker's log: an event's panic, with its value
	// and stack, at Error; failed events at Debug. Nil means
	// slog.Default(), looked up at each log call.
	Logger *slog.Logger
}

// A Worker is an asynq.Handler that runs the events it was given for
// [RemoteEvent] callers: the worker side of remote events through asynq.
// Register it on an asynq server's mux for the task types of its events
// ([Worker.Register]), after the [Middleware], which records its runs:
//
//	mux := asynq.NewServeMux()
//	mux.Use(epasynq.NewMiddleware(epasynq.Config{Recorder: rec}).Wrap)
//	worker.Register(mux)
//
// For each task it decodes the payload written by a RemoteEvent, runs the
// event once on the decoded input (a map[string]any, []any, float64,
// string, bool or nil, as with HTTP), with the task's context (which
// asynq bounds with RemoteConfig.EventTimeout), and writes the result to
// the task: {"output": value}, or {"error": text} with "permanent": true
// for an error marked with telemetry.Permanent or a panic. Inside
// Process, pipeline.TaskFrom gives the caller's task id, run id and
// attempt, and the worker's process id.
//
// ProcessTask returns nil when the event succeeded and its error when it
// failed, so that asynq retries the task if RemoteConfig.MaxRetry allows,
// and archives it otherwise; a permanent error, a panic, an unknown event
// or a malformed payload also wrap asynq.SkipRetry, so that asynq archives
// the task at once. asynq keeps the result, for the caller to read, for
// RemoteConfig.Retention.
//
// Whoever can write to the Redis server can run the worker's events with
// any input: protect Redis as you would the worker's HTTP port (a
// password, TLS, a private network).
type Worker struct {
	events  map[string]pipeline.Event
	pid     int
	maxBody int
	errText func(error) string
	logger  *slog.Logger
}

var _ asynqlib.Handler = (*Worker)(nil)

// NewWorker returns a Worker configured by cfg that runs events. It
// returns the problems joined in one error: pipeline.ErrNilEvent,
// pipeline.ErrEmptyEventName, [ErrDuplicateEvent], or a negative
// MaxPayloadBytes.
func NewWorker(cfg WorkerConfig, events ...pipeline.Event) (*Worker, error) {
	w := &Worker{events: make(map[string]pipeline.Event, len(events)), pid: os.Getpid(),
		maxBody: cfg.MaxPayloadBytes, errText: cfg.ErrorText, logger: cfg.Logger}
	var errs []error
	for i, ev := range events {
		switch {
		case ev == nil:
			errs = append(errs, fmt.Errorf("asynq: worker event %d: %w", i+1, pipeline.ErrNilEvent))
		case ev.Name() == "":
			errs = append(errs, fmt.Errorf("asynq: worker event %d: %w", i+1, pipeline.ErrEmptyEventName))
		case w.events[ev.Name()] != nil:
			errs = append(errs, fmt.Errorf("%w: %q", ErrDuplicateEvent, ev.Name()))
		default:
			w.events[ev.Name()] = ev
		}
	}
	if cfg.MaxPayloadBytes < 0 {
		errs = append(errs, fmt.Errorf("asynq: worker: MaxPayloadBytes must not be negative, got %d", cfg.MaxPayloadBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if w.maxBody == 0 {
		w.maxBody = pipeline.DefaultMaxBodyBytes
	}
	if w.errText == nil {
		w.errText = pipeline.DefaultErrorText
	}
	return w, nil
}

// Register registers w on mux for the task type of each of its events
// ([TaskType] of the event's name).
func (w *Worker) Register(mux *asynqlib.ServeMux) {
	for name := range w.events {
		mux.Handle(TaskType(name), w)
	}
}

// TaskTypes returns the task types w handles, one per event.
func (w *Worker) TaskTypes() []string {
	types := make([]string, 0, len(w.events))
	for name := range w.events {
		types = append(types, TaskType(name))
	}
	return types
}

func (w *Worker) log() *slog.Logger {
	if w.logger != nil {
		return w.logger
	}
	return slog.Default()
}

// skipRetry is an error that asynq does not retry (errors.Is(err,
// asynq.SkipRetry)) with the text of the error it wraps.
type skipRetry struct{ error }

func (e skipRetry) Is(target error) bool { return target == asynqlib.SkipRetry }
func (e skipRetry) Unwrap() error        { return e.error }

// ProcessTask runs the event of task t, as the type's doc says.
func (w *Worker) ProcessTask(ctx context.Context, t *asynqlib.Task) error {
	name, ok := strings.CutPrefix(t.Type(), TaskTypePrefix)
	ev := w.events[name]
	if !ok || ev == nil {
		return w.fail(ctx, t, skipRetry{fmt.Errorf("asynq: worker: no event for task type %q", t.Type())})
	}
	if len(t.Payload()) > w.maxBody {
		return w.fail(ctx, t, skipRetry{fmt.Errorf("asynq: worker: payload of %d bytes, larger than %d", len(t.Payload()), w.maxBody)})
	}
	var req callRequest
	dec := json.NewDecoder(bytes.NewReader(t.Payload()))
	err := dec.Decode(&req)
	if err == nil && dec.More() {
		err = errors.New("data after the document")
	}
	if err == nil && req.Event != name {
		err = fmt.Errorf("the payload names the event %q, the task type %q", req.Event, t.Type())
	}
	var in any
	if err == nil && len(req.Input) > 0 {
		err = json.Unmarshal(req.Input, &in)
	}
	if err != nil {
		return w.fail(ctx, t, skipRetry{fmt.Errorf("asynq: worker: bad payload: %w", err)})
	}
	id, _ := asynqlib.GetTaskID(ctx)
	task := pipeline.Task{ID: req.TaskID, Event: name, RunID: req.RunID, ProcessID: w.pid, Attempt: max(req.Attempt, 1)}
	if task.ID == "" {
		task.ID = id
	}
	out, err := run(pipeline.ContextWithTask(ctx, task), ev, in)
	if err != nil {
		var pe *pipeline.PanicError
		if errors.As(err, &pe) {
			w.log().LogAttrs(ctx, slog.LevelError, "asynq: worker event panicked",
				slog.String("event_name", name), slog.String("task_id", id),
				slog.String("panic", fmt.Sprint(pe.Value)), slog.String("stack", string(pe.Stack)))
			msg := fmt.Sprintf("asynq: worker: event %q panicked (logged on the worker)", name)
			return w.finish(ctx, t, callResult{Error: msg, Permanent: true}, skipRetry{err})
		}
		permanent := telemetry.IsPermanent(err)
		w.log().LogAttrs(ctx, slog.LevelDebug, "asynq: worker event failed",
			slog.String("event_name", name), slog.String("task_id", id),
			slog.Bool("permanent", permanent), slog.String("error", err.Error()))
		if permanent {
			return w.finish(ctx, t, callResult{Error: w.errText(err), Permanent: true}, skipRetry{err})
		}
		return w.finish(ctx, t, callResult{Error: w.errText(err)}, err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		err = fmt.Errorf("asynq: worker: event %q: cannot encode output: %w", name, err)
		return w.finish(ctx, t, callResult{Error: err.Error(), Permanent: true}, skipRetry{err})
	}
	return w.finish(ctx, t, callResult{Output: b}, nil)
}

// fail writes the permanent error err as the result of t and returns it.
func (w *Worker) fail(ctx context.Context, t *asynqlib.Task, err error) error {
	return w.finish(ctx, t, callResult{Error: err.Error(), Permanent: true}, err)
}

// finish writes res as the result of t and returns err, or the error of
// writing the result.
func (w *Worker) finish(_ context.Context, t *asynqlib.Task, res callResult, err error) error {
	rw := t.ResultWriter()
	if rw == nil { // not from an asynq server: nowhere to write
		return err
	}
	b, jerr := json.Marshal(res)
	if jerr != nil { // cannot happen: strings, a bool and valid raw JSON
		return errors.Join(err, jerr)
	}
	if _, werr := rw.Write(b); werr != nil {
		werr = fmt.Errorf("asynq: worker: writing the result (%d bytes): %w", len(b), werr)
		if err == nil {
			return werr // the caller cannot have the output: let asynq retry
		}
		return errors.Join(err, werr)
	}
	return err
}

// run calls the event, turning a panic into a *pipeline.PanicError.
func run(ctx context.Context, ev pipeline.Event, in any) (out any, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, &pipeline.PanicError{Event: ev.Name(), Value: v, Stack: debug.Stack()}
		}
	}()
	return ev.Process(ctx, in)
}
