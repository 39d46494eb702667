package grafanacloud

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestRedirectKeepsAPIKey checks, for both protocols, that a push answered
// with a redirect to another server (the same host name on another port,
// where net/http would keep the Authorization header) never carries the
// API key there: the redirect is not followed, and the push fails with a
// permanent error naming the status.
func TestRedirectKeepsAPIKey(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	t.Cleanup(elsewhere.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	for _, path := range []string{"/api/prom/push", "/otlp"} {
		t.Run(path, func(t *testing.T) {
			p, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Endpoint: srv.URL + path, Interval: time.Hour, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close(context.Background()) })
			p.PublishEventMetrics(context.Background(), telemetry.EventMetrics{EventName: "e", TaskID: "t",
				StartTime: time.Now(), EndTime: time.Now(), Status: telemetry.StatusCompleted})
			err = p.Flush(context.Background())
			mu.Lock()
			for _, auth := range seen {
				if auth != "" {
					t.Errorf("got Authorization %q at %s, want the API key sent only to %s", auth, elsewhere.URL, srv.URL)
				}
			}
			seen = nil
			mu.Unlock()
			if err == nil || !telemetry.IsPermanent(err) || !strings.Contains(err.Error(), "307") {
				t.Errorf("got error %v, want a permanent error naming the 307", err)
			}
		})
	}
}
