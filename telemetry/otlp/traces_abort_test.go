package otlp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventpipeline/eventpipeline/internal/safetext"
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

// TestTraceRejectionBodyBounded checks that the *StatusError of spans
// rejected by an endpoint that answers with a large body holds only the
// start of it, as StatusError.Body says (the exporter reads up to 4 MiB of
// it, all of which went into the error and every log line of it), and
// that the text stays valid UTF-8.
func TestTraceRejectionBodyBounded(t *testing.T) {
	body := strings.Repeat("\xffrejected\n\x1b[2J", 100_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	var logs bytes.Buffer
	tp, _ := bubbleProvider(t, srv.URL, telemetry.RetryPolicy{MaxAttempts: 1}, &logs)
	defer tp.Shutdown(context.Background())
	endSpans(tp, 1)
	err := tp.ForceFlush(context.Background())
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest {
		t.Fatalf("got %v, want a *StatusError with 400", err)
	}
	// Cut to safetext.MaxBody, on one line, valid UTF-8.
	if len(se.Body) > safetext.MaxBody || !utf8.ValidString(se.Body) || strings.ContainsAny(se.Body, "\n\r\x1b") || !strings.Contains(se.Body, "rejected") {
		t.Errorf("got a Body of %d bytes (valid UTF-8: %v): %q; want the start of the answer, on one line, at most %d bytes",
			len(se.Body), utf8.ValidString(se.Body), se.Body, safetext.MaxBody)
	}
	if n := len(err.Error()); n > 4*safetext.MaxBody {
		t.Errorf("got an error of %d bytes, want it bounded", n)
	}
}
