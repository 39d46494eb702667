package oteltrace

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// TestUnsampledParent checks how unsampledParent tells a parent whose
// span is not sampled, from the contexts the API makes.
func TestUnsampledParent(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{2}, SpanID: trace.SpanID{3}})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"no span", context.Background(), false},
		{"unsampled", ctx, true},
		{"sampled", trace.ContextWithSpanContext(context.Background(), sc.WithTraceFlags(trace.FlagsSampled)), false},
		{"invalid", trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}), false},
	} {
		if got := unsampledParent(tc.ctx); got != tc.want {
			t.Errorf("%s: unsampledParent = %v, want %v", tc.name, got, tc.want)
		}
	}
}
