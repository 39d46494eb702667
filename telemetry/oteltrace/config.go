package oteltrace

import (
	"errors"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the spans a [Tracer] starts.
const ScopeName = "github.com/eventpipeline/eventpipeline/telemetry/oteltrace"

// ErrNoTracerProvider is wrapped by the error of [New] given a Config
// without a TracerProvider.
var ErrNoTracerProvider = errors.New("oteltrace: no TracerProvider")

// Config configures a [Tracer]. The zero value is not valid: TracerProvider
// is required; every other zero field means its default.
type Config struct {
	// TracerProvider makes the spans. It is required: the global provider
	// is never used implicitly (pass otel.GetTracerProvider() for it).
	TracerProvider trace.TracerProvider
	// Propagator injects the trace context into the requests that
	// [Network.StartRequest] traces. nil means otel.GetTextMapPropagator(),
	// looked up when New runs.
	Propagator propagation.TextMapPropagator
}
