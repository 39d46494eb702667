package remotewrite

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestStatusErrorBodyCut checks the Body of a rejection: the answer's
// start, on one line, and, when the answer is longer than what it keeps,
// a marker with the answer's length, so that a reader knows the text was
// cut.
func TestStatusErrorBodyCut(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       func(string) bool
		wantText   string
	}{
		{"short", "out of order sample\n", func(b string) bool { return b == "out of order sample" }, `"out of order sample"`},
		{"long", strings.Repeat("x", 2000), func(b string) bool {
			return strings.HasPrefix(b, "xxxx") && strings.HasSuffix(b, "… [truncated, 2000 bytes]") && len(b) <= 512
		}, "the start and the marker … [truncated, 2000 bytes]"},
		{"escapes", strings.Repeat("a\n", 400), func(b string) bool {
			return strings.HasPrefix(b, `a\na\n`) && strings.HasSuffix(b, "… [truncated, 800 bytes]") && len(b) <= 512
		}, `a\na\n… and the marker … [truncated, 800 bytes]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			pub, err := NewPublisher(Config{URL: srv.URL + "/api/v1/write", Interval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close(context.Background())
			pub.PublishEventMetrics(context.Background(), finished())
			err = pub.Flush(context.Background())
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *StatusError", err)
			}
			if !tc.want(se.Body) {
				t.Errorf("Body = %q, want %s", se.Body, tc.wantText)
			}
		})
	}
}
