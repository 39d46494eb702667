package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/otlp"
)

// envOTLPHeaders holds the headers sent to the OTLP endpoint, in the
// OpenTelemetry SDKs' format: key=value pairs separated by commas, values
// URL-encoded, such as "Authorization=Bearer%20t0ken". Secrets are never
// flags.
const envOTLPHeaders = "OTEL_EXPORTER_OTLP_HEADERS"

// otlpFlags are the flags of the OTLP backend, shared by demo and worker.
type otlpFlags struct {
	endpoint      string
	allowInsecure bool
}

// register registers the flags on fs; what is the process that pushes,
// for the help text.
func (f *otlpFlags) register(fs *flag.FlagSet, what string) {
	fs.StringVar(&f.endpoint, "otlp", "",
		"also push "+what+" metrics and traces over OTLP/HTTP to the collector at this base `URL` (such as http://127.0.0.1:4318;\n"+
			"metrics go to URL/v1/metrics, spans to URL/v1/traces); headers, such as credentials, from "+envOTLPHeaders)
	fs.BoolVar(&f.allowInsecure, "otlp-allow-insecure", false,
		"allow "+envOTLPHeaders+" over plain http:// to a host other than loopback (they cross the network in clear text)")
}

// publisher returns the OTLP publisher the flags ask for, with the
// service name given; nil if --otlp was not given.
func (f *otlpFlags) publisher(serviceName string, getenv func(string) string) (*otlp.Publisher, error) {
	if f.endpoint == "" {
		return nil, nil
	}
	headers, err := parseOTLPHeaders(getenv(envOTLPHeaders))
	if err != nil {
		return nil, err
	}
	p, err := otlp.NewPublisher(otlp.Config{
		Endpoint:      f.endpoint,
		Headers:       headers,
		AllowInsecure: f.allowInsecure,
		ServiceName:   serviceName,
	})
	if err != nil && strings.Contains(err.Error(), "AllowInsecure") {
		err = fmt.Errorf("%w (pass --otlp-allow-insecure to allow it)", err)
	}
	return p, err
}

// tracerProvider returns the TracerProvider the flags ask for: spans
// exported over OTLP/HTTP to URL/v1/traces, with the service name given;
// nil if --otlp was not given.
func (f *otlpFlags) tracerProvider(ctx context.Context, serviceName string, getenv func(string) string) (*otlp.TracerProvider, error) {
	if f.endpoint == "" {
		return nil, nil
	}
	headers, err := parseOTLPHeaders(getenv(envOTLPHeaders))
	if err != nil {
		return nil, err
	}
	// The provider logs an export given up once, with its count of spans,
	// and counts it; the SDK would print the same error again with package
	// log: its error handler logs at Debug instead.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		slog.Debug("OpenTelemetry SDK", "error", err.Error())
	}))
	return otlp.NewTracerProvider(ctx, otlp.Config{
		Endpoint:      f.endpoint,
		Headers:       headers,
		AllowInsecure: f.allowInsecure,
		ServiceName:   serviceName,
	})
}

// tracePropagator is the propagator of the demo and the worker: W3C trace
// context and baggage.
var tracePropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// tracedOTLP is the demo's OTLP backend: the metrics publisher, and the
// TracerProvider whose spans go to the same collector. Close flushes and
// shuts down both.
type tracedOTLP struct {
	*otlp.Publisher
	tp *otlp.TracerProvider
}

// tracerProvider returns the provider the pipeline traces with.
func (t *tracedOTLP) tracerProvider() trace.TracerProvider { return t.tp }

// spanStats returns the export counters of the spans.
func (t *tracedOTLP) spanStats() otlp.TraceStats { return t.tp.Stats() }

// Close closes the publisher, then exports the spans still buffered,
// within ctx: what ctx does not leave time for is dropped (see spanStats).
func (t *tracedOTLP) Close(ctx context.Context) error {
	return errors.Join(t.Publisher.Close(ctx), t.tp.Shutdown(ctx))
}

// parseOTLPHeaders parses the value of OTEL_EXPORTER_OTLP_HEADERS. Its
// errors never quote a value.
func parseOTLPHeaders(s string) (map[string]telemetry.Secret, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	headers := map[string]telemetry.Secret{}
	for i, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: entry %d is not key=value", envOTLPHeaders, i+1)
		}
		value, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: the value of %q is not URL-encoded correctly", envOTLPHeaders, k)
		}
		headers[k] = telemetry.NewSecret(value)
	}
	return headers, nil
}

// The OTLP backend of demo: --otlp URL turns it on.
func init() {
	var f otlpFlags
	backends = append(backends, backend{
		name: "otlp",
		flags: func(fs *flag.FlagSet) func() bool {
			f.register(fs, "the demo's")
			return func() bool { return f.endpoint != "" }
		},
		open: func(ctx context.Context, _ *telemetry.Recorder, getenv func(string) string) (telemetry.Publisher, string, error) {
			p, err := f.publisher("eventpipeline", getenv)
			if err != nil {
				return nil, "", err
			}
			tp, err := f.tracerProvider(ctx, "eventpipeline", getenv)
			if err != nil {
				p.Close(ctx)
				return nil, "", err
			}
			return &tracedOTLP{Publisher: p, tp: tp}, "", nil
		},
	})
}
