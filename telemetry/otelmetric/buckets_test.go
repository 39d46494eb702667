package otelmetric

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestBucketErrors checks that NewPublisher refuses bad buckets of each
// histogram, naming the field, as it does EventBuckets.
func TestBucketErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"empty EventBuckets", func(c *Config) { c.EventBuckets = []float64{} }, []string{"EventBuckets is empty: leave it nil for the defaults"}},
		{"empty WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{} }, []string{"WaitBuckets is empty: leave it nil for the defaults"}},
		{"unsorted WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{1, 5, 5} }, []string{"WaitBuckets are not strictly increasing: 5 after 5"}},
		{"NaN WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{math.NaN()} }, []string{"WaitBuckets[0] is NaN: bounds must be finite"}},
		{"infinite WaitBuckets", func(c *Config) { c.WaitBuckets = []float64{1, math.Inf(1)} }, []string{"WaitBuckets[1] is +Inf: bounds must be finite"}},
		{"every histogram", func(c *Config) {
			c.EventBuckets, c.LatencyBuckets, c.WaitBuckets = []float64{2, 1}, []float64{2, 1}, []float64{2, 1}
		}, []string{"EventBuckets are not strictly increasing", "LatencyBuckets are not strictly increasing", "WaitBuckets are not strictly increasing"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mp := sdkmetric.NewMeterProvider()
			t.Cleanup(func() { mp.Shutdown(context.Background()) })
			cfg := Config{MeterProvider: mp, Logger: quiet}
			tc.change(&cfg)
			_, err := NewPublisher(cfg)
			if err == nil {
				t.Fatalf("got no error, want one containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error %q, want it to contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "otelmetric: ") {
				t.Errorf("got error %q, want the prefix otelmetric: ", err)
			}
		})
	}
}

// waitPoints records runs of event through a Recorder publishing to p,
// each with the wait given by telemetry.WithWait, and returns the
// event_wait_seconds points the reader collects, by event name, as
// "count sum bounds bucket-counts".
func waitPoints(t *testing.T, p *Publisher, collectFrom func() []metricdata.Metrics, event string, waits ...time.Duration) map[string]string {
	t.Helper()
	r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet), telemetry.WithPublishers(p))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	for i, w := range waits {
		id := fmt.Sprint(event, i)
		if err := r.StartEvent(event, id, telemetry.WithWait(w)); err != nil {
			t.Fatal(err)
		}
		if err := r.EndEvent(id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range collectFrom() {
		if m.Name != metricdef.EventWait {
			continue
		}
		for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
			v, _ := dp.Attributes.Value(metricdef.LabelEventName)
			got[v.AsString()] = fmt.Sprintf("%d %v %v %v", dp.Count, dp.Sum, dp.Bounds, dp.BucketCounts)
		}
	}
	return got
}

// TestWaitBuckets checks that Config.WaitBuckets, or DefaultWaitBuckets
// when nil, are the explicit bounds of event_wait_seconds in a real SDK,
// with runs recorded with telemetry.WithWait in their buckets.
func TestWaitBuckets(t *testing.T) {
	tests := []struct {
		name    string
		buckets []float64
		want    string
	}{
		{"custom", []float64{1, 10}, "3 25.25 [1 10] [1 1 1]"},
		{"default", nil, fmt.Sprintf("3 25.25 %v [0 0 0 0 0 1 0 0 0 1 0 1 0 0 0 0 0 0 0]", DefaultWaitBuckets)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, reader := newManual(t, Config{WaitBuckets: tc.buckets})
			got := waitPoints(t, p, func() []metricdata.Metrics { return collect(t, reader) },
				"queued", 250*time.Millisecond, 5*time.Second, 20*time.Second)
			if got["queued"] != tc.want || len(got) != 1 {
				t.Errorf("got event_wait_seconds points %v, want queued: %q", got, tc.want)
			}
		})
	}
}
