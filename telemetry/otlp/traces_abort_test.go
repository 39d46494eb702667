package otlp

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestTraceExportAfterAbortSendsNothing checks that an export that begins
// after Shutdown's context ended (the SDK drains its queue on) sends no
// request: its spans are dropped, counted, with errSpansAborted, at once.
// The abort reaches an export through context.AfterFunc, which runs its
// function in a goroutine of its own: the export must not wait for it.
func TestTraceExportAfterAbortSendsNothing(t *testing.T) {
	srv := newScriptedServer(t, "")
	var logs bytes.Buffer
	tp, _ := bubbleProvider(t, srv.URL, telemetry.RetryPolicy{MaxAttempts: 1}, &logs)
	defer tp.Shutdown(context.Background())
	tp.exp.abort()
	spans := tracetest.SpanStubs{{Name: "a"}, {Name: "b"}}.Snapshots()
	const exports = 50
	for i := range exports {
		if err := tp.exp.ExportSpans(context.Background(), spans); !errors.Is(err, errSpansAborted) {
			t.Fatalf("export %d: got %v, want an error wrapping errSpansAborted", i+1, err)
		}
	}
	if n := srv.requests(); n != 0 {
		t.Errorf("got %d requests after the abort, want none", n)
	}
	if st := tp.Stats(); st.DroppedSpans != 2*exports || st.FailedAttempts != 0 {
		t.Errorf("got %+v, want %d spans dropped and no attempt", st, 2*exports)
	}
}
