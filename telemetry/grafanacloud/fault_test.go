package grafanacloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// paths are the endpoint paths of the two protocols.
var paths = map[Protocol]string{RemoteWrite: "/api/prom/push", OTLP: "/otlp"}

// scripted is an endpoint that answers its requests with the statuses of
// script in turn (each with its Retry-After, if any), then 200.
type scripted struct {
	*httptest.Server
	mu     sync.Mutex
	script []scriptStep
	times  []time.Time // when each request came
}

type scriptStep struct {
	status     int
	retryAfter string
}

func newScripted(t testing.TB, steps ...scriptStep) *scripted {
	t.Helper()
	s := &scripted{script: steps}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.times)
		s.times = append(s.times, time.Now())
		s.mu.Unlock()
		if n < len(s.script) {
			st := s.script[n]
			if st.retryAfter != "" {
				w.Header().Set("Retry-After", st.retryAfter)
			}
			http.Error(w, http.StatusText(st.status), st.status)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scripted) requests() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.times...)
}

// fastRetry retries quickly, for tests.
var fastRetry = telemetry.RetryPolicy{MaxAttempts: 5, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}

func TestTransientFailuresRetried(t *testing.T) {
	tests := []struct {
		name        string
		steps       []scriptStep
		wantFailed  uint64
		wantMinWait time.Duration // between the first and the last request
	}{
		{"500 500 then 200", []scriptStep{{status: 500}, {status: 500}}, 2, 0},
		{"502 503 504 then 200", []scriptStep{{status: 502}, {status: 503}, {status: 504}}, 3, 0},
		{"429 with Retry-After", []scriptStep{{status: 429, retryAfter: "1"}}, 1, 900 * time.Millisecond},
		{"429 without Retry-After", []scriptStep{{status: 429}, {status: 429}}, 2, 0},
	}
	for _, protocol := range []Protocol{RemoteWrite, OTLP} {
		for _, tc := range tests {
			t.Run(string(protocol)+"/"+tc.name, func(t *testing.T) {
				srv := newScripted(t, tc.steps...)
				pub, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Endpoint: srv.URL + paths[protocol],
					Interval: 10 * time.Second, Retry: fastRetry, Logger: quiet})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { pub.Close(context.Background()) })
				pub.PublishEventMetrics(context.Background(), finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
				if err := pub.Flush(context.Background()); err != nil {
					t.Fatalf("got %v, want the push delivered after retries", err)
				}
				s := pub.Stats()
				if s.Pushes != 1 || s.FailedAttempts != tc.wantFailed || s.DroppedPushes != 0 || s.LastError.IsZero() {
					t.Errorf("got stats %+v, want 1 push after %d failed attempts", s, tc.wantFailed)
				}
				reqs := srv.requests()
				if uint64(len(reqs)) != tc.wantFailed+1 {
					t.Fatalf("got %d requests, want %d", len(reqs), tc.wantFailed+1)
				}
				if wait := reqs[len(reqs)-1].Sub(reqs[0]); wait < tc.wantMinWait {
					t.Errorf("got %v between the first and last attempt, want at least %v (Retry-After)", wait, tc.wantMinWait)
				}
			})
		}
	}
}

func TestPermanentFailures(t *testing.T) {
	for _, protocol := range []Protocol{RemoteWrite, OTLP} {
		for _, status := range []int{400, 401, 403, 404, 413} {
			t.Run(string(protocol)+"/"+strconv.Itoa(status), func(t *testing.T) {
				steps := make([]scriptStep, 10)
				for i := range steps {
					steps[i] = scriptStep{status: status}
				}
				srv := newScripted(t, steps...)
				var logs bytes.Buffer
				logger := slog.New(slog.NewTextHandler(&logs, nil))
				pub, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Endpoint: srv.URL + paths[protocol],
					Interval: 10 * time.Second, Retry: fastRetry, Logger: logger})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { pub.Close(context.Background()) })
				for range 3 {
					pub.PublishEventMetrics(context.Background(), finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
					err := pub.Flush(context.Background())
					var se *StatusError
					if !telemetry.IsPermanent(err) || !errors.As(err, &se) || se.Code != status || se.Temporary() {
						t.Fatalf("got %v, want a permanent *StatusError with code %d", err, status)
					}
				}
				s := pub.Stats()
				if s.Pushes != 0 || s.FailedAttempts != 3 || s.DroppedPushes != 3 || s.PermanentFailures != 3 || s.LastStatus != status {
					t.Errorf("got stats %+v, want 3 attempts dropped as permanent, without retries", s)
				}
				if n := len(srv.requests()); n != 3 {
					t.Errorf("got %d requests, want 3 (no retries)", n)
				}
				if n := strings.Count(logs.String(), "push rejected"); n != 1 {
					t.Errorf("got %d log lines of the rejection, want 1:\n%s", n, logs.String())
				}
			})
		}
	}
}

