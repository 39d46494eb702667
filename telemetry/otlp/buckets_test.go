package otlp

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// runWaits records a run of event through r for each wait, given with
// telemetry.WithWait.
func runWaits(t *testing.T, r *telemetry.Recorder, event string, waits ...time.Duration) {
	t.Helper()
	for i, w := range waits {
		id := fmt.Sprintf("%s-%d-%d", event, time.Now().UnixNano(), i)
		if err := r.StartEvent(event, id, telemetry.WithWait(w)); err != nil {
			t.Fatal(err)
		}
		if err := r.EndEvent(id, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWaitBuckets pushes runs recorded with telemetry.WithWait to a real
// OpenTelemetry Collector and checks that event_wait_seconds arrives with
// the explicit bounds of Config.WaitBuckets, or DefaultWaitBuckets when it
// is nil, and each wait in its bucket.
func TestWaitBuckets(t *testing.T) {
	c := testutil.StartCollector(t)
	tests := []struct {
		name           string
		config         []float64 // Config.WaitBuckets
		bounds, counts string    // of the point received
	}{
		{"custom", []float64{0.5, 2, 30}, "[0.5 2 30]", "[1 1 1 1]"},
		{"default", nil, fmt.Sprint(DefaultWaitBuckets), "[0 0 0 0 0 1 0 1 0 0 1 0 0 1 0 0 0 0 0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := NewPublisher(Config{Endpoint: c.Endpoint, ServiceName: "waittest", ServiceInstanceID: tc.name,
				Interval: time.Hour, WaitBuckets: tc.config, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.AddPublisher(pub); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			// One wait per bucket of the custom bounds; the sum is exact.
			runWaits(t, r, "queued_"+tc.name, 250*time.Millisecond, time.Second, 10*time.Second, 100*time.Second)
			if err := r.Close(ctx); err != nil {
				t.Fatal(err)
			}
			key := "event_wait_seconds{event_name=queued_" + tc.name + "}"
			wantPoints(t, c, map[string]any{
				key + "_count":   uint64(4),
				key + "_sum":     111.25,
				key + "_bounds":  tc.bounds,
				key + "_buckets": tc.counts,
			})
		})
	}
}
