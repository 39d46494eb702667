package pipeline

import (
	"context"
	"strconv"
	"sync/atomic"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// A RemoteCall is a network call that an [Event] makes for the pipeline
// task it runs, reported to the pipeline's hooks (and so recorded as a
// network operation) as a [RemoteEvent] reports its HTTP calls. Events
// that run their work elsewhere by other means, such as through a job
// queue, use it to get the same telemetry. Make one with
// [StartRemoteCall]. In a traced pipeline or worker, whose Tracer records
// instead of the telemetry hooks, the operation is recorded through the
// Tracer, without a span of its own. The methods of a nil *RemoteCall do
// nothing.
type RemoteCall struct {
	id    string
	ex    *execution
	ended atomic.Bool
}

// StartRemoteCall reports to the hooks of the task whose attempt ctx
// belongs to ([Hooks.RemoteCallStarted]) that the task starts a network
// call to host:port, of the kind operation ("" means
// telemetry.DefaultOperation, "remote_call"), and returns the call, whose
// id is "<task id>/call-<n>" like the calls of a RemoteEvent. End it with
// [RemoteCall.End]. If ctx is not the context of a pipeline task (see
// [TaskFrom]) it reports nothing and returns nil; in a context made by
// [ContextWithTask] the call goes to no hooks.
func StartRemoteCall(ctx context.Context, host string, port int, operation string) *RemoteCall {
	ex := executionFrom(ctx)
	if ex == nil {
		return nil
	}
	if operation == "" {
		operation = telemetry.DefaultOperation
	}
	c := &RemoteCall{id: ex.task.ID + "/call-" + strconv.FormatUint(ex.calls.Add(1), 10), ex: ex}
	if ex.tracer != nil { // traced, the hooks lack the telemetry hooks
		ex.telemetryFailed(ex.tracer.Network().StartOperation(c.id, host, port, operation))
	}
	ex.hooks.RemoteCallStarted(ex.task, c.id, host, port, operation)
	return c
}

// ID returns the call id, "<task id>/call-<n>", unique among the calls of
// the pipeline run: an id to give the remote side, so that its own
// records of the work can be matched with the call. It returns "" for a
// nil call.
func (c *RemoteCall) ID() string {
	if c == nil {
		return ""
	}
	return c.id
}

// End reports the end of the call to the task's hooks
// ([Hooks.RemoteCallEnded]): the bytes sent and received, and err, the
// failure of the call itself (nil when the call went through, even if the
// remote work failed: a RemoteEvent's call that got an HTTP error status
// completes, and the event fails). Only the first End of a call is
// reported.
func (c *RemoteCall) End(sent, received int64, err error) {
	if c == nil || !c.ended.CompareAndSwap(false, true) {
		return
	}
	if c.ex.tracer != nil {
		c.ex.telemetryFailed(c.ex.tracer.Network().EndOperation(c.id, sent, received, err))
	}
	c.ex.hooks.RemoteCallEnded(c.ex.task, c.id, sent, received, err)
}

// ContextWithTask returns a copy of ctx for running an event outside a
// pipeline on behalf of task t, as a worker of another runtime does for a
// task of a remote pipeline: inside the event's Process, [TaskFrom]
// returns t. Calls made with [StartRemoteCall] from it go to no hooks.
func ContextWithTask(ctx context.Context, t Task) context.Context {
	return withExecution(ctx, &execution{task: t, hooks: NopHooks{}, calls: new(atomic.Uint64)})
}
