package nettrace_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/nettrace"
)

func newRecorder(t *testing.T) *telemetry.Recorder {
	t.Helper()
	r, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return h, port
}

func onlyOperation(t *testing.T, r *telemetry.Recorder) telemetry.NetworkMetrics {
	t.Helper()
	ops := r.Report().NetworkOperations
	if len(ops) != 1 {
		t.Fatalf("got %d network operations, want 1: %+v", len(ops), ops)
	}
	return ops[0]
}

func TestTransportRecordsRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		reqBody  string
		respBody string
	}{
		{name: "ok with bodies", status: http.StatusOK, reqBody: `{"input":42}`, respBody: strings.Repeat("x", 100_000)},
		{name: "no request body", status: http.StatusOK, respBody: "hello"},
		{name: "error status completes", status: http.StatusNotFound, reqBody: "abc", respBody: "not here"},
		{name: "empty response", status: http.StatusNoContent, reqBody: "abc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				io.Copy(io.Discard, req.Body)
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.respBody)
			}))
			t.Cleanup(srv.Close)
			r := newRecorder(t)
			client := &http.Client{Transport: &nettrace.Transport{Network: r.Network(), Operation: "fetch"}}

			var body io.Reader
			if tc.reqBody != "" {
				body = strings.NewReader(tc.reqBody)
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL, body)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || string(got) != tc.respBody {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, got, tc.status, tc.respBody)
			}

			m := onlyOperation(t, r)
			host, port := hostPort(t, srv.Listener.Addr().String())
			want := telemetry.NetworkMetrics{TaskID: m.TaskID, Operation: "fetch", Host: host, Port: port,
				Status: telemetry.StatusCompleted, BytesSent: int64(len(tc.reqBody)), BytesReceived: int64(len(tc.respBody))}
			m.StartTime, m.EndTime = time.Time{}, time.Time{}
			if m != want {
				t.Errorf("got %+v, want %+v", m, want)
			}
			if !strings.HasPrefix(m.TaskID, "http-") {
				t.Errorf("got task id %q, want a generated http-<n>", m.TaskID)
			}
		})
	}
}

func TestTransportRefusedConnection(t *testing.T) {
	r := newRecorder(t)
	addr := deadAddr(t)
	client := &http.Client{Transport: &nettrace.Transport{Network: r.Network()}}
	_, err := client.Post("http://"+addr+"/x", "text/plain", strings.NewReader("payload"))
	if err == nil {
		t.Fatal("got no error from a dead port")
	}
	m := onlyOperation(t, r)
	host, port := hostPort(t, addr)
	if m.Status != telemetry.StatusFailed || m.Host != host || m.Port != port || m.Operation != nettrace.HTTPOperation {
		t.Errorf("got %+v, want a failed http_request to %s", m, addr)
	}
	if !strings.Contains(m.Error, "refused") {
		t.Errorf("got error %q, want it to say the connection was refused", m.Error)
	}
	if failed := r.Network().FailedOperations(); len(failed) != 1 {
		t.Errorf("got %d failed operations, want 1", len(failed))
	}
}

// hangingTransport answers no request: each round trip waits for its
// context to end.
type hangingTransport struct{}

func (hangingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	<-req.Context().Done()
	return nil, req.Context().Err()
}

// TestTransportTimeout runs in a synctest bubble, so that the client's
// timeout and the recorded latency are on the same fake clock: the
// operation fails after exactly the 50ms timeout.
func TestTransportTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := telemetry.NewRecorder()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(context.Background())
		client := &http.Client{Timeout: 50 * time.Millisecond, Transport: &nettrace.Transport{Base: hangingTransport{}, Network: r.Network()}}
		if _, err := client.Get("http://api.example.com:8080/slow"); err == nil {
			t.Fatal("got no error, want a timeout")
		}
		m := onlyOperation(t, r)
		if m.Status != telemetry.StatusFailed || m.Error == "" || m.Host != "api.example.com" || m.Port != 8080 {
			t.Fatalf("got %+v, want a failed operation to api.example.com:8080", m)
		}
		if got, want := m.Latency(), 50*time.Millisecond; got != want {
			t.Errorf("got latency %v, want exactly the %v timeout", got, want)
		}
	})
}

func TestTransportServerClosesMidResponse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
		buf.Flush()
		conn.Close()
	}))
	t.Cleanup(srv.Close)
	r := newRecorder(t)
	client := &http.Client{Transport: &nettrace.Transport{Network: r.Network()}}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %q, %v; want an unexpected EOF", got, err)
	}
	m := onlyOperation(t, r)
	if m.Status != telemetry.StatusFailed || m.BytesReceived != 10 || !strings.Contains(m.Error, "unexpected EOF") {
		t.Errorf("got %+v, want failed with 10 bytes received and an unexpected EOF", m)
	}
}

