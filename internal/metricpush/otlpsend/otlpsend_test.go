package otlpsend

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/metricpush"
)

// TestWaitMetric checks that event_wait_seconds is sent for the event
// names that had a run with an enqueue time, and only then, with the
// bounds of Config.WaitBuckets.
func TestWaitMetric(t *testing.T) {
	bounds := []float64{1, 60}
	s, err := New(Config{URL: "http://127.0.0.1:4318/v1/metrics", Client: &http.Client{}, Prefix: "test",
		EventBuckets: metricdef.EventBuckets(), LatencyBuckets: metricdef.LatencyBuckets(), WaitBuckets: bounds})
	if err != nil {
		t.Fatal(err)
	}
	n := len(bounds) + 1
	wait := metricpush.HistogramPoint{Counts: make([]uint64, n), Count: 2, Sum: 7}
	wait.Counts[0] = 2
	snap := &metricpush.Snapshot{Time: time.Now(), Events: []metricpush.EventPoint{
		{Name: "queued", Waited: true, Wait: wait},
		{Name: "direct"},
	}}
	var waits []metricdata.HistogramDataPoint[float64]
	for _, m := range s.Metrics(snap).ScopeMetrics[0].Metrics {
		if m.Name == metricdef.EventWait {
			waits = m.Data.(metricdata.Histogram[float64]).DataPoints
		}
	}
	if len(waits) != 1 {
		t.Fatalf("got %d event_wait_seconds points, want 1 (the event name that waited)", len(waits))
	}
	name, _ := waits[0].Attributes.Value(metricdef.LabelEventName)
	if name.AsString() != "queued" || waits[0].Count != 2 || waits[0].Sum != 7 || !slices.Equal(waits[0].Bounds, bounds) {
		t.Errorf("got %+v", waits[0])
	}
	snap.Events = snap.Events[1:]
	for _, m := range s.Metrics(snap).ScopeMetrics[0].Metrics {
		if m.Name == metricdef.EventWait {
			t.Error("event_wait_seconds sent though no run waited")
		}
	}
}