// TestRetriesWithinInterval checks that a push failing with 503 is retried
// until its interval runs out, and then given up.
func TestRetriesWithinInterval(t *testing.T) {
	for _, protocol := range []Protocol{RemoteWrite, OTLP} {
		t.Run(string(protocol), func(t *testing.T) {
			steps := make([]scriptStep, 1000)
			for i := range steps {
				steps[i] = scriptStep{status: 503}
			}
			srv := newScripted(t, steps...)
			interval := 500 * time.Millisecond
			pub, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Endpoint: srv.URL + paths[protocol],
				Interval: interval, Retry: telemetry.RetryPolicy{MaxAttempts: 1000, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond},
				Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pub.Close(context.Background()) })
			pub.PublishEventMetrics(context.Background(), finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
			start := time.Now()
			err = pub.Flush(context.Background())
			took := time.Since(start)
			// The last error is a 503, or the end of the interval if it
			// came during an attempt.
			var se *StatusError
			if !(errors.As(err, &se) && se.Code == 503 || errors.Is(err, context.DeadlineExceeded)) || telemetry.IsPermanent(err) {
				t.Errorf("got %v, want the last 503 or the interval's deadline, not permanent", err)
			}
			if took > interval+time.Second {
				t.Errorf("Flush took %v, want about the interval %v", took, interval)
			}
			s := pub.Stats()
			if s.FailedAttempts < 3 || s.DroppedPushes < 1 || s.PermanentFailures != 0 {
				t.Errorf("got stats %+v, want several failed attempts, then the push dropped", s)
			}
		})
	}
}

// TestEndpointDown checks that with nothing listening at the endpoint the
// Recorder records as usual, pushes are attempted and counted, Flush and
// Close return errors instead of blocking, and no record is lost from the
// aggregates.
func TestEndpointDown(t *testing.T) {
	for _, protocol := range []Protocol{RemoteWrite, OTLP} {
		t.Run(string(protocol), func(t *testing.T) {
			port, err := testutil.FreePort() // free: nothing listens there
			if err != nil {
				t.Fatal(err)
			}
			endpoint := "http://127.0.0.1:" + strconv.Itoa(port) + paths[protocol]
			r, err := telemetry.NewRecorder()
			if err != nil {
				t.Fatal(err)
			}
			pub, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Endpoint: endpoint,
				Interval: 100 * time.Millisecond, Retry: telemetry.RetryPolicy{MaxAttempts: 2, InitialBackoff: 5 * time.Millisecond},
				Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.AddPublisher(pub); err != nil {
				t.Fatal(err)
			}
			for i := range 50 {
				runEvents(t, r, "load", 20, 1, nil)
				if i%10 == 0 {
					time.Sleep(20 * time.Millisecond) // let periodic pushes happen meanwhile
				}
			}
			testutil.Eventually(t, 10*time.Second, func() error {
				if s := pub.Stats(); s.FailedAttempts < 4 || s.DroppedPushes < 2 {
					return fmt.Errorf("got stats %+v, want failed attempts and dropped pushes counted", s)
				}
				return nil
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := r.Flush(ctx); err == nil || ctx.Err() != nil {
				t.Errorf("got Flush error %v (ctx %v), want a connection error before the deadline", err, ctx.Err())
			}
			if err := r.Close(ctx); err == nil || ctx.Err() != nil {
				t.Errorf("got Close error %v (ctx %v), want a connection error before the deadline", err, ctx.Err())
			}
			s := pub.Stats()
			if s.Pushes != 0 || s.LastStatus != 0 {
				t.Errorf("got stats %+v, want no push and no status", s)
			}
			ps := r.PublisherStats()
			if len(ps) != 1 || ps[0].Name != "grafanacloud" || !ps[0].Synchronous || ps[0].Published != 1000 || ps[0].Dropped() != 0 {
				t.Errorf("got publisher stats %+v, want 1000 records aggregated, none dropped", ps)
			}
			if st := r.Stats(); st.EventsEnded != 1000 {
				t.Errorf("got %d events ended, want 1000", st.EventsEnded)
			}
		})
	}
}

// TestRecordingNotBlockedByHangingEndpoint records while a push hangs:
// recording goes on, Close gives up at its deadline and ends the push.
func TestRecordingNotBlockedByHangingEndpoint(t *testing.T) {
	for _, protocol := range []Protocol{RemoteWrite, OTLP} {
		t.Run(string(protocol), func(t *testing.T) {
			release := make(chan struct{})
			hanging := make(chan struct{}, 100)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case hanging <- struct{}{}:
				default:
				}
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}))
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(release) })
			r, err := telemetry.NewRecorder()
			if err != nil {
				t.Fatal(err)
			}
			pub, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Endpoint: srv.URL + paths[protocol],
				Interval: 10 * time.Second, Timeout: time.Hour, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.AddPublisher(pub); err != nil {
				t.Fatal(err)
			}
			runEvents(t, r, "warmup", 1, 0, nil)
			flushed := make(chan error, 1)
			go func() { flushed <- pub.Flush(context.Background()) }()
			<-hanging // the push is hanging now, for up to the 10s interval
			start := time.Now()
			runEvents(t, r, "load", 5000, 0, nil)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("recording 5000 events took %v while pushes hang", took)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start = time.Now()
			err = r.Close(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got Close error %v, want context.DeadlineExceeded", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Close took %v with a 300ms deadline", took)
			}
			select {
			case err := <-flushed:
				if err == nil {
					t.Error("the hanging push succeeded")
				}
			case <-time.After(5 * time.Second):
				t.Error("the hanging push did not end after Close gave up")
			}
			select {
			case <-pub.done:
			case <-time.After(5 * time.Second):
				t.Error("the push goroutine did not exit after Close gave up")
			}
		})
	}
}

