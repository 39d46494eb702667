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
// Exporting is the TracerProvider's: with a batching span processor
// (sdktrace.WithBatcher, as above) spans leave in the background, and a
// trace backend that is down costs spans, never time on the recording
// path; with a synchronous one (sdktrace.WithSyncer) EndEvent waits for
// each span's export.
//
// # Spans and attributes
//
// Each event run is a span of kind internal named after the event; each
// network operation a span of kind client named after the operation (such
// as "remote_call" or "http_request"), a child of the span in the ctx it
// was started with. A failed run or operation has status Error with the
// record's error text; a retry ([Tracer.RecordRetry]) is a span event
// "retry", whose error text is cut as a record's is
// ([telemetry.Recorder.ErrorText]). The attributes follow the
// OpenTelemetry semantic conventions where one exists, and use the
// eventpipeline.* namespace where none does:
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
// A run's attributes are set when its span starts, where samplers see
// them, except retry_count (set by each retry) and an operation's bytes
// (set at its end).
//
// # How the times agree
//
// StartEvent takes the start from [telemetry.Recorder.Now], the
// Recorder's own clock, starts the span at it and records the run with
// [telemetry.WithStartTime] of it; EndEvent takes the end the same way,
// records it with [telemetry.Recorder.EndEventAt] and ends the span at it.
// So a span's start and end are its record's, to the nanosecond, whatever
// the TracerProvider. The span travels in the context StartEvent returns,
// under a key of this package, with its task id: EndEvent ends only the
// span that StartEvent started for the same task id (never the caller's,
// nor that of a run the ended one is nested in, if it got no span of its
// own), and only once, and the Tracer keeps no state per run. If the Recorder refuses a start,
// the span ends at once with status Error; if it refuses an end, the span
// ends then, with status Error. A run nested in one of the same task id,
// whose start the Recorder refuses, has no record of its own: its retries
// and its end are those of the task's record, and go to the outer run's
// span, which ends with that record. A run that never ends leaves its span
// unended, and not exported.
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
// A sampled run costs its span's start and end, the record, and one
// allocation more than a bare start and end of the same span: the span's
// start and end times, which OpenTelemetry's trace.WithTimestamp boxes,
// are two. The context that StartEvent returns is one allocation, in place
// of the list of start options and the attribute array that a bare start
// allocates: it holds the span, its attributes and the option lists of its
// start and end. A network operation costs the same beyond its span.
//
// A run under a span that is not sampled gets no span: it costs the record,
// StartEvent's lookup of the parent's span context (a context that a Tracer
// returned knows whether its span is sampled, without a lookup) and
// EndEvent's lookup of a span of its own, and allocates nothing. A root run
// whose new span the sampler drops costs the sampler's decision plus the
// record.
// Without a Tracer, the recording path is unchanged.
//
// Allocations also cost collections, whose work grows with the live heap:
// the records a Recorder retains ([telemetry.WithMaxEvents]) are part of
// it. BenchmarkEventSpan compares these costs in one run with a bare span
// start and end, and with recording alone.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use.
package oteltrace
