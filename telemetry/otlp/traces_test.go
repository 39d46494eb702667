package otlp_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/oteltrace"
	"github.com/eventpipeline/eventpipeline/telemetry/otlp"
)

// TestTracerProviderToCollector traces a run and its network operation
// with a provider of NewTracerProvider, exported to a real collector, and
// checks what the collector wrote: ids, parent link, times, status and
// attributes.
func TestTracerProviderToCollector(t *testing.T) {
	col := testutil.StartCollector(t)
	ctx := context.Background()
	tp, err := otlp.NewTracerProvider(ctx, otlp.Config{Endpoint: col.Endpoint, ServiceName: "tracing-test", Compression: otlp.Gzip,
		ResourceAttributes: map[string]string{"deployment.environment": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close(ctx)
	tr, err := oteltrace.New(rec, oteltrace.Config{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	// The Tracer learns the Recorder's clock from its first run (see the
	// package doc of oteltrace): warm it up, so that the runs below start
	// exactly at their records' starts.
	wctx, err := tr.StartEvent(ctx, "warm-up", "warm-up")
	if err != nil {
		t.Fatal(err)
	}
	tr.EndEvent(wctx, "warm-up", nil)
	evCtx, err := tr.StartEvent(ctx, "load", "run-1/load", telemetry.WithPipelineID("run-1"))
	if err != nil {
		t.Fatal(err)
	}
	opCtx, err := tr.StartOperation(evCtx, "run-1/load/call-1", "db.internal", 5432, "query")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.EndOperation(opCtx, "run-1/load/call-1", 10, 20, nil); err != nil {
		t.Fatal(err)
	}
	if err := tr.EndEvent(evCtx, "run-1/load", errors.New("disk full")); err != nil {
		t.Fatal(err)
	}
	if err := tp.Shutdown(ctx); err != nil { // exports the batch
		t.Fatal(err)
	}
	ev, _ := rec.Metrics("run-1/load")
	op, _ := rec.Network().Metrics("run-1/load/call-1")
	var spans []testutil.Span
	testutil.Eventually(t, 30*time.Second, func() error {
		var err error
		if spans, err = col.Spans(); err != nil {
			return err
		}
		if len(spans) < 3 {
			return fmt.Errorf("the collector has %d spans, want 3", len(spans))
		}
		return nil
	})
	byName := map[string]testutil.Span{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	load, query := byName["load"], byName["query"]
	if load.TraceID != ev.Span.TraceIDString() || load.SpanID != ev.Span.SpanIDString() || load.ParentSpanID != "" {
		t.Errorf("load span %+v, want the record's ids %s/%s and no parent", load, ev.Span.TraceIDString(), ev.Span.SpanIDString())
	}
	if query.TraceID != load.TraceID || query.ParentSpanID != load.SpanID || query.SpanID != op.Span.SpanIDString() || query.Kind != 3 {
		t.Errorf("query span %+v, want a client child of %s with the record's id", query, load.SpanID)
	}
	if !load.Start.Equal(ev.StartTime) || !load.End.Equal(ev.EndTime) || !query.Start.Equal(op.StartTime) || !query.End.Equal(op.EndTime) {
		t.Errorf("span times differ from the records': load %v-%v vs %v-%v; query %v-%v vs %v-%v",
			load.Start, load.End, ev.StartTime, ev.EndTime, query.Start, query.End, op.StartTime, op.EndTime)
	}
	if load.StatusCode != 2 || load.StatusText != "disk full" {
		t.Errorf("load status %d %q, want 2 (error) \"disk full\"", load.StatusCode, load.StatusText)
	}
	for k, v := range map[string]string{"server.address": "db.internal", "server.port": "5432",
		"eventpipeline.network.bytes_sent": "10", "eventpipeline.network.bytes_received": "20"} {
		if query.Attributes[k] != v {
			t.Errorf("query attribute %s: got %q, want %q", k, query.Attributes[k], v)
		}
	}
	if load.Attributes["eventpipeline.pipeline.run_id"] != "run-1" || load.Resource["service.name"] != "tracing-test" ||
		load.Resource["deployment.environment"] != "test" {
		t.Errorf("load attributes %v, resource %v", load.Attributes, load.Resource)
	}
}

func TestNewTracerProviderInvalid(t *testing.T) {
	_, err := otlp.NewTracerProvider(context.Background(), otlp.Config{Endpoint: "ftp://x"})
	if err == nil {
		t.Fatal("got nil, want an error for a bad endpoint")
	}
}
