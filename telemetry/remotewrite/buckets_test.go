package remotewrite

import (
	"context"
	"fmt"
	"maps"
	"strconv"
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

// cumulative returns the le label values of bounds and +Inf, each with the
// number of waits at most its bound: the buckets Prometheus should hold.
func cumulative(bounds []float64, waits []time.Duration) map[string]float64 {
	want := map[string]float64{"+Inf": float64(len(waits))}
	for _, b := range bounds {
		n := 0
		for _, w := range waits {
			if w.Seconds() <= b {
				n++
			}
		}
		want[strconv.FormatFloat(b, 'g', -1, 64)] = float64(n)
	}
	return want
}

// wantBuckets polls Prometheus until the series of the query q (a
// histogram's _bucket series) are exactly want: value by le.
func wantBuckets(t *testing.T, prom *testutil.Prometheus, q string, want map[string]float64) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := prom.Query(ctx, q)
		if err != nil {
			return err
		}
		got := map[string]float64{}
		for _, s := range v {
			got[string(s.Metric["le"])] = float64(s.Value)
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("%s: got %v, want %v", q, got, want)
		}
		return nil
	})
}

// TestWaitBuckets pushes runs recorded with telemetry.WithWait into a real
// Prometheus and checks that event_wait_seconds has exactly the le bounds
// of Config.WaitBuckets, or DefaultWaitBuckets when it is nil, with each
// wait in its bucket.
func TestWaitBuckets(t *testing.T) {
	prom := testutil.StartPrometheus(t, testutil.PrometheusConfig{Flags: []string{"--web.enable-remote-write-receiver"}})
	waits := []time.Duration{250 * time.Millisecond, time.Second, 10 * time.Second, 100 * time.Second}
	tests := []struct {
		name   string
		config []float64 // Config.WaitBuckets
		bounds []float64 // the le bounds expected, +Inf aside
	}{
		{"custom", []float64{0.5, 2, 30}, []float64{0.5, 2, 30}},
		{"default", nil, DefaultWaitBuckets},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := NewPublisher(Config{URL: prom.RemoteWriteURL(), Job: "waittest", Instance: tc.name,
				Interval: time.Hour, WaitBuckets: tc.config, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.AddPublisher(pub); err != nil {
				t.Fatal(err)
			}
			runWaits(t, r, "queued", waits...)
			if err := r.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			sel := `job="waittest",instance="` + tc.name + `",event_name="queued"`
			wantBuckets(t, prom, `event_wait_seconds_bucket{`+sel+`}`, cumulative(tc.bounds, waits))
			wantValues(t, prom, map[string]float64{
				`event_wait_seconds_count{` + sel + `}`: 4,
				`event_wait_seconds_sum{` + sel + `}`:   111.25,
			})
		})
	}
}