func TestTransportTaskIDs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name   string
		taskID func(*http.Request) string
		ctx    context.Context
		want   string
	}{
		{name: "function", taskID: func(*http.Request) string { return "from-func" }, ctx: nettrace.WithTaskID(context.Background(), "from-ctx"), want: "from-func"},
		{name: "context", ctx: nettrace.WithTaskID(context.Background(), "from-ctx"), want: "from-ctx"},
		{name: "empty function result falls back", taskID: func(*http.Request) string { return "" }, ctx: nettrace.WithTaskID(context.Background(), "from-ctx"), want: "from-ctx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(t)
			client := &http.Client{Transport: &nettrace.Transport{Network: r.Network(), TaskID: tc.taskID}}
			req, _ := http.NewRequestWithContext(tc.ctx, http.MethodGet, srv.URL, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if m := onlyOperation(t, r); m.TaskID != tc.want {
				t.Errorf("got task id %q, want %q", m.TaskID, tc.want)
			}
		})
	}
}

func TestTransportNilNetwork(t *testing.T) {
	client := &http.Client{Transport: &nettrace.Transport{}}
	_, err := client.Get("http://127.0.0.1:1/")
	if !errors.Is(err, nettrace.ErrNoNetwork) {
		t.Errorf("got %v, want ErrNoNetwork", err)
	}
}

// countingListener counts the bytes its connections read and write.
type countingListener struct {
	net.Listener
	read, written atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, l: l}, nil
}

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.l.written.Add(int64(n))
	return n, err
}

func TestDialerCountsBytesOnTheWire(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		io.WriteString(w, strings.Repeat("y", 5000))
	}))
	srv.Listener = cl
	srv.Start()
	t.Cleanup(srv.Close)

	r := newRecorder(t)
	d := &nettrace.Dialer{Network: r.Network()}
	tr := &http.Transport{DialContext: d.DialContext}
	client := &http.Client{Transport: tr}
	for range 3 { // one connection, reused
		resp, err := client.Post(srv.URL, "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	tr.CloseIdleConnections()

	// The client closes the connection in the background: wait for the
	// record to end (a connection never recorded as ended fails the test
	// at go test's own timeout, not at a wall-clock limit of ours).
	for len(r.Report().NetworkOperations) == 0 || r.Report().NetworkOperations[0].Status == telemetry.StatusPending {
		time.Sleep(time.Millisecond)
	}
	srv.Close() // waits for the server's connections, so its counts are final
	m := onlyOperation(t, r)
	if m.Status != telemetry.StatusCompleted || m.Operation != nettrace.ConnOperation {
		t.Fatalf("got %+v, want a completed connection", m)
	}
	if m.BytesSent != cl.read.Load() || m.BytesReceived != cl.written.Load() {
		t.Errorf("got sent %d received %d, want what the server read %d and wrote %d",
			m.BytesSent, m.BytesReceived, cl.read.Load(), cl.written.Load())
	}
	if m.BytesReceived < 3*5000 {
		t.Errorf("got %d bytes received, want at least the 3 bodies", m.BytesReceived)
	}
}

func TestDialerRawConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4)
		io.ReadFull(c, buf)
		c.Write(bytes.Repeat(buf, 3))
	}()
	r := newRecorder(t)
	d := &nettrace.Dialer{Network: r.Network(), Operation: "echo"}
	ctx := nettrace.WithTaskID(context.Background(), "job-7")
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	got, _ := io.ReadAll(c) // to EOF: not an error
	c.Close()
	if string(got) != "pingpingping" {
		t.Fatalf("got %q", got)
	}
	m := onlyOperation(t, r)
	host, port := hostPort(t, ln.Addr().String())
	if m.Status != telemetry.StatusCompleted || m.BytesSent != 4 || m.BytesReceived != 12 ||
		m.Host != host || m.Port != port || m.Operation != "echo" || !strings.HasPrefix(m.TaskID, "job-7/conn-") {
		t.Errorf("got %+v, want completed echo to %s:%d, 4 sent, 12 received, task job-7/conn-<n>", m, host, port)
	}
	if err := c.Close(); err == nil {
		t.Error("got nil from a second Close, want the conn's error")
	}
	if n := len(r.Report().NetworkOperations); n != 1 {
		t.Errorf("got %d operations after a second Close, want 1", n)
	}
}

