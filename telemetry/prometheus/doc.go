// Package prometheus publishes the records of a [telemetry.Recorder] as
// Prometheus metrics, for a Prometheus server to scrape. It is built on
// github.com/prometheus/client_golang (imported as prom).
//
// A minimal use serves the metrics on http://127.0.0.1:2112/metrics:
//
//	rec, err := telemetry.NewRecorder()
//	if err != nil {
//		return err
//	}
//	defer rec.Close(ctx) // closes pub too: stops serving, unregisters
//	pub, err := prometheus.NewPublisher(prometheus.Config{})
//	if err != nil {
//		return err // an invalid Config, or the port is in use
//	}
//	if err := rec.AddPublisher(pub); err != nil {
//		return err
//	}
//
// The zero [Config] is valid; each field's documentation says what its zero
// value means.
//
// # Metrics
//
// The names, types and labels are a contract that the dashboard and the
// alerting rules in examples/telemetry rely on:
//
//	event_duration_seconds   histogram  event_name, status (completed, failed)
//	event_retries_total      counter    event_name (a run's retries, added when it ends)
//	network_bytes_total      counter    operation, direction (sent, received)
//	network_latency_seconds  histogram  operation
//	event_wait_seconds       histogram  event_name (time in a queue before the run started)
//
// event_wait_seconds observes only the runs whose enqueue time is known
// ([telemetry.WithEnqueueTime] or [telemetry.WithWait], which the job-queue
// adapters give), so an event name has that series only once one of its
// runs waited in a queue. The observations of a sampled run traced with
// [telemetry.WithSpanContext] carry an exemplar labelled
// [ExemplarTraceID] and [ExemplarSpanID], served in the OpenMetrics format.
//
// Config.Namespace prefixes every name ("app" gives
// app_event_duration_seconds; the dashboard and alerts expect none) and
// Config.ConstLabels adds fixed labels. The buckets are Config.EventBuckets
// ([DefaultEventBuckets]: 1ms to 10min), Config.LatencyBuckets
// ([DefaultLatencyBuckets]: 0.5ms to 1min) and Config.WaitBuckets
// ([DefaultWaitBuckets]: 5ms to 1h), finite and strictly increasing bounds
// as every metrics publisher of the module requires (the +Inf bucket is
// implicit; an empty slice means no classic buckets, valid only with
// native histograms); Config.NativeHistogramBucketFactor adds native
// histograms, which a Prometheus server ingests only with
// --enable-feature=native-histograms (before 3.8) or the
// scrape_native_histograms setting (from 3.8 on; required from 3.9).
//
// # Label values
//
// Task ids, hosts, ports and error texts never become label values: their
// number is unbounded. Event names, operations and publisher names do,
// bounded: a value that is valid UTF-8 of at most 128 bytes is kept as it
// is; any other is cut (invalid bytes replaced by U+FFFD) and suffixed with
// "~" and 16 hex digits of a hash of the original, so two long names stay
// distinct. At most Config.MaxLabelValues distinct event names
// ([DefaultMaxLabelValues]), and as many operations, get series of their
// own; records of further names are counted under the label value
// [OverflowLabelValue] ("_overflow"), and the first overflow is logged.
// That value is reserved: a record really named "_overflow" is counted under
// "_overflow~" and a hash. Counts stay exact and memory stays bounded. A
// record with an empty event name is refused with an error.
//
// # Delivery self-metrics
//
// The Publisher is a [telemetry.Attacher]: when it is attached to a Recorder
// ([telemetry.Recorder.AddPublisher], [telemetry.WithPublishers] or
// [telemetry.MonitorEvents]) it learns that Recorder (the first one, if it
// is attached to several), and every scrape then
// also reads the delivery counters of each publisher attached to it (this
// one, and say an Elasticsearch publisher), so that an operator sees when a
// backend loses records:
//
//	telemetry_publisher_records_published_total  counter  publisher
//	telemetry_publisher_failed_attempts_total    counter  publisher
//	telemetry_publisher_records_dropped_total    counter  publisher, reason (queue_full, failed, closed)
//	telemetry_publisher_panics_total             counter  publisher
//	telemetry_publisher_queue_length             gauge    publisher
//	telemetry_publisher_queue_capacity           gauge    publisher (0 for synchronous publishers)
//
// The queue capacity counts two queues of equal size, one of event records
// and one of network records: a publisher that gets records of one kind
// only drops them once its queue length reaches half the capacity.
//
// Before it is attached there are no self-metrics.
//
// # Serving
//
// With no Config.Registry the Publisher registers in a registry of its own
// and serves it on Config.Addr:Config.Port (default 127.0.0.1:2112, this
// host only; set Addr to "0.0.0.0" to accept scrapes from other hosts), or
// on Config.Listener. Given the registry of an application that already
// exposes /metrics, it only registers there, unless Config.Serve is set.
// [Publisher.Handler] returns the handler for a mux of your own, and
// [Publisher.URL] the address it serves.
//
// The server it runs is bounded against slow or greedy clients:
// Config.ReadHeaderTimeout (10s), ReadTimeout (30s), WriteTimeout (30s),
// IdleTimeout (2m), MaxHeaderBytes (16 KiB; larger headers get 431) and
// MaxConcurrentScrapes (8 at once, by the server and by Handler; more get
// 503 at once). Zero means the default; a negative value is invalid.
//
// [NewPublisher] validates the Config, returning every problem at once, and
// listens before it returns, so a port in use is its error (wrapping the
// [*net.OpError]). [Publisher.Close] (called by [telemetry.Recorder.Close])
// stops serving and unregisters; later publish calls, and a second Close,
// return an error wrapping [telemetry.ErrClosed].
//
// # Cost
//
// Publishing updates histograms and counters in process, without I/O, so
// the Publisher is a [telemetry.SyncPublisher]: the Recorder calls it on the
// recording path, without a queue. Once the series of an event name or
// operation exist, a record costs one lock-free lookup and one observation,
// and allocates nothing.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use.
package prometheus
