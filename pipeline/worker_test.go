package pipeline_test

import (
	"bufio"
	"bytes"
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
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// echo is an event that returns its input.
var echo = pipeline.Func("echo", func(ctx context.Context, in any) (any, error) { return in, nil })

// serveWorker serves a worker made of cfg and events with httptest and
// returns the URL of its events.
func serveWorker(t *testing.T, cfg pipeline.WorkerConfig, events ...pipeline.Event) string {
	t.Helper()
	w, err := pipeline.NewWorker(cfg, events...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return srv.URL + pipeline.DefaultPath
}

// post posts body to url with the headers hdr (name, value, ...) and
// returns the answer's status, headers and body.
func post(t *testing.T, method, url, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestWorkerBearerToken(t *testing.T) {
	var runs atomic.Int64
	counted := pipeline.Func("echo", func(ctx context.Context, in any) (any, error) { runs.Add(1); return in, nil })
	url := serveWorker(t, pipeline.WorkerConfig{Token: telemetry.NewSecret("s3cret-token")}, counted)
	const (
		challenge = `Bearer realm="eventpipeline-worker"`
		invalid   = `Bearer realm="eventpipeline-worker", error="invalid_token"`
		missing   = `{"error":"pipeline: worker: unauthorized: a bearer token is required"}` + "\n"
		wrong     = `{"error":"pipeline: worker: unauthorized: invalid token"}` + "\n"
		body      = `{"event":"echo","input":7}`
	)
	tests := []struct {
		name          string
		method        string
		authorization string // "" for none
		wantStatus    int
		wantChallenge string
		wantBody      string
	}{
		{name: "no credentials", method: "POST", wantStatus: 401, wantChallenge: challenge, wantBody: missing},
		{name: "no credentials, wrong method", method: "GET", wantStatus: 401, wantChallenge: challenge, wantBody: missing},
		{name: "basic scheme", method: "POST", authorization: "Basic czNjcmV0LXRva2Vu", wantStatus: 401, wantChallenge: challenge, wantBody: missing},
		{name: "empty bearer", method: "POST", authorization: "Bearer ", wantStatus: 401, wantChallenge: challenge, wantBody: missing},
		{name: "wrong token", method: "POST", authorization: "Bearer s3cret-tokeN", wantStatus: 401, wantChallenge: invalid, wantBody: wrong},
		{name: "prefix of the token", method: "POST", authorization: "Bearer s3cret", wantStatus: 401, wantChallenge: invalid, wantBody: wrong},
		{name: "token and more", method: "POST", authorization: "Bearer s3cret-token2", wantStatus: 401, wantChallenge: invalid, wantBody: wrong},
		{name: "right token", method: "POST", authorization: "Bearer s3cret-token", wantStatus: 200, wantBody: `{"output":7}` + "\n"},
		{name: "scheme is case-insensitive", method: "POST", authorization: "bearer s3cret-token", wantStatus: 200, wantBody: `{"output":7}` + "\n"},
		{name: "upper-case scheme", method: "POST", authorization: "BEARER s3cret-token", wantStatus: 200, wantBody: `{"output":7}` + "\n"},
		{name: "spaces after the scheme", method: "POST", authorization: "Bearer   s3cret-token", wantStatus: 200, wantBody: `{"output":7}` + "\n"},
		{name: "no space after the scheme", method: "POST", authorization: "Bearers3cret-token", wantStatus: 401, wantChallenge: challenge, wantBody: missing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := runs.Load()
			var hdr []string
			if tc.authorization != "" {
				hdr = []string{"Authorization", tc.authorization}
			}
			status, h, b := post(t, tc.method, url, body, hdr...)
			if status != tc.wantStatus || b != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", status, b, tc.wantStatus, tc.wantBody)
			}
			if got := h.Get("WWW-Authenticate"); got != tc.wantChallenge {
				t.Errorf("got WWW-Authenticate %q, want %q", got, tc.wantChallenge)
			}
			wantRuns := int64(0)
			if tc.wantStatus == 200 {
				wantRuns = 1
			}
			if got := runs.Load() - before; got != wantRuns {
				t.Errorf("the event ran %d times, want %d", got, wantRuns)
			}
		})
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func jsonResponse(status int, body string, hdr ...string) *http.Response {
	resp := &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body))}
	for i := 0; i+1 < len(hdr); i += 2 {
		resp.Header.Set(hdr[i], hdr[i+1])
	}
	return resp
}

// RemoteConfig.Token is sent as a bearer token and never printed.
func TestRemoteSendsTokenAndNeverPrintsIt(t *testing.T) {
	const token = "s3cret-token"
	var got string
	cfg := pipeline.RemoteConfig{Host: "127.0.0.1", Port: 8700, Token: telemetry.NewSecret(token),
		Client: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			got = r.Header.Get("Authorization")
			return jsonResponse(200, `{"output":1}`), nil
		})}}
	e := mustRemote(t, "echo", cfg)
	if _, err := e.Process(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got != "Bearer "+token {
		t.Errorf("got Authorization %q, want %q", got, "Bearer "+token)
	}
	wcfg := pipeline.WorkerConfig{Token: telemetry.NewSecret(token)}
	w, err := pipeline.NewWorker(wcfg, echo)
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{cfg, &cfg, e, wcfg, w} {
			if s := fmt.Sprintf(verb, v); strings.Contains(s, token) || strings.Contains(s, fmt.Sprintf("%x", token)) {
				t.Errorf("%s of %T shows the token: %s", verb, v, s)
			}
		}
	}
}

