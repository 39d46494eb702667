package otlp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// fakeEndpoint is an in-memory OTLP receiver answering its requests with
// the statuses of its script in turn (with a Retry-After, if any), then
// 200. It records when each request came and its headers.
type fakeEndpoint struct {
	mu      sync.Mutex
	script  []int
	after   string
	times   []time.Time
	headers []http.Header
}

func (f *fakeEndpoint) RoundTrip(req *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, req.Body)
	req.Body.Close()
	f.mu.Lock()
	n := len(f.times)
	f.times = append(f.times, time.Now())
	f.headers = append(f.headers, req.Header.Clone())
	status := http.StatusOK
	if n < len(f.script) {
		status = f.script[n]
	}
	f.mu.Unlock()
	resp := &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/x-protobuf"}}, Request: req, Body: io.NopCloser(strings.NewReader(""))}
	if status != http.StatusOK {
		resp.Header.Set("Content-Type", "text/plain")
		resp.Body = io.NopCloser(strings.NewReader(http.StatusText(status)))
		if f.after != "" {
			resp.Header.Set("Retry-After", f.after)
		}
	}
	return resp, nil
}

func (f *fakeEndpoint) since(t0 time.Time) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var d []time.Duration
	for _, t := range f.times {
		d = append(d, t.Sub(t0))
	}
	return d
}

func noJitter(time.Duration) time.Duration { return 0 }

// TestRetries checks, on the fake clock of a synctest bubble, that a push
// answered 503 is retried by the backoff of Config.Retry (10ms, 20ms,
// ...), that one answered 429 waits for its Retry-After (capped at
// MaxBackoff), and that one answered 401 is not retried and its error is a
// permanent *StatusError.
func TestRetries(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name      string
		script    []int
		after     string
		want      []time.Duration
		permanent bool
	}{
		{"503 503 then 200", []int{503, 503}, "", []time.Duration{0, 10 * ms, 30 * ms}, false},
		{"429 with Retry-After", []int{429}, "1", []time.Duration{0, 50 * ms}, false},
		{"401", []int{401}, "", []time.Duration{0}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ep := &fakeEndpoint{script: tc.script, after: tc.after}
				p, err := newPublisher(Config{Endpoint: "https://collector.example.com", HTTPClient: &http.Client{Transport: ep},
					Headers:  map[string]telemetry.Secret{"Authorization": testToken},
					Interval: 10 * time.Second, Logger: quiet,
					Retry: telemetry.RetryPolicy{MaxAttempts: 5, InitialBackoff: 10 * ms, MaxBackoff: 50 * ms}}, noJitter)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close(context.Background())
				p.PublishEventMetrics(context.Background(), finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
				t0 := time.Now()
				err = p.Flush(context.Background())
				var se *StatusError
				switch {
				case tc.permanent && (!telemetry.IsPermanent(err) || !errors.As(err, &se) || se.Code != 401 || se.Temporary()):
					t.Errorf("got %v, want a permanent *StatusError 401", err)
				case !tc.permanent && err != nil:
					t.Errorf("got %v, want the push delivered after retries", err)
				}
				if got := ep.since(t0); fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("got requests at %v, want at %v", got, tc.want)
				}
				if h := ep.headers[0]; h.Get("Authorization") != testToken.Reveal() || h.Get("Content-Type") != "application/x-protobuf" {
					t.Errorf("got headers %v, want the Authorization header and protobuf", h)
				}
			})
		})
	}
}

// TestSecretNeverPrinted checks that header values show in no fmt verb of
// the Config or the Publisher, in no log line and in no error, also for a
// push rejected with 401.
func TestSecretNeverPrinted(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	cfg := Config{Endpoint: srv.URL, Headers: map[string]telemetry.Secret{"Authorization": testToken}, Logger: logger}
	p, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.PublishEventMetrics(context.Background(), finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
	flushErr := p.Flush(context.Background())
	if gotAuth != testToken.Reveal() {
		t.Errorf("got Authorization %q, want the header sent", gotAuth)
	}
	var out []string
	for _, v := range []any{cfg, &cfg, p} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			out = append(out, fmt.Sprintf(verb, v))
		}
	}
	logger.Info("values", "cfg", cfg, "publisher", p)
	closeErr := p.Close(context.Background())
	js, _ := json.Marshal(cfg.Headers)
	out = append(out, string(js), fmt.Sprint(flushErr), fmt.Sprint(closeErr), logs.String())
	for _, s := range out {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("output reveals the header: %.300s", s)
		}
	}
	if !strings.Contains(logs.String(), `"status_code":401`) || !strings.Contains(logs.String(), "check the credentials") {
		t.Errorf("got logs %s, want the 401 logged with a hint", logs.String())
	}
}

// TestQuerySecretNeverShown checks that a secret in the query of Endpoint
// (a token some services take as ?api_key=) shows in no error: an
// Endpoint with a query is refused, since the OTLP exporter would not
// send it, and the refusal shows the query's value as xxxxx.
func TestQuerySecretNeverShown(t *testing.T) {
	const secret = "s3cr3t-in-the-query"
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	headers := map[string]telemetry.Secret{"X-Tenant": telemetry.NewSecret("t")}

	var out []string
	for _, endpoint := range []string{
		"http://otlp.example.com/?api_key=" + secret, // http with Headers
		"http://127.0.0.1:4318/?api_key=" + secret + "#f",
		"grpc://127.0.0.1:4317/?api_key=" + secret,
		"http://127.0.0.1:4318/?api_key=" + secret,
		"https://otlp.example.com/otlp?api_key=" + secret,
	} {
		cfg := Config{Endpoint: endpoint, Headers: headers, Logger: logger}
		_, err := NewPublisher(cfg)
		_, terr := NewTracerProvider(context.Background(), cfg)
		if err == nil || terr == nil {
			t.Errorf("%s: got errors %v and %v, want both", endpoint, err, terr)
		}
		out = append(out, fmt.Sprint(err), fmt.Sprint(terr))
	}
	_, err := NewPublisher(Config{Endpoint: "https://otlp.example.com/otlp?api_key=" + secret})
	if err == nil || !strings.Contains(err.Error(), "?query") || !strings.Contains(err.Error(), "api_key=xxxxx") {
		t.Errorf("got %v, want the refusal of the query, its value shown as xxxxx", err)
	}
	out = append(out, logs.String())
	for _, s := range out {
		if strings.Contains(s, secret) {
			t.Errorf("output reveals the query's secret: %.400s", s)
		}
	}
}
