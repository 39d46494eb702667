package nettrace

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// A Transport is an [http.RoundTripper] that records each round trip as a
// network operation: host and port of the request URL (80 or 443 when the
// URL has none), latency until the response body is done, body bytes sent
// and received, and the error of the round trip or of reading the body.
// An HTTP error status is a response, not a network error: the operation
// completes. The body of a 101 Switching Protocols response stays an
// io.ReadWriteCloser, and the bytes written to it count as sent. See the package documentation for what is counted and when an
// operation ends.
//
// Network must be set. A Transport holds no state of its own; its fields
// must not change while it is in use.
type Transport struct {
	// Base performs the round trips. Nil means http.DefaultTransport.
	Base http.RoundTripper
	// Network receives the operations, usually the Network of a
	// *telemetry.Recorder (r.Network()). If it is a [RequestTracer], such
	// as the Network of a telemetry/oteltrace Tracer, each round trip is
	// started through it and sends the request it returns (with trace
	// headers). RoundTrip returns an error wrapping ErrNoNetwork if it is
	// nil.
	Network Observer
	// Operation is the operation name recorded. Empty means HTTPOperation.
	Operation string
	// TaskID returns the task id to record a request under. Nil, or an
	// empty result, means the id given by WithTaskID in the request's
	// context, or else a generated "http-<n>".
	TaskID func(*http.Request) string
}

// RoundTrip performs the round trip with the base transport and records it.
// It returns what the base transport returns; the response body it returns
// counts the bytes read. It does not modify req. A base that returns
// neither a response nor an error breaks the http.RoundTripper contract:
// RoundTrip then fails, as http.Client does, and records the failure.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Network == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, ErrNoNetwork
	}
	host, port := urlHostPort(req.URL)
	op := t.Operation
	if op == "" {
		op = HTTPOperation
	}
	var o *operation
	if rt, ok := t.Network.(RequestTracer); ok {
		id := t.taskID(req)
		o = &operation{net: t.Network, id: id}
		out, end, _ := rt.StartRequest(req, id, host, port, op)
		if out != nil {
			// A tracer that refused the start may return no request:
			// req is then sent as it is.
			req = out
		}
		o.endFn, o.started = end, end != nil
	} else {
		o = start(t.Network, t.taskID(req), host, port, op)
	}
	if req.Body != nil && req.Body != http.NoBody {
		r2 := *req // a shallow copy, so that req is not modified
		r2.Body = &requestBody{ReadCloser: req.Body, o: o}
		req = &r2
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		o.end(err)
		return nil, err
	}
	if resp == nil {
		// A broken base: fail the round trip, as http.Client does.
		err = fmt.Errorf("nettrace: base RoundTripper (%T) returned a nil *Response with a nil error", base)
		o.end(err)
		return nil, err
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		o.end(nil)
		return resp, nil
	}
	body := &responseBody{ReadCloser: resp.Body, o: o}
	if rw, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		// An upgraded connection: the body stays writable, and what is
		// written counts as sent.
		resp.Body = &upgradedBody{responseBody: body, w: rw}
		return resp, nil
	}
	resp.Body = body
	return resp, nil
}

func (t *Transport) taskID(req *http.Request) string {
	if t.TaskID != nil {
		if id := t.TaskID(req); id != "" {
			return id
		}
	}
	if id, ok := TaskIDFrom(req.Context()); ok {
		return id
	}
	return nextID("http")
}

// urlHostPort returns the host and port of u, with the scheme's default
// port when u has none.
func urlHostPort(u *url.URL) (string, int) {
	host := u.Hostname()
	if host == "" {
		host = u.Host
	}
	if p := u.Port(); p != "" {
		if port, err := strconv.Atoi(p); err == nil && port >= 0 && port <= 65535 {
			return host, port
		}
		return host, 0
	}
	if u.Scheme == "https" {
		return host, 443
	}
	return host, 80
}

// requestBody counts the bytes of the request body the transport reads.
type requestBody struct {
	io.ReadCloser
	o *operation
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.o.sent.Add(int64(n))
	return n, err
}

// responseBody counts the bytes of the response body the caller reads and
// ends the operation at the end of the body, at a read error or at Close.
type responseBody struct {
	io.ReadCloser
	o *operation
}

func (b *responseBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.o.received.Add(int64(n))
	switch {
	case err == io.EOF:
		b.o.end(nil)
	case err != nil:
		b.o.end(err)
	}
	return n, err
}

func (b *responseBody) Close() error {
	err := b.ReadCloser.Close()
	b.o.end(nil)
	return err
}

// upgradedBody is the body of a 101 Switching Protocols response, which
// net/http makes an io.ReadWriteCloser.
type upgradedBody struct {
	*responseBody
	w io.Writer
}

func (b *upgradedBody) Write(p []byte) (int, error) {
	n, err := b.w.Write(p)
	b.o.sent.Add(int64(n))
	return n, err
}
