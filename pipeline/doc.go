// Package pipeline is a small event-pipeline runtime with telemetry built
// in: events run in stages, in sequence or in parallel, are retried by
// policy, may run on a remote worker over HTTP, and every execution and
// remote call is recorded, with no telemetry code in the events.
//
// A pipeline with telemetry:
//
//	rec, err := telemetry.NewRecorder()
//	...
//	p, err := pipeline.New(pipeline.Config{Recorder: rec},
//		pipeline.Sequence(extract, transform),
//		pipeline.Parallel(load, notify),
//	)
//	if err != nil {
//		return err // every problem of the stages, each located
//	}
//	out, err := p.Run(ctx, input)
//	failed := rec.FailedEvents()
//
// With a nil [Config.Recorder] the pipeline records into
// telemetry.Default(), so that after telemetry.MonitorEvents(publishers...)
// every pipeline is recorded with no more code, and the package-level
// queries (telemetry.FailedEvents, telemetry.MetricsJSON...) answer. New is
// the only place that falls back to the default. Set [Config.NoTelemetry]
// to record nothing (hooks are still called).
//
// # Events and stages
//
// An [Event] has a Name and a Process(ctx, input) (output, error) method;
// [Func] makes one from a function. [New] checks every stage at once and
// returns every problem joined, each located, such as
//
//	pipeline: stage 1, event 3: nil event
//
// ([errors.Is] finds [ErrNoStages], [ErrEmptyStage], [ErrNilEvent],
// [ErrEmptyEventName]). A [Sequence] stage feeds each
// event the output of the previous one. A [Parallel] stage runs its events
// at once on the same input (which they must not modify) and outputs their
// outputs as a []any, in event order. Every event of a parallel stage runs
// to its end, even when another fails: the stage then fails with all their
// errors joined, in event order, and no later stage runs. Only the end of
// the run's context stops events early: complete telemetry for each event
// is worth more than an early stop.
//
// # Runs and tasks
//
// Each [Pipeline.Run] gets a run id of 16 random hex digits. Each execution
// of an event is a [Task] with the id "<run id>/<event name>/<n>", n
// counting executions in the run from 1 in stage order, so ids are unique;
// every attempt of an execution keeps its id. [TaskFrom] gives the task to
// the event: id, event name, run id, process id ([Config.ProcessID], or
// os.Getpid()) and attempt. In the telemetry, the task id is the event
// run's task id and the run id its pipeline id.
//
// A run fails with an [*EventError] (event, task id, run id, attempts and
// the event's error; several joined for a parallel stage), which
// [errors.Is] and [errors.As] see through. A panic in Process becomes a
// [*PanicError], with the stack, which [DefaultRetryable] does not retry
// (a [Config.Retryable] of your own decides for itself). A Process that calls
// runtime.Goexit (as testing's FailNow does) ends the goroutine running
// it, so Run never returns if the event is in a sequence; its task still
// ends, failed, and a parallel stage fails with the task's EventError. So
// does a task one of whose [Hooks] calls runtime.Goexit or panics (the
// panic goes on through Run): its record is not left pending, and its span
// ends.
//
// # Retries
//
// [Config.Retry] is the retry policy of every event, and [WithRetry] gives
// one event its own. A policy is a [telemetry.RetryPolicy], the same type the
// telemetry delivery and the backends use: MaxAttempts, and an exponential
// backoff with jitter from InitialBackoff to MaxBackoff, for at most
// MaxElapsed after the first attempt started (a wait that would end later
// is shortened, for a last attempt at that time). A nil Config.Retry makes
// a single attempt. [Config.Retryable] decides which errors are retried;
// nil means [DefaultRetryable], which retries all but errors marked with
// telemetry.Permanent, context.Canceled and context.DeadlineExceeded,
// panics ([*PanicError]), and a [*RemoteError] whose status is not 408, 429
// or 5xx. A remote call that outlasts its own [RemoteConfig.Timeout] is
// retried, though its error wraps context.DeadlineExceeded: the timeout of
// one attempt is a transient failure, while the end of the run's context
// (cancellation or its deadline) never is. A worker's Retry-After
// ([RemoteError].RetryAfter), or the wait an event's error asks for with
// [telemetry.RetryAfter], replaces the computed wait, capped at
// MaxBackoff. Waits end when the run's context ends; the event then fails
// with an error wrapping both ctx.Err() and the last attempt's error. Each
// retry is recorded on the task's event run when its wait begins, so a
// retry whose wait the end of ctx cut short is counted too.
//
// # Remote execution
//
// A [Worker] (from NewWorker(cfg, events...)) is a [net/http.Handler]
// that runs its events for remote callers; [Remote] returns an Event that
// calls one, configured by a [RemoteConfig]. The protocol is JSON over HTTP
// POST at [DefaultPath] ("/events"):
//
//	request:  {"event": name, "input": value, "task_id": id, "call_id": id,
//	           "run_id": id, "attempt": n}
//	200       {"output": value}
//	422       {"error": text}    the event's error was marked telemetry.Permanent
//	500       {"error": text}    another error; for a panic a fixed text (the
//	                             value and stack are logged at Error, never sent)
//	401                          no valid credentials (with WWW-Authenticate
//	                             when the worker has a token)
//	429                          a token after too many wrong ones (see
//	                             below): not checked (with Retry-After: 6)
//	403                          no credentials configured, and the request
//	                             came in on an address other than loopback
//	                             (after 401, 429 and 403 the connection is closed)
//	405, 503                     not POST; MaxInFlight requests already running
//	                             (with Retry-After: 1)
//	413, 400, 404                body or input too large, malformed request
//	                             (or an id over MaxCallerIDBytes, 1 KiB),
//	                             unknown event
//
// Every answer but 200 carries {"error": text}.
//
// [WorkerConfig] sets who may call: Token, a [telemetry.Secret] expected as
// "Authorization: Bearer <token>" and compared in constant time, at most
// 10 wrong ones a minute from each caller's address (an IPv6 one by its
// /64) and 100 from all callers together, so that a guesser locks out
// itself, not the callers that know the token (a caller that sent it
// within the hour is not held to the 100; callers behind one proxy share
// its address, unless it is listed in TrustedProxies: then a request from
// it counts against the rightmost address of its X-Forwarded-For header
// that is not a trusted proxy, and only that header is read, only from
// those addresses; beyond 4,096 addresses in use, further ones share one
// budget of 10; all of this is in memory, so a restart forgets it); and
// TLS, whose
// ClientCAs with a zero ClientAuth require verified client certificates.
// When there is neither, [Worker.Serve] refuses a listener that is neither
// on a loopback address nor a Unix socket, with [ErrNoAuthentication], and
// a worker mounted in a server of your own answers 403 to a request that
// came in on such an address, unless AllowUnauthenticated is set. It also
// sets what one call may cost:
// MaxBodyBytes (1 MiB), MaxInputValues (10,000 JSON values), MaxInFlight
// (32), EventTimeout (1 minute), and for Serve ReadHeaderTimeout (5s),
// ReadTimeout (30s), WriteTimeout (ReadTimeout + EventTimeout + 10s),
// IdleTimeout (1 minute) and 64 KiB of headers. ErrorText chooses the text
// sent back for an error (nil means [DefaultErrorText], the error's text cut
// to 1 KiB). [Worker.Shutdown] and [Worker.Close] stop what Serve started.
//
// [Remote] checks its [RemoteConfig] at once: a Host holding '/', '?', '#',
// '@', '[', ']', a space, a backslash or a control character is refused, as
// are TLS together with Client, and a Token sent over plain HTTP to a host
// that is not a loopback address, unless AllowInsecure is set. An answer
// larger than MaxResponseBytes ([DefaultMaxResponseBytes], 8 MiB) fails the
// call. A RemoteEvent follows no redirect (the token would go along): a
// 3xx answer fails the call. It keeps its connections to the worker open
// for its next calls; [RemoteEvent.CloseIdleConnections] closes them when
// you are done with it.
//
// Inputs and outputs cross the wire as JSON: a worker's event gets
// map[string]any, []any, float64, string, bool or nil. A worker's error
// comes back as a [*RemoteError] (event, status code, message, the
// message escaped to one line of printable text and cut to 8 KiB); a network
// failure as the [*net/url.Error], wrapped with the event's name.
//
// Each call is recorded as a network operation, through package nettrace,
// with the call id "<task id>/call-<n>", the operation "remote_call", the
// worker's host and port, the latency, and the body bytes of the request and
// the response. An HTTP error status is not a network failure: the
// operation completes and the event fails with the RemoteError. A worker
// records the runs it serves only with a [WorkerConfig.Recorder] (see
// Traces); the caller records the call either way.
//
// # Traces
//
// With [Config.TracerProvider] (or a shared telemetry/oteltrace Tracer in
// [Config.Tracer]), every run is a span named [RunSpanName] (a child of the
// span in Run's ctx, or a root span) with its run id
// (eventpipeline.pipeline.run_id) and, if the run failed, status Error
// with Run's error text, cut as a record's is
// ([telemetry.Recorder.ErrorText]) (a run that never returns because its
// event called runtime.Goexit, or through which a hook's panic went, has
// status Error too, saying so); every event run a child span
// named after the event, with the record's exact times, its retries as
// span events and status Error when it failed; every remote call a client
// span under its event. The event's ctx carries its span, so the spans your events make
// are its children. A remote call injects the client span's context into
// its request with [Config.Propagator] (W3C traceparent, tracestate and
// baggage with the composite of propagation.TraceContext and
// propagation.Baggage). A [Worker] with [WorkerConfig.Recorder] and
// [WorkerConfig.TracerProvider] extracts it with [WorkerConfig.Propagator]
// and records the event it runs as a child of that client span, under the
// caller's call id (the task id of the caller's network operation), so
// one pipeline run is one trace across processes. Without a Recorder the
// worker records nothing; with a Recorder but no TracerProvider it records
// without spans. See package telemetry/oteltrace for the attributes.
//
// A worker reads the trace context and baggage of a request only once its
// credentials and body have been checked: an unauthenticated or malformed
// request is not parsed for them. The W3C propagators of otel
// (propagation.TraceContext and propagation.Baggage) bound what a caller
// can send: baggage of more than 8192 bytes (all baggage headers together)
// is dropped, and of the rest the first 64 members are kept; a tracestate
// of more than 32 members is dropped, and a malformed traceparent gives no
// parent.
// They report such problems to otel's global error handler, once per
// process; the worker does not log them. With [Worker.Serve], all headers
// together are at most 64 KiB.
//
// # Hooks
//
// The runtime reports through [Hooks]: EventStarted, EventRetried,
// EventEnded, RemoteCallStarted and RemoteCallEnded, called in order for
// each task from the goroutine that runs it. [TelemetryHooks] records them
// into a telemetry Recorder; [Config.Hooks] adds your own, such as a
// progress display ([JoinHooks] combines several; embed [NopHooks] to
// implement only some methods). Another runtime can report the same way by
// calling the same hooks. An Event that runs its work elsewhere by other
// means than a RemoteEvent, such as the asynq remote event of the module
// github.com/eventpipeline/eventpipeline/contrib/asynq, reports its calls
// with [StartRemoteCall]; a worker of such a runtime runs events with
// [ContextWithTask], so that [TaskFrom] gives them the caller's task. Recording errors (a closed Recorder, too many
// pending tasks) never fail a run; [Pipeline.Telemetry] counts them.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use unless its
// documentation says otherwise. A Pipeline may run many times at once.
package pipeline