func TestDialerFailures(t *testing.T) {
	tests := []struct {
		name    string
		dial    func(t *testing.T, d *nettrace.Dialer) error
		wantErr string
	}{
		{name: "refused", wantErr: "refused", dial: func(t *testing.T, d *nettrace.Dialer) error {
			_, err := d.Dial("tcp", deadAddr(t))
			return err
		}},
		{name: "cancelled", wantErr: "canceled", dial: func(t *testing.T, d *nettrace.Dialer) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := d.DialContext(ctx, "tcp", deadAddr(t))
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(t)
			err := tc.dial(t, &nettrace.Dialer{Network: r.Network()})
			if err == nil {
				t.Fatal("got no error")
			}
			m := onlyOperation(t, r)
			if m.Status != telemetry.StatusFailed || !strings.Contains(m.Error, tc.wantErr) || !strings.HasPrefix(m.TaskID, "conn-") {
				t.Errorf("got %+v, want a failed conn-<n> operation with %q", m, tc.wantErr)
			}
		})
	}
	if _, err := (&nettrace.Dialer{}).Dial("tcp", "127.0.0.1:1"); !errors.Is(err, nettrace.ErrNoNetwork) {
		t.Errorf("got %v, want ErrNoNetwork", err)
	}
}

// A read error (here: a deadline) is the operation's error.
func TestDialerReadErrorFailsOperation(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err == nil {
			<-done
			c.Close()
		}
	}()
	defer close(done)
	r := newRecorder(t)
	c, err := (&nettrace.Dialer{Network: r.Network()}).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("got no read error")
	}
	c.Close()
	if m := onlyOperation(t, r); m.Status != telemetry.StatusFailed || !strings.Contains(m.Error, "timeout") {
		t.Errorf("got %+v, want failed with a timeout", m)
	}
}

// BenchmarkTransport measures a loopback round trip with and without a
// Transport recording it.
func BenchmarkTransport(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		io.WriteString(w, "ok")
	}))
	b.Cleanup(srv.Close)
	r, err := telemetry.NewRecorder(telemetry.WithMaxNetworkOps(10_000))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	base := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(base.CloseIdleConnections)
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"plain", base},
		{"traced", &nettrace.Transport{Base: base, Network: r.Network()}},
	} {
		client := &http.Client{Transport: tc.rt}
		do := func() error {
			resp, err := client.Post(srv.URL, "text/plain", strings.NewReader("ping"))
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			return resp.Body.Close()
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := do(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := do(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func TestTransportKeepsUpgradedBodyWritable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		buf.Flush()
		p := make([]byte, 4)
		io.ReadFull(buf, p)
		conn.Write(p) // echo, then close
	}))
	t.Cleanup(srv.Close)
	r := newRecorder(t)
	client := &http.Client{Transport: &nettrace.Transport{Network: r.Network()}}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if resp.StatusCode != http.StatusSwitchingProtocols || !ok {
		t.Fatalf("got %d, writable body %v; want 101 and a writable body", resp.StatusCode, ok)
	}
	rw.Write([]byte("ping"))
	got, _ := io.ReadAll(rw)
	rw.Close()
	if string(got) != "ping" {
		t.Fatalf("got %q, want the echo", got)
	}
	if m := onlyOperation(t, r); m.Status != telemetry.StatusCompleted || m.BytesSent != 4 || m.BytesReceived != 4 {
		t.Errorf("got %+v, want completed with 4 bytes each way", m)
	}
}

// refusingTracer is a RequestTracer that refuses every start and, as its
// contract allows, returns no request with its error.
type refusingTracer struct{ nettrace.Observer }

func (refusingTracer) StartRequest(*http.Request, string, string, int, string) (*http.Request, func(int64, int64, error) error, error) {
	return nil, nil, errors.New("refused")
}

// TestTransportRequestTracerRefuses checks that a round trip whose
// RequestTracer refuses the start, returning no request, still sends the
// original request, unrecorded, instead of panicking.
func TestTransportRequestTracerRefuses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(srv.Close)
	r := newRecorder(t)
	client := &http.Client{Transport: &nettrace.Transport{Network: refusingTracer{r.Network()}}}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Errorf("got body %q, want ok", body)
	}
	if ops := r.Report().NetworkOperations; len(ops) != 0 {
		t.Errorf("got %d network operations, want none for a refused start", len(ops))
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestTransportBaseReturnsNothing checks that a base transport that
// breaks the RoundTripper contract by returning neither a response nor an
// error makes the round trip fail, with a recorded failed operation, as
// http.Client fails it, rather than panic inside RoundTrip and leave the
// operation pending.
func TestTransportBaseReturnsNothing(t *testing.T) {
	rec := newRecorder(t)
	tr := &nettrace.Transport{Network: rec.Network(), Base: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil })}
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if resp != nil || err == nil || !strings.Contains(err.Error(), "nil *Response with a nil error") {
		t.Fatalf("got %v, %v; want no response and an error that says what the base returned", resp, err)
	}
	op := onlyOperation(t, rec)
	if op.Status != telemetry.StatusFailed || op.Error != err.Error() {
		t.Errorf("got a %s operation with error %q, want a failed one with %q", op.Status, op.Error, err)
	}
}
