package otlp

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// deadlineEndpoint is an in-memory OTLP receiver that accepts every
// request and records how much time the request's context had left.
type deadlineEndpoint struct {
	mu   sync.Mutex
	left []time.Duration // -1 for a request without a deadline
}

func (e *deadlineEndpoint) RoundTrip(req *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, req.Body)
	req.Body.Close()
	left := time.Duration(-1)
	if dl, ok := req.Context().Deadline(); ok {
		left = time.Until(dl)
	}
	e.mu.Lock()
	e.left = append(e.left, left)
	e.mu.Unlock()
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/x-protobuf"}}, Request: req, Body: io.NopCloser(strings.NewReader(""))}, nil
}

// TestTracerProviderTimeout checks that Config.Timeout limits each export
// attempt of the trace exporter, as it limits each attempt of a push of
// the Publisher: the request's deadline is at most Timeout away, not the
// batch span processor's 30 seconds. The user's client is not changed.
func TestTracerProviderTimeout(t *testing.T) {
	ep := &deadlineEndpoint{}
	client := &http.Client{Transport: ep}
	cfg := Config{Endpoint: "http://127.0.0.1:4318", Timeout: 2 * time.Second, HTTPClient: client}
	tp, err := NewTracerProvider(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "run")
	span.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ep.mu.Lock()
	left := append([]time.Duration(nil), ep.left...)
	ep.mu.Unlock()
	if len(left) != 1 {
		t.Fatalf("got %d export requests, want 1", len(left))
	}
	if left[0] < 0 || left[0] > cfg.Timeout {
		t.Errorf("the export request had %v left (-1s: no deadline), want at most Timeout (%v)", left[0], cfg.Timeout)
	}
	if client.Timeout != 0 {
		t.Errorf("the user's client was changed: Timeout %v", client.Timeout)
	}
}
