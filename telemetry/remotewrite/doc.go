// Package remotewrite pushes the records of a [telemetry.Recorder] as
// metrics with Prometheus remote write 1.0 (protobuf with the official
// prompb types, snappy-compressed) to any receiver: Prometheus started with
// --web.enable-remote-write-receiver, Mimir, Cortex, Thanos Receive,
// VictoriaMetrics, or a vendor's gateway. Use it when nothing can scrape
// the process (a short job, a process behind NAT); otherwise package
// prometheus, scraped, is simpler.
//
// A minimal use pushes to a Prometheus on this machine:
//
//	pub, err := remotewrite.NewPublisher(remotewrite.Config{URL: "http://127.0.0.1:9090/api/v1/write"})
//	if err != nil {
//		return err // every missing or malformed setting, by field name
//	}
//	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub))
//	if err != nil {
//		return err
//	}
//	defer rec.Close(ctx) // pushes one last time, then stops
//
// # Configuration
//
// [Config] is taken by value. URL is required; every other zero field
// means its default:
//
//	Username, Password  none: HTTP basic authentication
//	BearerToken         none: "Authorization: Bearer ..."
//	Headers             none; values are telemetry.Secret, such as X-Scope-OrgID
//	TLSConfig, CACert   Go's defaults: the server's certificate is verified against the system's roots
//	AllowInsecure       false: no credentials over plain http to a host other than loopback, no InsecureSkipVerify
//	Interval            push period, 15s ([DefaultInterval]); at least [MinInterval]
//	Timeout             limit of one HTTP attempt, 10s, capped at Interval
//	Retry               a telemetry.RetryPolicy; zero fields: telemetry.DefaultRetryPolicy, within one Interval
//	Job, Instance       the job and instance labels: "eventpipeline" and "<hostname>:<pid>"
//	ExternalLabels      none: further labels of every series, such as cluster
//	EventBuckets        1ms to 10min, as package prometheus
//	LatencyBuckets      0.5ms to 1min, as package prometheus
//	WaitBuckets         5ms to 1h, as package prometheus
//	MaxLabelValues      1000 event names, and 1000 operations, with series of their own
//	HTTPClient          a client of its own
//	Name                "remotewrite", the publisher label of the self-metrics
//	Logger              slog.Default() at the time of logging
//
// [NewPublisher] does no network I/O; it returns every missing or malformed
// setting at once, each naming its field.
//
// # Metrics
//
// The series are those of package prometheus, so that the dashboards and
// alerts in examples/telemetry work on either path:
//
//	event_duration_seconds   histogram  event_name, status (completed, failed)
//	event_retries_total      counter    event_name
//	event_wait_seconds       histogram  event_name (runs given telemetry.WithEnqueueTime or WithWait)
//	network_bytes_total      counter    operation, direction (sent, received)
//	network_latency_seconds  histogram  operation
//
// Histograms are classic _bucket{le}, _sum and _count series. Every series
// also has the labels job and instance (and Config.ExternalLabels), so
// that several processes pushing to one receiver stay apart. Task ids,
// hosts, ports and error texts are never label values. Event names and
// operations are bounded as in package prometheus: valid UTF-8 of at most
// 128 bytes, a longer or invalid one cut and suffixed with "~" and a hash;
// names beyond Config.MaxLabelValues are counted under
// [OverflowLabelValue]. With the default buckets an event name makes 43
// series (21 more for event_wait_seconds once one of its runs has a known
// wait in a queue) and an operation 21, per process.
//
// # Delivery self-metrics
//
// Once attached to a Recorder, the Publisher also pushes the delivery
// counters of each of that Recorder's publishers, itself included, under
// the names package prometheus exports (telemetry_publisher_*, with the
// label publisher), so that the delivery alerts work on this path too.
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
// one carries them. Query them with rate() and increase().
//
// A push that fails is retried by the module's one retry schedule, the
// [telemetry.RetryPolicy] of Config.Retry: connection errors, HTTP 408, 429
// and 5xx are retried with exponential backoff and jitter, or after the
// server's Retry-After, within one Interval; other statuses, such as 400
// (samples out of order) or 401, are permanent, and the error of Flush is
// then marked with [telemetry.Permanent]. Nothing ever blocks the code that
// records. [Publisher.Stats] gives the pushes, failed attempts, dropped
// pushes and the last status; the error of a push the receiver answered is
// a [*StatusError].
//
// # Secrets
//
// Password, BearerToken and header values are [telemetry.Secret]s: they
// print as REDACTED with every fmt verb, in log/slog and in JSON, and never
// appear in errors or logs. A [Publisher] prints as its URL only. Errors
// and log lines show the URL with the value of each query parameter and
// any fragment replaced by xxxxx, since a token may hide there (the query
// is sent as it is). Credentials are refused over plain http to a host other than loopback
// unless Config.AllowInsecure is set.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use.
package remotewrite
