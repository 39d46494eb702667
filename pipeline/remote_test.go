package pipeline_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// bodyCounter counts the body bytes a handler reads and writes.
type bodyCounter struct {
	h             http.Handler
	read, written atomic.Int64
}

func (c *bodyCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.TeeReader(r.Body, writerFunc(func(p []byte) { c.read.Add(int64(len(p))) })), r.Body}
	c.h.ServeHTTP(&countingWriter{ResponseWriter: w, n: &c.written}, r)
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

// lastWorkerTask is the task the worker's "double" event last saw.
var lastWorkerTask atomic.Pointer[pipeline.Task]

var errOutOfStock = errors.New("out of stock")

// workerEvents are the events the test worker runs.
func workerEvents(t *testing.T) []pipeline.Event {
	var flaky atomic.Int64
	return []pipeline.Event{
		pipeline.Func("double", func(ctx context.Context, in any) (any, error) {
			task, ok := pipeline.TaskFrom(ctx)
			if !ok {
				t.Error("the worker's event got no task")
			}
			lastWorkerTask.Store(&task)
			return map[string]any{"doubled": in.(map[string]any)["n"].(float64) * 2}, nil
		}),
		pipeline.Func("reserve", func(context.Context, any) (any, error) { return nil, telemetry.Permanent(errOutOfStock) }),
		pipeline.Func("flaky", func(context.Context, any) (any, error) {
			if flaky.Add(1) < 3 {
				return nil, errors.New("model not loaded yet")
			}
			return "ready", nil
		}),
		pipeline.Func("sleepy", func(ctx context.Context, in any) (any, error) {
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
			return nil, ctx.Err()
		}),
	}
}

func startWorker(t *testing.T, tlsOn bool) (*httptest.Server, *bodyCounter, string, int) {
	t.Helper()
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{}, workerEvents(t)...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	bc := &bodyCounter{h: w}
	mux.Handle(pipeline.DefaultPath, bc)
	srv := httptest.NewUnstartedServer(mux)
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	host, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(p)
	return srv, bc, host, port
}

