// Package oteltrace traces event runs and network operations with
// OpenTelemetry: a [Tracer] records each run into a [telemetry.Recorder],
// as the Recorder's own calls do, and traces it with a span of your
// trace.TracerProvider whose start and end are exactly the record's.
// The record carries the span's ids ([telemetry.EventMetrics].Span), so the
// JSON report, the publishers and the Prometheus exemplars point at the
// trace.
//
//	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter))
//	tr, err := oteltrace.New(rec, oteltrace.Config{TracerProvider: tp})
//	...
//	ctx, err = tr.StartEvent(ctx, "load", taskID) // a child of the span in ctx
//	err = load(ctx)                               // its spans are children of "load"
//	tr.EndEvent(ctx, taskID, err)
//
// Package pipeline does this for every run when its Config has a
// TracerProvider; package telemetry/otlp's NewTracerProvider makes a
// provider that exports to an OpenTelemetry Collector.
//
// # Spans and attributes
//
// Each event run is a span of kind internal named after the event; each
// network operation a span of kind client named after the operation (such
// as "remote_call" or "http_request"), a child of the span in the ctx it
// was started with. A failed run or operation has status Error with the
// record's error text; a retry ([Tracer.RecordRetry]) is a span event
// "retry". The attributes follow the OpenTelemetry semantic conventions
// where one exists, and use the eventpipeline.* namespace where none does:
//
//	attribute                            span        value
//	eventpipeline.task.id                both        the task id of the record
//	eventpipeline.pipeline.run_id        event       the pipeline run (telemetry.WithPipelineID), if given
//	process.pid                          event       the process id (telemetry.WithProcessID), if given
//	eventpipeline.event.retry_count      event       the retries of the run, if any (each is also a span event)
//	server.address, server.port          operation   the host and port of the operation
//	eventpipeline.network.operation      operation   the operation, as recorded
//	eventpipeline.network.bytes_sent     operation   bytes sent
//	eventpipeline.network.bytes_received operation   bytes received
//	eventpipeline.retry.attempt          retry event the number of the retry: 1, 2, ...
//	eventpipeline.retry.error            retry event the error that caused it, if any
//
// The attributes known only at the end (run id, process id, retries,
// bytes) are set when the record ends, so a sampler sees only the task id,
// and the operation's server and kind.
//
// # How the times agree
//
// StartEvent reads the clock once, records the run with
// [telemetry.WithStartTime] of that reading and starts the span at the
// instant the Recorder records for it. (The Recorder keeps times on the
// monotonic clock, from its creation; the wall clock reading of a
// time.Now differs from that by the few nanoseconds between its two clock
// reads. The Tracer learns the Recorder's mapping from the first run it
// starts, so that run's span may start those few nanoseconds off its
// record; every later one starts exactly at its record's start.) The
// Tracer is attached to the Recorder as a synchronous publisher (Name
// "oteltrace"): when the record ends, the Recorder hands it over before
// EndEvent returns, and the Tracer ends the span at the record's EndTime.
// Spans whose records are pending are kept in a map, bounded by the
// Recorder's limit on pending runs ([telemetry.WithMaxPending]). If the
// Recorder refuses a start, the span ends at once with status Error; if it
// refuses an end, the span ends then, with status Error; when the Recorder
// closes, the spans of the runs still pending end with status Error.
//
// # Propagation
//
// [Tracer.Network] is a [nettrace.Observer] for a [nettrace.Transport]: as a
// [nettrace.RequestTracer], it makes each round trip a client span, a
// child of the span in the request's context, and injects that span's
// context into the request's headers with [Config.Propagator] (by default
// otel.GetTextMapPropagator(); the composite of propagation.TraceContext
// and propagation.Baggage sends the W3C traceparent, tracestate and
// baggage headers). The server extracts it with the same propagator, and
// its spans are children of the client span: package pipeline's Worker does
// this, so one pipeline run is one trace across processes.
//
// # Exemplars
//
// The Prometheus publisher (package telemetry/prometheus) attaches a
// sampled run's trace id and span id to its histogram observations as
// exemplars; Grafana links from a duration or latency panel to the trace.
// See docs/backends.md.
//
// # Cost
//
// With a sampled span, a run costs the span's start and end plus a map
// insert and delete under one mutex, and the options' slice. An unsampled
// span is not kept: the run costs the SDK's non-recording span plus the
// record. Without a Tracer, the recording path is unchanged.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use.
package oteltrace
