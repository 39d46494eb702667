package grafanacloud

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
	case <-pub.eng.Done():
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
