package nettrace_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/nettrace"
)

// TestTransportRecordsHostAndPort checks the host and port recorded for a
// request: the URL's, the scheme's default when the URL has none, and 0
// for a port out of range. The base transport answers without a network.
func TestTransportRecordsHostAndPort(t *testing.T) {
	tests := []struct {
		url  string
		host string
		port int
	}{
		{"http://example.test/a", "example.test", 80},
		{"https://example.test/a", "example.test", 443},
		{"http://example.test:8080/a", "example.test", 8080},
		{"http://[::1]:9200/", "::1", 9200},
		{"http://example.test:99999/", "example.test", 0},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			rec := newRecorder(t)
			tr := &nettrace.Transport{Network: rec.Network(), Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
			})}
			req, err := http.NewRequest(http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if op := onlyOperation(t, rec); op.Host != tc.host || op.Port != tc.port || op.Status != telemetry.StatusCompleted {
				t.Errorf("got %s operation on %q port %d, want a completed one on %q port %d", op.Status, op.Host, op.Port, tc.host, tc.port)
			}
		})
	}
}

// closeRecorder is a request body that remembers being closed.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// TestTransportNilNetworkClosesBody checks the RoundTripper contract on
// the error path: the request's body is closed even when RoundTrip fails
// before sending.
func TestTransportNilNetworkClosesBody(t *testing.T) {
	body := &closeRecorder{Reader: strings.NewReader("abc")}
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&nettrace.Transport{}).RoundTrip(req); !errors.Is(err, nettrace.ErrNoNetwork) || !body.closed {
		t.Errorf("got %v, body closed %v; want ErrNoNetwork and the body closed", err, body.closed)
	}
}

// headerTracer is a RequestTracer that sends a copy of the request with a
// header of its own, and records the operation into the Network it wraps.
type headerTracer struct{ *telemetry.Network }

func (h headerTracer) StartRequest(req *http.Request, id, host string, port int, op string) (*http.Request, func(int64, int64, error) error, error) {
	if err := h.StartOperation(id, host, port, op); err != nil {
		return nil, nil, err
	}
	out := req.Clone(req.Context())
	out.Header.Set("X-Traced", id)
	return out, func(sent, received int64, err error) error { return h.EndOperation(id, sent, received, err) }, nil
}

func TestTransportSendsTheRequestTracersRequest(t *testing.T) {
	rec := newRecorder(t)
	var got string
	tr := &nettrace.Transport{Network: headerTracer{rec.Network()}, Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Header.Get("X-Traced")
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("hello")), Request: r}, nil
	})}
	req, err := http.NewRequestWithContext(nettrace.WithTaskID(context.Background(), "t1"), http.MethodGet, "http://example.test/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got != "t1" || req.Header.Get("X-Traced") != "" {
		t.Errorf("base got X-Traced %q, caller's request has %q; want t1 and none", got, req.Header.Get("X-Traced"))
	}
	if op := onlyOperation(t, rec); op.TaskID != "t1" || op.BytesReceived != 5 || op.Status != telemetry.StatusCompleted {
		t.Errorf("got %+v, want t1 completed with 5 bytes received, ended through the tracer", op)
	}
}

// TestDialerTaskIDAndAddresses checks the task id of a Dialer's
// connection (its TaskID function, or the context's when the function
// returns "") and the host and port recorded for addresses that do not
// dial: no port, an unknown service name, a port out of range.
func TestDialerTaskIDAndAddresses(t *testing.T) {
	tests := []struct {
		name    string
		taskID  func(context.Context, string, string) string
		address string
		wantID  string
		host    string
	}{
		{name: "TaskID function", taskID: func(_ context.Context, network, address string) string { return network + "!" + address },
			address: "127.0.0.1", wantID: "tcp!127.0.0.1", host: "127.0.0.1"},
		{name: "empty TaskID falls back to the context", taskID: func(context.Context, string, string) string { return "" },
			address: "127.0.0.1:no-such-service-here", wantID: "ctx/conn-", host: "127.0.0.1"},
		{name: "port out of range", address: "127.0.0.1:70000", wantID: "ctx/conn-", host: "127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t)
			d := &nettrace.Dialer{Network: rec.Network(), TaskID: tc.taskID}
			if _, err := d.DialContext(nettrace.WithTaskID(context.Background(), "ctx"), "tcp", tc.address); err == nil {
				t.Fatalf("dialing %q: got no error", tc.address)
			}
			op := onlyOperation(t, rec)
			if !strings.HasPrefix(op.TaskID, tc.wantID) || op.Host != tc.host || op.Port != 0 || op.Status != telemetry.StatusFailed {
				t.Errorf("got %s operation %q on %q port %d, want a failed one %q... on %q port 0", op.Status, op.TaskID, op.Host, op.Port, tc.wantID, tc.host)
			}
		})
	}
}
