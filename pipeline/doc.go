// Package pipeline is a small event-pipeline runtime with telemetry built
// in: events run in stages, in sequence or in parallel, are retried by
// policy, may run on a remote worker over HTTP, and every execution and
// remote call is recorded, with no code in the events.
//
// A pipeline with telemetry:
//
//	r, _ := telemetry.NewRecorder()
//	p, err := pipeline.New(pipeline.Config{Recorder: r},
//		pipeline.Sequence(extract, transform),
//		pipeline.Parallel(load, notify),
//	)
//	if err != nil { ... }
//	out, err := p.Run(ctx, input)
//	failed := r.FailedEvents()
//
// With a nil [Config.Recorder] the pipeline records into telemetry.Default(),
// so that the seeds' way works too: call telemetry.MonitorEvents(publishers...),
// run pipelines, then ask telemetry.FailedEvents(), telemetry.MetricsJSON()
// and so on. Set [Config.NoTelemetry] to record nothing.
//
// # Events and tasks
//
// An [Event] has a name and a Process(ctx, input) (output, error) method;
// [Func] makes one from a function. Each execution of an event in a run is a
// [Task] with a unique id "<run id>/<event name>/<n>", the process id and
// the run id; [TaskFrom] gives it to the event. In the telemetry, the task
// id is the event run's task id and the run id its pipeline id.
//
// A [Sequence] stage feeds each event the output of the previous one. A
// [Parallel] stage runs its events at once on the same input and outputs
// their outputs as a []any, in order; every event runs to its end, and the
// stage fails with all their errors joined.
//
// # Retries
//
// A [RetryPolicy] (the pipeline's [Config.Retry], or an event's own with
// [WithRetry]) gives the number of attempts, an exponential backoff
// (BackoffFactor, doubling, capped at MaxBackoff) and which errors are
// retryable ([DefaultRetryable]: all but [Permanent] ones, context errors,
// panics and 4xx answers of a worker). Waits end early when the run's
// context ends. Each retry is recorded on the task's event run.
//
// # Remote execution
//
// A [Worker] is an http.Handler that runs registered events for remote
// callers; [Remote] returns an Event that calls it with a JSON POST (HTTP or
// HTTPS, with a timeout). Errors come back as a [*RemoteError], network
// failures as wrapped net errors. Each call is recorded as a network
// operation through the instrumentation of package nettrace.
//
// # Hooks
//
// The runtime reports through [Hooks]: task started, retried, ended, and
// remote call started and ended. [TelemetryHooks] records them into a
// telemetry Recorder; [JoinHooks] adds your own, such as a progress display.
// Another runtime can report the same way by calling the same hooks.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use unless its
// documentation says otherwise.
package pipeline
