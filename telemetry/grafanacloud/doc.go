// Package grafanacloud pushes the records of a [telemetry.Recorder] to
// Grafana Cloud as metrics: the seed's GrafanaCloudPublisher. It speaks
// what a Grafana Cloud stack really ingests: Prometheus remote write 1.0
// (protobuf and snappy, with the official prompb types) to the stack's
// metrics endpoint, or OTLP over HTTP, with the official OpenTelemetry
// exporter, to the stack's OTLP gateway. Both authenticate with HTTP basic
// authentication: the stack's instance id as user, an access-policy token
// as password.
//
// A minimal use pushes with OTLP to the gateway of a region:
//
//	r, err := telemetry.NewRecorder()
//	...
//	pub, err := grafanacloud.NewPublisher(grafanacloud.Config{
//		APIKey:  grafanacloud.Secret(os.Getenv("GRAFANA_CLOUD_TOKEN")),
//		OrgSlug: "123456", // the stack's instance id
//		Region:  "prod-us-east-0",
//	})
//	if err != nil {
//		return err // a missing or malformed setting, named
//	}
//	r.AddPublisher(pub)
//	defer r.Close(ctx) // pushes one last time, then closes pub
//
// Setting Config.Endpoint to the stack's remote-write URL, such as
// https://prometheus-prod-13-prod-us-east-0.grafana.net/api/prom/push,
// pushes with remote write instead; see [Config.Endpoint] for the rules.
//
// # Metrics
//
// The series are those of the Prometheus publisher (SPEC.md), so that the
// same dashboards and alerts work on either:
//
//	event_duration_seconds   histogram  event_name, status (completed, failed)
//	event_retries_total      counter    event_name
//	network_bytes_total      counter    operation, direction (sent, received)
//	network_latency_seconds  histogram  operation
//
// Every series also has the labels job (Config.Job, default
// "eventpipeline") and instance (Config.Instance, default
// "<hostname>:<pid>"), so that several processes pushing to one stack stay
// apart. With remote write the histograms are classic _bucket{le}, _sum
// and _count series; with OTLP they are explicit-bucket histograms and the
// counters monotonic sums, all with cumulative temporality, and job and
// instance are the resource attributes service.name and
// service.instance.id, which Grafana Cloud turns into those labels. Task
// ids, hosts, ports and error texts are never label values. At most
// Config.MaxLabelValues event names, and as many operations, get series of
// their own; further ones are counted under [OverflowLabelValue].
//
// # Aggregation and pushes
//
// The Publisher is a [telemetry.SyncPublisher]: the Recorder calls it on
// the recording path, where it only updates in-process histograms and
// counters with atomic operations, without locks (once a name's series
// exist), allocations or I/O. A goroutine of its own pushes a snapshot of
// them every Config.Interval (default 15s), so the cost of pushing does
// not grow with the event rate. [Publisher.Flush] (called by
// [telemetry.Recorder.Flush]) pushes at once and waits for the outcome;
// [Publisher.Close] (called by [telemetry.Recorder.Close]) pushes one last
// time, unless the last push already had every record, and stops the
// goroutine. Values are cumulative since the Publisher
// was created and are never reset, so a push that is lost loses no counts:
// the next one carries them.
//
// # Failures
//
// Connection errors, HTTP 429 and 5xx are retried with exponential backoff
// and jitter (Config.Retry), honouring Retry-After, within one interval;
// other 4xx, such as 401 for a wrong instance id or token, are permanent:
// the push is dropped, the first one of each status is logged, and later
// ones are only counted. Nothing ever blocks the code that records. An
// operator sees the outcome in [Publisher.Stats] (pushes, failed
// attempts, dropped pushes, permanent failures, time of the last success
// and of the last error), in the log lines, and in the error of
// [telemetry.Recorder.Flush].
//
// # Secrets
//
// Config.APIKey is a [Secret]: it prints as REDACTED with every fmt verb,
// in log/slog and in JSON, and it never appears in errors or logs. A
// [Publisher] prints as its protocol and URL only, with every fmt verb.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use.
package grafanacloud
