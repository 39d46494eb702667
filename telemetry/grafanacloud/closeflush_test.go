package grafanacloud

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestCloseDuringFlush closes the Publisher while a Flush's push waits to
// retry a 503, after an earlier push succeeded: Close must still deliver
// the record made since, not skip its last push because the Flush's push
// had begun (and cleared the mark of records not yet pushed), then cut
// that push short; nor push twice what one push carries.
func TestCloseDuringFlush(t *testing.T) {
	for _, protocol := range []Protocol{RemoteWrite, OTLP} {
		t.Run(string(protocol), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ep := &fakeEndpoint{script: []fakeStep{{}, {status: 503}}}
				pub := newFakePublisher(t, protocol, ep, Config{Interval: 10 * time.Second,
					Retry: telemetry.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Second, MaxBackoff: time.Second}})
				ctx := context.Background()
				pub.PublishEventMetrics(ctx, finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
				if err := pub.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				pub.PublishEventMetrics(ctx, finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
				flushed := make(chan error, 1)
				go func() { flushed <- pub.Flush(ctx) }()
				synctest.Wait() // the Flush's first attempt failed: it waits 1s to retry
				if err := pub.Close(ctx); err != nil {
					t.Errorf("Close: got %v, want nil", err)
				}
				<-flushed
				s := pub.Stats()
				if s.Pushes != 2 || s.DroppedPushes != 0 {
					t.Errorf("got stats %+v, want 2 pushes (the first Flush, then the second record) and none dropped", s)
				}
				if n := len(ep.since(time.Time{})); n != 3 {
					t.Errorf("got %d requests, want 3 (the first push, the 503, then the second record delivered)", n)
				}
			})
		})
	}
}
