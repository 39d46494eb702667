package grafanacloud

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// These tests run in a synctest bubble, with the endpoint an in-memory
// http.RoundTripper: time is the bubble's fake clock, so every wait,
// backoff and deadline is asserted exactly.

// fastRetry retries quickly, for tests.
var fastRetry = telemetry.RetryPolicy{MaxAttempts: 5, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}

// noJitter takes nothing off backoff waits: initial, doubled for each
// retry after the first, capped at max.
func noJitter(time.Duration) time.Duration { return 0 }

// fakeStep is how the fake endpoint answers one request.
type fakeStep struct {
	status     int    // 0 means 200
	retryAfter string // Retry-After header, if any
	err        error  // a transport error instead of a response
	hang       bool   // no answer until the request's context ends
}

// fakeEndpoint is an in-memory endpoint answering its requests with the
// steps of its script in turn, then 200. It records when each came.
type fakeEndpoint struct {
	mu     sync.Mutex
	script []fakeStep
	times  []time.Time
}

func (f *fakeEndpoint) RoundTrip(req *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, req.Body)
	req.Body.Close()
	f.mu.Lock()
	n := len(f.times)
	f.times = append(f.times, time.Now())
	var st fakeStep
	if n < len(f.script) {
		st = f.script[n]
	}
	f.mu.Unlock()
	switch {
	case st.hang:
		<-req.Context().Done()
		return nil, req.Context().Err()
	case st.err != nil:
		return nil, st.err
	}
	if st.status == 0 {
		st.status = http.StatusOK
	}
	resp := &http.Response{
		StatusCode: st.status, Status: http.StatusText(st.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/x-protobuf"}}, Request: req,
		Body: io.NopCloser(strings.NewReader("")),
	}
	if st.status != http.StatusOK {
		resp.Header.Set("Content-Type", "text/plain")
		resp.Body = io.NopCloser(strings.NewReader(http.StatusText(st.status)))
	}
	if st.retryAfter != "" {
		resp.Header.Set("Retry-After", st.retryAfter)
	}
	return resp, nil
}

// since returns when each request came, relative to t0.
func (f *fakeEndpoint) since(t0 time.Time) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var d []time.Duration
	for _, t := range f.times {
		d = append(d, t.Sub(t0))
	}
	return d
}

// newFakePublisher returns a Publisher pushing with protocol to ep, with
// backoff without jitter. It must be called in the bubble.
func newFakePublisher(t *testing.T, protocol Protocol, ep *fakeEndpoint, cfg Config) *Publisher {
	t.Helper()
	cfg.APIKey, cfg.OrgSlug = testKey, "1"
	cfg.Endpoint = "https://metrics.example.com" + paths[protocol]
	cfg.HTTPClient = &http.Client{Transport: ep}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	p, err := newPublisher(cfg, noJitter)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sameDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTransientFailuresRetried(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		steps []fakeStep
		want  []time.Duration // when each request comes, from the first
	}{
		{"500 500 then 200", []fakeStep{{status: 500}, {status: 500}}, []time.Duration{0, 10 * ms, 30 * ms}},
		{"502 503 504 then 200", []fakeStep{{status: 502}, {status: 503}, {status: 504}}, []time.Duration{0, 10 * ms, 30 * ms, 70 * ms}},
		{"408 then 200", []fakeStep{{status: 408}}, []time.Duration{0, 10 * ms}},
		{"429 with Retry-After", []fakeStep{{status: 429, retryAfter: "1"}}, []time.Duration{0, 50 * ms}}, // capped at MaxBackoff
		{"429 with Retry-After 0", []fakeStep{{status: 429, retryAfter: "0"}, {status: 503}}, []time.Duration{0, 10 * ms, 30 * ms}},
		{"429 without Retry-After", []fakeStep{{status: 429}, {status: 429}}, []time.Duration{0, 10 * ms, 30 * ms}},
		{"connection refused", []fakeStep{{err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}}, []time.Duration{0, 10 * ms}},
		{"backoff capped at 50ms", []fakeStep{{status: 500}, {status: 500}, {status: 500}, {status: 500}}, []time.Duration{0, 10 * ms, 30 * ms, 70 * ms, 120 * ms}},
	}
	for _, protocol := range []Protocol{RemoteWrite, OTLP} {
		for _, tc := range tests {
			t.Run(string(protocol)+"/"+tc.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ep := &fakeEndpoint{script: tc.steps}
					pub := newFakePublisher(t, protocol, ep, Config{Interval: 10 * time.Second, Retry: fastRetry})
					defer pub.Close(context.Background())
					pub.PublishEventMetrics(context.Background(), finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
					t0 := time.Now()
					if err := pub.Flush(context.Background()); err != nil {
						t.Fatalf("got %v, want the push delivered after retries", err)
					}
					if got := ep.since(t0); !sameDurations(got, tc.want) {
						t.Errorf("got requests at %v, want at %v", got, tc.want)
					}
					s := pub.Stats()
					failed := uint64(len(tc.want) - 1)
					if s.Pushes != 1 || s.FailedAttempts != failed || s.DroppedPushes != 0 || s.LastError.IsZero() {
						t.Errorf("got stats %+v, want 1 push after %d failed attempts", s, failed)
					}
				})
			})
		}
	}
}

