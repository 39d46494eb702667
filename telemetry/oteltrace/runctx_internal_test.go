package oteltrace

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// TestSpanKey checks that the key learnt from trace.SpanFromContext finds
// the span that trace.ContextWithSpan puts in a context, and nothing in a
// context without one: else unsampledParent falls back to the slower
// SpanFromContext, correct but a lookup dearer.
func TestSpanKey(t *testing.T) {
	if spanKey == nil {
		t.Fatal("no span key learnt from trace.SpanFromContext")
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{2}, SpanID: trace.SpanID{3}})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	if span, ok := ctx.Value(spanKey).(trace.Span); !ok || !span.SpanContext().Equal(sc) {
		t.Errorf("got %v under the span key, want the span of %v", ctx.Value(spanKey), sc)
	}
	if v := context.Background().Value(spanKey); v != nil {
		t.Errorf("got %v under the span key in a context without a span, want nil", v)
	}
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
