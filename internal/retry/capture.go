package retry

import (
	"context"
	"net/http"
	"time"
)

// A Capture is what a [CaptureTransport] saw of the last response to a
// request made with a context of [WithCapture]: the exporters of the
// OpenTelemetry SDK report the status and the Retry-After header in no
// form that can be matched, and the module's one retry schedule needs
// both. Read it once the request is over (the exporter call returned).
type Capture struct {
	// Status is the HTTP status of the last response; 0 if none came.
	Status int
	// RetryAfter is the wait its Retry-After header asked for (see
	// [ParseRetryAfter]); 0 if none.
	RetryAfter time.Duration
}

// captureKey is the context key of the *Capture of WithCapture.
type captureKey struct{}

// WithCapture returns a context derived from ctx, for one attempt, and the
// Capture that a CaptureTransport fills for the requests made with it.
func WithCapture(ctx context.Context) (context.Context, *Capture) {
	c := new(Capture)
	return context.WithValue(ctx, captureKey{}, c), c
}

// A CaptureTransport sends requests with Base (nil means
// [http.DefaultTransport]) and records the status and Retry-After header
// of each response into the [Capture] of the request's context, if it was
// made by [WithCapture]. The request is used as it is: it must not be
// sent by several goroutines at once with the same Capture.
type CaptureTransport struct {
	Base http.RoundTripper
}

// RoundTrip sends req with t.Base and records its response's status and
// Retry-After.
func (t CaptureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if c, ok := req.Context().Value(captureKey{}).(*Capture); ok && resp != nil {
		c.Status = resp.StatusCode
		c.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return resp, err
}

// CaptureClient returns a copy of c whose Transport is c's wrapped in a
// CaptureTransport; c is not changed.
func CaptureClient(c *http.Client) *http.Client {
	wrapped := *c
	wrapped.Transport = CaptureTransport{Base: c.Transport}
	return &wrapped
}