func TestWorkerTLSAndClientCertificates(t *testing.T) {
	pki, other := testutil.NewPKI(t), testutil.NewPKI(t)
	token := telemetry.NewSecret("s3cret-token")
	serve := func(t *testing.T, tlsCfg *tls.Config) int {
		w, err := pipeline.NewWorker(pipeline.WorkerConfig{Token: token, TLS: tlsCfg, Logger: slog.New(slog.DiscardHandler)}, echo)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- w.Serve(ln) }()
		t.Cleanup(func() {
			w.Close()
			if err := <-done; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		})
		return ln.Addr().(*net.TCPAddr).Port
	}
	// ClientCAs with a zero ClientAuth: client certificates are required.
	required := serve(t, &tls.Config{Certificates: []tls.Certificate{pki.Server}, ClientCAs: pki.CAPool})
	ifGiven := serve(t, &tls.Config{Certificates: []tls.Certificate{pki.Server}, ClientCAs: pki.CAPool, ClientAuth: tls.VerifyClientCertIfGiven})
	serverOnly := serve(t, &tls.Config{Certificates: []tls.Certificate{pki.Server}})

	tests := []struct {
		name       string
		port       int
		tls        *tls.Config
		token      telemetry.Secret
		wantStatus int    // of a RemoteError; 0 for none
		wantErr    string // in a transport error (whose text depends on the TLS version and timing); "" for success or a RemoteError
	}{
		{name: "client certificate and token", port: required, token: token,
			tls: &tls.Config{RootCAs: pki.CAPool, Certificates: []tls.Certificate{pki.Client}}},
		{name: "client certificate without token", port: required,
			tls: &tls.Config{RootCAs: pki.CAPool, Certificates: []tls.Certificate{pki.Client}}, wantStatus: 401},
		{name: "no client certificate", port: required, token: token,
			tls: &tls.Config{RootCAs: pki.CAPool}, wantErr: " "},
		{name: "client certificate of another CA", port: required, token: token, // the error depends on the protocol
			tls: &tls.Config{RootCAs: pki.CAPool, Certificates: []tls.Certificate{other.Client}}, wantErr: " "},
		{name: "server not trusted", port: required, token: token,
			tls: &tls.Config{RootCAs: other.CAPool, Certificates: []tls.Certificate{pki.Client}}, wantErr: "certificate signed by unknown authority"},
		{name: "if given: none given gets 401", port: ifGiven, token: token,
			tls: &tls.Config{RootCAs: pki.CAPool}, wantStatus: 401},
		{name: "if given: given and verified", port: ifGiven, token: token,
			tls: &tls.Config{RootCAs: pki.CAPool, Certificates: []tls.Certificate{pki.Client}}},
		{name: "server TLS only, token", port: serverOnly, token: token, tls: &tls.Config{RootCAs: pki.CAPool}},
		{name: "server TLS only, no token", port: serverOnly, tls: &tls.Config{RootCAs: pki.CAPool}, wantStatus: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustRemote(t, "echo", pipeline.RemoteConfig{Host: "127.0.0.1", Port: tc.port, TLS: tc.tls, Token: tc.token})
			out, err := e.Process(context.Background(), "hi")
			var re *pipeline.RemoteError
			switch {
			case tc.wantStatus != 0:
				if !errors.As(err, &re) || re.StatusCode != tc.wantStatus {
					t.Errorf("got %v, want a RemoteError %d", err, tc.wantStatus)
				}
			case tc.wantErr != "":
				if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("got %v, want a transport error containing %q", err, tc.wantErr)
				}
			default:
				if err != nil || out != "hi" {
					t.Errorf("got %v, %v; want hi", out, err)
				}
			}
		})
	}
}

// fakeListener is a listener at addr whose connections are made by dial,
// with net.Pipe, so that a server can run in a synctest bubble.
type fakeListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newFakeListener(ip string) *fakeListener {
	return &fakeListener{addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 8700}, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *fakeListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *fakeListener) Addr() net.Addr { return l.addr }

func (l *fakeListener) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *fakeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