// TestRetriesWithinInterval checks that a push failing with 503 is retried
// until its interval runs out, and then given up: with a 40ms backoff and a
// 500ms interval, attempts at 0, 40, ..., 480ms, and no wait past the
// interval.
func TestRetriesWithinInterval(t *testing.T) {
	for _, protocol := range []Protocol{RemoteWrite, OTLP} {
		t.Run(string(protocol), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				steps := make([]fakeStep, 1000)
				for i := range steps {
					steps[i] = fakeStep{status: 503}
				}
				ep := &fakeEndpoint{script: steps}
				pub := newFakePublisher(t, protocol, ep, Config{Interval: 500 * time.Millisecond,
					Retry: telemetry.RetryPolicy{MaxAttempts: 1000, InitialBackoff: 40 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}})
				defer pub.Close(context.Background())
				pub.PublishEventMetrics(context.Background(), finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
				t0 := time.Now()
				err := pub.Flush(context.Background())
				var se *StatusError
				if !errors.As(err, &se) || se.Code != 503 || telemetry.IsPermanent(err) {
					t.Errorf("got %v, want the last 503, not permanent", err)
				}
				if took := time.Since(t0); took != 480*time.Millisecond {
					t.Errorf("Flush took %v, want 480ms (the last attempt that fits the 500ms interval)", took)
				}
				s := pub.Stats()
				if s.FailedAttempts != 13 || s.DroppedPushes != 1 || s.PermanentFailures != 0 || s.Pushes != 0 {
					t.Errorf("got stats %+v, want 13 failed attempts (0 to 480ms), then the push dropped", s)
				}
			})
		})
	}
}

// TestLastAttemptAtMaxElapsed checks the promise of Retry.MaxElapsed: a
// wait that would end after it is shortened, so that the last attempt comes
// at MaxElapsed exactly.
func TestLastAttemptAtMaxElapsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		steps := make([]fakeStep, 100)
		for i := range steps {
			steps[i] = fakeStep{status: 500}
		}
		ep := &fakeEndpoint{script: steps}
		pub := newFakePublisher(t, RemoteWrite, ep, Config{Interval: 10 * time.Second,
			Retry: telemetry.RetryPolicy{InitialBackoff: 40 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, MaxElapsed: 100 * time.Millisecond}})
		defer pub.Close(context.Background())
		pub.PublishEventMetrics(context.Background(), finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
		t0 := time.Now()
		if err := pub.Flush(context.Background()); err == nil {
			t.Fatal("got no error")
		}
		ms := time.Millisecond
		if got, want := ep.since(t0), []time.Duration{0, 40 * ms, 80 * ms, 100 * ms}; !sameDurations(got, want) {
			t.Errorf("got requests at %v, want at %v", got, want)
		}
	})
}

// TestEndpointDown checks that with nothing listening at the endpoint the
// Recorder records as usual, each periodic push is attempted and given up
// (and counted), Flush and Close return the connection error, and no record
// is lost from the aggregates.
func TestEndpointDown(t *testing.T) {
	for _, protocol := range []Protocol{RemoteWrite, OTLP} {
		t.Run(string(protocol), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
				steps := make([]fakeStep, 100)
				for i := range steps {
					steps[i] = fakeStep{err: refused}
				}
				ep := &fakeEndpoint{script: steps}
				r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
				if err != nil {
					t.Fatal(err)
				}
				pub := newFakePublisher(t, protocol, ep, Config{Interval: 100 * time.Millisecond,
					Retry: telemetry.RetryPolicy{MaxAttempts: 2, InitialBackoff: 5 * time.Millisecond}})
				if err := r.AddPublisher(pub); err != nil {
					t.Fatal(err)
				}
				t0 := time.Now()
				runEvents(t, r, "load", 1000, 1, nil)
				time.Sleep(350 * time.Millisecond) // the fake clock: three periodic pushes
				ms := time.Millisecond
				if got, want := ep.since(t0), []time.Duration{100 * ms, 105 * ms, 200 * ms, 205 * ms, 300 * ms, 305 * ms}; !sameDurations(got, want) {
					t.Errorf("got requests at %v, want two attempts of each periodic push, at %v", got, want)
				}
				if s := pub.Stats(); s.FailedAttempts != 6 || s.DroppedPushes != 3 || s.Pushes != 0 || s.LastStatus != 0 {
					t.Errorf("got stats %+v, want 6 failed attempts, 3 pushes dropped", s)
				}
				if err := r.Flush(context.Background()); !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("got Flush error %v, want the connection error", err)
				}
				if err := r.Close(context.Background()); !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("got Close error %v, want the connection error", err)
				}
				// Two attempts each of Flush, and of Recorder.Close's Flush and
				// Close: a failed push leaves the values to push again.
				if s := pub.Stats(); s.FailedAttempts != 12 || s.DroppedPushes != 6 || s.Pushes != 0 {
					t.Errorf("got stats %+v, want 12 failed attempts, 6 pushes dropped", s)
				}
				ps := r.PublisherStats()
				if len(ps) != 1 || ps[0].Name != "grafanacloud" || !ps[0].Synchronous || ps[0].Published != 1000 || ps[0].Dropped() != 0 {
					t.Errorf("got publisher stats %+v, want 1000 records aggregated, none dropped", ps)
				}
			})
		})
	}
}

