package retry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestCaptureClient checks that a client of CaptureClient records the
// status and Retry-After of a response into the Capture of the request's
// context, that a request without one is sent as well, and that the
// client it was made from is not changed.
func TestCaptureClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	orig := &http.Client{Timeout: time.Minute}
	client := CaptureClient(orig)
	if orig.Transport != nil || client.Timeout != time.Minute {
		t.Errorf("got original transport %v, copy timeout %v; want the original unchanged and the copy's settings kept", orig.Transport, client.Timeout)
	}
	get := func(ctx context.Context) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get(context.Background()) // no Capture: nothing recorded, no panic
	ctx, c := WithCapture(context.Background())
	get(ctx)
	if c.Status != http.StatusTooManyRequests || c.RetryAfter != 3*time.Second {
		t.Errorf("got %+v, want status 429 and Retry-After 3s", *c)
	}
	ctx, c = WithCapture(context.Background())
	srv.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if _, err := client.Do(req); err == nil {
		t.Fatal("got no error from a closed server")
	}
	if c.Status != 0 || c.RetryAfter != 0 {
		t.Errorf("got %+v without a response, want zero", *c)
	}
}