func mustRemote(t *testing.T, name string, cfg pipeline.RemoteConfig) *pipeline.RemoteEvent {
	t.Helper()
	e, err := pipeline.Remote(name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRemoteSuccessRecordsNetworkOperation(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run("tls="+strconv.FormatBool(tlsOn), func(t *testing.T) {
			srv, bc, host, port := startWorker(t, tlsOn)
			cfg := pipeline.RemoteConfig{Host: host, Port: port, Timeout: 5 * time.Second}
			if tlsOn {
				cfg.TLS = srv.Client().Transport.(*http.Transport).TLSClientConfig
			}
			r := newRecorder(t)
			p := mustNew(t, pipeline.Config{Recorder: r}, pipeline.Sequence(mustRemote(t, "double", cfg)))
			out, err := p.Run(context.Background(), map[string]any{"n": 21})
			if err != nil {
				t.Fatal(err)
			}
			if got := out.(map[string]any)["doubled"]; got != 42.0 {
				t.Errorf("got %v, want 42", got)
			}
			ev := eventsByName(r)["double"]
			ops := r.Report().NetworkOperations
			if len(ops) != 1 {
				t.Fatalf("got %d network operations, want 1", len(ops))
			}
			m := ops[0]
			want := telemetry.NetworkMetrics{TaskID: ev.TaskID + "/call-1", Operation: "remote_call", Host: host, Port: port,
				Status: telemetry.StatusCompleted, BytesSent: bc.read.Load(), BytesReceived: bc.written.Load()}
			m.StartTime, m.EndTime = time.Time{}, time.Time{}
			if m != want {
				t.Errorf("got %+v, want %+v", m, want)
			}
			if m.BytesSent == 0 || m.BytesReceived == 0 {
				t.Error("got zero bytes")
			}
			if wt := lastWorkerTask.Load(); wt.ID != ev.TaskID || wt.RunID != ev.PipelineID || wt.Attempt != 1 {
				t.Errorf("the worker's event got task %+v, want the caller's task %s", wt, ev.TaskID)
			}
			if ev.Status != telemetry.StatusCompleted {
				t.Errorf("got event %+v, want completed", ev)
			}
		})
	}
}

func TestRemoteFailures(t *testing.T) {
	_, _, host, port := startWorker(t, false)
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := dead.Addr().(*net.TCPAddr).Port
	dead.Close()
	retry := telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}

	tests := []struct {
		name        string
		event       string
		cfg         pipeline.RemoteConfig
		wantErr     func(error) bool
		wantStatus  telemetry.Status // of the event run
		wantRetries int
		wantOps     int
		wantOpsErr  string // error of the failed network operations; "" if they completed
	}{
		{name: "retried then succeeds", event: "flaky", cfg: pipeline.RemoteConfig{Host: host, Port: port},
			wantErr: func(err error) bool { return err == nil }, wantStatus: telemetry.StatusCompleted, wantRetries: 2, wantOps: 3},
		{name: "permanent error on the worker", event: "reserve", cfg: pipeline.RemoteConfig{Host: host, Port: port},
			wantErr: func(err error) bool {
				var re *pipeline.RemoteError
				return errors.As(err, &re) && re.StatusCode == 422 && re.Message == "out of stock" && re.Event == "reserve"
			}, wantStatus: telemetry.StatusFailed, wantOps: 1},
		{name: "unknown event", event: "nope", cfg: pipeline.RemoteConfig{Host: host, Port: port},
			wantErr: func(err error) bool {
				var re *pipeline.RemoteError
				return errors.As(err, &re) && re.StatusCode == 404 && strings.Contains(re.Message, `unknown event "nope"`)
			}, wantStatus: telemetry.StatusFailed, wantOps: 1},
		{name: "connection refused", event: "double", cfg: pipeline.RemoteConfig{Host: "127.0.0.1", Port: deadPort},
			wantErr: func(err error) bool {
				var oe *net.OpError
				return errors.As(err, &oe) && strings.Contains(err.Error(), "refused")
			}, wantStatus: telemetry.StatusFailed, wantRetries: 2, wantOps: 3, wantOpsErr: "refused"},
		{name: "timeout", event: "sleepy", cfg: pipeline.RemoteConfig{Host: host, Port: port, Timeout: 50 * time.Millisecond},
			wantErr: func(err error) bool {
				var ne net.Error
				return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, context.DeadlineExceeded)
			}, wantStatus: telemetry.StatusFailed, wantRetries: 2, wantOps: 3, wantOpsErr: "deadline exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(t)
			ev := pipeline.WithRetry(mustRemote(t, tc.event, tc.cfg), retry)
			_, err := mustNew(t, pipeline.Config{Recorder: r}, pipeline.Sequence(ev)).Run(context.Background(), map[string]any{"n": 1})
			if !tc.wantErr(err) {
				t.Errorf("got error %v", err)
			}
			e := eventsByName(r)[tc.event]
			if e.Status != tc.wantStatus || e.RetryCount != tc.wantRetries {
				t.Errorf("got event %s with %d retries, want %s with %d", e.Status, e.RetryCount, tc.wantStatus, tc.wantRetries)
			}
			ops := r.Report().NetworkOperations
			if len(ops) != tc.wantOps {
				t.Fatalf("got %d network operations, want %d", len(ops), tc.wantOps)
			}
			for i, m := range ops {
				if m.TaskID != e.TaskID+"/call-"+strconv.Itoa(i+1) {
					t.Errorf("got call id %q, want %s/call-%d", m.TaskID, e.TaskID, i+1)
				}
				failed := tc.wantOpsErr != ""
				if (m.Status == telemetry.StatusFailed) != failed || !strings.Contains(m.Error, tc.wantOpsErr) {
					t.Errorf("got operation %s %q, want failed=%v with %q", m.Status, m.Error, failed, tc.wantOpsErr)
				}
			}
		})
	}
}

