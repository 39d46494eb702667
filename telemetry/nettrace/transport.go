package nettrace

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
)

// A Transport is an [http.RoundTripper] that records each round trip as a
// network operation: host and port of the request URL (80 or 443 when the
// URL has none), latency until the response body is done, body bytes sent
// and received (compressed, when it decompresses a gzip-encoded response
// in place of an *http.Transport base), and the error of the round trip or
// of reading the body. An HTTP error status is a response, not a network
// error: the operation completes. The body of a 101 Switching Protocols
// response stays an io.ReadWriteCloser, and the bytes written to it count
// as sent. See the package documentation for what is counted and when an
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
// It returns what the base transport returns (with the response body
// decompressed by RoundTrip instead of the base, as said in the package
// documentation); the response body it returns counts the bytes read. It
// does not modify req: the request it sends the base is a shallow copy when
// it wraps the body or adds Accept-Encoding. A base that returns
// neither a response nor an error breaks the http.RoundTripper contract:
// RoundTrip then fails, as http.Client does, closes the request body and
// records the failure.
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
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	// gz: the base would ask for gzip and decompress the response body
	// itself, so that only the decompressed bytes could be counted. Ask
	// for it here instead, and decompress above the count.
	gz := asksGzip(base, req)
	if gz || req.Body != nil && req.Body != http.NoBody {
		r2 := *req // a shallow copy, so that req is not modified
		if req.Body != nil && req.Body != http.NoBody {
			r2.Body = &requestBody{ReadCloser: req.Body, o: o}
			if getBody := req.GetBody; getBody != nil {
				// A base that sends the request again (on a
				// connection that turned out to be closed, say) gets
				// a new body from GetBody: count that one's bytes
				// instead of those of the attempt that failed.
				r2.GetBody = func() (io.ReadCloser, error) {
					rc, err := getBody()
					if err != nil || rc == nil || rc == http.NoBody {
						return rc, err
					}
					gen := o.bodyGen.Add(1)
					o.sent.Store(0)
					return &requestBody{ReadCloser: rc, o: o, gen: gen}, nil
				}
			}
		}
		if gz {
			r2.Header = req.Header.Clone()
			if r2.Header == nil {
				r2.Header = make(http.Header)
			}
			r2.Header.Set("Accept-Encoding", "gzip")
		}
		req = &r2
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		o.end(err)
		return nil, err
	}
	if resp == nil {
		// A broken base: fail the round trip, as http.Client does, and
		// close the body, as a RoundTripper must on error (the base may
		// have left it open).
		if req.Body != nil {
			req.Body.Close()
		}
		err = fmt.Errorf("nettrace: base RoundTripper (%T) returned a nil *Response with a nil error", base)
		o.end(err)
		return nil, err
	}
	if resp.Body == nil || resp.Body == http.NoBody || !bodyAllowed(req.Method, resp.StatusCode) {
		// No body to wait for (HTTP/2 gives a HEAD, 204 or 304
		// response a body that is empty but not http.NoBody), nor to
		// decompress.
		o.end(nil)
		return resp, nil
	}
	if gz = gz && resp.ContentLength != 0 && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip"); gz {
		// As the base would have done.
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Uncompressed = true
	}
	body := &responseBody{ReadCloser: resp.Body, o: o}
	if gz {
		body.gz = &gzipReader{r: &countingReader{r: resp.Body, o: o}}
	}
	if rw, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		// An upgraded connection: the body stays writable, and what is
		// written counts as sent.
		resp.Body = &upgradedBody{responseBody: body, w: rw}
		runtime.AddCleanup(resp.Body.(*upgradedBody), func(o *operation) { o.end(errBodyNotClosed) }, o)
		return resp, nil
	}
	resp.Body = body
	// A body dropped without Close would leave the operation pending for
	// good: fail it once the body is garbage.
	runtime.AddCleanup(body, func(o *operation) { o.end(errBodyNotClosed) }, o)
	return resp, nil
}

// errBodyNotClosed fails the operation of a response body that became
// garbage without being closed or read to its end.
var errBodyNotClosed = errors.New("nettrace: response body not closed (garbage collected)")

// asksGzip reports whether base, given req, would ask for a gzip-encoded
// response and decompress it, as an http.Transport with compression on
// does (over HTTP/1 and HTTP/2).
func asksGzip(base http.RoundTripper, req *http.Request) bool {
	t, ok := base.(*http.Transport)
	return ok && !t.DisableCompression && req.Method != http.MethodHead &&
		req.Header.Get("Accept-Encoding") == "" && req.Header.Get("Range") == ""
}

// bodyAllowed reports whether a response of status to a request of method
// may have a body.
func bodyAllowed(method string, status int) bool {
	switch {
	case method == http.MethodHead, status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	case status >= 100 && status < 200:
		return status == http.StatusSwitchingProtocols // its body is the connection
	}
	return true
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

// requestBody counts the bytes of the request body the transport reads,
// unless a newer body of the request (from GetBody) replaced it.
type requestBody struct {
	io.ReadCloser
	o   *operation
	gen int64 // the operation's bodyGen when the body was made
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.o.bodyGen.Load() == b.gen {
		b.o.sent.Add(int64(n))
	}
	return n, err
}

// countingReader counts the bytes of the response body as received, as
// they come from the base transport (compressed, if gzipReader reads them).
type countingReader struct {
	r io.Reader
	o *operation
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.o.received.Add(int64(n))
	return n, err
}

// gzipReader decompresses a gzip-encoded response body, as http.Transport
// does: it starts reading at the first Read, and an error stays.
type gzipReader struct {
	r   io.Reader
	zr  *gzip.Reader
	err error
}

func (g *gzipReader) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if g.zr == nil {
		if g.zr, g.err = gzip.NewReader(g.r); g.err != nil {
			return 0, g.err
		}
	}
	n, err := g.zr.Read(p)
	if err != nil {
		g.err = err
	}
	return n, err
}

// responseBody is the response body the caller reads: it counts the
// bytes of the base's body, decompresses them if gz is set, and ends the
// operation at the end of the body, at a read error or at Close, which
// closes the base's body.
type responseBody struct {
	io.ReadCloser
	gz *gzipReader // over a countingReader of ReadCloser, if the Transport decompresses
	o  *operation
}

func (b *responseBody) Read(p []byte) (n int, err error) {
	if b.gz != nil {
		n, err = b.gz.Read(p)
	} else {
		n, err = b.ReadCloser.Read(p)
		b.o.received.Add(int64(n))
	}
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