func TestWorkerServeRefusesNonLoopbackWithoutAuthentication(t *testing.T) {
	pki := testutil.NewPKI(t)
	tests := []struct {
		name    string
		ip      string
		cfg     pipeline.WorkerConfig
		refused bool
	}{
		{name: "non-loopback, no authentication", ip: "192.0.2.1", refused: true},
		{name: "any address, no authentication", ip: "0.0.0.0", refused: true},
		{name: "non-loopback, TLS without client certificates", ip: "192.0.2.1", refused: true,
			cfg: pipeline.WorkerConfig{TLS: &tls.Config{Certificates: []tls.Certificate{pki.Server}}}},
		{name: "non-loopback, token", ip: "192.0.2.1", cfg: pipeline.WorkerConfig{Token: telemetry.NewSecret("t")}},
		{name: "non-loopback, client certificates", ip: "192.0.2.1",
			cfg: pipeline.WorkerConfig{TLS: &tls.Config{Certificates: []tls.Certificate{pki.Server}, ClientCAs: pki.CAPool}}},
		{name: "non-loopback, allowed", ip: "192.0.2.1", cfg: pipeline.WorkerConfig{AllowUnauthenticated: true}},
		{name: "loopback v4", ip: "127.0.0.1"},
		{name: "loopback v6", ip: "::1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = slog.New(slog.DiscardHandler)
			w, err := pipeline.NewWorker(tc.cfg, echo)
			if err != nil {
				t.Fatal(err)
			}
			ln := newFakeListener(tc.ip)
			done := make(chan error, 1)
			go func() { done <- w.Serve(ln) }()
			if tc.refused {
				err := <-done
				if !errors.Is(err, pipeline.ErrNoAuthentication) || !strings.Contains(err.Error(), tc.ip) {
					t.Errorf("got %v, want ErrNoAuthentication naming %s", err, tc.ip)
				}
				if !ln.isClosed() {
					t.Error("the refused listener is still open")
				}
				return
			}
			c := ln.dial() // accepted: Serve serves
			c.Close()
			w.Close()
			if err := <-done; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("got %v, want http.ErrServerClosed", err)
			}
		})
	}
}

