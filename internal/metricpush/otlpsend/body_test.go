package otlpsend

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/metricpush"
	"github.com/eventpipeline/eventpipeline/internal/safetext"
)

// TestStatusErrorBodyBounded checks that a push rejected with a large
// body gives StatusError only the start of the exporter's error text,
// valid UTF-8, on one line with its controls escaped: the exporter reads up to 4 MiB of the body into its error,
// which went whole into the error of every publisher that speaks OTLP
// (otlp, grafanacloud) and into their log lines.
func TestStatusErrorBodyBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, strings.Repeat("\xffrejected\n\x1b[2J", 100_000))
	}))
	t.Cleanup(srv.Close)
	var body string
	s, err := New(Config{URL: srv.URL + "/v1/metrics", Client: &http.Client{}, Prefix: "test",
		EventBuckets: metricdef.EventBuckets(), LatencyBuckets: metricdef.LatencyBuckets(), WaitBuckets: metricdef.WaitBuckets(),
		StatusError: func(op string, code int, b string) error { body = b; return errors.New("rejected") }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	attempt, err := s.Prepare(&metricpush.Snapshot{Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if res := attempt(context.Background()); res.Status != http.StatusBadRequest || res.Err == nil {
		t.Fatalf("got %+v, want 400 and an error", res)
	}
	// Cut to safetext.MaxBody, on one line, valid UTF-8.
	if len(body) > safetext.MaxBody || !utf8.ValidString(body) || strings.ContainsAny(body, "\n\r\x1b") || !strings.Contains(body, "rejected") {
		t.Errorf("got a body of %d bytes (valid UTF-8: %v): %q; want the start of the answer, on one line, at most %d bytes",
			len(body), utf8.ValidString(body), body, safetext.MaxBody)
	}
}
