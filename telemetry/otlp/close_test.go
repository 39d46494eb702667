package otlp

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// newFakePublisher returns a Publisher that pushes every 10 s to an
// in-memory endpoint that accepts everything.
func newFakePublisher(t *testing.T) *Publisher {
	t.Helper()
	p, err := newPublisher(Config{Endpoint: "https://collector.example.com", HTTPClient: &http.Client{Transport: &fakeEndpoint{}},
		Interval: 10 * time.Second, Logger: quiet}, noJitter)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCloseExpiredCountsDrop checks that Close with a context that has
// already ended returns at once with its error and, when records were
// published since the last push, counts the last push it could not make
// in Stats.DroppedPushes; with nothing to push, it counts nothing.
func TestCloseExpiredCountsDrop(t *testing.T) {
	for _, record := range []bool{true, false} {
		name := "records"
		if !record {
			name = "nothing"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newFakePublisher(t)
				if record {
					p.PublishEventMetrics(context.Background(), finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
				}
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				start := time.Now()
				if err := p.Close(ctx); !errors.Is(err, context.Canceled) {
					t.Errorf("got Close error %v, want context.Canceled", err)
				}
				if took := time.Since(start); took != 0 {
					t.Errorf("Close took %v, want 0", took)
				}
				synctest.Wait()
				want := uint64(0)
				if record {
					want = 1
				}
				s := p.Stats()
				if s.Pushes != 0 || s.DroppedPushes != want {
					t.Errorf("got %d pushes and %d dropped, want 0 and %d", s.Pushes, s.DroppedPushes, want)
				}
			})
		})
	}
}

// TestFlushOverlappingClose checks that a Flush that began before Close
// but got its turn only after Close had begun (and, perhaps, made its last
// push and shut the exporter down) returns an error wrapping telemetry.ErrClosed, without a
// push on the closed exporter that would count a dropped push: Close's
// last push already delivered what the Flush was to deliver.
func TestFlushOverlappingClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newFakePublisher(t)
		p.PublishEventMetrics(context.Background(), finishedEvent("load", telemetry.StatusCompleted, time.Second, 0))
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, release := p.eng.LockedSnapshot() // a push in progress
		flushed := make(chan error, 1)
		go func() { flushed <- p.Flush(context.Background()) }()
		synctest.Wait() // the Flush waits for its turn
		closed := make(chan error, 1)
		go func() { closed <- p.Close(context.Background()) }()
		synctest.Wait() // Close waits for the push in progress, to know whether it carried everything
		release()
		if err := <-closed; err != nil {
			t.Fatalf("close: %v", err)
		}
		if err := <-flushed; !errors.Is(err, telemetry.ErrClosed) {
			t.Errorf("got Flush error %v, want one wrapping telemetry.ErrClosed", err)
		}
		if s := p.Stats(); s.Pushes != 1 || s.DroppedPushes != 0 || s.FailedAttempts != 0 {
			t.Errorf("got %d pushes, %d dropped, %d failed attempts, want 1, 0, 0", s.Pushes, s.DroppedPushes, s.FailedAttempts)
		}
	})
}
