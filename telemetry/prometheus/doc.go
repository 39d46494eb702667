// Package prometheus publishes the records of a [telemetry.Recorder] as
// Prometheus metrics, for a Prometheus server to scrape: the seed's
// PrometheusPublisher, built on github.com/prometheus/client_golang.
//
// A minimal use serves the metrics on http://127.0.0.1:2112/metrics:
//
//	r, err := telemetry.NewRecorder()
//	...
//	pub, err := prometheus.NewPublisher(prometheus.Config{Recorder: r})
//	if err != nil {
//		return err // invalid config, or the port is in use
//	}
//	r.AddPublisher(pub)
//	defer r.Close(ctx) // closes pub too: stops serving, unregisters
//
// # Metrics
//
// The names, types and labels are a contract that the dashboard and alerts
// in examples/telemetry rely on:
//
//	event_duration_seconds   histogram  event_name, status (completed, failed)
//	event_retries_total      counter    event_name
//	network_bytes_total      counter    operation, direction (sent, received)
//	network_latency_seconds  histogram  operation
//
// Config.Namespace prefixes every name ("app" gives
// app_event_duration_seconds) and Config.ConstLabels adds fixed labels.
// The histograms' buckets are set by Config.EventBuckets and
// Config.LatencyBuckets; Config.NativeHistogramBucketFactor adds native
// histograms. Task ids, hosts, ports and error texts never become label
// values, since their number is unbounded.
//
// # Label values
//
// Label values are made valid UTF-8 (invalid bytes become U+FFFD). At most
// Config.MaxLabelValues distinct event names, and as many operations, get
// series of their own; records of further names are counted under the
// label value [OverflowLabelValue], and the first overflow is logged. Counts
// stay exact; memory stays bounded.
//
// # Delivery self-metrics
//
// Every scrape also reads the delivery counters of each publisher attached
// to the Recorder this one is attached to (or to Config.Recorder) (this one and, say, an
// Elasticsearch publisher), so that an operator sees when a backend loses
// records:
//
//	telemetry_publisher_records_published_total  counter  publisher
//	telemetry_publisher_failed_attempts_total    counter  publisher
//	telemetry_publisher_records_dropped_total    counter  publisher, reason (queue_full, failed)
//	telemetry_publisher_panics_total             counter  publisher
//	telemetry_publisher_queue_length             gauge    publisher
//	telemetry_publisher_queue_capacity           gauge    publisher
//
// # Serving
//
// With no Config.Registry the Publisher registers in a registry of its own
// and serves it on Config.Addr:Config.Port (default 127.0.0.1:2112; set Addr
// to "0.0.0.0" to accept scrapes from other hosts). Given the registry of an
// application that already exposes /metrics, it only registers there,
// unless Config.Serve is set. [NewPublisher] listens before it returns, so a
// port in use is an error of NewPublisher. [Publisher.Close] stops serving
// and unregisters.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use. Publishing
// neither blocks nor allocates once the series of an event name or
// operation exist, so the Publisher is a [telemetry.SyncPublisher] that the
// Recorder calls on the recording path.
package prometheus
