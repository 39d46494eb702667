// Package telemetry records how the events of a pipeline run (timing,
// success or failure, retries) and the network operations they make
// (latency, bytes, errors), answers questions about them in process, and
// delivers every finished record to publishers: Prometheus, Elasticsearch,
// Grafana Cloud, any OpenTelemetry Collector (otlp) or MeterProvider
// (otelmetric), any Prometheus remote-write receiver (remotewrite), a live
// web view (webview), each in a subpackage of its own, a JSON-lines file, or
// any [Publisher] of yours. It imports only the standard library and the
// module's own internal packages, which import only the standard library.
//
// A minimal use:
//
//	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub))
//	if err != nil {
//		return err
//	}
//	defer rec.Close(ctx) // delivers what is buffered, then stops
//
//	rec.StartEvent("extract", taskID, telemetry.WithPipelineID(runID))
//	err = extract(ctx)
//	rec.EndEvent(taskID, err) // completed if err is nil, else failed
//
//	failed := rec.FailedEvents()
//	slow, _ := rec.SlowEvents(2 * time.Second)
//	report, _ := rec.MetricsJSON()
//
// Package pipeline makes these calls for you; package nettrace records the
// network operations of a [net/http.Client] or a dialer.
//
// # Recording
//
// An [EventMetrics] is one run of an event, identified by its task id.
// [Recorder.StartEvent] makes a pending record (options [WithProcessID],
// [WithPipelineID], [WithEnqueueTime] or [WithWait], [WithStartTime] and [WithSpanContext]);
// [Recorder.EndEvent] with a nil error makes it
// [StatusCompleted], with an error [StatusFailed], keeping the error's text
// (an error whose text is empty is recorded as "unknown error", so that a
// failure never looks like success; a text longer than [WithMaxErrorLength]
// bytes, [DefaultMaxErrorLength] by default, is cut at a UTF-8 boundary and
// ends with a marker such as "… [truncated, 1048576 bytes]" giving its
// original length; [Recorder.ErrorText] gives that text, for code that
// shows the error elsewhere, such as on a span). [Recorder.RecordRetry]
// adds one to its retry count. A
// task id may run again once its run has ended: that starts a new run, and
// [Recorder.Metrics] returns the latest.
//
// A [NetworkMetrics] is one network operation, recorded the same way through
// [Recorder.Network]: [Network.StartOperation] (host, port 0-65535,
// operation, "" meaning [DefaultOperation]) and [Network.EndOperation] (bytes
// sent and received, error). Durations and latencies come from the monotonic
// clock; the times in records are wall-clock times, read once at the
// Recorder's creation and carried forward on the monotonic clock (a later
// step of the system clock does not move them).
//
// Two options link a run to the systems around it. [WithEnqueueTime] gives
// the time a job queue enqueued the run's task (or [WithWait] the time it
// waited, for queues that give that instead): the record then tells how
// long the run waited ([EventMetrics.WaitTime], [Recorder.WaitedEvents]),
// and a wait that clock skew between machines would make negative counts as
// none and is counted ([Stats].EventsWaitClamped). [WithSpanContext] gives
// the span that traces the run or the operation: its trace and span ids go
// into the record, the JSON report and the publishers (the Prometheus
// publisher attaches them to its observations as exemplars).
//
// Bad calls return a [*TaskError] that names the call and the task id and
// wraps a sentinel to test with [errors.Is]: [ErrEmptyEventName],
// [ErrEmptyTaskID], [ErrAlreadyStarted] (the task id is still pending),
// [ErrNotStarted], [ErrAlreadyEnded] (ending twice, or retrying a run that
// ended), [ErrInvalidPort], [ErrNegativeBytes], [ErrEmptyHost],
// [ErrInvalidProcessID], [ErrInvalidOption], [ErrTooManyPending] and
// [ErrClosed]; for example
//
//	telemetry: end event "t1": task was never started
//
// A bad call changes nothing. Recording never panics on bad input and is
// never cancelled by a context.
//
// # Memory and retention
//
// A Recorder keeps every pending run, up to [WithMaxPending]
// ([DefaultMaxPending] of each kind; one more start returns
// [ErrTooManyPending]), and the most recent finished records, up to
// [WithMaxEvents] and [WithMaxNetworkOps] ([DefaultMaxEvents] and
// [DefaultMaxNetworkOps]). When the limit is reached the oldest finished
// record is evicted and counted in [Stats] (EventsEvicted, NetworkEvicted).
// The Recorder retains exactly that many. With a limit below 4,096, the
// oldest is evicted first; with one of 4,096 or more, the runs are split by
// task id into up to 16 shards, each gathering what it finishes in batches
// of 64, and eviction is oldest first within a batch's span.
//
// Finished records are kept in memory that holds no pointers (their
// strings copied into byte slabs), which the garbage collector does not
// scan: retaining the default 100,000 records adds almost nothing to the
// work of each collection of the program. A record returned by a query is
// a copy.
//
// Queries and the JSON report see what is retained. [Recorder.RetryStats]
// and the totals of [Recorder.Stats] (ended, failed, evicted, bytes) count
// every record since the Recorder was created, retained or not, so
// aggregates stay exact whatever the limits.
//
// # Queries
//
// [Recorder.FailedEvents], [Recorder.SlowEvents] (a threshold; runs that
// took longer), [Recorder.RetryStats] (total retries, runs with retries, and
// runs by retry count), [Network.FailedOperations] and
// [Network.SlowOperations] answer from what is retained, oldest first.
// [DefaultSlowThreshold] (one second) is the usual threshold; a negative one
// returns [ErrNegativeThreshold]. Each query reads the Recorder at one
// instant, and so does the JSON report for each kind of record: its event
// runs with the retry statistics and the event counters at one, its
// network operations with the network counters at another, just after.
// So answers agree with each other while other goroutines record (an
// operation that ended after a run may be in a report that shows the run
// pending); a record a query returns is a copy. Failed records
// are found without reading the others, slow ones by scanning durations
// only, so these queries cost little more than the records they return.
// [Recorder.WaitedEvents] finds the runs that waited in a queue longer than
// a threshold; [Recorder.PendingEvents] and [Network.PendingOperations]
// list the oldest runs in flight, reading only those, for a live view.
//
// # Times given by the caller
//
// Code that times a run itself, a tracer or a job queue's middleware, can
// give the Recorder its times: [WithStartTime] at the start,
// [Recorder.EndEventAt] and [Network.EndOperationAt] at the end. A time
// from [Recorder.Now], the Recorder's own clock, becomes the record's time
// exactly, so that a span and its record agree to the nanosecond.
//
// # The JSON report
//
// [Recorder.MetricsJSON] (or [Recorder.WriteJSON], or [Recorder.Report] for
// the Go value) returns one document:
//
//	{"generated_at": ..., "events": [...], "network_operations": [...],
//	 "retry_stats": {"total_retries": 3, "events_with_retries": 2,
//	                 "retry_distribution": {"1": 1, "2": 1}},
//	 "stats": {...}}
//
// events lists the retained finished runs, oldest end first, then the
// pending runs by start time; network_operations likewise. Each record is
// the document of [FormatMetrics]: metric_type ("event" or "network"), then
// event_name, task_id, start_time, end_time, status, error, retry_count,
// process_id, pipeline_id and duration_seconds for an event run, or task_id,
// operation, host, port, start_time, end_time, status, bytes_sent,
// bytes_received, error and latency_seconds for a network operation. Times
// are RFC 3339 in UTC with nanoseconds; an absent end time, error, process
// id or pipeline id is null. A record given [WithEnqueueTime] or [WithWait]
// also has enqueue_time and wait_seconds, and one given [WithSpanContext] trace_id,
// span_id and trace_sampled; others do not have these keys. The document
// decodes back into a [Report], and each record into its type.
//
// # JSON lines
//
// A [JSONLinesPublisher] writes each record as one line holding that
// document; [ReadJSONLines] reads such a file back. Both keep to one
// contract: a line is at most [MaxJSONLineSize] (1 MiB); each field
// appears at most once, under its exact (case-sensitive) name; metric_type
// is "event" or "network", status "pending", "completed" or "failed";
// start_time and end_time (and enqueue_time, when present) are RFC 3339
// times (the writer writes UTC) in years 0000-9999, the end not before the
// start; end_time is null exactly when status is "pending"; retry_count
// and process_id are 0 to 2147483647, port 0 to 65535, bytes 0 or more;
// trace_id and span_id are given together or not at all, as 32 and 16
// lowercase hexadecimal digits, not all zero; strings are valid UTF-8 (the
// writer writes an invalid byte as U+FFFD) and JSON strings escape C0 and
// C1 controls, bidirectional controls and U+2028/U+2029 as \uXXXX (but
// newline, carriage return and tab as \n, \r and \t). The writer refuses a
// record that breaks it with a [*DroppedError] wrapping [ErrInvalidRecord]
// (counted as dropped, not retried), and a failed write never duplicates a
// record nor leaves a torn line before another: a write that fails part-way
// on a writer that cannot be cut back is a [*PartialError] counting the
// lines written whole. The end of a call's context interrupts a Write that
// blocks when the writer has SetWriteDeadline (a net.Conn, an os.Pipe).
// [ReadJSONLines] stops at the
// first invalid line with a [*LineError] naming it and wrapping
// [ErrInvalidRecord]; a torn last line, as a killed process leaves, gives
// every complete record with a [*LineError] wrapping [ErrTornLine], a
// warning. UnmarshalJSON of a record checks the same contract.
//
// # Publishing and delivery
//
// Each publisher attached with [WithPublishers], [Recorder.AddPublisher] or
// [MonitorEvents] gets every record that finishes after it was attached.
// A publisher is attached to a Recorder once: attaching it again, or a
// [CompositePublisher] that holds it, returns an error wrapping
// [ErrDuplicatePublisher]; a nil one, or a nil pointer of a publisher
// type, [ErrNilPublisher].
// Recording never waits for a publisher: each has a bounded buffer of its
// own ([WithQueueSize], [DefaultQueueSize] records of each kind) and a
// goroutine that delivers from it. A record that finds the buffer full is
// dropped and counted. The recording call that fills a buffer to half, and
// every 256th after it while the buffer fills, wakes that goroutine and
// yields its processor once ([runtime.Gosched]), so that delivery runs
// before records are dropped; no recording call ever blocks.
//
// A [BatchPublisher] gets batches of up to [WithMaxBatchSize] records
// ([DefaultMaxBatchSize]), sent when full or after [WithBatchTimeout]
// ([DefaultBatchTimeout]); others get one record per call. Each call has a
// timeout ([WithPublishTimeout], [DefaultPublishTimeout]; the first calls
// for records taken from the buffer together share one). A failed call is
// retried with exponential backoff and jitter as its [RetryPolicy] says
// ([WithRetry]; [DefaultRetryPolicy] waits 100ms, then 200ms and so on up to
// 5s, each wait less a random jitter of up to half of it, for up to a minute
// after the first attempt started). A wait that would end after that
// deadline is shortened, so the last attempt is made at the deadline itself;
// an outage shorter than the window loses nothing the buffer could hold. An
// error marked with [Permanent] is not retried; one made with [RetryAfter]
// asks for a given wait (capped at MaxBackoff and cut at the deadline;
// [RetryAfterOf] reads it, for a retry loop of your own); a
// [*DroppedError] reports a batch delivered except for some records, given
// up on for good; a [*PartialError] reports how many records of a batch
// are delivered so far while the rest are retried, so that a batch given
// up on later counts those as published, not dropped. A panic
// in a publisher is recovered: in a publish call it counts as a permanent
// failure; in Flush or Close it is returned as their error. A publisher
// that calls runtime.Goexit is counted the same way (for a queued one, a
// new goroutine goes on delivering its records; a synchronous one ends the
// goroutine of the recording call, as it asked).
//
// [Recorder.PublisherStats] (also in [Recorder.Stats]) gives for each
// publisher what was published, the failed attempts, the panics, what is
// queued, and the records dropped by reason: DroppedQueueFull (its buffer
// was full), DroppedFailed (a permanent error, a [*DroppedError], or retries
// exhausted) and DroppedClosed ([Recorder.Close] ran out of time), each
// without the records a [*PartialError] reported delivered. Every
// record handed to a publisher is counted exactly once: at every moment
// Queued + Published + Dropped() is the number handed to it. Publisher names
// are at most 128 bytes. Drops are logged with log/slog ([WithLogger]): a
// full buffer at its first drop, then, while drops go on, at most every 10
// seconds with the drops since the last line and in all ("telemetry:
// publisher queue full, records dropped"); records given up after failing
// at most every 10 seconds per publisher; and at Close one line per
// publisher that dropped records
// ("telemetry: publisher closed, records dropped", with the counts by
// reason); never once per record.
//
// [Recorder.Flush] returns when every record recorded before it has been
// delivered or dropped, or when ctx ends. [Recorder.Close] makes later calls
// return [ErrClosed] and delivers what is queued. If ctx ends first, it cuts
// short the attempts in progress and the waits between them, drops what is
// left (counted as DroppedClosed), and returns ctx.Err() once each publisher
// has returned from its current call: at once for a publisher that honours
// ctx, while one that ignores ctx keeps Close waiting. Either way, when Close
// returns Queued is 0 for every publisher, the goroutines have exited and
// the publishers that have a Close method are closed.
//
// # Writing a publisher
//
// A [Publisher] has two methods, PublishEventMetrics and
// PublishNetworkMetrics; its documentation states the rules (honour ctx,
// return nil only once delivered, keep no reference to the record).
// Batching, buffering, retries and counting come from the Recorder, which
// never calls a publisher concurrently with itself: its publish methods,
// Flush and Close come from one goroutine at a time, Close after the last
// publish call returned. A publisher may implement more, and the Recorder
// discovers it:
//
//   - [BatchPublisher]: PublishBatch sends many records in one call;
//   - [SyncPublisher]: an in-process aggregator (such as Prometheus
//     histograms), called on the recording path without a queue, from
//     every goroutine that records, so it must be safe for concurrent use;
//   - [Observer]: a SyncPublisher that makes metrics, handed an
//     [EventObservation] or a [NetworkObservation] (name, status, duration,
//     retries, wait, bytes, span) instead of the whole record, which costs
//     the recording path less; every publisher of metrics in this module is
//     one;
//   - [Flusher] and [Closer]: called by [Recorder.Flush] and [Recorder.Close];
//   - [Attacher]: told the Recorder it is attached to; the way a publisher
//     learns its Recorder, to report its [Recorder.PublisherStats];
//   - [Namer]: its name in [PublisherStats].
//
// A [CompositePublisher] attached to a Recorder is replaced by its members,
// so each gets its own buffer, retries and counters. Package
// telemetrytest checks that a publisher keeps the contract.
//
// # Secrets
//
// Backends take passwords, API keys and tokens as a [Secret], made with
// [NewSecret]: it prints as REDACTED with every fmt verb, in log/slog and in
// JSON, even inside other structs, so a configuration can be printed or
// logged. [Secret.Reveal] returns the value, for the code that sends it.
//
// # The default Recorder
//
// The package-level functions are one-line calls on [Default]:
// [MonitorEvents] attaches publishers; [MetricsJSON] returns the JSON
// report; [FailedEvents], [SlowEvents], [RetryStats], [FailedNetworkOps] and
// [SlowNetworkOps] answer the queries; [StartEvent], [EndEvent] and
// [RecordRetry] record; [Flush] and [Close] deliver. The default Recorder is
// created on first use with the default options and starts nothing (no
// goroutine, port or connection) until a publisher is attached.
// [SetDefault] replaces it. Libraries should take a *Recorder rather than
// use the default, and tests should create their own.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use unless its
// documentation says otherwise. Recording (StartEvent, EndEvent, RecordRetry,
// and [Network.StartOperation] and [Network.EndOperation]) takes constant
// time whatever the number of records retained and allocates nothing.
package telemetry
