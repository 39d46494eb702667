package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// fuzzToken is the token of the worker FuzzWorkerHandler calls.
const fuzzToken = "s3cret-token"

// fuzzRequest makes the request FuzzWorkerHandler sends: target is parsed
// as a request URI if it is one, else taken as a path; header holds
// "Name: value" lines.
func fuzzRequest(method, target, header string, body []byte) *http.Request {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		u = &url.URL{Path: target}
	}
	req := &http.Request{
		Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header), Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Host: "worker", RemoteAddr: "192.0.2.1:1234", RequestURI: target,
	}
	for line := range strings.SplitSeq(header, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if ok {
			req.Header.Add(name, strings.TrimSpace(value))
		}
	}
	return req.WithContext(context.Background())
}

// FuzzWorkerHandler sends arbitrary requests (method, target, headers,
// body) to a Worker with a token and a Recorder, in a synctest bubble, and
// checks that it never panics or leaves a goroutine behind; that every
// answer is JSON with a known status, and an error text for all but 200;
// that a request without the token gets 401 (or 429), runs nothing,
// records nothing, logs nothing and is not told the token; and that the
// worker records exactly the runs of its events, and none for a request
// answered 4xx (but 422, the event's permanent failure).
func FuzzWorkerHandler(f *testing.F) {
	auth := "Authorization: Bearer " + fuzzToken + "\n"
	for _, seed := range []struct{ method, target, header, body string }{
		{"POST", "/events", auth, `{"event":"echo","input":7}`},
		{"POST", "/events", auth + "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\ntracestate: a=1,b=2\nbaggage: k=v;p=1,k2=v2",
			`{"event":"echo","task_id":"r/echo/1","call_id":"r/echo/1/call-1","run_id":"r","attempt":2,"input":{"a":[1]}}`},
		{"POST", "/events", auth + "traceparent: ff-xyz\ntracestate: ===,,,\nbaggage: %%%;;;=", `{"event":"echo"}`},
		{"POST", "/events", auth, `{"event":"fail"}`},
		{"POST", "/events", auth, `{"event":"permanent"}`},
		{"POST", "/events", auth, `{"event":"panic"}`},
		{"POST", "/events", auth, `{"event":"slow"}`},
		{"POST", "/events", auth, `{"event":"unknown"}`},
		{"POST", "/events", auth, `{"event":""}`},
		{"POST", "/events", auth, `{"event":"echo","input":[1,2,3,4,5,6,7,8,9]}`},
		{"POST", "/events", auth, `{"event":"echo"} trailing`},
		{"POST", "/events", auth, `{"event":"echo","input":` + strings.Repeat("[", 100)},
		{"POST", "/events", auth, strings.Repeat("x", 300)},
		{"GET", "/", auth, ""},
		{"DELETE", "/events?x=1", auth, ""},
		{"POST", "/events", "", `{"event":"echo"}`},
		{"POST", "/events", "Authorization: Bearer s3cret-tokeN", `{"event":"echo"}`},
		{"POST", "/events", "Authorization: Basic czNjcmV0LXRva2Vu", `{"event":"echo"}`},
		{"POST", "/events", "Authorization: Bearer " + fuzzToken + "x", `{"event":"echo"}`},
		{"POST", "/events", "Authorization: bearer  " + fuzzToken, `{"event":"echo"}`},
		{"PO\x00ST", "\x7f/../%zz", "Authorization: \xff\nX: " + strings.Repeat("y", 100), "\x00\xff"},
	} {
		f.Add(seed.method, seed.target, seed.header, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, method, target, header string, body []byte) {
		synctest.Test(t, func(t *testing.T) {
			checkWorkerRequest(t, fuzzRequest(method, target, header, body))
		})
	})
}

// checkWorkerRequest sends req to a new worker and checks the answer; see
// FuzzWorkerHandler.
func checkWorkerRequest(t *testing.T, req *http.Request) {
	rec, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close(context.Background())
	var ran atomic.Int64
	event := func(name string, run func(ctx context.Context, in any) (any, error)) pipeline.Event {
		return pipeline.Func(name, func(ctx context.Context, in any) (any, error) { ran.Add(1); return run(ctx, in) })
	}
	var logs bytes.Buffer
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{
		Token:        telemetry.NewSecret(fuzzToken),
		Recorder:     rec,
		Propagator:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		MaxBodyBytes: 256, MaxInputValues: 8, EventTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	},
		event("echo", func(ctx context.Context, in any) (any, error) { return in, nil }),
		event("fail", func(ctx context.Context, in any) (any, error) { return nil, errors.New("failed") }),
		event("permanent", func(ctx context.Context, in any) (any, error) {
			return nil, telemetry.Permanent(errors.New("bad input"))
		}),
		event("panic", func(ctx context.Context, in any) (any, error) { panic("boom") }),
		event("slow", func(ctx context.Context, in any) (any, error) { <-ctx.Done(); return nil, ctx.Err() }),
	)
	if err != nil {
		t.Fatal(err)
	}
	rw := httptest.NewRecorder()
	w.ServeHTTP(rw, req)
	status, answer := rw.Code, rw.Body.Bytes()

	switch status {
	case 200, 400, 401, 404, 405, 413, 422, 429, 500, 503:
	default:
		t.Errorf("status %d, want one the Worker documents", status)
	}
	if ct := rw.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(answer, &doc); err != nil {
		t.Errorf("answer %q is not a JSON object: %v", answer, err)
	}
	if status != 200 {
		var text string
		if err := json.Unmarshal(doc["error"], &text); err != nil || text == "" || len(doc) != 1 {
			t.Errorf("%d answer %s, want {\"error\": text}", status, answer)
		}
		if len(answer) > 2<<10 {
			t.Errorf("%d answer of %d bytes, want at most 2 KiB", status, len(answer))
		}
	}
	if !strings.Contains(req.Header.Get("Authorization"), fuzzToken) {
		if status != 401 && status != 429 {
			t.Errorf("without the token: got %d %s, want 401 or 429", status, answer)
		}
		if bytes.Contains(answer, []byte(fuzzToken)) || logs.Len() > 0 {
			t.Errorf("without the token: answer %s, log %q; want neither to show the token, and no log", answer, logs.String())
		}
	}
	events := rec.Report().Events
	if int64(len(events)) != ran.Load() {
		t.Errorf("the events ran %d times, and %d runs were recorded: %+v", ran.Load(), len(events), events)
	}
	if ran.Load() > 0 && status != 200 && status != 422 && status != 500 {
		t.Errorf("an event ran for a request answered %d %s", status, answer)
	}
	for _, e := range events {
		if e.Status == telemetry.StatusPending {
			t.Errorf("run %+v still pending after the answer", e)
		}
	}
}
