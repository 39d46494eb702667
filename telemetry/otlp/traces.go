package otlp

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/eventpipeline/eventpipeline/internal/safetext"
)

// NewTracerProvider returns a new OpenTelemetry SDK TracerProvider that
// exports spans over OTLP/HTTP to cfg.Endpoint's /v1/traces, with the same
// headers, TLS settings, compression, timeout and resource (service name,
// instance id and attributes) as a [Publisher] of cfg. Give it to
// telemetry/oteltrace or pipeline.Config.TracerProvider, and shut it down
// (its Shutdown exports what is buffered) before the program exits.
//
// The spans are exported by the SDK's batch span processor, with its
// queue, batching and defaults; export retries are the OTLP exporter's
// own (retrying 429 and 5xx with exponential backoff), not the Recorder's
// delivery, and [Config.Interval], Retry, the buckets and the limits do not
// apply. ctx bounds nothing but the exporter's creation.
//
// It returns the errors of [NewPublisher] for an invalid cfg.
func NewTracerProvider(ctx context.Context, cfg Config, opts ...sdktrace.TracerProviderOption) (*sdktrace.TracerProvider, error) {
	u, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	client, _, err := newClient(&cfg)
	if err != nil {
		return nil, err
	}
	// The exporter's WithTimeout applies only to a client it makes itself:
	// limit each attempt with the client's Timeout instead, on a copy, so
	// that a client of the user's is not changed (its own Timeout still
	// applies if it is shorter).
	limited := *client
	if limited.Timeout == 0 || limited.Timeout > cfg.Timeout {
		limited.Timeout = cfg.Timeout
	}
	client = &limited
	u.Path = strings.TrimSuffix(u.Path, "/v1/metrics") + "/v1/traces"
	headers := map[string]string{"User-Agent": userAgent}
	for k, v := range cfg.Headers {
		headers[k] = v.Reveal()
	}
	compression := otlptracehttp.NoCompression
	if cfg.Compression == Gzip {
		compression = otlptracehttp.GzipCompression
	}
	exp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(u.String()),
		otlptracehttp.WithHTTPClient(client),
		otlptracehttp.WithHeaders(headers),
		otlptracehttp.WithCompression(compression))
	if err != nil {
		return nil, fmt.Errorf("otlp: trace exporter for %s: %w", safetext.URL(u), err)
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
	return sdktrace.NewTracerProvider(all...), nil
}
