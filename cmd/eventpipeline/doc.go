// Command eventpipeline runs a sample event pipeline with built-in
// telemetry, answers questions about recorded telemetry, and serves the
// sample's remote events.
//
// Usage:
//
//	eventpipeline demo [--out-dir DIR] [--slow 200ms] [--quiet] [--worker HOST:PORT] [backend flags]
//	eventpipeline report [--failed] [--slow DURATION] [--retries] [--failed-network] [--slow-network DURATION] [--json] FILE
//	eventpipeline worker [--addr 127.0.0.1:8700] [--tls-cert FILE --tls-key FILE] [--client-ca FILE]
//	eventpipeline help [COMMAND]
//
// From a clone, go run ./cmd/eventpipeline demo runs the demo with nothing
// but Go; COMMAND --help (or help COMMAND) prints a command's flags. Flags
// may come before or after the arguments.
//
// # demo
//
// demo starts a worker on 127.0.0.1 (a free port), runs a sample pipeline
// of three stages and eight events (fast, slow, failing,
// retried-then-succeeding and remote ones; one remote event calls a port
// where nothing listens), shows progress on stderr, prints a summary on
// stdout (events by status, failed and slow events, retry statistics,
// network operations, failed and slow network operations), and writes two
// files:
//
//	telemetry-report.json  the JSON report (see package telemetry), indented
//	telemetry.jsonl        every finished record, one JSON document per line,
//	                       which eventpipeline report reads
//
// The sample's failures are on purpose: demo exits 0 after its summary.
//
//	--out-dir DIR       where to write the two files (default ".", created if missing)
//	--slow DURATION     threshold of the summary's slow events and operations (default 200ms)
//	--quiet             no progress lines on stderr
//	--worker HOST:PORT  run the remote events on a worker started with
//	                    eventpipeline worker, instead of one started in process
//
// # Backends
//
// demo also publishes to the backends whose flags are given. Secrets are
// read from environment variables, never from flags.
//
//	--prometheus HOST:PORT
//	    serve /metrics there for Prometheus (port 0 picks a free one; the URL
//	    is printed) and keep running after the summary until interrupted, so
//	    that Prometheus can scrape it
//	--elasticsearch HOSTS
//	    index every record in Elasticsearch at these comma-separated hosts
//	    (such as localhost:9200)
//	--elasticsearch-index-prefix PREFIX
//	    index prefix (default event-pipeline-metrics)
//	--grafana-cloud-instance-id ID
//	    push to Grafana Cloud as this stack instance id, with
//	--grafana-cloud-region REGION
//	    the region, such as prod-us-east-0 (OTLP to the region's gateway), or
//	--grafana-cloud-endpoint URL
//	    a remote-write URL (.../api/prom/push) or an OTLP URL (.../otlp)
//
// # Environment
//
//	ELASTICSEARCH_USERNAME, ELASTICSEARCH_PASSWORD
//	    basic authentication to Elasticsearch, or
//	ELASTICSEARCH_API_KEY
//	    an Elasticsearch API key (the base64 "encoded" value), or
//	ELASTICSEARCH_CLOUD_ID
//	    the Cloud ID of an Elastic Cloud deployment (instead of hosts)
//	GRAFANA_CLOUD_API_KEY
//	    the Grafana Cloud access-policy token (metrics:write scope)
//	EVENTPIPELINE_WORKER_TOKEN
//	    the token a worker requires from its callers, and that demo --worker
//	    sends
//
// # report
//
// report FILE reads a JSON-lines file written by demo or by a
// telemetry.JSONLinesPublisher and answers the queries:
//
//	--failed                 failed events, with their errors
//	--slow DURATION          events that took longer than DURATION
//	--retries                retry statistics
//	--failed-network         failed network operations
//	--slow-network DURATION  network operations slower than DURATION
//	--json                   one JSON document instead of tables
//
// With no query flag it prints every section, with thresholds of 1s. The
// JSON document's keys are the sections asked for (events_by_status,
// failed_events, slow_events and slow_events_threshold_seconds,
// retry_stats, network_operations, failed_network_operations,
// slow_network_operations and slow_network_operations_threshold_seconds),
// each record in the format of the JSON report.
//
// # worker
//
// worker serves the demo's remote events (geocode and score) at /events
// until interrupted, printing the address it listens on, so that demo
// --worker HOST:PORT can run them in another process or on another machine.
//
//	--addr HOST:PORT   address to listen on (default 127.0.0.1:8700; port 0 picks a free one)
//	--tls-cert FILE    serve HTTPS with this certificate...
//	--tls-key FILE     ...and this key
//	--client-ca FILE   require client certificates signed by these authorities
//
// A worker requires the token of EVENTPIPELINE_WORKER_TOKEN from its callers
// when it is set.
//
// # Exit codes
//
//	0  success, including the demo's intended failures, and worker or demo
//	   --prometheus stopped by an interrupt
//	1  runtime failure: an unreadable or missing file, malformed JSON lines
//	   (the message names the line), an unwritable output directory, a worker
//	   that cannot listen, a backend that cannot start, a demo interrupted
//	   before its summary
//	2  usage error: unknown command or flag, bad flag value (such as
//	   --slow soon, a negative duration, --worker without a port), missing or
//	   extra argument
//
// Errors go to stderr as "eventpipeline COMMAND: message"; usage errors are
// followed by a pointer to --help.
package main