// TestCloseTwice checks the Close contract: a second call returns an error
// wrapping ErrClosed, as do publishing and Flush after Close.
func TestCloseTwice(t *testing.T) {
	srv := newScripted(t)
	pub, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Endpoint: srv.URL + "/api/prom/push", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := pub.Close(ctx); err != nil {
		t.Fatalf("first close: %v", err)
	}
	select {
	case <-pub.done:
	default:
		t.Error("the push goroutine is still running after Close")
	}
	if err := pub.Close(ctx); !errors.Is(err, telemetry.ErrClosed) {
		t.Errorf("second close: got %v, want ErrClosed", err)
	}
	if err := pub.Flush(ctx); !errors.Is(err, telemetry.ErrClosed) {
		t.Errorf("flush after close: got %v, want ErrClosed", err)
	}
	if err := pub.PublishEventMetrics(ctx, finishedEvent("e", telemetry.StatusCompleted, 0, 0)); !errors.Is(err, telemetry.ErrClosed) {
		t.Errorf("publish after close: got %v, want ErrClosed", err)
	}
	if err := pub.PublishNetworkMetrics(ctx, finishedOp("op", 0, 1, 1)); !errors.Is(err, telemetry.ErrClosed) {
		t.Errorf("publish after close: got %v, want ErrClosed", err)
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("got %d requests, want none: nothing was recorded", n)
	}
}

func TestCloseConcurrentSafe(t *testing.T) {
	srv := newScripted(t)
	pub, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Endpoint: srv.URL + "/otlp", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	pub.PublishEventMetrics(context.Background(), finishedEvent("e", telemetry.StatusCompleted, 0, 0))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = pub.Close(context.Background()) })
	}
	wg.Wait()
	var ok, closed int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, telemetry.ErrClosed):
			closed++
		}
	}
	if ok != 1 || closed != len(errs)-1 {
		t.Errorf("got errors %v, want one nil and the others ErrClosed", errs)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("got %d requests, want 1 (the last push)", n)
	}
}

// TestPublishRejectsBadRecords checks the errors of the publish methods.
func TestPublishRejectsBadRecords(t *testing.T) {
	pub, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Region: "prod-us-east-0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	ctx := context.Background()
	pending := finishedEvent("e", telemetry.StatusPending, 0, 0)
	if err := pub.PublishEventMetrics(ctx, pending); err == nil {
		t.Error("pending event: got no error")
	}
	if err := pub.PublishEventMetrics(ctx, finishedEvent("", telemetry.StatusCompleted, 0, 0)); err == nil {
		t.Error("empty event name: got no error")
	}
	op := finishedOp("op", 0, -1, 0)
	if err := pub.PublishNetworkMetrics(ctx, op); err == nil {
		t.Error("negative bytes: got no error")
	}
	op = finishedOp("op", 0, 1, 1)
	op.Status = telemetry.StatusPending
	if err := pub.PublishNetworkMetrics(ctx, op); err == nil {
		t.Error("pending operation: got no error")
	}
}
