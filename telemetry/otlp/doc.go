// Package otlp pushes the records of a [telemetry.Recorder] as OpenTelemetry
// metrics, over OTLP/HTTP (protobuf, with the official OpenTelemetry
// exporter), to any OpenTelemetry Collector or OTLP receiver: a collector
// of your own, Prometheus 3's OTLP receiver, Mimir, or a vendor's gateway.
// It also exports spans there (see # Traces). No account or credentials
// are required; headers carry them when a receiver asks for some.
//
// A minimal use pushes to a collector on this machine:
//
//	pub, err := otlp.NewPublisher(otlp.Config{Endpoint: "http://127.0.0.1:4318"})
//	if err != nil {
//		return err // every missing or malformed setting, by field name
//	}
//	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub))
//	if err != nil {
//		return err
//	}
//	defer rec.Close(ctx) // pushes one last time, then stops
//
// To record into a MeterProvider of your own instead, and export with
// whatever exporter it has, use package otelmetric.
//
// # Configuration
//
// [Config] is taken by value. Endpoint is required, the base URL of an
// OTLP/HTTP receiver (metrics go to Endpoint/v1/metrics); every other zero
// field means its default:
//
//	Headers            none; values are telemetry.Secret, such as an Authorization header
//	TLSConfig, CACert  Go's defaults: the server's certificate is verified against the system's roots
//	AllowInsecure      false: no Headers over plain http to a host other than loopback, no InsecureSkipVerify
//	Compression        gzip
//	Interval           push period, 15s ([DefaultInterval]); at least [MinInterval]
//	Timeout            limit of one HTTP attempt, 10s, capped at Interval
//	Retry              a telemetry.RetryPolicy; zero fields: telemetry.DefaultRetryPolicy; a push within one Interval
//	ServiceName        service.name, "eventpipeline"; becomes the job label in Prometheus
//	ServiceInstanceID  service.instance.id, "<hostname>:<pid>"; becomes the instance label
//	ResourceAttributes none
//	EventBuckets       1ms to 10min, as package prometheus
//	LatencyBuckets     0.5ms to 1min, as package prometheus
//	WaitBuckets        5ms to 1h, as package prometheus
//	MaxLabelValues     1000 event names, and 1000 operations, with series of their own
//	HTTPClient         a client of its own
//	Name               "otlp", the publisher label of the self-metrics
//	Logger             slog.Default() at the time of logging
//
// [NewPublisher] and [NewTracerProvider] do no network I/O; they return
// every missing or malformed setting at once, each naming its field.
// Interval, the buckets, MaxLabelValues and Name apply to metrics only.
//
// # Metrics
//
// The metrics are cumulative explicit-bucket histograms (in seconds) and
// monotonic sums, named as the Prometheus series of package prometheus,
// with units, so that an OTLP-to-Prometheus translation (Prometheus 3's
// OTLP receiver, with or without its UTF-8 escaping; Mimir; the Grafana
// Cloud gateway) gives exactly the names and labels that the dashboards
// and alerts in examples/telemetry use:
//
//	event_duration_seconds   histogram, unit s    event_name, status (completed, failed)
//	event_retries_total      sum, unit {retry}    event_name
//	event_wait_seconds       histogram, unit s    event_name (runs given telemetry.WithEnqueueTime or WithWait)
//	network_bytes_total      sum, unit By         operation, direction (sent, received)
//	network_latency_seconds  histogram, unit s    operation
//
// service.name and service.instance.id become the job and instance labels.
// Task ids, hosts, ports and error texts are never attribute values. Event
// names and operations are bounded as in package prometheus: valid UTF-8
// of at most 128 bytes, a longer or invalid one cut and suffixed with "~"
// and a hash; names beyond Config.MaxLabelValues are counted under
// [OverflowLabelValue].
//
// # Delivery self-metrics
//
// Once attached to a Recorder, the Publisher also pushes the delivery
// counters of each of that Recorder's publishers, itself included, as the
// sums telemetry_publisher_records_published_total,
// telemetry_publisher_failed_attempts_total,
// telemetry_publisher_records_dropped_total (with reason) and
// telemetry_publisher_panics_total, and the gauges
// telemetry_publisher_queue_length and telemetry_publisher_queue_capacity,
// all with the attribute publisher: the names package prometheus exports,
// so that the delivery alerts work on this path too.
//
// # Aggregation, pushes and failures
//
// The Publisher is a [telemetry.SyncPublisher]: the Recorder calls it on
// the recording path, where it only updates in-process histograms and
// counters with atomic operations, without locks (once a name's series
// exist), allocations or I/O. A goroutine of its own pushes a snapshot
// every Config.Interval; [Publisher.Flush] (called by
// [telemetry.Recorder.Flush]) pushes at once and waits for the outcome;
// [Publisher.Close] pushes one last time and stops. Values are cumulative
// since the Publisher was created, so a lost push loses no counts: the next
// one carries them.
//
// A push that fails is retried by the module's one retry schedule, the
// [telemetry.RetryPolicy] of Config.Retry: connection errors, HTTP 408, 429
// and 5xx are retried with exponential backoff and jitter, or after the
// server's Retry-After, within one Interval; other statuses, such as 401,
// are permanent, and the error of Flush is then marked with
// [telemetry.Permanent] (test it with [telemetry.IsPermanent]). Nothing
// ever blocks the code that records. [Publisher.Stats] gives the pushes,
// failed attempts, dropped pushes and the last status; the error of a push
// the receiver answered is a [*StatusError].
//
// # Secrets
//
// Header values are [telemetry.Secret]s: they print as REDACTED with every
// fmt verb, in log/slog and in JSON, and never appear in errors or logs. A
// [Publisher] or a [TracerProvider] prints as its URL only. Errors and log lines show the URL
// with the value of each query parameter and any fragment replaced by
// xxxxx, since a token may hide there. Headers are refused over plain http
// to a host other than loopback unless Config.AllowInsecure is set.
//
// # Traces
//
// [NewTracerProvider] returns a [*TracerProvider]: the OpenTelemetry SDK's
// TracerProvider, with a batch span processor, that exports spans over
// OTLP/HTTP to Endpoint/v1/traces with the connection settings of a
// Publisher (Headers, AllowInsecure, TLSConfig, CACert, Compression,
// HTTPClient, and Timeout for each attempt), its resource (ServiceName,
// ServiceInstanceID, ResourceAttributes), Retry and Logger. It is the one
// way to trace with this package: give it to telemetry/oteltrace or
// pipeline.Config.TracerProvider, read its counters with
// [TracerProvider.Stats], and shut it down before the program exits:
//
//	tp, err := otlp.NewTracerProvider(ctx, otlp.Config{Endpoint: "http://127.0.0.1:4318"})
//	if err != nil {
//		return err
//	}
//	defer tp.Shutdown(ctx) // exports the spans still buffered, within ctx
//
// Spans are not records of a Recorder, and the Recorder's delivery does
// not apply to them: the SDK's batch span processor queues them and hands
// them to the exporter in batches, every 5 seconds, on ForceFlush and on
// Shutdown, each export with a context that ends after its export timeout
// (30s); the SDK's environment variables OTEL_BSP_MAX_QUEUE_SIZE,
// OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT and
// OTEL_BSP_MAX_EXPORT_BATCH_SIZE change these defaults. The exporter is
// the official otlptracehttp one with its own retries off: a failed export
// is retried by the module's one retry schedule, Config.Retry, as a push
// is: connection errors, HTTP 408, 429 and 5xx with exponential backoff
// and jitter, or after the server's Retry-After; other statuses, such as
// 401, drop the batch at once. Retries end when the attempts or
// Retry.MaxElapsed run out, or with the export's context: ForceFlush's and
// Shutdown's contexts bound them, and a wait that would outlast the
// context is not started.
//
// [TracerProvider.Stats] gives the spans exported, the failed attempts,
// the spans dropped (given up; of those, the ones the endpoint rejected)
// and the last status. An export given up is logged once, at Warn, with
// the number of spans dropped; give-ups within a minute of a logged one
// are only counted, and the next line logged carries their spans, so that
// the lines add up to [TraceStats].DroppedSpans. The first rejection with
// each status is logged at once, at Error, with a hint. Single failed
// attempts are logged at Debug only; Shutdown logs the totals. The error
// of an export given up (a [*StatusError] for an HTTP status, marked with
// [telemetry.Permanent] if rejected) goes to the SDK, which returns it from
// ForceFlush and otherwise passes it to the OpenTelemetry error handler
// (see otel.SetErrorHandler; by default it prints it with package log). A
// partial success (the endpoint accepted the request but rejected some
// spans, which it would reject again) is not retried: its spans count as
// exported, and its error goes the same way.
//
// Spans that the batch span processor drops because its queue (2048 spans)
// is full never reach the exporter, and are not in [TraceStats]: the SDK
// counts them itself, in its experimental self-observability metric
// otel.sdk.processor.span.processed with error.type queue_full, which it
// reports to the global MeterProvider when the environment sets
// OTEL_GO_X_OBSERVABILITY=true. Recording a span never waits for the
// endpoint either way.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use.
package otlp
