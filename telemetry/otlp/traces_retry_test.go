package otlp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// scriptedServer is an OTLP receiver on 127.0.0.1 that answers its
// requests with the statuses of its script in turn (a Retry-After with
// each, if after is set), then 200. It records the Authorization header
// of each request.
type scriptedServer struct {
	*httptest.Server
	mu     sync.Mutex
	script []int
	after  string
	auth   []string
}

func newScriptedServer(t *testing.T, after string, script ...int) *scriptedServer {
	s := &scriptedServer{script: script, after: after}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		n := len(s.auth)
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		status := http.StatusOK
		if n < len(s.script) {
			status = s.script[n]
		}
		s.mu.Unlock()
		if status == http.StatusOK {
			w.Header().Set("Content-Type", "application/x-protobuf")
			return
		}
		if s.after != "" {
			w.Header().Set("Retry-After", s.after)
		}
		http.Error(w, http.StatusText(status), status)
	}))
	t.Cleanup(s.Close)
	return s
}

// timedTransport records the time, on the clock of the synctest bubble it
// runs in, of each request it sends with base.
type timedTransport struct {
	base  http.RoundTripper
	mu    sync.Mutex
	times []time.Time
}

func (tt *timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tt.mu.Lock()
	tt.times = append(tt.times, time.Now())
	tt.mu.Unlock()
	return tt.base.RoundTrip(req)
}

func (tt *timedTransport) since(t0 time.Time) []time.Duration {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	var d []time.Duration
	for _, t := range tt.times {
		d = append(d, t.Sub(t0))
	}
	return d
}

// logLine is a line of a JSON log.
type logLine struct {
	Level        string `json:"level"`
	Msg          string `json:"msg"`
	DroppedSpans uint64 `json:"dropped_spans"`
	Attempt      int    `json:"attempt"`
	StatusCode   int    `json:"status_code"`
	URL          string `json:"url"`
}

func parseLog(t *testing.T, b []byte) []logLine {
	t.Helper()
	var lines []logLine
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var line logLine
		if err := json.Unmarshal(l, &line); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, line)
	}
	return lines
}

