package otlp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestTracePartialSuccess checks an export that the receiver takes while
// reporting some spans rejected: it is not retried (they would be rejected
// again), ForceFlush reports it, and the spans count as exported (see
// TraceStats.ExportedSpans), none as dropped.
func TestTracePartialSuccess(t *testing.T) {
	body, err := proto.Marshal(&coltracepb.ExportTraceServiceResponse{
		PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 1, ErrorMessage: "span too large"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		requests.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	tp, err := newTracerProvider(context.Background(), Config{Endpoint: srv.URL, Logger: quiet}, noJitter)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(context.Background())
	endSpans(tp, 3)
	err = tp.ForceFlush(context.Background())
	if err == nil || !strings.Contains(err.Error(), "partial success") || !strings.Contains(err.Error(), "span too large") {
		t.Errorf("ForceFlush: got %v, want the partial success reported", err)
	}
	if s := tp.Stats(); requests.Load() != 1 || s.ExportedSpans != 3 || s.DroppedSpans != 0 || s.FailedAttempts != 0 || s.LastStatus != 200 {
		t.Errorf("got %d requests and %+v, want 1 request, 3 spans exported, none dropped", requests.Load(), s)
	}
}

// TestNewTracerProviderErrors checks the errors of NewTracerProvider for
// a Config that cannot make a client.
func TestNewTracerProviderErrors(t *testing.T) {
	_, err := NewTracerProvider(context.Background(), Config{Endpoint: "http://127.0.0.1:4318", CACert: []byte("not PEM"), Logger: quiet})
	if err == nil || err.Error() != "otlp: CACert holds no PEM certificate" {
		t.Errorf("got %v, want otlp: CACert holds no PEM certificate", err)
	}
	_, err = NewPublisher(Config{Endpoint: "http://127.0.0.1:4318", CACert: []byte("not PEM"), Logger: quiet})
	if err == nil || err.Error() != "otlp: CACert holds no PEM certificate" {
		t.Errorf("NewPublisher: got %v, want otlp: CACert holds no PEM certificate", err)
	}
}

// TestRejectionHints checks the advice logged with a push of metrics that
// the receiver rejects for good, by status.
func TestRejectionHints(t *testing.T) {
	tests := []struct {
		code int
		hint string
	}{
		{http.StatusNotFound, "check Config.Endpoint: the base URL of an OTLP/HTTP receiver, such as http://127.0.0.1:4318"},
		{http.StatusUnsupportedMediaType, "the endpoint does not take OTLP protobuf over HTTP: is it an OTLP/gRPC port (4317)?"},
		{http.StatusUnauthorized, "check the credentials in Config.Headers"},
		{http.StatusRequestEntityTooLarge, "the export is larger than the receiver takes: for metrics lower MaxLabelValues or use fewer buckets, for spans a smaller batch (OTEL_BSP_MAX_EXPORT_BATCH_SIZE); or raise the receiver's limit"},
		{http.StatusConflict, "see the error"},
	}
	for _, tc := range tests {
		t.Run(http.StatusText(tc.code), func(t *testing.T) {
			srv := newScriptedServer(t, "", tc.code)
			var logs bytes.Buffer
			pub, err := NewPublisher(Config{Endpoint: srv.URL, Interval: time.Hour,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			pub.PublishEventMetrics(context.Background(), finishedEvent("e", telemetry.StatusCompleted, time.Second, 0))
			err = pub.Flush(context.Background())
			var se *StatusError
			if !errors.As(err, &se) || se.Code != tc.code || !telemetry.IsPermanent(err) {
				t.Fatalf("got %v, want a permanent *StatusError %d", err, tc.code)
			}
			pub.Close(context.Background()) // the last push is accepted: the script has ended
			if got := logs.String(); !strings.Contains(got, "level=ERROR") || !strings.Contains(got, `hint="`+tc.hint+`"`) {
				t.Errorf("log %q lacks the hint %q at ERROR", got, tc.hint)
			}
		})
	}
}

// TestExportSpansWithEndedContext checks the exporter's contract with the
// batch span processor: an export whose context has already ended sends
// nothing and counts its spans as dropped; an empty export does nothing.
func TestExportSpansWithEndedContext(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
	}))
	t.Cleanup(srv.Close)
	tp, err := newTracerProvider(context.Background(), Config{Endpoint: srv.URL, Logger: quiet}, noJitter)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(context.Background())
	spans := tracetest.SpanStubs{{Name: "a"}, {Name: "b"}, {Name: "c"}}.Snapshots()
	if err := tp.exp.ExportSpans(context.Background(), nil); err != nil {
		t.Errorf("empty export: got %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = tp.exp.ExportSpans(ctx, spans)
	if !errors.Is(err, context.Canceled) || err.Error() != "otlp: 3 spans dropped, not sent: context canceled" {
		t.Errorf("export with an ended context: got %v, want 3 spans dropped, not sent", err)
	}
	if s := tp.Stats(); requests.Load() != 0 || s.DroppedSpans != 3 || s.ExportedSpans != 0 || s.FailedAttempts != 0 {
		t.Errorf("got %d requests and %+v, want none and 3 spans dropped", requests.Load(), s)
	}
}
