package oteltrace

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/telemetry"
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

// TestErrorText checks that a span's error text is the record's when the
// record was found, and otherwise err's own cut as a record's is, at the
// default limit: an 11,000-byte text is never put on a span whole.
func TestErrorText(t *testing.T) {
	long := errors.New(strings.Repeat("0123456789", 1100))
	for _, tc := range []struct {
		name  string
		kept  string
		found bool
		want  string
	}{
		{"record found", "kept text", true, "kept text"},
		{"record gone", "", false, safetext.Cut(long.Error(), telemetry.DefaultMaxErrorLength)},
	} {
		got := errorText(tc.kept, tc.found, long)
		if got != tc.want || len(got) > telemetry.DefaultMaxErrorLength {
			t.Errorf("%s: got %d bytes %.40q..., want %d bytes %.40q...", tc.name, len(got), got, len(tc.want), tc.want)
		}
	}
}
