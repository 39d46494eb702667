package remotewrite

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// finished returns a finished event record.
func finished() telemetry.EventMetrics {
	now := time.Now()
	return telemetry.EventMetrics{EventName: "e", TaskID: "t", StartTime: now, EndTime: now, Status: telemetry.StatusCompleted}
}

// receiver is a remote-write receiver that answers every push with code
// and counts the pushes.
func receiver(code int, pushes *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		pushes.Add(1)
		w.WriteHeader(code)
	}
}

// TestCACertTrustsTheReceiver pushes over TLS to a receiver with a
// certificate of its own: trusted through CACert, refused without it.
func TestCACertTrustsTheReceiver(t *testing.T) {
	var pushes atomic.Int64
	srv := httptest.NewUnstartedServer(receiver(http.StatusNoContent, &pushes))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	pub, err := NewPublisher(Config{URL: srv.URL + "/api/v1/write", CACert: ca, Interval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	pub.PublishEventMetrics(context.Background(), finished())
	if err := pub.Flush(context.Background()); err != nil || pushes.Load() != 1 {
		t.Errorf("push with CACert: got %v after %d pushes, want it delivered in 1", err, pushes.Load())
	}

	untrusting, err := NewPublisher(Config{URL: srv.URL + "/api/v1/write", Interval: time.Hour, Logger: quiet,
		Retry: telemetry.RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer untrusting.Close(context.Background())
	untrusting.PublishEventMetrics(context.Background(), finished())
	if err := untrusting.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("push without CACert: got %v, want the certificate refused", err)
	}
}

// TestHTTPClientIsUsed checks that the pushes go through Config.HTTPClient.
func TestHTTPClientIsUsed(t *testing.T) {
	var pushes atomic.Int64
	srv := httptest.NewServer(receiver(http.StatusNoContent, &pushes))
	t.Cleanup(srv.Close)
	var through atomic.Int64
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		through.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	pub, err := NewPublisher(Config{URL: srv.URL + "/api/v1/write", HTTPClient: client, Interval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	pub.PublishEventMetrics(context.Background(), finished())
	if err := pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if through.Load() != 1 || pushes.Load() != 1 {
		t.Errorf("got %d requests through the client and %d pushes received, want 1 and 1", through.Load(), pushes.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestRejectionHints checks the advice logged with a push that the
// receiver rejects for good, by status.
func TestRejectionHints(t *testing.T) {
	tests := []struct {
		code int
		hint string
	}{
		{http.StatusNotFound, "check URL: a Prometheus server needs --web.enable-remote-write-receiver and /api/v1/write; Mimir takes /api/v1/push"},
		{http.StatusBadRequest, "the receiver rejected samples: out of order (another process with the same Job and Instance?) or too old"},
		{http.StatusForbidden, "check Username and Password, BearerToken or Headers"},
		{http.StatusRequestEntityTooLarge, "the push is larger than the receiver takes: lower MaxLabelValues or use fewer buckets, or raise the receiver's limit"},
		{http.StatusConflict, "see the error"},
	}
	for _, tc := range tests {
		t.Run(http.StatusText(tc.code), func(t *testing.T) {
			var pushes atomic.Int64
			srv := httptest.NewServer(receiver(tc.code, &pushes))
			t.Cleanup(srv.Close)
			var logs syncBuffer
			pub, err := NewPublisher(Config{URL: srv.URL + "/api/v1/write", Interval: time.Hour,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close(context.Background())
			pub.PublishEventMetrics(context.Background(), finished())
			err = pub.Flush(context.Background())
			var se *StatusError
			if !errors.As(err, &se) || se.Code != tc.code || !telemetry.IsPermanent(err) || pushes.Load() != 1 {
				t.Fatalf("got %v after %d pushes, want a permanent *StatusError %d after 1", err, pushes.Load(), tc.code)
			}
			if got := logs.String(); !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "hint=\""+tc.hint+"\"") {
				t.Errorf("log %q lacks the hint %q at ERROR", got, tc.hint)
			}
		})
	}
}

// syncBuffer is a log destination safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
