package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
)

// ErrDuplicateEvent is returned by [NewWorker] when two events have the
// same name.
var ErrDuplicateEvent = errors.New("pipeline: duplicate event name")

// A Worker is an http.Handler that runs the events it was given for remote
// callers ([RemoteEvent]): the worker process of remote execution.
//
// It answers POST requests whose body is the JSON document
// {"event": name, "input": value, "task_id": id, "run_id": id, "attempt": n}
// (at most [MaxBodyBytes]) by running the event once on the decoded input,
// with the request's context, and answers:
//
//   - 200 and {"output": value} when the event succeeds;
//   - 500 and {"error": text} when it fails (422 if the error is marked
//     [Permanent] or is a panic, so that callers do not retry it);
//   - 400 for a body that is not such a document, 404 for an unknown
//     event, 405 for another method, 413 for a body too large, each with
//     {"error": text}.
//
// Inputs and outputs cross the wire as JSON: the event gets what
// encoding/json decodes into an any (map[string]any, []any, float64,
// string, bool or nil). Inside Process, [TaskFrom] gives the caller's task
// id, run id and attempt, and the worker's process id. A Worker records no
// telemetry itself; the caller records the call.
type Worker struct {
	events map[string]Event
	pid    int
}

var _ http.Handler = (*Worker)(nil)

// NewWorker returns a Worker that runs events. It returns the problems
// joined in one error: [ErrNilEvent], [ErrEmptyEventName],
// [ErrDuplicateEvent].
func NewWorker(events ...Event) (*Worker, error) {
	w := &Worker{events: make(map[string]Event, len(events)), pid: os.Getpid()}
	var errs []error
	for i, ev := range events {
		switch {
		case ev == nil:
			errs = append(errs, at(fmt.Sprintf("worker event %d", i+1), ErrNilEvent))
		case ev.Name() == "":
			errs = append(errs, at(fmt.Sprintf("worker event %d", i+1), ErrEmptyEventName))
		case w.events[ev.Name()] != nil:
			errs = append(errs, fmt.Errorf("%w: %q", ErrDuplicateEvent, ev.Name()))
		default:
			w.events[ev.Name()] = ev
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return w, nil
}

// ServeHTTP runs the event a request names; see [Worker].
func (w *Worker) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		answer(rw, http.StatusMethodNotAllowed, callResponse{Error: "pipeline: worker: method " + req.Method + " not allowed, use POST"})
		return
	}
	var call callRequest
	dec := json.NewDecoder(http.MaxBytesReader(rw, req.Body, MaxBodyBytes))
	if err := dec.Decode(&call); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			answer(rw, http.StatusRequestEntityTooLarge, callResponse{Error: fmt.Sprintf("pipeline: worker: request body larger than %d bytes", tooBig.Limit)})
			return
		}
		answer(rw, http.StatusBadRequest, callResponse{Error: "pipeline: worker: bad request body: " + err.Error()})
		return
	}
	if call.Event == "" {
		answer(rw, http.StatusBadRequest, callResponse{Error: "pipeline: worker: request names no event"})
		return
	}
	ev := w.events[call.Event]
	if ev == nil {
		answer(rw, http.StatusNotFound, callResponse{Error: fmt.Sprintf("pipeline: worker: unknown event %q", call.Event)})
		return
	}
	var in any
	if len(call.Input) > 0 {
		if err := json.Unmarshal(call.Input, &in); err != nil {
			answer(rw, http.StatusBadRequest, callResponse{Error: "pipeline: worker: bad input: " + err.Error()})
			return
		}
	}
	ex := &execution{
		task:  Task{ID: call.TaskID, Event: call.Event, RunID: call.RunID, ProcessID: w.pid, Attempt: max(call.Attempt, 1)},
		hooks: NopHooks{},
		calls: new(atomic.Uint64),
	}
	out, err := process(withExecution(req.Context(), ex), &step{ev: ev, name: call.Event}, in)
	if err != nil {
		status := http.StatusInternalServerError
		var pe *PanicError
		if IsPermanent(err) || errors.As(err, &pe) {
			status = http.StatusUnprocessableEntity
		}
		answer(rw, status, callResponse{Error: err.Error()})
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		answer(rw, http.StatusInternalServerError, callResponse{Error: fmt.Sprintf("pipeline: worker: event %q: cannot encode output: %v", call.Event, err)})
		return
	}
	answer(rw, http.StatusOK, callResponse{Output: b})
}

func answer(rw http.ResponseWriter, status int, r callResponse) {
	var buf bytes.Buffer
	json.NewEncoder(&buf).Encode(r) // cannot fail: a string and raw JSON
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	rw.Write(buf.Bytes())
}
