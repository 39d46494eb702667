// Package grafanacloud pushes the records of a [telemetry.Recorder] to a
// Grafana Cloud stack as metrics. It speaks what a stack ingests:
// Prometheus remote write 1.0 (protobuf and snappy, with the official prompb
// types) to the stack's metrics endpoint, or OTLP over HTTP, with the
// official OpenTelemetry exporter, to the stack's OTLP gateway. Both
// authenticate with HTTP basic authentication: the stack's instance id as
// user, an access-policy token as password.
//
// A minimal use pushes with OTLP to the gateway of a region:
//
//	pub, err := grafanacloud.NewPublisher(grafanacloud.Config{
//		APIKey:  telemetry.NewSecret(os.Getenv("GRAFANA_CLOUD_API_KEY")), // glc_...
//		OrgSlug: "123456",                                                 // the stack's instance id
//		Region:  "prod-us-east-0",
//	})
//	if err != nil {
//		return err // every missing or malformed setting, by field name
//	}
//	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub))
//	if err != nil {
//		return err
//	}
//	defer rec.Close(ctx) // pushes one last time, then stops
//
// The Publisher is a preset of packages otlp and remotewrite, which push
// to any OTLP receiver and any remote-write receiver: the same engine,
// aggregation, retries and encodings, with the URL and the basic-auth
// credentials derived from the stack's settings here.
//
// Setting Config.Endpoint to the stack's remote-write URL, such as
// https://prometheus-prod-13-prod-us-east-0.grafana.net/api/prom/push,
// pushes with remote write instead; see [Config.Endpoint] for the rules.
// Where each setting is found in the Grafana Cloud portal is described in
// docs/backends.md in the repository. The command eventpipeline reads the
// token from the environment variable GRAFANA_CLOUD_API_KEY.
//
// # Configuration
//
// [Config] is taken by value. APIKey, OrgSlug and one of Region and
// Endpoint are required; every other zero field means its default:
//
//	Interval        push period, 15s ([DefaultInterval]); at least [MinInterval]
//	Timeout         limit of one HTTP attempt, 10s, capped at Interval
//	Retry           a telemetry.RetryPolicy; zero fields: telemetry.DefaultRetryPolicy, within one Interval
//	Job, Instance   the job and instance labels: "eventpipeline" and "<hostname>:<pid>"
//	EventBuckets    1ms to 10min, as package prometheus
//	LatencyBuckets  0.5ms to 1min, as package prometheus
//	WaitBuckets     5ms to 1h, as package prometheus
//	MaxLabelValues  1000 event names, and 1000 operations, with series of their own
//	AllowInsecure   false: https only, except to a loopback address (127.0.0.0/8, ::1, localhost)
//	HTTPClient      a client of its own
//	Logger          slog.Default() at the time of logging
//
// [NewPublisher] does no network I/O; it returns every missing or malformed
// setting at once, each naming its field.
//
// # Metrics
//
// The series are those of package prometheus, so that the same dashboards
// and alerts work on either:
//
//	event_duration_seconds   histogram  event_name, status (completed, failed)
//	event_retries_total      counter    event_name
//	event_wait_seconds       histogram  event_name (runs given telemetry.WithEnqueueTime or WithWait)
//	network_bytes_total      counter    operation, direction (sent, received)
//	network_latency_seconds  histogram  operation
//
// Every series also has the labels job and instance, so that several
// processes pushing to one stack stay apart. With remote write the
// histograms are classic _bucket{le}, _sum and _count series; with OTLP
// they are explicit-bucket histograms and the counters monotonic sums, all
// cumulative, and job and instance travel as the resource attributes
// service.name and service.instance.id, which Grafana Cloud turns into
// those labels. Task ids, hosts, ports and error texts are never label
// values. Event names, operations and publisher names are bounded as in
// package prometheus: valid UTF-8 of at most 128 bytes, a longer or invalid
// one cut and suffixed with "~" and 16 hex digits of a hash, so names stay
// distinct; series are keyed by the values as sent. Names beyond
// Config.MaxLabelValues are counted under [OverflowLabelValue]
// ("_overflow"), which is reserved: a record really named "_overflow" is
// counted under "_overflow~" and a hash.
//
// Grafana Cloud bills active series: with the default buckets an event name
// costs 43 series (21 more for event_wait_seconds once one of its runs has
// a known wait in a queue) and an operation 21, times the number of
// processes. Fewer buckets mean fewer series.
//
// # Delivery self-metrics
//
// The Publisher is a [telemetry.Attacher]: once attached to a Recorder (the
// first one, if several) it also pushes, every interval from attachment and
// by both protocols, the delivery counters of each publisher of that
// Recorder, itself included, under the names package prometheus exports:
//
//	telemetry_publisher_records_published_total  counter  publisher
//	telemetry_publisher_failed_attempts_total    counter  publisher
//	telemetry_publisher_records_dropped_total    counter  publisher, reason (queue_full, failed, closed)
//	telemetry_publisher_panics_total             counter  publisher
//	telemetry_publisher_queue_length             gauge    publisher
//	telemetry_publisher_queue_capacity           gauge    publisher
//
// so the dashboard and every alert in examples/telemetry work through
// remote write as well as through scraping.
//
// # Aggregation and pushes
//
// The Publisher is a [telemetry.SyncPublisher]: the Recorder calls it on
// the recording path, where it only updates in-process histograms and
// counters with atomic operations, without locks (once a name's series
// exist), allocations or I/O. A goroutine of its own pushes a snapshot
// every Config.Interval, so the cost of pushing does not grow with the event
// rate. [Publisher.Flush] (called by [telemetry.Recorder.Flush]) pushes at
// once and waits for the outcome; [Publisher.Close] (called by
// [telemetry.Recorder.Close]) pushes one last time, unless the last push
// already had every record, and stops the goroutine. Values are cumulative
// since the Publisher was created and are never reset, so a lost push loses
// no counts: the next one carries them. Query them with rate() and
// increase(), as scraped metrics.
//
// # Failures
//
// Connection errors, HTTP 408, 429 and 5xx are retried with exponential
// backoff and jitter, or after the server's Retry-After, as Config.Retry (a
// [telemetry.RetryPolicy]) says: the last attempt comes at Retry.MaxElapsed
// at the latest, and a wait that would outlast the Interval is not started,
// since the next push carries the same values. Then the push is dropped and
// counted. Other 4xx, such as 401 for a wrong instance id or token, are
// permanent: not retried, counted, and logged once per status code with a
// hint. Nothing ever blocks the code that
// records. [Publisher.Stats] gives the pushes, failed attempts, dropped
// pushes, permanent failures, the times of the last push and of the last
// failed attempt, the last status, and the number of series; the error of
// [telemetry.Recorder.Flush] carries the last push's error (a
// [*StatusError] with the HTTP status).
//
// # Secrets
//
// Config.APIKey is a [telemetry.Secret]: it prints as REDACTED with every
// fmt verb, in log/slog and in JSON, and never appears in errors or logs.
// Errors never quote Config.OrgSlug either, in case a token was pasted into
// it. A [Publisher] prints as its protocol and URL only. Errors and log
// lines show the URL with the value of each query parameter and any
// fragment replaced by xxxxx, since a token may hide there.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use.
package grafanacloud