// deadEndpoint returns the URL of a port on 127.0.0.1 that nothing
// listens on.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestTraceRetries checks, on the fake clock of a synctest bubble and
// against a real HTTP server on 127.0.0.1 (outside the bubble), that an
// export of three spans is retried by Config.Retry, without jitter:
// 503 by the backoff (10ms, 20ms, 40ms...), 429 after its Retry-After,
// until MaxAttempts, or until a wait would outlast the export's context;
// that 400 is not retried and its error is a permanent *StatusError; that
// a closed port is retried as a connection error. It checks the requests'
// times, the error of ForceFlush, Stats, and that a give-up is logged
// once, with the number of spans dropped, above Debug.
func TestTraceRetries(t *testing.T) {
	const ms = time.Millisecond
	retryPolicy := telemetry.RetryPolicy{MaxAttempts: 4, InitialBackoff: 10 * ms, MaxBackoff: 2 * time.Second}
	tests := []struct {
		name       string
		script     []int  // answers of the server; nil: a closed port
		after      string // Retry-After of the answers
		flushLimit time.Duration
		want       []time.Duration // times of the requests
		wantStatus int             // of the last attempt; 0 for none
		wantErr    string          // in the error of ForceFlush; "" for nil
		permanent  bool
	}{
		{name: "503 then 200", script: []int{503}, want: []time.Duration{0, 10 * ms}, wantStatus: 200},
		{name: "503 503 then 200", script: []int{503, 503}, want: []time.Duration{0, 10 * ms, 30 * ms}, wantStatus: 200},
		{name: "429 with Retry-After", script: []int{429}, after: "1", want: []time.Duration{0, time.Second}, wantStatus: 200},
		{name: "503 until MaxAttempts", script: []int{503, 503, 503, 503}, want: []time.Duration{0, 10 * ms, 30 * ms, 70 * ms},
			wantStatus: 503, wantErr: "3 spans dropped after 4 attempt(s)"},
		{name: "503 until the wait would outlast the flush's context", script: []int{503, 503, 503, 503}, flushLimit: 50 * ms,
			want: []time.Duration{0, 10 * ms, 30 * ms}, wantStatus: 503, wantErr: "3 spans dropped after 3 attempt(s)"},
		{name: "400", script: []int{400}, want: []time.Duration{0}, wantStatus: 400, wantErr: "3 spans dropped, rejected", permanent: true},
		{name: "closed port", want: []time.Duration{0, 10 * ms, 30 * ms, 70 * ms}, wantErr: "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			endpoint := deadEndpoint(t)
			var srv *scriptedServer
			if tc.script != nil {
				srv = newScriptedServer(t, tc.after, tc.script...)
				endpoint = srv.URL
			}
			synctest.Test(t, func(t *testing.T) {
				var logs bytes.Buffer
				logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				// No keep-alive: an idle connection's reader would keep the
				// bubble's clock from advancing.
				tt := &timedTransport{base: &http.Transport{DisableKeepAlives: true}}
				tp, err := newTracerProvider(context.Background(), Config{Endpoint: endpoint, HTTPClient: &http.Client{Transport: tt},
					Headers: map[string]telemetry.Secret{"Authorization": testToken}, Retry: retryPolicy, Logger: logger}, noJitter)
				if err != nil {
					t.Fatal(err)
				}
				for _, name := range []string{"a", "b", "c"} {
					_, span := tp.Tracer("test").Start(context.Background(), name)
					span.End()
				}
				ctx := context.Background()
				if tc.flushLimit > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.flushLimit)
					defer cancel()
				}
				t0 := time.Now()
				flushErr := tp.ForceFlush(ctx)
				if got := tt.since(t0); fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("got requests at %v, want at %v", got, tc.want)
				}
				var se *StatusError
				switch {
				case tc.wantErr == "" && flushErr != nil:
					t.Errorf("got %v, want the spans exported", flushErr)
				case tc.wantErr != "" && (flushErr == nil || !strings.Contains(flushErr.Error(), tc.wantErr)):
					t.Errorf("got %v, want an error with %q", flushErr, tc.wantErr)
				case tc.wantErr != "" && telemetry.IsPermanent(flushErr) != tc.permanent:
					t.Errorf("got %v, want permanent %v", flushErr, tc.permanent)
				case tc.wantErr != "" && tc.wantStatus != 0 && (!errors.As(flushErr, &se) || se.Code != tc.wantStatus):
					t.Errorf("got %v, want a *StatusError %d", flushErr, tc.wantStatus)
				}
				attempts := uint64(len(tc.want))
				want := TraceStats{ExportedSpans: 3, FailedAttempts: attempts - 1, LastStatus: tc.wantStatus}
				if tc.wantErr != "" {
					want = TraceStats{FailedAttempts: attempts, DroppedSpans: 3, LastStatus: tc.wantStatus}
					if tc.permanent {
						want.RejectedSpans = 3
					}
				}
				got := tp.Stats()
				if got.LastExport.IsZero() == (want.ExportedSpans > 0) || got.LastError.IsZero() == (want.FailedAttempts > 0) {
					t.Errorf("got last export %v and last error %v, want them set only after an export and a failure", got.LastExport, got.LastError)
				}
				got.LastExport, got.LastError = time.Time{}, time.Time{}
				if got != want {
					t.Errorf("got stats %+v, want %+v", got, want)
				}
				logger.Info("the provider", "tp", tp) // shown by its URL only
				if err := tp.Shutdown(context.Background()); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
				if !strings.Contains(logs.String(), `"tp":{"signal":"traces","url":"`+endpoint+`/v1/traces"}`) {
					t.Errorf("got logs %s, want the provider logged as its URL", logs.String())
				}

				var above []logLine
				debug := 0
				for _, l := range parseLog(t, logs.Bytes()) {
					switch l.Level {
					case "DEBUG":
						debug++
					case "INFO":
					default:
						above = append(above, l)
					}
				}
				if tc.wantErr == "" {
					if len(above) != 0 {
						t.Errorf("got log lines %+v above Info, want none", above)
					}
				} else {
					wantLevel := "WARN"
					if tc.permanent {
						wantLevel = "ERROR"
					}
					if len(above) != 1 || above[0].Level != wantLevel || above[0].DroppedSpans != 3 || above[0].Attempt != len(tc.want) ||
						above[0].StatusCode != tc.wantStatus || above[0].URL != endpoint+"/v1/traces" {
						t.Errorf("got log lines %+v above Info, want one %s with dropped_spans 3, attempt %d, status_code %d and the URL",
							above, wantLevel, len(tc.want), tc.wantStatus)
					}
				}
				if wantDebug := len(tc.want) - 1; debug != wantDebug {
					t.Errorf("got %d Debug lines, want one per retry (%d)", debug, wantDebug)
				}
				for _, s := range []string{logs.String(), fmt.Sprint(flushErr), fmt.Sprintf("%+v", tp.Stats()), fmt.Sprintf("%v %+v %#v %s", tp, tp, tp, tp)} {
					if strings.Contains(s, "s3cr3t") {
						t.Errorf("output reveals the header: %.400s", s)
					}
				}
			})
			if srv != nil {
				srv.mu.Lock()
				defer srv.mu.Unlock()
				for i, a := range srv.auth {
					if a != testToken.Reveal() {
						t.Errorf("request %d: got Authorization %q, want the header sent", i+1, a)
					}
				}
			}
		})
	}
}