// remoteInBubble serves a worker of events on a fake loopback listener,
// inside the caller's synctest bubble, and returns a RemoteEvent named
// name that calls it over HTTP with timeout as its RemoteConfig.Timeout,
// and a function that closes both.
func remoteInBubble(t *testing.T, name string, timeout time.Duration, events ...pipeline.Event) (*pipeline.RemoteEvent, func()) {
	t.Helper()
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{Logger: slog.New(slog.DiscardHandler)}, events...)
	if err != nil {
		t.Fatal(err)
	}
	ln := newFakeListener("127.0.0.1")
	go w.Serve(ln)
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return ln.dial(), nil }}
	e := mustRemote(t, name, pipeline.RemoteConfig{Host: "127.0.0.1", Port: 8700, Timeout: timeout, Client: &http.Client{Transport: tr}})
	return e, func() { tr.CloseIdleConnections(); w.Close() }
}

// blockFirst is an event that, on the first attempt of its task, runs
// until its context ends (slower than any call timeout: until the caller
// gives up), and on the others returns "fast" at once.
var blockFirst = pipeline.Func("score", func(ctx context.Context, in any) (any, error) {
	if task, _ := pipeline.TaskFrom(ctx); task.Attempt == 1 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return "fast", nil
})

// TestRemoteCallTimeoutRetried checks, in fake time, that a call that
// outlasts RemoteConfig.Timeout is a transient failure of that attempt,
// which DefaultRetryable retries: the worker's event is slower than the
// timeout on the first attempt and fast on the second, and the run
// succeeds after 2 attempts, with the retry recorded.
func TestRemoteCallTimeoutRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 50 * time.Millisecond
		e, closeAll := remoteInBubble(t, "score", timeout, blockFirst)
		defer closeAll()
		r := newRecorder(t)
		var retried []error
		p := mustNew(t, pipeline.Config{Recorder: r, Hooks: retryErrs{pipeline.NopHooks{}, &retried},
			Retry: &telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}}, pipeline.Sequence(e))
		out, err := p.Run(context.Background(), nil)
		if err != nil || out != "fast" {
			t.Fatalf("got %v, %v; want fast, nil", out, err)
		}
		if len(retried) != 1 || !errors.Is(retried[0], context.DeadlineExceeded) || !pipeline.DefaultRetryable(retried[0]) {
			t.Errorf("got retries after %v, want one after the call's DeadlineExceeded", retried)
		}
		var ne net.Error
		if len(retried) == 1 && (!errors.As(retried[0], &ne) || !ne.Timeout()) {
			t.Errorf("the call's error %v is no net.Error timeout", retried[0])
		}
		if ev := eventsByName(r)["score"]; ev.Status != telemetry.StatusCompleted || ev.RetryCount != 1 {
			t.Errorf("got event %s with %d retries, want completed with 1", ev.Status, ev.RetryCount)
		}
		ops := r.Report().NetworkOperations
		if len(ops) != 2 {
			t.Fatalf("got %d network operations, want 2", len(ops))
		}
		if m := ops[0]; m.Status != telemetry.StatusFailed || !strings.Contains(m.Error, "deadline exceeded") || m.EndTime.Sub(m.StartTime) != timeout {
			t.Errorf("got first call %s %q after %v, want failed with deadline exceeded after %v", m.Status, m.Error, m.EndTime.Sub(m.StartTime), timeout)
		}
		if m := ops[1]; m.Status != telemetry.StatusCompleted {
			t.Errorf("got second call %s %q, want completed", m.Status, m.Error)
		}
	})
}

// TestRemoteRunDeadlineNotRetried checks, in fake time, that a run whose
// own context's deadline expires during a call is not retried, though the
// call has a Timeout of its own (longer): the error is the run's, which
// DefaultRetryable does not retry.
func TestRemoteRunDeadlineNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, closeAll := remoteInBubble(t, "score", time.Second, blockFirst)
		defer closeAll()
		r := newRecorder(t)
		var retried []error
		p := mustNew(t, pipeline.Config{Recorder: r, Hooks: retryErrs{pipeline.NopHooks{}, &retried},
			Retry: &telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}}, pipeline.Sequence(e))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		_, err := p.Run(ctx, nil)
		var ee *pipeline.EventError
		if !errors.As(err, &ee) || ee.Attempts != 1 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want DeadlineExceeded after 1 attempt", err)
		}
		if pipeline.DefaultRetryable(ee.Err) {
			t.Errorf("DefaultRetryable(%v) = true, want false: the run's deadline ended the call", ee.Err)
		}
		if len(retried) != 0 {
			t.Errorf("got retries after %v, want none", retried)
		}
		if ev := eventsByName(r)["score"]; ev.Status != telemetry.StatusFailed || ev.RetryCount != 0 {
			t.Errorf("got event %s with %d retries, want failed with 0", ev.Status, ev.RetryCount)
		}
		if ops := r.Report().NetworkOperations; len(ops) != 1 {
			t.Errorf("got %d network operations, want 1", len(ops))
		}
	})
}

