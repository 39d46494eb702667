package river_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	epriver "github.com/eventpipeline/eventpipeline/contrib/river"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestOverlappingAttemptEnds checks that an overlapping attempt that
// panics or calls runtime.Goexit, with spans, is ended under the id it
// was started under ("#" and its attempt), with its retries there, while
// its span keeps River's job id as the message id.
func TestOverlappingAttemptEnds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		inner func()
		want  string
	}{
		{"panic", func() { panic("boom") }, "river: job worker panicked: boom"},
		{"Goexit", runtime.Goexit, "river: job worker called runtime.Goexit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t)
			tp, exp := newTracing(t)
			mw := epriver.NewMiddleware(epriver.Config{Recorder: rec, TracerProvider: tp})
			first, second := benchJob(7), benchJob(7)
			second.Attempt = 3
			started, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
			go func() {
				done <- mw.Work(context.Background(), first, func(context.Context) error {
					close(started)
					<-release
					return errors.New("stuck")
				})
			}()
			<-started
			ended := make(chan struct{})
			go func() {
				defer close(ended)
				defer func() { recover() }()
				mw.Work(context.Background(), second, func(context.Context) error { tc.inner(); return nil })
			}()
			<-ended
			close(release)
			<-done
			m, ok := rec.Metrics("7#3")
			if !ok || m.Status != telemetry.StatusFailed || m.Error != tc.want || m.RetryCount != 2 {
				t.Errorf("overlapping attempt: got %+v, %v; want failed with %q and 2 retries", m, ok, tc.want)
			}
			if m1, ok := rec.Metrics("7"); !ok || m1.Status != telemetry.StatusFailed || m1.RetryCount != 0 {
				t.Errorf("first attempt: got %+v, %v; want failed with 0 retries", m1, ok)
			}
			if mw.Failures() != 0 {
				t.Errorf("got %d refused recordings, want 0: %v", mw.Failures(), mw.Err())
			}
			spans := exp.GetSpans()
			if len(spans) != 2 {
				t.Fatalf("got %d spans, want 2", len(spans))
			}
			for _, s := range spans {
				var id string
				for _, a := range s.Attributes {
					if a.Key == semconv.MessagingMessageIDKey {
						id = a.Value.AsString()
					}
				}
				if id != "7" {
					t.Errorf("span %q: message id %q, want River's job id 7", s.Name, id)
				}
			}
			if !strings.Contains(spans[0].Status.Description+spans[1].Status.Description, tc.want) {
				t.Errorf("span statuses %q, %q: want one with %q", spans[0].Status.Description, spans[1].Status.Description, tc.want)
			}
		})
	}
}
