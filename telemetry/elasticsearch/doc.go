// Package elasticsearch publishes telemetry records to Elasticsearch, one
// document per finished event run or network operation, for Kibana
// dashboards. It uses the official client, github.com/elastic/go-elasticsearch/v8
// (imported as es), and its bulk API.
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
// The client's major version follows the server's: this package targets
// Elasticsearch and Kibana 8 with the v8 client, which a 9.x node also
// accepts when the client runs in REST compatibility mode (environment
// variable ELASTIC_CLIENT_APIVERSIONING=true).
//
// # Connection and credentials
//
// Config.Hosts are node URLs; "host:port" without a scheme gets http://.
// Config.CloudID selects an Elastic Cloud deployment instead. Authenticate
// with Config.Username and Config.Password (basic authentication) or
// Config.APIKey (the base64 "encoded" value of an API key), not both.
// Config.CACert, Config.TLSConfig or a Config.Transport of your own
// configure HTTPS. The command eventpipeline reads the credentials from the
// environment variables ELASTICSEARCH_USERNAME, ELASTICSEARCH_PASSWORD,
// ELASTICSEARCH_API_KEY and ELASTICSEARCH_CLOUD_ID.
//
// Password, APIKey and CloudID are [telemetry.Secret] values: a Config can
// be printed or logged, and no error or log line contains them. A host URL
// holding credentials is refused. Credentials are not sent over plain http
// to a host other than the loopback one unless Config.AllowInsecure says
// so.
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
//	@timestamp, start_time, end_time                                         date_nanos
//	retry_count, process_id, port, bytes_sent, bytes_received               long
//	duration_seconds, latency_seconds                                        double
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
// batches ([telemetry.WithMaxBatchSize], [telemetry.WithBatchTimeout]).
//
//   - A batch that fails for a passing reason (connection refused, 429,
//     5xx, or documents refused with 429 or 5xx in the bulk response) is
//     retried by the Recorder with backoff ([telemetry.WithRetry]),
//     honouring Retry-After; documents already indexed are overwritten by the
//     same _id. So what was buffered is delivered once the cluster is back.
//   - Documents refused for good (a mapping error such as
//     mapper_parsing_exception, a 400 on the whole request, a 401 or 403) are
//     not retried: the publish call returns a [*telemetry.DroppedError], so
//     they are counted in [telemetry.PublisherStats] while the rest count as
//     published, and the first rejection of each kind is logged.
//     [Publisher.Stats] counts rejections by kind.
//   - A failure to install the template is the error of the publish call,
//     naming the template and the server's status and reason.
//
// [telemetry.Recorder.Flush] returns when what was recorded before has been
// indexed or dropped; [telemetry.Recorder.Close] flushes, then closes the
// Publisher, after which its publish calls return [telemetry.ErrClosed].
//
// Setting up Kibana (importing the dashboard in examples/telemetry) is
// described in docs/backends.md in the repository.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use.
package elasticsearch
