// Package asynq records the tasks of asynq (github.com/hibiken/asynq, a
// Redis-backed task queue) in a telemetry Recorder, carries trace context
// and enqueue times through the queue, and runs pipeline events remotely
// through asynq. It is the module
// github.com/eventpipeline/eventpipeline/contrib/asynq, apart from the core
// module so that the core's users never download a Redis client.
//
// Its name is that of the upstream package; import one of them under
// another name, as in
//
//	import (
//		"github.com/hibiken/asynq"
//		epasynq "github.com/eventpipeline/eventpipeline/contrib/asynq"
//	)
//
// On the worker, the [Middleware] records every task run:
//
//	mux := asynq.NewServeMux()
//	mux.Use(epasynq.NewMiddleware(epasynq.Config{Recorder: rec}).Wrap)
//	mux.HandleFunc("image:resize", resize)
//
// and on the producer, the [Client] records every enqueue and gives the
// task what the Middleware needs to tell its wait and to join its trace:
//
//	client, err := epasynq.NewClient(asynq.RedisClientOpt{Addr: "127.0.0.1:6379"}, epasynq.Config{Recorder: rec})
//	...
//	info, err := client.Enqueue(ctx, asynq.NewTask("image:resize", payload), asynq.Queue("images"))
//
// # Task runs
//
// Each call of a handler is one event run: the task type is the event
// name ([Config.EventName] changes that), asynq's task id the task id,
// asynq's retry count of the task the run's retry count, the worker's
// process id the process id. So a task that fails twice and then succeeds
// leaves three runs of its task id, failed with retry count 0, failed
// with 1, completed with 2; [telemetry.Recorder.Metrics] of the task id
// gives the last. Since every run adds its retry count,
// event_retries_total and RetryStats.TotalRetries grow by 0+1+2 for it:
// RetryStats.EventsWithRetries (runs with a retry count above 0) counts
// the retried attempts themselves, and RetryStats.ByRetryCount how
// deep into its retries each attempt was.
//
// A handler that ignores its context may still run when asynq, having
// failed the attempt at its deadline, delivers the task again. If the
// new attempt starts in the same process while the earlier run is still
// pending, it is recorded under the task id followed by "#" and its
// attempt number (the retry count plus one), such as "<task id>#2", so that
// both runs are recorded; asynq's task id stays the span's message id.
// Should a run be pending under that id too (a task whose own id, chosen
// with asynq.TaskID, is "<task id>#2"), the new attempt takes the first
// of "<task id>#2#2", "<task id>#2#3", and so on up to "<task id>#2#8",
// that no pending run has; only if all of them are pending is it refused
// (and counted by [Middleware.Failures]).
//
// The queue has no field in a record: it is an attribute of the run's
// span, and Config.EventName may put it into the event name.
//
// # Wait in the queue
//
// asynq keeps no enqueue time, so the [Client] writes one into the task's
// headers ([HeaderEnqueueTime]): the time the task becomes ready to run,
// that of the enqueue, or the time given with asynq.ProcessAt or
// asynq.ProcessIn (to the second, as asynq keeps it), so that a task
// scheduled for later does not count its schedule as a wait. The Middleware gives it to the first attempt's run
// (telemetry.WithEnqueueTime): the record's wait is from then to the
// run's start on the worker, and the Prometheus publisher observes it in
// event_wait_seconds. A retry's wait is not known (asynq keeps no time of
// its return to the queue), nor that of a task enqueued by a plain asynq
// client. The times come from two machines' clocks: a wait that clock
// skew makes negative counts as none, and is counted
// (telemetry.Stats.EventsWaitClamped).
//
// # Trace context
//
// The Client injects the trace context of the enqueue's ctx into the
// task's headers (asynq has headers since v0.26) through
// [Config.Propagator], by default OpenTelemetry's global propagator, and
// the Middleware extracts it into the handler's ctx. With a
// [Config.TracerProvider], the Client makes a producer span per enqueue
// and the Middleware a consumer span per run, a child of it, with the
// messaging attributes of the OpenTelemetry semantic conventions, and
// both records carry their span's ids. A span that failed has status
// Error and an exception event (as span.RecordError makes) with the error
// text of its record, cut at telemetry.WithMaxErrorLength
// (telemetry.Recorder.ErrorText), also when the Recorder refused the
// run's start; the span of a remote event's enqueue, which has no record
// nor Recorder, has the error's text cut the same way at
// telemetry.DefaultMaxErrorLength, never a longer text. Without one, no
// span is made and no span ids are recorded, but the extracted context
// still reaches the handler.
//
// # Enqueues
//
// [Client.Enqueue] records each enqueue as a network operation: the task
// id (the same as its runs'), the host and port of Redis, the operation
// "asynq_enqueue" ([Config.Operation]), the payload and header bytes sent,
// and the error of the enqueue. A task made with options
// (asynq.NewTask(type, payload, opts...)) is refused with
// [ErrTaskOptions]: give the options to Enqueue.
//
// # Remote events
//
// [Remote] returns a pipeline.Event that runs on a [Worker] through an
// asynq queue instead of over HTTP: a pipeline of one machine gets durable
// queues, many workers and asynq's retries without any change to its
// events. The call is recorded as the HTTP remote event's is, a network
// operation of the calling task, and the worker's Middleware records the
// run with the call id as task id and the caller's run id as pipeline id:
// the worker's run is the call's child, in the records and, with
// OpenTelemetry, in the trace. See [RemoteEvent] and [Worker]; the
// repository's docs/engines.md says when to use which.
//
// # Recording errors
//
// Recording never fails a task or an enqueue: what the Recorder refuses
// (a closed Recorder, say) is counted by the Middleware and the Client
// (Failures, Err).
//
// # Cost
//
// Without a TracerProvider, the Middleware adds the recording of one
// event run to a task run, and the reading of its headers.
// BenchmarkMiddleware measures it against the same handler called
// directly; the figures are in the Goals table of the repository's
// docs/performance.md.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use unless
// its documentation says otherwise.
package asynq
