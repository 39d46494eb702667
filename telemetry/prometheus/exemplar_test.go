package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/oteltrace"
	"github.com/eventpipeline/eventpipeline/telemetry/otlp"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
)

// TestExemplarsMatchCollectedTraces traces runs and operations with an SDK
// provider exporting to a real OpenTelemetry Collector, publishes them to
// a Publisher that a real Prometheus with exemplar storage scrapes, and
// checks that the exemplars Prometheus stored carry the trace and span
// ids of the spans the collector received.
func TestExemplarsMatchCollectedTraces(t *testing.T) {
	col := testutil.StartCollector(t)
	ctx := context.Background()
	tp, err := otlp.NewTracerProvider(ctx, otlp.Config{Endpoint: col.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(ctx) })
	pub, err := prometheus.NewPublisher(prometheus.Config{Listener: listen(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.AddPublisher(pub); err != nil {
		t.Fatal(err)
	}
	tr, err := oteltrace.New(rec, oteltrace.Config{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.StartPrometheus(t, testutil.PrometheusConfig{
		Targets: []string{pub.Addr().String()},
		Flags:   []string{"--enable-feature=exemplar-storage"},
	})
	runs := map[string]bool{"extract": true, "load": false} // event: completed
	for ev, ok := range runs {
		evCtx, err := tr.StartEvent(ctx, ev, "run-1/"+ev)
		if err != nil {
			t.Fatal(err)
		}
		// An operation of its own per event: a histogram bucket keeps only
		// its latest exemplar, so each span gets a series of its own.
		opCtx, err := tr.StartOperation(evCtx, "run-1/"+ev+"/call-1", "127.0.0.1", 9, ev+"_call")
		if err != nil {
			t.Fatal(err)
		}
		tr.EndOperation(opCtx, "run-1/"+ev+"/call-1", 1, 1, nil)
		var runErr error
		if !ok {
			runErr = errors.New("failed")
		}
		if err := tr.EndEvent(evCtx, "run-1/"+ev, runErr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// The scrape is OpenMetrics, with the exemplars.
	req, _ := http.NewRequest(http.MethodGet, "http://"+pub.Addr().String()+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Content-Type"), "openmetrics") || !strings.Contains(string(body), `# {trace_id="`) {
		t.Fatalf("got %s without exemplars:\n%s", resp.Header.Get("Content-Type"), body)
	}

	var spans []testutil.Span
	testutil.Eventually(t, 30*time.Second, func() error {
		var err error
		if spans, err = col.Spans(); err != nil {
			return err
		}
		if len(spans) < 4 {
			return fmt.Errorf("the collector has %d spans, want 4", len(spans))
		}
		return nil
	})
	want := []string{} // trace_id/span_id of each span
	for _, s := range spans {
		want = append(want, s.TraceID+"/"+s.SpanID)
	}
	sort.Strings(want)
	testutil.Eventually(t, 60*time.Second, func() error {
		var got []string
		for _, q := range []string{"event_duration_seconds_bucket", "network_latency_seconds_bucket"} {
			res, err := srv.API.QueryExemplars(ctx, q, time.Now().Add(-time.Hour), time.Now().Add(time.Minute))
			if err != nil {
				return err
			}
			for _, r := range res {
				for _, e := range r.Exemplars {
					got = append(got, string(e.Labels["trace_id"])+"/"+string(e.Labels["span_id"]))
				}
			}
		}
		sort.Strings(got)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			return fmt.Errorf("got exemplars %v, want the collected spans %v", got, want)
		}
		return nil
	})
}
