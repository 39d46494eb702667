package otlp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/internal/safetext"
)

// A TracerProvider is the OpenTelemetry SDK TracerProvider that
// [NewTracerProvider] returns: it exports spans over OTLP/HTTP through
// the module's one retry schedule, and counts what it exported and what
// it dropped (see [TracerProvider.Stats]). Use it wherever a
// trace.TracerProvider is wanted, such as telemetry/oteltrace's Config or
// pipeline.Config.TracerProvider; every method of the SDK's provider is
// promoted, and the embedded field gives the SDK type itself.
//
// A TracerProvider is safe for concurrent use.
type TracerProvider struct {
	// TracerProvider is the SDK provider, with a batch span processor
	// exporting to the endpoint. Shut down the TracerProvider rather
	// than this field: see [TracerProvider.Shutdown].
	*sdktrace.TracerProvider

	exp *spanExporter
}

var (
	_ slog.LogValuer = (*TracerProvider)(nil)
	_ fmt.Formatter  = (*TracerProvider)(nil)
)

// NewTracerProvider returns a new TracerProvider that exports spans over
// OTLP/HTTP to cfg.Endpoint's /v1/traces, with the same headers, TLS
// settings, compression, timeout, retry policy, resource (service name,
// instance id and attributes) and logger as a [Publisher] of cfg. Give it
// to telemetry/oteltrace or pipeline.Config.TracerProvider, and shut it
// down (its Shutdown exports what is buffered) before the program exits.
//
// The SDK's batch span processor queues the spans and exports them in
// batches, with its defaults (opts may add options of the SDK's provider,
// such as a sampler). Each export is retried as pushes of metrics are:
// see the package doc, # Traces. Config.Interval, the buckets and the
// label limits do not apply. ctx bounds nothing but the exporter's
// creation, which does no network I/O.
//
// It returns the errors of [NewPublisher] for an invalid cfg.
func NewTracerProvider(ctx context.Context, cfg Config, opts ...sdktrace.TracerProviderOption) (*TracerProvider, error) {
	return newTracerProvider(ctx, cfg, nil, opts...)
}

// newTracerProvider is NewTracerProvider with the backoff jitter, which
// tests replace with none.
func newTracerProvider(ctx context.Context, cfg Config, jitter func(time.Duration) time.Duration, opts ...sdktrace.TracerProviderOption) (*TracerProvider, error) {
	u, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	client, owns, err := newClient(&cfg)
	if err != nil {
		return nil, err
	}
	u.Path = strings.TrimSuffix(u.Path, "/v1/metrics") + "/v1/traces"
	headers := map[string]string{"User-Agent": userAgent}
	for k, v := range cfg.Headers {
		headers[k] = v.Reveal()
	}
	compression := otlptracehttp.NoCompression
	if cfg.Compression == Gzip {
		compression = otlptracehttp.GzipCompression
	}
	// The exporter's own retries are off: spanExporter retries, knowing
	// the status and Retry-After that the capturing client records. Its
	// WithTimeout would apply only to a client it made itself:
	// spanExporter limits each attempt with Config.Timeout instead.
	inner, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(u.String()),
		otlptracehttp.WithHTTPClient(retry.CaptureClient(client)),
		otlptracehttp.WithHeaders(headers),
		otlptracehttp.WithCompression(compression),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		// Not expected: the exporter refuses only a TLS configuration for
		// an insecure endpoint, and it gets none (the TLS settings are in
		// client). Kept in case a new version adds checks.
		return nil, fmt.Errorf("otlp: trace exporter for %s: %w", safetext.URL(u), err)
	}
	exp := newSpanExporter(inner, u, &cfg, jitter)
	if owns {
		exp.closeIdle = client.CloseIdleConnections
	}
	attrs := []attribute.KeyValue{
		attribute.String("service.name", cfg.ServiceName),
		attribute.String("service.instance.id", cfg.ServiceInstanceID),
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.ResourceAttributes)) {
		attrs = append(attrs, attribute.String(k, cfg.ResourceAttributes[k]))
	}
	all := append([]sdktrace.TracerProviderOption{
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	}, opts...)
	exp.logger().LogAttrs(ctx, slog.LevelInfo, "otlp: exporting spans", slog.String("url", exp.url),
		slog.String("service_name", cfg.ServiceName), slog.String("service_instance_id", cfg.ServiceInstanceID))
	return &TracerProvider{TracerProvider: sdktrace.NewTracerProvider(all...), exp: exp}, nil
}

// Shutdown exports the spans still buffered, within ctx, and stops tp:
// it is the SDK provider's Shutdown, except that when ctx ends, the
// export in progress stops retrying at once and the spans not yet
// exported are dropped and counted in [TraceStats.DroppedSpans] (the
// SDK's own Shutdown returns when ctx ends, but its last exports go on,
// retrying, in the background). It returns ctx.Err() if ctx ends first,
// and the error of the exporter's shutdown otherwise; a second call
// returns nil.
func (tp *TracerProvider) Shutdown(ctx context.Context) error {
	defer context.AfterFunc(ctx, tp.exp.abort)()
	return tp.TracerProvider.Shutdown(ctx)
}

// Stats returns the export counters of tp. It reads atomics only.
func (tp *TracerProvider) Stats() TraceStats { return tp.exp.Stats() }

// URL returns the URL tp posts spans to, such as
// "http://127.0.0.1:4318/v1/traces".
func (tp *TracerProvider) URL() string { return tp.exp.u.String() }

// String describes tp by its URL, never its headers.
func (tp *TracerProvider) String() string { return "otlp.TracerProvider(" + tp.exp.url + ")" }

// Format writes [TracerProvider.String] whatever the verb, so that %v,
// %+v and %#v never print the fields.
func (tp *TracerProvider) Format(f fmt.State, _ rune) { io.WriteString(f, tp.String()) }

// LogValue shows tp in logs by its URL.
func (tp *TracerProvider) LogValue() slog.Value {
	return slog.GroupValue(slog.String("signal", "traces"), slog.String("url", tp.exp.url))
}

// TraceStats are the export counters of a [TracerProvider].
type TraceStats struct {
	// ExportedSpans is the number of spans the endpoint accepted
	// (including any it reported as rejected in a partial success: the
	// SDK passes that report to the OpenTelemetry error handler).
	ExportedSpans uint64 `json:"exported_spans"`
	// FailedAttempts is the number of HTTP attempts that failed, retried
	// or not.
	FailedAttempts uint64 `json:"failed_attempts"`
	// DroppedSpans is the number of spans whose export was given up: after
	// a permanent error, or when the attempts, Config.Retry.MaxElapsed or
	// the export's context (the batch span processor's export timeout,
	// ForceFlush's or Shutdown's context) ran out. Spans the batch span
	// processor drops because its queue is full never reach the exporter
	// and are not counted here (see the package doc, # Traces).
	DroppedSpans uint64 `json:"dropped_spans"`
	// RejectedSpans is the part of DroppedSpans that the endpoint rejected
	// with a status not worth retrying (4xx other than 408 and 429), such
	// as 401 for a missing or wrong credential header.
	RejectedSpans uint64 `json:"rejected_spans"`
	// LastExport is when an export last succeeded; the zero Time if never.
	LastExport time.Time `json:"last_export"`
	// LastError is when an attempt last failed; the zero Time if never.
	LastError time.Time `json:"last_error"`
	// LastStatus is the HTTP status of the last attempt; 0 if it got no
	// response or there was none.
	LastStatus int `json:"last_status"`
}