// TestRemoteProcessTimeoutRetryable checks, in fake time, which errors of
// a RemoteEvent called outside a pipeline DefaultRetryable retries: the
// call's own timeout, but not its context's deadline or cancellation,
// even with a Timeout set; all of them are DeadlineExceeded or Canceled
// for errors.Is.
func TestRemoteProcessTimeoutRetryable(t *testing.T) {
	tests := []struct {
		name          string
		timeout       time.Duration
		ctx           func() (context.Context, context.CancelFunc)
		want          error
		wantRetryable bool
	}{
		{name: "call timeout", timeout: 50 * time.Millisecond, want: context.DeadlineExceeded, wantRetryable: true,
			ctx: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{name: "call timeout before the context's deadline", timeout: 50 * time.Millisecond, want: context.DeadlineExceeded, wantRetryable: true,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Second)
			}},
		{name: "context deadline before the call timeout", timeout: time.Second, want: context.DeadlineExceeded,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			}},
		{name: "context deadline, no call timeout", want: context.DeadlineExceeded,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			}},
		{name: "context cancelled", timeout: time.Second, want: context.Canceled,
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				return ctx, cancel
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				block := pipeline.Func("block", func(ctx context.Context, in any) (any, error) { <-ctx.Done(); return nil, ctx.Err() })
				e, closeAll := remoteInBubble(t, "block", tc.timeout, block)
				defer closeAll()
				ctx, cancel := tc.ctx()
				defer cancel()
				_, err := e.Process(ctx, nil)
				if !errors.Is(err, tc.want) {
					t.Errorf("got %v, want %v", err, tc.want)
				}
				if got := pipeline.DefaultRetryable(err); got != tc.wantRetryable {
					t.Errorf("DefaultRetryable(%v) = %v, want %v", err, got, tc.wantRetryable)
				}
			})
		})
	}
}

// retryErrs collects the errors of the retries it sees, and passes every
// hook on.
type retryErrs struct {
	pipeline.Hooks
	errs *[]error
}

func (h retryErrs) EventRetried(t pipeline.Task, err error, wait time.Duration) {
	*h.errs = append(*h.errs, err)
	h.Hooks.EventRetried(t, err, wait)
}

