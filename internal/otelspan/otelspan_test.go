package otelspan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestFail checks that Fail adds the exception event that the SDK's
// RecordError adds, with the given text, and that ErrorText cuts an
// 11,000-byte text as a record's is (for the error of an enqueue, which
// has no record).
func TestFail(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	tr := tp.Tracer("test")
	long := errors.New(strings.Repeat("0123456789", 1100))
	for _, err := range []error{errors.New("boom"), fmt.Errorf("wrapped: %w", os.ErrNotExist), &os.PathError{Op: "open", Path: "/x", Err: os.ErrNotExist}, syscall.ENOENT} {
		_, want := tr.Start(context.Background(), "want")
		want.RecordError(err)
		want.End()
		_, got := tr.Start(context.Background(), "got")
		Fail(got, err, ErrorText(err))
		got.End()
		spans := sr.Ended()
		w, g := spans[len(spans)-2], spans[len(spans)-1]
		if len(w.Events()) != 1 || len(g.Events()) != 1 || w.Events()[0].Name != g.Events()[0].Name ||
			!slices.Equal(w.Events()[0].Attributes, g.Events()[0].Attributes) {
			t.Errorf("%T: got events %+v, want RecordError's %+v", err, g.Events(), w.Events())
		}
		if g.Status().Description != err.Error() {
			t.Errorf("%T: got status %q, want %q", err, g.Status().Description, err.Error())
		}
	}
	text := ErrorText(long)
	if len(text) != telemetry.DefaultMaxErrorLength || !strings.HasSuffix(text, "… [truncated, 11000 bytes]") {
		t.Errorf("ErrorText of 11,000 bytes: got %d bytes ending %q, want %d ending with the marker", len(text), text[len(text)-30:], telemetry.DefaultMaxErrorLength)
	}
}
