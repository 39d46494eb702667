package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// countingPropagator counts the Extract calls of the propagator it wraps.
type countingPropagator struct {
	propagation.TextMapPropagator
	extracts atomic.Int64
}

func (p *countingPropagator) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	p.extracts.Add(1)
	return p.TextMapPropagator.Extract(ctx, c)
}

// TestWorkerHostileTraceContext sends a worker, with the W3C propagators,
// trace context and baggage that are huge, malformed or have many members,
// and checks that the run goes on with what the W3C limits allow (at most
// 64 baggage members in 8192 bytes, 32 tracestate members, a traceparent
// only if well formed), that nothing is logged, and that a request without
// the token is not even parsed for them.
func TestWorkerHostileTraceContext(t *testing.T) {
	const validParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	members := func(n int, format string) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, format, i)
		}
		return b.String()
	}
	tests := []struct {
		name        string
		header      http.Header
		wantParent  bool // a valid remote span context
		wantMembers int  // baggage members, -1 for any up to 64
	}{
		{name: "valid", wantParent: true, wantMembers: 1,
			header: http.Header{"Traceparent": {validParent}, "Tracestate": {"a=1"}, "Baggage": {"k=v"}}},
		{name: "huge baggage", wantParent: true, wantMembers: 0,
			header: http.Header{"Traceparent": {validParent}, "Baggage": {members(5000, "k%d=v")}}},
		{name: "many baggage headers", wantParent: true, wantMembers: -1,
			header: http.Header{"Traceparent": {validParent}, "Baggage": strings.Split(members(2000, "k%d=v"), ",")}},
		{name: "many baggage members", wantParent: true, wantMembers: 64,
			header: http.Header{"Traceparent": {validParent}, "Baggage": {members(500, "k%d=v")}}},
		{name: "malformed baggage", wantParent: true, wantMembers: 0,
			header: http.Header{"Traceparent": {validParent}, "Baggage": {strings.Repeat("%;=,", 2000)}}},
		{name: "many tracestate members", wantParent: true, wantMembers: 0,
			header: http.Header{"Traceparent": {validParent}, "Tracestate": {members(1000, "k%d=v")}}},
		{name: "huge tracestate", wantParent: true, wantMembers: 0,
			header: http.Header{"Traceparent": {validParent}, "Tracestate": {"k=" + strings.Repeat("v", 60<<10)}}},
		{name: "huge traceparent", wantParent: false, wantMembers: 0,
			header: http.Header{"Traceparent": {validParent + strings.Repeat("0", 60<<10)}}},
		{name: "malformed traceparent", wantParent: false, wantMembers: 0,
			header: http.Header{"Traceparent": {"ff-" + strings.Repeat("z", 32) + "-\x00-01"}}},
		{name: "many traceparents", wantParent: true, wantMembers: 0, // the first is taken
			header: http.Header{"Traceparent": strings.Split(strings.Repeat(validParent+",", 1000), ",")}},
	}
	type seen struct {
		sc  trace.SpanContext
		bag baggage.Baggage
	}
	var got seen
	capture := pipeline.Func("capture", func(ctx context.Context, in any) (any, error) {
		got = seen{trace.SpanContextFromContext(ctx), baggage.FromContext(ctx)}
		return nil, nil
	})
	prop := &countingPropagator{TextMapPropagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	var logs bytes.Buffer
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{
		Token: telemetry.NewSecret("s3cret-token"), Propagator: prop,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, capture)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, auth := range []string{"", "Bearer s3cret-token"} {
				got = seen{}
				before := prop.extracts.Load()
				req := httptest.NewRequest("POST", "/events", strings.NewReader(`{"event":"capture"}`))
				req.Header = tc.header.Clone()
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				rec := httptest.NewRecorder()
				w.ServeHTTP(rec, req)
				if auth == "" {
					if rec.Code != 401 || prop.extracts.Load() != before {
						t.Errorf("without the token: got %d with %d extractions, want 401 and none", rec.Code, prop.extracts.Load()-before)
					}
					continue
				}
				if rec.Code != 200 {
					t.Fatalf("got %d %s, want 200", rec.Code, rec.Body)
				}
				if got.sc.IsValid() != tc.wantParent || got.sc.TraceState().Len() > 32 {
					t.Errorf("got span context %v (valid %v) with %d tracestate members, want valid %v and at most 32",
						got.sc, got.sc.IsValid(), got.sc.TraceState().Len(), tc.wantParent)
				}
				n := got.bag.Len()
				if (tc.wantMembers >= 0 && n != tc.wantMembers) || n > 64 || len(got.bag.String()) > 8192 {
					t.Errorf("got %d baggage members in %d bytes, want %d (at most 64 in 8192 bytes)", n, len(got.bag.String()), tc.wantMembers)
				}
			}
		})
	}
	if logs.Len() > 0 {
		t.Errorf("the worker logged %q, want nothing", logs.String())
	}
}