// bubbleProvider returns, inside a synctest bubble, a TracerProvider of
// newTracerProvider without jitter that exports to endpoint without
// keep-alive (an idle connection's reader would keep the bubble's clock
// from advancing) and logs into logs, and the transport that times its
// requests.
func bubbleProvider(t *testing.T, endpoint string, retry telemetry.RetryPolicy, logs *bytes.Buffer) (*TracerProvider, *timedTransport) {
	t.Helper()
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tt := &timedTransport{base: &http.Transport{DisableKeepAlives: true}}
	tp, err := newTracerProvider(context.Background(), Config{Endpoint: endpoint, HTTPClient: &http.Client{Transport: tt},
		Retry: retry, Logger: logger}, noJitter)
	if err != nil {
		t.Fatal(err)
	}
	return tp, tt
}

// endSpans starts and ends n spans of tp.
func endSpans(tp *TracerProvider, n int) {
	for i := range n {
		_, span := tp.Tracer("test").Start(context.Background(), "span-"+fmt.Sprint(i))
		span.End()
	}
}

// TestTraceShutdownBounded checks, in fake time, that Shutdown's context
// bounds the export of the spans still buffered: with a server that
// answers 503 forever and a retry policy that would go on for an hour,
// Shutdown returns its context's error at its deadline, and the export
// stops retrying then, its spans counted as dropped and logged.
func TestTraceShutdownBounded(t *testing.T) {
	script := make([]int, 100)
	for i := range script {
		script[i] = http.StatusServiceUnavailable
	}
	srv := newScriptedServer(t, "", script...)
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		tp, tt := bubbleProvider(t, srv.URL, telemetry.RetryPolicy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: time.Second, MaxElapsed: time.Hour}, &logs)
		endSpans(tp, 3)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		if err := tp.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(t0); d != 100*time.Millisecond {
			t.Errorf("Shutdown returned after %v, want at its deadline, 100ms", d)
		}
		synctest.Wait() // the export goroutine of the SDK ends
		ms := time.Millisecond
		if got, want := tt.since(t0), []time.Duration{0, 10 * ms, 30 * ms, 70 * ms}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got requests at %v, want at %v and none after the deadline", got, want)
		}
		if got := tp.Stats(); got.DroppedSpans != 3 || got.FailedAttempts != 4 || got.ExportedSpans != 0 {
			t.Errorf("got %+v, want 3 spans dropped after 4 failed attempts", got)
		}
		lines := parseLog(t, logs.Bytes())
		var warn []logLine
		for _, l := range lines {
			if l.Level == "WARN" {
				warn = append(warn, l)
			}
		}
		if len(warn) != 1 || warn[0].DroppedSpans != 3 {
			t.Errorf("got Warn lines %+v, want one with dropped_spans 3", warn)
		}
		if last := lines[len(lines)-1]; last.Msg != "otlp: stopped exporting spans" {
			t.Errorf("got last log line %+v, want the stop", last)
		}
	})
}

// TestTraceGiveUpLogLimited checks, in fake time, that give-ups within a
// minute of a logged one are not logged, and that the next line logged
// carries their spans, so that the lines add up to DroppedSpans; and that
// the first success after them is logged.
func TestTraceGiveUpLogLimited(t *testing.T) {
	srv := newScriptedServer(t, "", 503, 503, 503)
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		tp, _ := bubbleProvider(t, srv.URL, telemetry.RetryPolicy{MaxAttempts: 1}, &logs)
		defer tp.Shutdown(context.Background())
		flush := func(spans int) {
			t.Helper()
			endSpans(tp, spans)
			if err := tp.ForceFlush(context.Background()); (err == nil) != (srv.requests() > 3) {
				t.Errorf("request %d: got %v", srv.requests(), err)
			}
		}
		flush(2)
		flush(3) // within a minute of the first: only counted
		time.Sleep(time.Minute)
		flush(1) // logged, with the 3 before
		flush(1) // exported
		var got []string
		for _, l := range parseLog(t, logs.Bytes()) {
			if l.Level != "DEBUG" && l.Msg != "otlp: exporting spans" {
				got = append(got, fmt.Sprintf("%s %d", l.Level, l.DroppedSpans))
			}
		}
		if want := []string{"WARN 2", "WARN 4", "INFO 0"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got log lines (level, dropped_spans) %v, want %v", got, want)
		}
		if st := tp.Stats(); st.DroppedSpans != 6 || st.ExportedSpans != 1 || st.FailedAttempts != 3 || st.LastStatus != 200 {
			t.Errorf("got %+v, want 6 spans dropped, 1 exported, 3 failed attempts", st)
		}
	})
}

func (s *scriptedServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.auth)
}
