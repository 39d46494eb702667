// Package otelmetric records the records of a [telemetry.Recorder] into a
// [go.opentelemetry.io/otel/metric.MeterProvider] of yours: the
// OpenTelemetry SDK's, with whatever readers, views and exporters you use
// (OTLP to a collector, Prometheus, stdout). No global MeterProvider is
// used or required.
//
// A minimal use with the SDK and its OTLP exporter:
//
//	exp, err := otlpmetrichttp.New(ctx) // OTEL_EXPORTER_OTLP_ENDPOINT, or http://localhost:4318
//	if err != nil {
//		return err
//	}
//	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
//	defer mp.Shutdown(ctx) // after the Recorder's Close
//
//	pub, err := otelmetric.NewPublisher(otelmetric.Config{MeterProvider: mp})
//	if err != nil {
//		return err
//	}
//	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub))
//	if err != nil {
//		return err
//	}
//	defer rec.Close(ctx)
//
// To push to a collector without an SDK of your own, use package otlp.
//
// # Instruments
//
// The Publisher gets the Meter [ScopeName] and makes:
//
//	event_duration_seconds   Float64Histogram, unit s    event_name, status (completed, failed)
//	event_retries_total      Int64Counter, unit {retry}  event_name
//	event_wait_seconds       Float64Histogram, unit s    event_name (runs given telemetry.WithEnqueueTime or WithWait)
//	network_bytes_total      Int64Counter, unit By       operation, direction (sent, received)
//	network_latency_seconds  Float64Histogram, unit s    operation
//
// The histograms advise the bucket boundaries of package prometheus, in
// seconds: Config.EventBuckets (1ms to 10min), Config.LatencyBuckets
// (0.5ms to 1min) and Config.WaitBuckets (5ms to 1h); a View of the
// MeterProvider may override them. The names are
// those of the Prometheus series, with units, so that an OTLP-to-Prometheus
// translation (Prometheus 3's OTLP receiver, under every translation
// strategy, with or without suffixes and UTF-8 escaping; Mimir; the Grafana
// Cloud gateway) keeps them as they are, and the dashboards and alerts in
// examples/telemetry work unchanged; the resource's service.name and
// service.instance.id become the job and instance labels. OpenTelemetry's
// semantic conventions would name them with dots (event.duration); these
// names are kept so that one dashboard fits every path.
//
// Task ids, hosts, ports and error texts are never attribute values. Event
// names and operations are bounded as in package prometheus: valid UTF-8
// of at most 128 bytes, a longer or invalid one cut and suffixed with "~"
// and a hash; names beyond Config.MaxLabelValues are counted under
// [OverflowLabelValue]. Its default, [DefaultMaxLabelValues] (998), keeps
// every series within the SDK's default cardinality limit, past which the
// SDK would count records without their labels.
//
// # Delivery self-metrics
//
// Once attached to a Recorder, the Publisher also observes, whenever the
// MeterProvider collects, the delivery counters of each of that Recorder's
// publishers, itself included: the Int64ObservableCounters
// telemetry_publisher_records_published_total,
// telemetry_publisher_failed_attempts_total,
// telemetry_publisher_records_dropped_total (with reason) and
// telemetry_publisher_panics_total, and the Int64ObservableGauges
// telemetry_publisher_queue_length and telemetry_publisher_queue_capacity,
// all with the attribute publisher, as package prometheus exports them.
//
// # Cost
//
// The Publisher is a [telemetry.SyncPublisher]: the Recorder calls it on
// the recording path. It keeps, per event name and per operation, the
// measurement options with their attribute sets, made on first use, so
// that a record costs a lookup without locks and the instruments' own
// work; with the SDK it allocates nothing (a test checks it with
// testing.AllocsPerRun).
//
// # Flush and Close
//
// [Publisher.Flush], called by [telemetry.Recorder.Flush], calls the
// MeterProvider's ForceFlush if it has one, as the SDK's does, which
// exports every metric of that MeterProvider. [Publisher.Close], called by
// [telemetry.Recorder.Close], unregisters the self-metrics' callback; it
// neither flushes nor shuts down the MeterProvider, which is yours: shut it
// down after the Recorder.
//
// Exporting is the MeterProvider's too: when the backend is down, its
// readers and exporters retry and report failures as they are configured
// (the SDK's through otel.Handle), while recording goes on unaffected;
// Flush returns the error of ForceFlush.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use.
package otelmetric
