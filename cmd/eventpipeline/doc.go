// Command eventpipeline runs a sample event pipeline with built-in
// telemetry, answers questions about recorded telemetry, and serves the
// sample's remote events.
//
// Usage:
//
//	eventpipeline demo [--out-dir DIR] [--slow 200ms] [--quiet] [--worker HOST:PORT] [--close-timeout 10s]
//	                   [--ui HOST:PORT [--trusted-proxy CIDR]...] [--duration D] [backend flags]
//	eventpipeline report [--failed] [--slow DURATION] [--retries] [--failed-network] [--slow-network DURATION] [--json] FILE
//	eventpipeline worker [--addr 127.0.0.1:8700] [--tls-cert FILE --tls-key FILE] [--client-ca FILE]
//	                     [--trusted-proxy CIDR]... [--otlp URL]
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
//	--out-dir DIR            where to write the two files (default ".", created if missing)
//	--slow DURATION          threshold of the summary's slow events and operations (default 200ms)
//	--quiet                  no progress lines on stderr
//	--worker HOST:PORT       run the remote events on a worker started with
//	                         eventpipeline worker, instead of one started in process
//	--close-timeout DURATION how long to wait for the backends once the
//	                         demo closes them (default 10s, counted from then)
//	--ui HOST:PORT           serve the live web view (package
//	                         telemetry/webview) there, and keep running
//	--trusted-proxy CIDR     a reverse proxy in front of the web view, whose
//	                         X-Forwarded-For header is believed (see
//	                         "Behind a reverse proxy"); needs --ui
//	--duration D             keep running for D
//
// Each file is written to a hidden temporary file in the output directory,
// synced and renamed, so a file is complete or absent and a symlink at its
// name is replaced, never followed. A demo interrupted before its summary
// writes nothing and keeps the earlier files.
//
// The summary and the files never wait for a backend: a backend that is down
// costs only the records it did not take. When closing, demo waits up to
// --close-timeout, then prints on stderr, for each backend that did not take
// everything, "NAME: N of M records not delivered (...)", and exits 1.
//
// Text from records (event names, task ids, hosts, error texts, a remote
// worker's answers) is printed with control characters escaped (\n, \x1b,
// \u202e...): C0 and C1 controls, DEL, format characters (bidirectional
// controls, zero-width spaces and joiners, the byte-order mark), U+2028 and
// U+2029, and bytes that are not UTF-8. No name can move the cursor, clear
// the screen, forge a table row or pass for another with an invisible
// difference. A table cell shows at most 200
// characters of a text, ending with "…" when it is cut (report --json and
// the files keep it whole).
//
// # A demo that keeps running
//
// With --ui or --duration, demo runs the sample pipeline again and again
// instead of once, so that the web view, a Prometheus dashboard and the
// alerting rules have live data. Each run varies: latencies between 0.6
// and 1.4 times the sample's, with one in twenty three times longer; an
// incident in the first 30 seconds of every 90 (from the start), when the
// notify service (which demo serves on a loopback port of its own) is
// down and half of the loads and 60% of the rate fetches fail, against 3%
// and 15% otherwise (and 1% of the validations); and a worker (the one
// demo starts, unless --worker is given) that takes 1 to 2.5 seconds to
// score from the 40th to the 55th second of every minute. A progress line per run goes to stderr.
// Runs follow each other after a pause of up to 300ms.
//
// demo stops after --duration (the run in progress ends first; then, if
// something is served, it keeps serving until Ctrl-C), or at Ctrl-C (which
// cuts the run in progress short: its events fail with "context
// canceled"). Either way it prints the summary, with the last 10 rows of
// each list, writes the two files and exits 0. With --ui and no
// --duration it runs until Ctrl-C.
//
// --ui serves the web view on HOST:PORT (see "Addresses" below; the URL is
// printed): runs by status, throughput and failure rate charts,
// percentiles, retries, publisher health, runs in flight, failed and slow
// runs, network operations and each run, updated live. When
// EVENTPIPELINE_UI_TOKEN is set, the view asks for it (the header
// "Authorization: Bearer TOKEN", or on its login page in a browser, which
// opens a session of 12 hours for this view, port and host only).
// demo refuses to serve it on an address that is not loopback without a
// token (exit 2). With a token there, it warns that the token and the
// session cookie travel in clear text: put a reverse proxy that serves
// HTTPS in front.
//
// # Behind a reverse proxy
//
// The web view and the worker check at most 10 wrong tokens a minute from
// each client address, and answer 429 beyond (see packages
// telemetry/webview and pipeline). Behind a reverse proxy every request
// comes from the proxy's address, so that a guesser would lock out all its
// clients. demo --trusted-proxy (for --ui) and worker --trusted-proxy name
// the proxies (webview.Config.TrustedProxies and
// pipeline.WorkerConfig.TrustedProxies): a request that comes from one of
// them counts its wrong tokens against the rightmost address of its
// X-Forwarded-For header that is not a trusted proxy (the entries left of
// it could be forged), so the proxy must append the address that reached
// it (as nginx's $proxy_add_x_forwarded_for, Caddy and HAProxy's option
// forwardfor do). The header is read for nothing else, and never from
// another address. The flag may be repeated; its value is a CIDR prefix
// (10.0.0.0/8, fd00::/8) or an IP address, which means that address only
// (/32 or /128). A bad value is a usage error (exit 2), as is
// --trusted-proxy without --ui for demo. Trust no address that clients
// could connect from: a program there could name any client.
//
// # Addresses
//
// Every server the command starts listens on loopback unless told
// otherwise: the web view and the Prometheus endpoint only when --ui or
// --prometheus is given, the worker on 127.0.0.1:8700 by default, and the
// demo's own worker and notify service on 127.0.0.1 always. --ui,
// --prometheus and worker --addr read their address alike:
//
//	PORT              127.0.0.1:PORT, this host only
//	127.0.0.1:PORT    the same; localhost:PORT or [::1]:PORT likewise loopback
//	:PORT             every network interface (Go's meaning), reachable from other machines
//	0.0.0.0:PORT      the same: Go listens on the IPv6 interfaces too ([::]:PORT)
//	HOST:PORT         that address only
//
// Port 0 picks a free one. A server that listens beyond loopback prints one
// warning line on stderr, "eventpipeline CMD: warning: WHAT listens on
// ADDR (...): other machines may reach it; ...", saying what they could do.
// Each server bounds the time to read a request's header and the whole
// request, keeps idle connections for a limited time, and caps the header
// size and any body it reads; the web view bounds the writing of each
// response instead of a server write timeout, which would end its live
// streams.
//
// # Backends
//
// demo also publishes to the backends whose flags are given. Secrets are
// read from environment variables, never from flags.
//
//	--prometheus HOST:PORT
//	    serve /metrics there for Prometheus (see "Addresses"; the URL
//	    is printed) and keep running after the summary until interrupted
//	    (Ctrl-C: exit 0, however long it served; a second Ctrl-C ends the
//	    process at once), so that Prometheus can scrape it
//	--elasticsearch HOSTS
//	    index every record in Elasticsearch at these comma-separated hosts
//	    (such as localhost:9200)
//	--elasticsearch-index-prefix PREFIX
//	    index prefix (default event-pipeline-metrics); also turns the backend
//	    on for an Elastic Cloud deployment given by ELASTICSEARCH_CLOUD_ID
//	--elasticsearch-allow-insecure
//	    allow credentials over plain http to a host that is not loopback
//	    (refused by default)
//	--grafana-cloud-instance-id ID
//	    push to Grafana Cloud as this stack instance id, with
//	--grafana-cloud-region REGION
//	    the region, such as prod-us-east-0 (OTLP to the region's gateway), or
//	--grafana-cloud-endpoint URL
//	    a remote-write URL (.../api/prom/push) or an OTLP URL (.../otlp)
//	--otlp URL
//	    push the metrics and the traces over OTLP/HTTP to an OpenTelemetry
//	    Collector (or any OTLP receiver) at this base URL, such as
//	    http://127.0.0.1:4318 (metrics go to URL/v1/metrics, spans to
//	    URL/v1/traces), as service.name eventpipeline; headers, such as
//	    credentials, from OTEL_EXPORTER_OTLP_HEADERS
//	--otlp-allow-insecure
//	    allow those headers over plain http to a host other than loopback
//	    (refused by default)
//
// With --otlp, each pipeline run is a trace: a pipeline.run span, a span per
// event run, a client span per remote call, whose W3C trace context goes
// to the worker. A worker started with --otlp to the same collector adds
// its event runs as children of those client spans, so the run is one
// trace across the two processes.
//
// # Environment
//
//	ELASTICSEARCH_USERNAME, ELASTICSEARCH_PASSWORD
//	    basic authentication to Elasticsearch, or
//	ELASTICSEARCH_API_KEY
//	    an Elasticsearch API key (the base64 "encoded" value), or
//	ELASTICSEARCH_CLOUD_ID
//	    the Cloud ID of an Elastic Cloud deployment, instead of hosts (give
//	    --elasticsearch-index-prefix then, which turns the backend on)
//	ELASTIC_CLIENT_APIVERSIONING
//	    true to talk to an Elasticsearch 9.x cluster in REST compatibility
//	    mode (the 8.x API), as for the official client
//	GRAFANA_CLOUD_API_KEY
//	    the Grafana Cloud access-policy token (metrics:write scope)
//	OTEL_EXPORTER_OTLP_HEADERS
//	    headers sent with --otlp, in the OpenTelemetry SDKs' format:
//	    key=value pairs separated by commas, values URL-encoded, such as
//	    Authorization=Bearer%20TOKEN
//	EVENTPIPELINE_WORKER_TOKEN
//	    the token a worker requires from its callers, and that demo --worker
//	    sends
//	EVENTPIPELINE_UI_TOKEN
//	    the token the web view of demo --ui asks for
//
// # report
//
// report FILE reads a JSON-lines file written by demo or by a
// telemetry.JSONLinesPublisher (FILE - reads standard input) and answers
// the queries:
//
//	--failed                 failed events, with their errors
//	--slow DURATION          events that took longer than DURATION
//	--retries                retry statistics
//	--failed-network         failed network operations
//	--slow-network DURATION  network operations slower than DURATION
//	--json                   one JSON document instead of tables
//
// With no query flag it prints every section, with thresholds of 1s, but
// those whose flag is given as false (--failed=false). The JSON document's keys are the sections asked for (events_by_status,
// failed_events, slow_events and slow_events_threshold_seconds,
// retry_stats, network_operations, failed_network_operations,
// slow_network_operations and slow_network_operations_threshold_seconds),
// each record in the format of the JSON report.
//
// A last line cut short (a process killed while writing) is left out with a
// warning on stderr naming the line, and report still exits 0 with every
// complete record. Any other invalid line is an error naming its line
// (exit 1).
//
// # worker
//
// worker serves the demo's remote events (geocode and score) at /events
// until interrupted, printing the address it listens on, so that demo
// --worker HOST:PORT can run them in another process or on another machine.
//
//	--addr HOST:PORT   address to listen on (default 127.0.0.1:8700; see "Addresses")
//	--tls-cert FILE    serve HTTPS with this certificate...
//	--tls-key FILE     ...and this key
//	--client-ca FILE   require client certificates signed by these authorities
//	--trusted-proxy CIDR
//	                   a reverse proxy in front of the worker, whose
//	                   X-Forwarded-For header is believed for the budget of
//	                   wrong tokens (see "Behind a reverse proxy"); may be
//	                   repeated
//	--otlp URL         record and trace each event the worker runs (a child of
//	                   the caller's span) and push the metrics and spans
//	                   over OTLP/HTTP to the collector at this base URL, as
//	                   service.name eventpipeline-worker (headers from
//	                   OTEL_EXPORTER_OTLP_HEADERS; --otlp-allow-insecure as
//	                   for demo); the last values are pushed when it stops
//
// A worker requires the token of EVENTPIPELINE_WORKER_TOKEN from its callers
// (Authorization: Bearer) when it is set, and a client certificate signed by
// --client-ca when that is given (--tls-cert and --tls-key go together). It
// refuses to listen on an address that is not loopback (":port", 0.0.0.0 or
// a host name other than localhost) without a token or --client-ca: exit 2,
// saying why. On such an address it prints the warning line of
// "Addresses"; with a token but no TLS, it says that the token travels in
// clear text. Its limits (request size, requests in flight,
// timeouts) are the defaults of pipeline.WorkerConfig; a panic in an event is
// logged with its stack on stderr and answered with a generic 500.
//
// # Exit codes
//
//	0  success, including the demo's intended failures, and worker or demo
//	   --prometheus, --ui or --duration stopped by an interrupt
//	1  runtime failure: an unreadable or missing file, malformed JSON lines
//	   (the message names the line), an unwritable output directory, a worker
//	   that cannot listen or load its certificates, a backend that cannot
//	   start, records a backend did not take (after the summary and the
//	   files), a demo interrupted before its summary
//	2  usage error: unknown command or flag, bad flag value (such as
//	   --slow soon, a negative duration, --close-timeout 0, --worker without
//	   a port, --trusted-proxy 10.0.0.0/33), missing or extra argument, a
//	   worker or the web view asked to listen on a non-loopback address
//	   without authentication
//
// Errors go to stderr as "eventpipeline COMMAND: message"; usage errors are
// followed by a pointer to --help.
package main