func TestWorkerAnswers(t *testing.T) {
	srv, _, _, _ := startWorker(t, false)
	url := srv.URL + pipeline.DefaultPath
	tests := []struct {
		name       string
		method     string
		body       string
		wantStatus int
		wantBody   string
	}{
		{name: "success", method: "POST", body: `{"event":"double","input":{"n":2}}`, wantStatus: 200, wantBody: `{"output":{"doubled":4}}`},
		{name: "event error is 422 when permanent", method: "POST", body: `{"event":"reserve"}`, wantStatus: 422, wantBody: `{"error":"out of stock"}`},
		{name: "wrong method", method: "GET", wantStatus: 405, wantBody: `{"error":"pipeline: worker: method GET not allowed, use POST"}`},
		{name: "bad JSON", method: "POST", body: `{"event":`, wantStatus: 400, wantBody: `bad request body`},
		{name: "no event", method: "POST", body: `{"input":1}`, wantStatus: 400, wantBody: `request names no event`},
		{name: "unknown event", method: "POST", body: `{"event":"nope"}`, wantStatus: 404, wantBody: `unknown event \"nope\"`},
		{name: "too large", method: "POST", body: `{"event":"double","input":"` + strings.Repeat("x", pipeline.DefaultMaxBodyBytes) + `"}`,
			wantStatus: 413, wantBody: `{"error":"pipeline: worker: request body larger than 1048576 bytes"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, url, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(b), tc.wantBody) {
				t.Errorf("got %d %s, want %d containing %s", resp.StatusCode, b, tc.wantStatus, tc.wantBody)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("got Content-Type %q", ct)
			}
			if !json.Valid(b) {
				t.Errorf("got invalid JSON %s", b)
			}
			if tc.wantStatus == 405 && resp.Header.Get("Allow") != "POST" {
				t.Errorf("got Allow %q, want POST", resp.Header.Get("Allow"))
			}
		})
	}
}

func TestNewWorkerRejectsBadInput(t *testing.T) {
	a := appendEvent("a")
	_, err := pipeline.NewWorker(pipeline.WorkerConfig{MaxInFlight: -1, EventTimeout: -1, TLS: &tls.Config{}},
		a, nil, pipeline.Func("", nil), appendEvent("a"), (*pipeline.RemoteEvent)(nil), pipeline.WithRetry(nil, telemetry.RetryPolicy{}))
	for _, want := range []error{pipeline.ErrNilEvent, pipeline.ErrEmptyEventName, pipeline.ErrDuplicateEvent} {
		if !errors.Is(err, want) {
			t.Errorf("NewWorker: got %v, want it to wrap %v", err, want)
		}
	}
	for _, want := range []string{"worker event 5: nil event", "worker event 6: nil event", "max in flight must not be negative", "event timeout must not be negative", "TLS configuration has no certificate"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewWorker: got %v, want it to say %q", err, want)
		}
	}
}

func TestRemoteConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     pipeline.RemoteConfig
		wantURL string // "" if Remote must fail
		wantErr string
	}{
		{name: "host and port", cfg: pipeline.RemoteConfig{Host: "worker.internal", Port: 8700}, wantURL: "http://worker.internal:8700/events"},
		{name: "IPv6 with TLS and a path", cfg: pipeline.RemoteConfig{Host: "::1", Port: 8443, Path: "run", TLS: &tls.Config{}}, wantURL: "https://[::1]:8443/run"},
		{name: "IPv6 with a zone", cfg: pipeline.RemoteConfig{Host: "fe80::1%eth0", Port: 80}, wantURL: "http://[fe80::1%25eth0]:80/events"},
		{name: "https through the Client", cfg: pipeline.RemoteConfig{Host: "w", Port: 1, Scheme: "https", Client: &http.Client{}}, wantURL: "https://w:1/events"},
		{name: "token over https", cfg: pipeline.RemoteConfig{Host: "w", Port: 1, TLS: &tls.Config{}, Token: telemetry.NewSecret("t")}, wantURL: "https://w:1/events"},
		{name: "token over http to loopback", cfg: pipeline.RemoteConfig{Host: "localhost", Port: 1, Token: telemetry.NewSecret("t")}, wantURL: "http://localhost:1/events"},
		{name: "token over http allowed", cfg: pipeline.RemoteConfig{Host: "w", Port: 1, Token: telemetry.NewSecret("t"), AllowInsecure: true}, wantURL: "http://w:1/events"},

		{name: "empty everything", cfg: pipeline.RemoteConfig{Port: 70000, Timeout: -1, MaxResponseBytes: -1},
			wantErr: "empty host\npipeline: remote: port must be 1-65535, got 70000\npipeline: remote: timeout must not be negative, got -1ns\npipeline: remote: max response bytes must not be negative, got -1"},
		{name: "host with a path", cfg: pipeline.RemoteConfig{Host: "evil.example/x", Port: 80}, wantErr: `host "evil.example/x" must be a host name or IP address only`},
		{name: "host with a query", cfg: pipeline.RemoteConfig{Host: "w?x=1", Port: 80}, wantErr: `host "w?x=1" must be`},
		{name: "host with a fragment", cfg: pipeline.RemoteConfig{Host: "w#x", Port: 80}, wantErr: `host "w#x" must be`},
		{name: "host with user info", cfg: pipeline.RemoteConfig{Host: "user@evil.example", Port: 80}, wantErr: `host "user@evil.example" must be`},
		{name: "host in brackets", cfg: pipeline.RemoteConfig{Host: "[::1]", Port: 80}, wantErr: `host "[::1]" must be`},
		{name: "host with a space", cfg: pipeline.RemoteConfig{Host: "w x", Port: 80}, wantErr: `host "w x" must be`},
		{name: "host with a newline", cfg: pipeline.RemoteConfig{Host: "w\nx", Port: 80}, wantErr: `host "w\nx" must be`},
		{name: "host with a port", cfg: pipeline.RemoteConfig{Host: "w:80", Port: 80}, wantErr: `host "w:80" and port 80 do not make a valid URL`},
		{name: "TLS and Client", cfg: pipeline.RemoteConfig{Host: "w", Port: 1, TLS: &tls.Config{}, Client: &http.Client{}},
			wantErr: "TLS and Client are both set: TLS would be ignored"},
		{name: "http scheme with TLS", cfg: pipeline.RemoteConfig{Host: "w", Port: 1, Scheme: "http", TLS: &tls.Config{}}, wantErr: `Scheme is "http" but TLS is set`},
		{name: "unknown scheme", cfg: pipeline.RemoteConfig{Host: "w", Port: 1, Scheme: "ftp"}, wantErr: `Scheme must be "http" or "https", got "ftp"`},
		{name: "token in clear text", cfg: pipeline.RemoteConfig{Host: "10.0.0.7", Port: 1, Token: telemetry.NewSecret("hunter2")},
			wantErr: "the token would be sent in clear text to 10.0.0.7: use TLS (or set AllowInsecure)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := pipeline.Remote("x", tc.cfg)
			if tc.wantURL != "" {
				if err != nil || e.URL() != tc.wantURL {
					t.Fatalf("got %v, %v; want URL %s", e, err, tc.wantURL)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
	if _, err := pipeline.Remote("", pipeline.RemoteConfig{Host: "w", Port: 1}); !errors.Is(err, pipeline.ErrEmptyEventName) {
		t.Errorf("got %v, want ErrEmptyEventName", err)
	}
}

// A RemoteEvent called outside a pipeline works and records nothing.
func TestRemoteOutsidePipeline(t *testing.T) {
	_, _, host, port := startWorker(t, false)
	out, err := mustRemote(t, "double", pipeline.RemoteConfig{Host: host, Port: port}).Process(context.Background(), map[string]any{"n": 1.5})
	if err != nil || out.(map[string]any)["doubled"] != 3.0 {
		t.Errorf("got %v, %v; want doubled 3", out, err)
	}
}

// connCounter counts the connections a server opened and closed, and
// sends on closed each time one closes.
type connCounter struct {
	opened, closedN atomic.Int64
	closed          chan struct{}
}

func (c *connCounter) state(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		c.opened.Add(1)
	case http.StateClosed, http.StateHijacked:
		c.closedN.Add(1)
		c.closed <- struct{}{}
	}
}

// TestRemoteCloseIdleConnections checks that CloseIdleConnections closes
// the connection a call left idle, at once rather than at the worker's
// idle timeout, and that the event can still call afterwards.
func TestRemoteCloseIdleConnections(t *testing.T) {
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{}, workerEvents(t)...)
	if err != nil {
		t.Fatal(err)
	}
	cc := &connCounter{closed: make(chan struct{}, 10)}
	srv := httptest.NewUnstartedServer(w)
	srv.Config.ConnState = cc.state
	srv.Start()
	t.Cleanup(srv.Close)
	host, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(p)
	e := mustRemote(t, "double", pipeline.RemoteConfig{Host: host, Port: port})
	call := func() {
		t.Helper()
		if _, err := e.Process(context.Background(), map[string]any{"n": 1}); err != nil {
			t.Fatal(err)
		}
	}
	waitClosed := func() {
		t.Helper()
		select {
		case <-cc.closed:
		case <-time.After(time.Minute): // a generous deadline, only against a hang
			t.Fatal("the worker never saw the connection closed")
		}
	}

	call()
	call() // over the same connection
	if o, c := cc.opened.Load(), cc.closedN.Load(); o != 1 || c != 0 {
		t.Fatalf("after two calls: %d connections opened and %d closed, want 1 and 0", o, c)
	}
	e.CloseIdleConnections()
	waitClosed()
	if o, c := cc.opened.Load(), cc.closedN.Load(); o != 1 || c != 1 {
		t.Fatalf("after CloseIdleConnections: %d connections opened and %d closed, want 1 and 1", o, c)
	}
	e.CloseIdleConnections() // nothing idle: nothing to do
	call()                   // the event still works, over a new connection
	if o, c := cc.opened.Load(), cc.closedN.Load(); o != 2 || c != 1 {
		t.Fatalf("after another call: %d connections opened and %d closed, want 2 and 1", o, c)
	}
	e.CloseIdleConnections()
	waitClosed()
	if o, c := cc.opened.Load(), cc.closedN.Load(); o != 2 || c != 2 {
		t.Fatalf("at the end: %d connections opened and %d closed, want 2 and 2", o, c)
	}
}

// TestRemoteErrorMessageIsEscapedAndCut checks that the error text a
// worker (or whatever answers in its place) sends back reaches the caller
// with its control and format characters escaped, on one line, and cut to
// 8 KiB, so that it can neither forge log lines, rewrite a terminal nor
// fill the caller's memory and records.
func TestRemoteErrorMessageIsEscapedAndCut(t *testing.T) {
	hostile := "\x1b[2J\x1b[Hboom\nlevel=ERROR msg=forged \u202egnp.exe\xff"
	tests := []struct {
		name, text, want string
	}{
		{name: "plain", text: "model not loaded", want: "model not loaded"},
		{name: "hostile", text: hostile,
			want: `\x1b[2J\x1b[Hboom\nlevel=ERROR msg=forged \u202egnp.exe` + "\ufffd"}, // JSON makes \xff U+FFFD
		{name: "long", text: strings.Repeat("x", 1<<20),
			want: strings.Repeat("x", 8<<10-len("… [truncated, 1048576 bytes]")) + "… [truncated, 1048576 bytes]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := json.Marshal(map[string]string{"error": tc.text})
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return jsonResponse(500, string(body)), nil
			})}
			_, err = mustRemote(t, "score", pipeline.RemoteConfig{Host: "w", Port: 1, Client: client}).Process(context.Background(), 1)
			var re *pipeline.RemoteError
			if !errors.As(err, &re) || re.StatusCode != 500 {
				t.Fatalf("got %v, want a RemoteError 500", err)
			}
			if re.Message != tc.want {
				t.Errorf("got message %.200q (%d bytes), want %.200q (%d bytes)", re.Message, len(re.Message), tc.want, len(tc.want))
			}
		})
	}
}

// TestRemoteFollowsNoRedirect checks that a RemoteEvent does not follow a
// redirect, with its own client or with a Client of yours: a worker never
// redirects, and net/http would send the token (and the input) on to the
// new address when it is on the same host, a port of anyone's choice,
// over plain HTTP too. The call fails with a RemoteError of the 3xx
// status, which is not retried.
func TestRemoteFollowsNoRedirect(t *testing.T) {
	var leaked atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"output":"elsewhere"}`)
	}))
	t.Cleanup(elsewhere.Close)
	for _, status := range []int{301, 302, 303, 307, 308} {
		redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/events", status)
		}))
		t.Cleanup(redirecting.Close)
		host, port := hostPort(t, redirecting.URL+pipeline.DefaultPath)
		for _, client := range []*http.Client{nil, {}} {
			t.Run(fmt.Sprintf("%d, own client %v", status, client == nil), func(t *testing.T) {
				e := mustRemote(t, "echo", pipeline.RemoteConfig{Host: host, Port: port, Client: client,
					Token: telemetry.NewSecret("s3cret-token")})
				out, err := e.Process(context.Background(), 1)
				var re *pipeline.RemoteError
				if !errors.As(err, &re) || re.StatusCode != status || pipeline.DefaultRetryable(err) {
					t.Errorf("got %v, %v; want a RemoteError %d, not retryable", out, err, status)
				}
				if n := leaked.Swap(0); n != 0 {
					t.Errorf("the token was sent to the redirect's target %d times", n)
				}
			})
		}
	}
}
