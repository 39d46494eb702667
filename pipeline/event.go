package pipeline

import (
	"context"
	"reflect"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// An Event is one step of a pipeline: a named unit of work that turns an
// input into an output.
//
// Process is called once per attempt. It must honour ctx, returning soon
// after it ends, and may be called again after it fails when the event's
// retry policy allows retries. It must be safe for concurrent use if the
// event appears in a [Parallel] stage or in pipelines that run at once.
// Inside Process, [TaskFrom] gives the task being run.
type Event interface {
	// Name returns the event's name, recorded as the event name of its runs.
	// It must not be empty and must not change.
	Name() string
	// Process runs the event on in and returns its output or an error.
	Process(ctx context.Context, in any) (any, error)
}

// Func returns an Event named name that runs fn.
func Func(name string, fn func(ctx context.Context, in any) (any, error)) Event {
	return &funcEvent{name: name, fn: fn}
}

type funcEvent struct {
	name string
	fn   func(ctx context.Context, in any) (any, error)
}

func (e *funcEvent) Name() string { return e.name }

func (e *funcEvent) Process(ctx context.Context, in any) (any, error) { return e.fn(ctx, in) }

// WithRetry returns an Event that runs e with the retry policy p instead of
// the pipeline's [Config.Retry]; which errors are retried is still decided
// by [Config.Retryable]. Its name is that of e. The zero fields of p take
// the values of telemetry.DefaultRetryPolicy; see [Config.Retry].
func WithRetry(e Event, p telemetry.RetryPolicy) Event {
	return &retryEvent{Event: e, policy: p}
}

type retryEvent struct {
	Event
	policy telemetry.RetryPolicy
}

// isNil reports whether e is nil, a nil pointer (such as the nil
// *RemoteEvent that Remote returns with its error, or a nil pointer to an
// event type of the user's), or nil wrapped by WithRetry: an event whose
// Name may panic. New calls it once per event.
func isNil(e Event) bool {
	switch e := e.(type) {
	case nil:
		return true
	case *retryEvent:
		return e == nil || isNil(e.Event)
	}
	v := reflect.ValueOf(e)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// unwrap returns the event inside retry wrappers, and the policy of the
// outermost wrapper if there is one.
func unwrap(e Event) (Event, *telemetry.RetryPolicy) {
	var p *telemetry.RetryPolicy
	for {
		r, ok := e.(*retryEvent)
		if !ok {
			return e, p
		}
		if p == nil {
			p = &r.policy
		}
		e = r.Event
	}
}
