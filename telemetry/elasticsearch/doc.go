// Package elasticsearch publishes telemetry records to Elasticsearch, for
// Kibana dashboards: the seed's ElasticsearchPublisher.
//
// A [Publisher] is attached to a [telemetry.Recorder], which hands it
// batches of finished records; it indexes each batch with the bulk API of
// the official client (github.com/elastic/go-elasticsearch/v8, its
// esutil.BulkIndexer):
//
//	pub, err := elasticsearch.NewPublisher(elasticsearch.Config{
//		Hosts:       []string{"localhost:9200"},
//		IndexPrefix: "pipeline-metrics",
//	})
//	if err != nil {
//		return err
//	}
//	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub))
//	if err != nil {
//		return err
//	}
//	defer rec.Close(context.Background()) // delivers what is buffered
//
// # Indices and documents
//
// Event records go to <prefix>-event-YYYY.MM.DD and network records to
// <prefix>-network-YYYY.MM.DD, where the date is the UTC date of the
// record's start time and the prefix is Config.IndexPrefix
// ([DefaultIndexPrefix] by default). Each document is the standardized
// document of [telemetry.FormatMetrics] (metric_type, snake_case fields,
// times in RFC 3339 UTC with nanoseconds, duration_seconds or
// latency_seconds) with @timestamp, the record's start time, added. Its _id
// is [DocumentID] of the record, so indexing a record twice overwrites it.
//
// # Index template
//
// Before its first bulk request a Publisher installs the index template
// <prefix> for the indices <prefix>-*, with explicit mappings (keyword for
// names, ids, status, host, operation and metric_type; date_nanos for the
// times; long and double for numbers; error as text with an error.keyword
// sub-field), so Kibana can aggregate without further setup. Installing is
// idempotent. [Publisher.InstallTemplate] does it at once and reports any
// error; Config.SkipTemplate turns it off.
//
// # Failures
//
// Recording never waits for Elasticsearch: the Recorder buffers records per
// publisher (see [telemetry.WithQueueSize]) and delivers them from a
// goroutine. Within one batch, documents refused for a passing reason (429,
// 5xx, cluster unreachable) are sent again with backoff (Config.MaxRetries);
// if that is not enough the batch fails and the Recorder retries it (see
// [telemetry.WithRetry]), so what was buffered is delivered once the cluster
// is back. Documents refused for good, such as by a mapping error, are
// dropped, counted in [telemetry.PublisherStats] and [Publisher.Stats], and
// the first of each kind of error is logged.
//
// Every exported function and method is safe for concurrent use.
package elasticsearch