// TestRecordingNotBlockedByHangingEndpoint records while a push hangs:
// recording goes on without waiting, Close gives up at its deadline,
// exactly, and ends the push and the pusher.
func TestRecordingNotBlockedByHangingEndpoint(t *testing.T) {
	for _, protocol := range []Protocol{RemoteWrite, OTLP} {
		t.Run(string(protocol), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ep := &fakeEndpoint{script: []fakeStep{{hang: true}}}
				r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
				if err != nil {
					t.Fatal(err)
				}
				pub := newFakePublisher(t, protocol, ep, Config{Interval: 10 * time.Second, Timeout: time.Hour})
				if err := r.AddPublisher(pub); err != nil {
					t.Fatal(err)
				}
				runEvents(t, r, "warmup", 1, 0, nil)
				flushed := make(chan error, 1)
				go func() { flushed <- pub.Flush(context.Background()) }()
				synctest.Wait() // the push hangs now, for up to the 10s interval
				if n := len(ep.since(time.Now())); n != 1 {
					t.Fatalf("got %d requests, want the one hanging", n)
				}
				start := time.Now()
				runEvents(t, r, "load", 5000, 0, nil)
				if took := time.Since(start); took != 0 {
					t.Errorf("recording waited %v for the hanging push, want 0", took)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				start = time.Now()
				if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("got Close error %v, want context.DeadlineExceeded", err)
				}
				if took := time.Since(start); took != 300*time.Millisecond {
					t.Errorf("Close took %v, want its 300ms deadline", took)
				}
				synctest.Wait()
				select {
				case err := <-flushed:
					if err == nil {
						t.Error("the hanging push succeeded")
					}
				default:
					t.Error("the hanging push did not end after Close gave up")
				}
				select {
				case <-pub.eng.Done():
				default:
					t.Error("the push goroutine did not exit after Close gave up")
				}
				if s := r.Stats(); s.EventsEnded != 5001 {
					t.Errorf("got %d events ended, want 5001", s.EventsEnded)
				}
			})
		})
	}
}

// TestPeriodicPushesWaitForRetryAfter checks that a receiver's
// Retry-After longer than the retry policy's MaxBackoff holds the periodic
// pushes back until it has passed: a push at 10s answered 429 with
// Retry-After 35 is retried within its interval (capped at MaxBackoff,
// 50ms), and then no push comes before 45s, though the interval is 10s.
func TestPeriodicPushesWaitForRetryAfter(t *testing.T) {
	for _, protocol := range []Protocol{RemoteWrite, OTLP} {
		t.Run(string(protocol), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ep := &fakeEndpoint{script: []fakeStep{{status: 429, retryAfter: "35"}, {status: 429, retryAfter: "35"}}}
				t0 := time.Now()
				pub := newFakePublisher(t, protocol, ep, Config{Interval: 10 * time.Second,
					Retry: telemetry.RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}})
				defer pub.Close(context.Background())
				pub.PublishEventMetrics(context.Background(), finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
				time.Sleep(61 * time.Second)
				synctest.Wait()
				ms := time.Millisecond
				// The push at 10s and its retry, answered 429 with
				// Retry-After 35: the ticks at 20, 30 and 40s wait; the
				// next pushes are at 50 and 60s.
				want := []time.Duration{10 * time.Second, 10*time.Second + 50*ms, 50 * time.Second, 60 * time.Second}
				if got := ep.since(t0); !sameDurations(got, want) {
					t.Errorf("got requests at %v, want at %v", got, want)
				}
			})
		})
	}
}
