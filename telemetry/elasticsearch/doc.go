// Package elasticsearch publishes telemetry records to Elasticsearch, one
// document per finished event run or network operation, for Kibana
// dashboards, through the bulk API. Requests go through the official
// transport, github.com/elastic/elastic-transport-go/v8/elastictransport
// (node selection, authentication; its own retries turned off), with a bulk
// body that this package builds; it imports neither the go-elasticsearch
// client nor its request types, so it compiles quickly.
//
// A [Publisher] is attached to a [telemetry.Recorder], which hands it
// batches of finished records from a queue; each batch is indexed with bulk
// requests:
//
//	pub, err := elasticsearch.NewPublisher(elasticsearch.Config{
//		Hosts:       []string{"https://es.internal:9200"},
//		IndexPrefix: "pipeline-metrics",
//		Username:    "pipeline",
//		Password:    telemetry.NewSecret(os.Getenv("ELASTICSEARCH_PASSWORD")),
//	})
//	if err != nil {
//		return err // every problem of the Config, joined
//	}
//	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub))
//	if err != nil {
//		return err
//	}
//	defer rec.Close(ctx) // delivers what is buffered, then closes pub
//
// The zero [Config] is valid: http://localhost:9200, prefix
// [DefaultIndexPrefix], no authentication. [NewPublisher] validates the
// Config and never contacts the cluster, so an unreachable cluster never
// makes start-up fail or block.
//
// # Client version
//
// This package targets Elasticsearch and Kibana 8 and speaks the 8.x REST
// API, which a 9.x node also accepts in REST compatibility mode: set the
// environment variable ELASTIC_CLIENT_APIVERSIONING=true, as for the
// official client, and requests use the compatibility media types
// (compatible-with=8). A reply that does not come from Elasticsearch (no
// X-Elastic-Product header) is a permanent error.
//
// # Connection and credentials
//
// Config.Hosts are node URLs; "host:port" without a scheme gets http://.
// Config.CloudID selects an Elastic Cloud deployment instead, always over
// https. Authenticate
// with Config.Username and Config.Password (basic authentication) or
// Config.APIKey (the base64 "encoded" value of an API key), not both.
// Config.CACert, Config.TLSConfig or a Config.Transport of your own
// configure HTTPS. The command eventpipeline reads the credentials from the
// environment variables ELASTICSEARCH_USERNAME, ELASTICSEARCH_PASSWORD,
// ELASTICSEARCH_API_KEY and ELASTICSEARCH_CLOUD_ID.
//
// Password, APIKey and CloudID are [telemetry.Secret] values: a Config can
// be printed or logged, and no error or log line contains them; printing a
// [Publisher] with any verb, or logging it with slog, shows its hosts and
// index prefix only. A host URL holding credentials, a query or a fragment
// is refused, and the error shows it with the credentials replaced by
// REDACTED and the query values and fragment by xxxxx.
// Credentials are not sent over plain http:// to a host that is not a
// loopback address: [NewPublisher] refuses such a Config with an error
// wrapping [ErrInsecure] unless Config.AllowInsecure is set (the command
// eventpipeline has the flag --elasticsearch-allow-insecure for it). TLS
// verification stays on too: a Config.TLSConfig with InsecureSkipVerify
// is refused unless Config.AllowInsecure is set, as in the module's other
// publishers.
//
// # Indices and documents
//
// Event records go to <prefix>-event-YYYY.MM.DD and network records to
// <prefix>-network-YYYY.MM.DD, where the date is the UTC date of the
// record's start time. Each document is the document of
// [telemetry.FormatMetrics] (metric_type, the record's fields in snake_case,
// times in RFC 3339 UTC with nanoseconds, null for absent values,
// duration_seconds or latency_seconds) with @timestamp, the start time,
// added:
//
//	{"@timestamp":"2026-03-01T23:59:58.123456789Z","metric_type":"event",
//	 "event_name":"load_orders","task_id":"t1",
//	 "start_time":"2026-03-01T23:59:58.123456789Z","end_time":"2026-03-01T23:59:59.623456789Z",
//	 "status":"failed","error":"boom","retry_count":2,"process_id":4242,
//	 "pipeline_id":"run-7","duration_seconds":1.5}
//
// A document's _id is [DocumentID] of the record, a hash of its identity, so
// a batch sent again (after a timeout, say) overwrites its documents instead
// of duplicating them, and a new run of the same task id is a new document.
//
// # Index template
//
// Before its first bulk request a Publisher installs the index template
// <prefix> for the indices <prefix>-*, priority 200 (above built-in
// templates such as metrics-*-*), with explicit mappings:
//
//	metric_type, event_name, task_id, pipeline_id, status, operation, host  keyword
//	trace_id, span_id                                                        keyword
//	@timestamp, start_time, end_time, enqueue_time                           date_nanos
//	retry_count, process_id, port, bytes_sent, bytes_received               long
//	duration_seconds, latency_seconds, wait_seconds                          double
//	trace_sampled                                                            boolean
//	error                                                                    text, with an error.keyword sub-field
//
// so Kibana can aggregate without further setup. Keyword values longer than
// 1024 characters are kept in the document but not indexed. Installing is
// idempotent; [Publisher.InstallTemplate] does it at once and returns any
// error, and Config.SkipTemplate turns it off. The credentials need the
// cluster privilege manage_index_templates (unless SkipTemplate), and
// create_index and index on <prefix>-* (documents are written with the
// index action, so create_doc is not enough).
//
// # Failures
//
// Recording never waits for Elasticsearch: records wait in the Recorder's
// queue for this publisher ([telemetry.WithQueueSize]) and reach it in
// batches ([telemetry.WithMaxBatchSize], [telemetry.WithBatchTimeout]), sent
// in bulk requests of at most Config.FlushBytes (5 MiB), each limited by
// Config.Timeout (10s). A Publisher makes one attempt per call and has no
// retry settings of its own: the Recorder retries ([telemetry.WithRetry]).
//
//   - A batch that fails for a passing reason (the cluster unreachable, ctx
//     ended, 408, 429 or 5xx on the request or on documents of the bulk
//     response) returns a transient error, with the server's Retry-After if
//     any, and the Recorder retries it with backoff. A retried batch does not
//     resend the documents already indexed ([Stats].Retried counts those sent
//     again); a document sent twice overwrites itself by its _id. So what was
//     buffered is delivered once the cluster is back.
//   - If some documents of that batch were indexed, the error is a
//     [*telemetry.PartialError] with their count: if the Recorder's retries
//     run out ([telemetry.RetryPolicy]) before the rest are indexed, or
//     Close runs out of time, [telemetry.PublisherStats] counts exactly the
//     indexed documents as published and the others as dropped, not the
//     whole batch.
//   - Documents refused for good (a mapping error such as
//     mapper_parsing_exception, or a bulk request refused as a whole with
//     another 4xx, such as 400, 401 or 403) are not retried, nor sent again
//     with a retried batch: the publish call that settles the batch returns
//     a [*telemetry.DroppedError], so they are counted once in
//     [telemetry.PublisherStats] while the rest count as published, and the
//     first rejection of each kind is logged. [Publisher.Stats] counts
//     rejections by kind.
//   - A bulk request answered 413 Request Entity Too Large (a body over the
//     cluster's http.max_content_length, or a proxy's limit, below
//     Config.FlushBytes) is split in halves, each sent alone, down to single
//     documents: only a document too large to go alone is rejected for good,
//     as "http 413".
//   - A server that is not Elasticsearch is a permanent error.
//   - A failure to install the template is the error of the publish call,
//     naming the template and the server's status and reason; it is
//     permanent unless the status was 408, 429 or 5xx or the cluster could
//     not be reached.
//
// [telemetry.Recorder.Flush] returns when what was recorded before has been
// indexed or dropped; [telemetry.Recorder.Close] delivers what is queued
// (what its context leaves no time for is dropped and counted), then closes
// the Publisher, after which its publish calls return [telemetry.ErrClosed].
//
// Setting up Kibana (importing the dashboard in examples/telemetry) is
// described in docs/backends.md in the repository.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use.
package elasticsearch
