package remotewrite

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

func TestPublishAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	p, err := NewPublisher(Config{URL: srv.URL, Interval: time.Hour, WaitBuckets: []float64{1, 10}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := context.Background()
	ev := finishedEvent("load", telemetry.StatusCompleted, time.Millisecond, 2)
	op := finishedOp("rpc", time.Millisecond, 10, 20)
	p.PublishEventMetrics(ctx, ev) // makes the series
	p.PublishNetworkMetrics(ctx, op)
	if n := testing.AllocsPerRun(1000, func() { p.PublishEventMetrics(ctx, ev) }); n != 0 {
		t.Errorf("PublishEventMetrics: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { p.PublishNetworkMetrics(ctx, op) }); n != 0 {
		t.Errorf("PublishNetworkMetrics: %v allocations, want 0", n)
	}
	// A run with a known wait in a queue, into custom WaitBuckets.
	waited := finishedEvent("queued", telemetry.StatusCompleted, time.Millisecond, 0)
	waited.EnqueueTime = waited.StartTime.Add(-3 * time.Second)
	p.PublishEventMetrics(ctx, waited) // makes its series and wait histogram
	if n := testing.AllocsPerRun(1000, func() { p.PublishEventMetrics(ctx, waited) }); n != 0 {
		t.Errorf("PublishEventMetrics with a wait: %v allocations, want 0", n)
	}
}

// finishedEvent returns a finished record of the event name.
func finishedEvent(name string, status telemetry.Status, d time.Duration, retries int) telemetry.EventMetrics {
	start := time.Now()
	return telemetry.EventMetrics{EventName: name, TaskID: "t", StartTime: start, EndTime: start.Add(d), Status: status, RetryCount: retries}
}

// finishedOp returns a finished network record.
func finishedOp(op string, d time.Duration, sent, received int64) telemetry.NetworkMetrics {
	start := time.Now()
	return telemetry.NetworkMetrics{TaskID: "t", Operation: op, Host: "db.internal", Port: 5432, StartTime: start,
		EndTime: start.Add(d), Status: telemetry.StatusCompleted, BytesSent: sent, BytesReceived: received}
}