func TestWorkerLimitsWhatOneRequestMayCost(t *testing.T) {
	url := serveWorker(t, pipeline.WorkerConfig{MaxBodyBytes: 64, MaxInputValues: 4}, echo)
	pad := func(s string, n int) string { // s padded with spaces to n bytes
		return s + strings.Repeat(" ", n-len(s))
	}
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantBody   string
	}{
		{name: "body at the limit", body: pad(`{"event":"echo","input":1}`, 64), wantStatus: 200, wantBody: `{"output":1}`},
		{name: "body over the limit", body: pad(`{"event":"echo","input":1}`, 65), wantStatus: 413,
			wantBody: `{"error":"pipeline: worker: request body larger than 64 bytes"}`},
		{name: "4 values", body: `{"event":"echo","input":[1,[2]]}`, wantStatus: 200, wantBody: `{"output":[1,[2]]}`},
		{name: "5 values", body: `{"event":"echo","input":[1,[2],3]}`, wantStatus: 413,
			wantBody: `{"error":"pipeline: worker: input holds more than 4 JSON values"}`},
		{name: "empty containers count once", body: `{"event":"echo","input":[{},[],{}]}`, wantStatus: 200, wantBody: `{"output":[{},[],{}]}`},
		{name: "object members", body: `{"event":"echo","input":{"a":{"b":1,"c":2}}}`, wantStatus: 200, wantBody: `{"output":{"a":{"b":1,"c":2}}}`},
		{name: "object members over", body: `{"event":"echo","input":{"a":{"b":1,"c":[]},"d":0}}`, wantStatus: 413,
			wantBody: `{"error":"pipeline: worker: input holds more than 4 JSON values"}`},
		{name: "commas and brackets in strings", body: `{"event":"echo","input":["[,{,\",]",1]}`, wantStatus: 200, wantBody: `{"output":["[,{,\",]",1]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := post(t, "POST", url, tc.body)
			if status != tc.wantStatus || b != tc.wantBody+"\n" {
				t.Errorf("got %d %s, want %d %s", status, b, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestWorkerDefaultLimits(t *testing.T) {
	url := serveWorker(t, pipeline.WorkerConfig{}, echo)
	list := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat("{},", n), ",") + "]" }
	// The list itself and its elements: DefaultMaxInputValues values in all.
	status, _, _ := post(t, "POST", url, `{"event":"echo","input":`+list(pipeline.DefaultMaxInputValues-1)+`}`)
	if status != 200 {
		t.Errorf("input of %d values: got %d, want 200", pipeline.DefaultMaxInputValues, status)
	}
	status, _, b := post(t, "POST", url, `{"event":"echo","input":`+list(pipeline.DefaultMaxInputValues)+`}`)
	if want := `{"error":"pipeline: worker: input holds more than 10000 JSON values"}` + "\n"; status != 413 || b != want {
		t.Errorf("input of %d values: got %d %s, want 413 %s", pipeline.DefaultMaxInputValues+1, status, b, want)
	}
}

func TestWorkerCapsRequestsInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	blocking := pipeline.Func("block", func(ctx context.Context, in any) (any, error) {
		entered <- struct{}{}
		<-release
		return "done", nil
	})
	url := serveWorker(t, pipeline.WorkerConfig{MaxInFlight: 2}, blocking, echo)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			resp, err := http.Post(url, "application/json", strings.NewReader(`{"event":"block"}`))
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != `{"output":"done"}`+"\n" {
				t.Errorf("got %d %s, want 200", resp.StatusCode, b)
			}
		})
	}
	<-entered
	<-entered // two requests in flight

	status, h, b := post(t, "POST", url, `{"event":"echo","input":1}`)
	if want := `{"error":"pipeline: worker: busy, 2 requests in flight"}` + "\n"; status != 503 || b != want || h.Get("Retry-After") != "1" {
		t.Errorf("got %d %s with Retry-After %q, want 503 %s with Retry-After 1", status, b, h.Get("Retry-After"), want)
	}
	// A RemoteEvent sees the 503 as retryable and the Retry-After it asks for.
	host, port := hostPort(t, url)
	_, err := mustRemote(t, "echo", pipeline.RemoteConfig{Host: host, Port: port}).Process(context.Background(), 1)
	var re *pipeline.RemoteError
	if !errors.As(err, &re) || re.StatusCode != 503 || re.RetryAfter != time.Second || !pipeline.DefaultRetryable(err) {
		t.Errorf("got %#v, want a retryable RemoteError 503 with RetryAfter 1s", err)
	}

	close(release)
	wg.Wait()
	if status, _, b := post(t, "POST", url, `{"event":"echo","input":1}`); status != 200 {
		t.Errorf("after the others ended: got %d %s, want 200", status, b)
	}
}

func hostPort(t *testing.T, rawURL string) (string, int) {
	t.Helper()
	var host string
	var port int
	hp := strings.TrimPrefix(strings.TrimSuffix(rawURL, pipeline.DefaultPath), "http://")
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		t.Fatal(err)
	}
	host = h
	if _, err := fmt.Sscan(p, &port); err != nil {
		t.Fatal(err)
	}
	return host, port
}

func TestWorkerPanicIsLoggedNotSent(t *testing.T) {
	var logBuf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logBuf, nil))
	boom := pipeline.Func("boom", func(context.Context, any) (any, error) {
		panic("card 4111-1111-1111-1111 declined")
	})
	url := serveWorker(t, pipeline.WorkerConfig{Logger: logger}, boom)
	status, _, b := post(t, "POST", url, `{"event":"boom","task_id":"run1/boom/1","run_id":"run1"}`)
	if want := `{"error":"pipeline: worker: event \"boom\" panicked (logged on the worker)"}` + "\n"; status != 500 || b != want {
		t.Errorf("got %d %s, want 500 %s", status, b, want)
	}
	var rec struct {
		Level, Msg, Panic, Stack string
		EventName                string `json:"event_name"`
		TaskID                   string `json:"task_id"`
		RunID                    string `json:"run_id"`
	}
	if err := json.Unmarshal(logBuf.Bytes(), &rec); err != nil {
		t.Fatalf("got log %q: %v", logBuf.String(), err)
	}
	if rec.Level != "ERROR" || rec.Msg != "pipeline: worker event panicked" || rec.EventName != "boom" ||
		rec.TaskID != "run1/boom/1" || rec.RunID != "run1" || rec.Panic != "card 4111-1111-1111-1111 declined" {
		t.Errorf("got log record %+v", rec)
	}
	if !strings.Contains(rec.Stack, "worker_test.go") {
		t.Errorf("the logged stack does not show the panicking code:\n%s", rec.Stack)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func (s *syncBuffer) String() string { return string(s.Bytes()) }

func TestWorkerErrorText(t *testing.T) {
	long := strings.Repeat("é", 1000) // 2000 bytes
	fail := func(name string, err error) pipeline.Event {
		return pipeline.Func(name, func(context.Context, any) (any, error) { return nil, err })
	}
	events := []pipeline.Event{
		fail("db", errors.New("dial tcp 10.1.2.3:5432: password authentication failed for user app")),
		fail("long", errors.New(long)),
		fail("stock", telemetry.Permanent(errors.New("out of stock at warehouse 7"))),
	}
	wantLong := strings.Repeat("é", (pipeline.DefaultMaxErrorTextBytes-len("...[truncated]"))/2) + "...[truncated]"
	redact := func(err error) string {
		if telemetry.IsPermanent(err) {
			return "rejected"
		}
		return "internal error"
	}
	tests := []struct {
		name       string
		cfg        pipeline.WorkerConfig
		event      string
		wantStatus int
		wantText   string
	}{
		{name: "default: the text", event: "db", wantStatus: 500, wantText: "dial tcp 10.1.2.3:5432: password authentication failed for user app"},
		{name: "default: bounded", event: "long", wantStatus: 500, wantText: wantLong},
		{name: "default: permanent", event: "stock", wantStatus: 422, wantText: "out of stock at warehouse 7"},
		{name: "redacted", cfg: pipeline.WorkerConfig{ErrorText: redact}, event: "db", wantStatus: 500, wantText: "internal error"},
		{name: "redacted permanent", cfg: pipeline.WorkerConfig{ErrorText: redact}, event: "stock", wantStatus: 422, wantText: "rejected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := serveWorker(t, tc.cfg, events...)
			status, _, b := post(t, "POST", url, `{"event":"`+tc.event+`"}`)
			var got struct{ Error string }
			if err := json.Unmarshal([]byte(b), &got); err != nil || status != tc.wantStatus || got.Error != tc.wantText {
				t.Errorf("got %d %s, want %d with error %q", status, b, tc.wantStatus, tc.wantText)
			}
		})
	}
	if got := pipeline.DefaultErrorText(errors.New(long)); len(got) != pipeline.DefaultMaxErrorTextBytes || got != wantLong {
		t.Errorf("DefaultErrorText: got %d bytes %q, want %d bytes", len(got), got, pipeline.DefaultMaxErrorTextBytes)
	}
}

// TestWorkerServerTimeouts checks, in fake time, that Serve cuts off a
// client that dribbles its header or body, and closes idle connections,
// after exactly the default timeouts.
func TestWorkerServerTimeouts(t *testing.T) {
	const request = "POST /events HTTP/1.1\r\nHost: w\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
	tests := []struct {
		name     string
		send     func(c net.Conn) // what the client sends before waiting
		wantWait time.Duration    // until the server answers or closes
		wantResp string           // the start of the answer; "" if the server just closes
	}{
		{name: "header dribbled", wantWait: pipeline.DefaultReadHeaderTimeout,
			send: func(c net.Conn) { io.WriteString(c, "POST /events HTTP/1.1\r\nHost: w\r\n") }},
		{name: "body dribbled", wantWait: pipeline.DefaultReadTimeout, wantResp: "HTTP/1.1 400 Bad Request",
			send: func(c net.Conn) { io.WriteString(c, fmt.Sprintf(request, 100, `{"event":`)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w, ln := serveInBubble(t)
				c := ln.dial()
				defer c.Close()
				start := time.Now()
				tc.send(c)
				got, _ := io.ReadAll(c) // until the server closes
				if wait := time.Since(start); wait != tc.wantWait {
					t.Errorf("the server answered after %v, want %v", wait, tc.wantWait)
				}
				if !strings.HasPrefix(string(got), tc.wantResp) || (tc.wantResp == "" && len(got) > 0) {
					t.Errorf("got %q, want %q", got, tc.wantResp)
				}
				w.Close()
			})
		})
	}
	t.Run("idle connection", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w, ln := serveInBubble(t)
			c := ln.dial()
			defer c.Close()
			body := `{"event":"echo","input":1}`
			io.WriteString(c, fmt.Sprintf(request, len(body), body))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != `{"output":1}`+"\n" {
				t.Fatalf("got %d %s", resp.StatusCode, b)
			}
			idle := time.Now()
			if n, err := br.ReadByte(); err != io.EOF {
				t.Errorf("got %v, %v; want the connection closed", n, err)
			}
			if wait := time.Since(idle); wait != pipeline.DefaultIdleTimeout {
				t.Errorf("an idle connection was closed after %v, want %v", wait, pipeline.DefaultIdleTimeout)
			}
			w.Close()
		})
	})
}

// serveInBubble serves a default worker of echo on a fake loopback
// listener, inside the caller's synctest bubble.
func serveInBubble(t *testing.T) (*pipeline.Worker, *fakeListener) {
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{Logger: slog.New(slog.DiscardHandler)}, echo)
	if err != nil {
		t.Fatal(err)
	}
	ln := newFakeListener("127.0.0.1")
	go w.Serve(ln)
	return w, ln
}

// TestWorkerEventTimeout checks, in fake time, that an event's context
// ends after EventTimeout.
func TestWorkerEventTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ran time.Duration
		slow := pipeline.Func("slow", func(ctx context.Context, in any) (any, error) {
			start := time.Now()
			<-ctx.Done()
			ran = time.Since(start)
			return nil, ctx.Err()
		})
		w, err := pipeline.NewWorker(pipeline.WorkerConfig{EventTimeout: 3 * time.Second}, slow)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		w.ServeHTTP(rec, httptest.NewRequest("POST", "/events", strings.NewReader(`{"event":"slow"}`)))
		if want := `{"error":"context deadline exceeded"}` + "\n"; rec.Code != 500 || rec.Body.String() != want || ran != 3*time.Second {
			t.Errorf("got %d %s after %v, want 500 %s after 3s", rec.Code, rec.Body, ran, want)
		}
	})
}

// TestRemoteHonoursRetryAfter checks, in fake time, that the wait before a
// retry is the worker's Retry-After, capped at MaxBackoff.
func TestRemoteHonoursRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		answers := []*http.Response{
			jsonResponse(503, `{"error":"busy"}`, "Retry-After", "3"),
			jsonResponse(429, `{"error":"slow down"}`, "Retry-After", "60"),
			jsonResponse(200, `{"output":"ok"}`),
		}
		var times []time.Time
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			times = append(times, time.Now())
			resp := answers[0]
			answers = answers[1:]
			return resp, nil
		})}
		e := mustRemote(t, "score", pipeline.RemoteConfig{Host: "w", Port: 1, Client: client})
		h := &logHooks{}
		p := mustNew(t, pipeline.Config{NoTelemetry: true, Hooks: h,
			Retry: &telemetry.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Second}},
			pipeline.Sequence(e))
		out, err := p.Run(context.Background(), nil)
		if err != nil || out != "ok" {
			t.Fatalf("got %v, %v", out, err)
		}
		want := []time.Duration{3 * time.Second, 5 * time.Second}
		if len(times) != 3 || times[1].Sub(times[0]) != want[0] || times[2].Sub(times[1]) != want[1] || h.waits[0] != want[0] || h.waits[1] != want[1] {
			t.Errorf("got calls at %v, waits %v; want waits %v", times, h.waits, want)
		}
	})
}

// TestWorkerClientCAsNeedVerification checks that a TLS configuration
// with ClientCAs and a ClientAuth that asks for client certificates
// without verifying them (RequestClientCert, RequireAnyClientCert) is
// refused by NewWorker: such a worker, mounted in a server of your own,
// ran the events of anyone, though ClientCAs promise that every request
// needs a verified client certificate.
func TestWorkerClientCAsNeedVerification(t *testing.T) {
	pki := testutil.NewPKI(t)
	for _, auth := range []tls.ClientAuthType{tls.RequestClientCert, tls.RequireAnyClientCert} {
		t.Run(auth.String(), func(t *testing.T) {
			_, err := pipeline.NewWorker(pipeline.WorkerConfig{
				TLS: &tls.Config{Certificates: []tls.Certificate{pki.Server}, ClientCAs: pki.CAPool, ClientAuth: auth},
			}, echo)
			if err == nil || !strings.Contains(err.Error(), "does not verify client certificates") {
				t.Errorf("NewWorker: got %v, want an error: ClientAuth %v does not verify client certificates", err, auth)
			}
		})
	}
	// Without ClientCAs, those ClientAuth values are the user's choice.
	if _, err := pipeline.NewWorker(pipeline.WorkerConfig{
		TLS: &tls.Config{Certificates: []tls.Certificate{pki.Server}, ClientAuth: tls.RequestClientCert},
	}, echo); err != nil {
		t.Errorf("NewWorker without ClientCAs: got %v, want nil", err)
	}
}

// TestWorkerEventGoexit checks that a worker's event calling
// runtime.Goexit (which ends the handler's goroutine, and net/http then
// closes the connection) still has its run ended, failed, in the worker's
// telemetry, rather than left pending.
func TestWorkerEventGoexit(t *testing.T) {
	rec := newRecorder(t)
	addr := serveWorker(t, pipeline.WorkerConfig{Recorder: rec, Logger: slog.New(slog.DiscardHandler)},
		pipeline.Func("exit", func(context.Context, any) (any, error) {
			runtime.Goexit()
			return nil, nil
		}))
	resp, err := http.Post(addr, "application/json", strings.NewReader(`{"event":"exit","call_id":"r/exit/1/call-1"}`))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got status %d, want the connection closed", resp.StatusCode)
	}
	if m, ok := rec.Metrics("r/exit/1/call-1"); !ok || m.Status != telemetry.StatusFailed || !strings.Contains(m.Error, "runtime.Goexit") {
		t.Errorf("got %+v (found %v), want a failed run saying the event called runtime.Goexit", m, ok)
	}
}

// TestWorkerLimitsWrongTokens checks, in fake time, that a worker checks
// at most 10 wrong tokens a minute, from all callers together: beyond, a
// request with a token, right or wrong, gets 429 with Retry-After: 6 and
// runs nothing, until the budget refills (one check every 6s); that a
// request without a token still gets 401 and takes nothing from the
// budget; that a right token gives its check back; and that a RemoteEvent
// sees the 429 as retryable, with the wait asked for.
func TestWorkerLimitsWrongTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int64
		counted := pipeline.Func("echo", func(ctx context.Context, in any) (any, error) { runs.Add(1); return in, nil })
		w, err := pipeline.NewWorker(pipeline.WorkerConfig{Token: telemetry.NewSecret("s3cret-token")}, counted)
		if err != nil {
			t.Fatal(err)
		}
		send := func(auth string) (int, http.Header, string) {
			req := httptest.NewRequest("POST", "/events", strings.NewReader(`{"event":"echo","input":1}`))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			rec := httptest.NewRecorder()
			w.ServeHTTP(rec, req)
			return rec.Code, rec.Header(), rec.Body.String()
		}
		const (
			right   = "Bearer s3cret-token"
			wrong   = "Bearer guess"
			limited = `{"error":"pipeline: worker: too many wrong tokens lately, try again later"}` + "\n"
		)
		for i := range 3 { // right tokens give their checks back
			if status, _, b := send(right); status != 200 {
				t.Fatalf("right token %d: got %d %s, want 200", i+1, status, b)
			}
		}
		for i := range 10 {
			if status, _, b := send(wrong); status != 401 {
				t.Fatalf("wrong token %d: got %d %s, want 401", i+1, status, b)
			}
		}
		for _, auth := range []string{wrong, right} {
			status, h, b := send(auth)
			if status != 429 || b != limited || h.Get("Retry-After") != "6" {
				t.Errorf("%q after 10 wrong tokens: got %d %s with Retry-After %q, want 429 %s with Retry-After 6",
					auth, status, b, h.Get("Retry-After"), limited)
			}
		}
		if status, _, _ := send(""); status != 401 {
			t.Errorf("no token after 10 wrong ones: got %d, want 401", status)
		}
		// The guesser locked out its own address only.
		other := httptest.NewRequest("POST", "/events", strings.NewReader(`{"event":"echo","input":1}`))
		other.RemoteAddr = "198.51.100.2:40000"
		other.Header.Set("Authorization", right)
		otherRec := httptest.NewRecorder()
		w.ServeHTTP(otherRec, other)
		if otherRec.Code != 200 {
			t.Errorf("right token from another address: got %d %s, want 200", otherRec.Code, otherRec.Body)
		}
		if got := runs.Load(); got != 4 {
			t.Errorf("the event ran %d times, want 4: only for the right tokens checked", got)
		}
		// A RemoteEvent, from the guesser's address, is told to retry
		// after 6s.
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			r = r.Clone(r.Context())        // a RoundTripper does not change the request
			r.RemoteAddr = "192.0.2.1:1234" // httptest.NewRequest's
			rec := httptest.NewRecorder()
			w.ServeHTTP(rec, r)
			return rec.Result(), nil
		})}
		_, err = mustRemote(t, "echo", pipeline.RemoteConfig{Host: "localhost", Port: 1, Client: client,
			Token: telemetry.NewSecret("s3cret-token")}).Process(context.Background(), 1)
		var re *pipeline.RemoteError
		if !errors.As(err, &re) || re.StatusCode != 429 || re.RetryAfter != 6*time.Second || !pipeline.DefaultRetryable(err) {
			t.Errorf("RemoteEvent: got %v, want a retryable RemoteError 429 with RetryAfter 6s", err)
		}

		time.Sleep(6*time.Second - time.Nanosecond)
		if status, _, _ := send(right); status != 429 {
			t.Errorf("right token 1ns before a check comes back: got %d, want 429", status)
		}
		time.Sleep(time.Nanosecond)
		if status, _, b := send(right); status != 200 {
			t.Errorf("right token 6s later: got %d %s, want 200", status, b)
		}
		if status, _, _ := send(wrong); status != 401 { // the check given back
			t.Errorf("wrong token after a right one: got %d, want 401", status)
		}
		if status, _, _ := send(wrong); status != 429 {
			t.Errorf("second wrong token 6s later: got %d, want 429", status)
		}
		time.Sleep(time.Minute)
		for i := range 10 {
			if status, _, _ := send(wrong); status != 401 {
				t.Fatalf("wrong token %d a minute later: got %d, want 401", i+1, status)
			}
		}
	})
}

// TestWorkerMountedRefusesNonLoopbackWithoutAuthentication checks that a
// worker without credentials, mounted in a server of your own, serves
// only requests that came in on a loopback address or a Unix socket, as
// Worker.Serve does, unless AllowUnauthenticated is set: otherwise anyone
// who reached that server could run any event.
func TestWorkerMountedRefusesNonLoopbackWithoutAuthentication(t *testing.T) {
	const refused = `{"error":"pipeline: worker: no credentials configured: only requests to a loopback address are served (set a token, client certificates or AllowUnauthenticated)"}` + "\n"
	tests := []struct {
		name       string
		local      net.Addr // nil: not known
		cfg        pipeline.WorkerConfig
		wantStatus int
	}{
		{name: "non-loopback", local: &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 80}, wantStatus: 403},
		{name: "non-loopback v6", local: &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 80}, wantStatus: 403},
		{name: "unknown kind of address", local: pipeAddr{}, wantStatus: 403},
		{name: "non-loopback, allowed", local: &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 80},
			cfg: pipeline.WorkerConfig{AllowUnauthenticated: true}, wantStatus: 200},
		{name: "non-loopback, token", local: &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 80},
			cfg: pipeline.WorkerConfig{Token: telemetry.NewSecret("t")}, wantStatus: 200},
		{name: "loopback", local: &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 80}, wantStatus: 200},
		{name: "loopback v6", local: &net.TCPAddr{IP: net.ParseIP("::1"), Port: 80}, wantStatus: 200},
		{name: "unix socket", local: &net.UnixAddr{Name: "/run/w.sock", Net: "unix"}, wantStatus: 200},
		{name: "not known: a direct call", wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var runs atomic.Int64
			w, err := pipeline.NewWorker(tc.cfg, pipeline.Func("echo", func(ctx context.Context, in any) (any, error) { runs.Add(1); return in, nil }))
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("POST", "/events", strings.NewReader(`{"event":"echo","input":1}`))
			req.Header.Set("Authorization", "Bearer t")
			if tc.local != nil {
				req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, tc.local))
			}
			rec := httptest.NewRecorder()
			w.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Errorf("got %d %s, want %d", rec.Code, rec.Body, tc.wantStatus)
			}
			if tc.wantStatus == 403 && (rec.Body.String() != refused || runs.Load() != 0) {
				t.Errorf("got %s with %d runs, want %s and none", rec.Body, runs.Load(), refused)
			}
		})
	}
	// Served by Worker.Serve, whose listener was checked, the requests of a
	// loopback listener are served whatever their connection's address.
	synctest.Test(t, func(t *testing.T) {
		w, ln := serveInBubble(t)
		c := ln.dial() // a net.Pipe, whose address is not a TCP one
		defer c.Close()
		body := `{"event":"echo","input":1}`
		fmt.Fprintf(c, "POST /events HTTP/1.1\r\nHost: w\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("served by Serve on a loopback listener: got %d, want 200", resp.StatusCode)
		}
		w.Close()
	})
}

// pipeAddr is a net.Addr of no kind the worker knows.
type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// TestWorkerBoundsCallerIDs checks that a worker refuses, with 400 and
// without running or recording anything, a request whose task, call or
// run id is longer than 1 KiB: a recording worker keeps them in its
// records (100,000 of them by default), so that a caller could otherwise
// make each of the worker's records cost up to a megabyte or two.
func TestWorkerBoundsCallerIDs(t *testing.T) {
	rec := newRecorder(t)
	var runs atomic.Int64
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{Recorder: rec},
		pipeline.Func("echo", func(ctx context.Context, in any) (any, error) { runs.Add(1); return in, nil }))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"task_id", "call_id", "run_id"} {
		for _, n := range []int{1024, 1025, 1 << 19} {
			t.Run(fmt.Sprintf("%s of %d bytes", field, n), func(t *testing.T) {
				before, recorded := runs.Load(), len(rec.Report().Events)
				id := strings.Repeat("x", n)
				body := fmt.Sprintf(`{"event":"echo","input":1,%q:%q}`, field, id)
				w2 := httptest.NewRecorder()
				w.ServeHTTP(w2, httptest.NewRequest("POST", "/events", strings.NewReader(body)))
				ran, grew := runs.Load()-before, len(rec.Report().Events)-recorded
				if n <= 1024 {
					if w2.Code != 200 || ran != 1 || grew != 1 {
						t.Errorf("got %d %s, %d runs and %d records; want 200, one run recorded", w2.Code, w2.Body, ran, grew)
					}
					return
				}
				want := fmt.Sprintf(`{"error":"pipeline: worker: %s longer than 1024 bytes"}`, field) + "\n"
				if w2.Code != 400 || w2.Body.String() != want || ran != 0 || grew != 0 {
					t.Errorf("got %d %s, %d runs and %d records; want 400 %s, nothing run or recorded", w2.Code, w2.Body, ran, grew, want)
				}
			})
		}
	}
}

// TestTokenThatNoRequestCanCarry checks that NewWorker and Remote refuse a
// token with white space at an end or a control character, which no
// Authorization header can carry as it is (net/http trims the ends of
// header values and refuses control characters): such a worker would
// refuse every call, and such a RemoteEvent fail each one. The errors do
// not show the token.
func TestTokenThatNoRequestCanCarry(t *testing.T) {
	for _, token := range []string{" s3cret", "s3cret ", "s3cret\t", "s3cret\n", "s3\r\ncret", "s3\x00cret", "s3\x7fcret", "   "} {
		t.Run(fmt.Sprintf("%q", token), func(t *testing.T) {
			_, err := pipeline.NewWorker(pipeline.WorkerConfig{Token: telemetry.NewSecret(token)}, echo)
			if err == nil || !strings.Contains(err.Error(), "Token") || strings.Contains(err.Error(), "s3") {
				t.Errorf("NewWorker: got %v, want an error about the Token that does not show it", err)
			}
			_, err = pipeline.Remote("echo", pipeline.RemoteConfig{Host: "localhost", Port: 1, Token: telemetry.NewSecret(token)})
			if err == nil || !strings.Contains(err.Error(), "Token") || strings.Contains(err.Error(), "s3") {
				t.Errorf("Remote: got %v, want an error about the Token that does not show it", err)
			}
		})
	}
	// Spaces inside, and any other character, are fine.
	for _, token := range []string{"s3 cret", "s3\tcret", "s3crét-~+/=!"} {
		url := serveWorker(t, pipeline.WorkerConfig{Token: telemetry.NewSecret(token)}, echo)
		host, port := hostPort(t, url)
		out, err := mustRemote(t, "echo", pipeline.RemoteConfig{Host: host, Port: port, Token: telemetry.NewSecret(token)}).Process(context.Background(), 1.0)
		if err != nil || out != 1.0 {
			t.Errorf("token %q: got %v, %v; want 1", token, out, err)
		}
	}
}

// TestWorkerClosesConnectionsOfRefusedCallers checks that a worker closes
// the connection after an answer to a caller without valid credentials
// (401, 429, 403), rather than keeping it open for the idle timeout: one
// who reaches the port without the token cannot hold connections open
// with one cheap request each. Callers with the token keep theirs.
func TestWorkerClosesConnectionsOfRefusedCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, err := pipeline.NewWorker(pipeline.WorkerConfig{Token: telemetry.NewSecret("s3cret-token"), Logger: slog.New(slog.DiscardHandler)}, echo)
		if err != nil {
			t.Fatal(err)
		}
		ln := newFakeListener("192.0.2.1")
		go w.Serve(ln)
		defer w.Close()
		body := `{"event":"echo","input":1}`
		send := func(auth string) (status int, closed bool) {
			c := ln.dial()
			defer c.Close()
			fmt.Fprintf(c, "POST /events HTTP/1.1\r\nHost: w\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n%s", auth, len(body), body)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			start := time.Now()
			_, err = br.ReadByte() // EOF once the server closes
			return resp.StatusCode, err == io.EOF && time.Since(start) == 0
		}
		for i := range 10 {
			if status, closed := send("Bearer wrong"); status != 401 || !closed {
				t.Errorf("wrong token %d: got %d, closed at once %v; want 401 and the connection closed", i+1, status, closed)
			}
		}
		if status, closed := send("Bearer wrong"); status != 429 || !closed {
			t.Errorf("11th wrong token: got %d, closed at once %v; want 429 and the connection closed", status, closed)
		}
		time.Sleep(time.Minute)
		if status, closed := send("Bearer s3cret-token"); status != 200 || closed {
			t.Errorf("right token: got %d, closed at once %v; want 200 and the connection kept", status, closed)
		}
	})
}
