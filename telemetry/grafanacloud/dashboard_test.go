package grafanacloud

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// These tests push through remote write into a real Prometheus (the
// prometheus binary in $PATH, which .ci/run installs) and check what it
// stored with PromQL. They skip only when the binary is missing.

const (
	dashboardFile = "../../examples/telemetry/prometheus_dashboard.json"
	alertsFile    = "../../examples/telemetry/prometheus_alerts.yml"
	pollTimeout   = 60 * time.Second // a busy machine can be slow to evaluate rules
)

// stalled is a queued publisher whose backend does not answer until
// release is closed (or the publish ctx ends): its queue stays full, and
// further records are dropped.
type stalled struct{ release chan struct{} }

func (s stalled) wait(ctx context.Context) error {
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (s stalled) PublishEventMetrics(ctx context.Context, _ telemetry.EventMetrics) error {
	return s.wait(ctx)
}
func (s stalled) PublishNetworkMetrics(ctx context.Context, _ telemetry.NetworkMetrics) error {
	return s.wait(ctx)
}
func (stalled) Name() string { return "stalled" }

// panicky is a queued publisher that rejects events for good and panics on
// network records.
type panicky struct{}

func (panicky) PublishEventMetrics(context.Context, telemetry.EventMetrics) error {
	return telemetry.Permanent(errors.New("400 bad request"))
}
func (panicky) PublishNetworkMetrics(context.Context, telemetry.NetworkMetrics) error {
	panic("publisher bug")
}
func (panicky) Name() string { return "panicky" }

// TestDashboardAndAlertsOverRemoteWrite records a workload through a
// Recorder whose Grafana Cloud publisher pushes with remote write to a real
// Prometheus that loads the alerting rules, next to publishers that fail,
// panic and stall. It then checks that every query of the dashboard and
// every alert expression has data on that path, as they have when
// Prometheus scrapes the Prometheus publisher, and that the alerts on
// failures, retries and delivery fire.
func TestDashboardAndAlertsOverRemoteWrite(t *testing.T) {
	rules, err := filepath.Abs(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	prom := testutil.StartPrometheus(t, testutil.PrometheusConfig{
		Flags:     []string{"--web.enable-remote-write-receiver"},
		RuleFiles: []string{rules},
	})
	r, err := telemetry.NewRecorder(
		telemetry.WithLogger(quiet),
		telemetry.WithQueueSize(4),
		telemetry.WithPublishTimeout(time.Hour),
		telemetry.WithRetry(telemetry.RetryPolicy{MaxAttempts: 1}),
	)
	if err != nil {
		t.Fatal(err)
	}
	st := stalled{release: make(chan struct{})}
	var release sync.Once
	t.Cleanup(func() {
		release.Do(func() { close(st.release) })
		r.Close(context.Background())
	})
	pub, err := NewPublisher(Config{
		APIKey: testKey, OrgSlug: "1", Endpoint: prom.RemoteWriteURL(),
		Job: "dashtest", Instance: "rw", Interval: 250 * time.Millisecond, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []telemetry.Publisher{pub, panicky{}, st} {
		if err := r.AddPublisher(p); err != nil {
			t.Fatal(err)
		}
	}
	// Two phases, each pushed, so that rate() over the window sees an
	// increase. 6 of 21 runs fail; "extract" is retried 5 times in 9 runs.
	for phase := range 2 {
		runEvents(t, r, "extract", 5, 0, nil)
		runEvents(t, r, "extract", 3, 1, nil)
		runEvents(t, r, "extract", 1, 2, errors.New("upstream returned 503"))
		runEvents(t, r, "transform", 4, 0, nil)
		runEvents(t, r, "transform", 2, 1, errors.New("bad row"))
		runEvents(t, r, "load", 3, 0, nil)
		runEvents(t, r, "load", 3, 0, errors.New("disk full"))
		runOps(t, r, "remote_call", 4, 100, 1000)
		runOps(t, r, "http_request", 3, 50, 7)
		if err := pub.Flush(context.Background()); err != nil {
			t.Fatalf("phase %d: flush: %v", phase, err)
		}
	}
	// The delivery counters reached Prometheus, exactly.
	want := map[string]float64{}
	for _, s := range r.PublisherStats() {
		want[`sum(`+metricdef.Published+`{job="dashtest",publisher="`+s.Name+`"})`] = float64(s.Published)
	}
	ctx := context.Background()
	testutil.Eventually(t, pollTimeout, func() error {
		// Published counts change no more: the stalled one holds its
		// queue, the others are done. Compare with the last push.
		if err := pub.Flush(ctx); err != nil {
			return err
		}
		for q, w := range want {
			got, err := queryValue(prom, q)
			if err != nil {
				return err
			}
			if got != w {
				return fmt.Errorf("%s: got %v, want %v", q, got, w)
			}
		}
		return nil
	})

	t.Run("dashboard", func(t *testing.T) {
		for _, q := range testutil.DashboardQueries(t, dashboardFile) {
			t.Run(q.Name, func(t *testing.T) {
				testutil.Eventually(t, pollTimeout, func() error { return testutil.HasData(ctx, prom, q.Expr) })
			})
		}
	})
	t.Run("alerts", func(t *testing.T) {
		var qs []testutil.Query
		testutil.Eventually(t, pollTimeout, func() error {
			var err error
			qs, err = testutil.AlertQueries(ctx, prom)
			return err
		})
		if len(qs) != 8 {
			t.Errorf("got %d alerting rules, want the 8 of %s", len(qs), alertsFile)
		}
		for _, q := range qs {
			t.Run(q.Name, func(t *testing.T) {
				testutil.Eventually(t, pollTimeout, func() error {
					pub.Flush(ctx) // fresh samples for the gauges
					return testutil.HasData(ctx, prom, q.Expr)
				})
			})
		}
		testutil.Eventually(t, pollTimeout, func() error {
			pub.Flush(ctx)
			res, err := prom.API.Alerts(ctx)
			if err != nil {
				return err
			}
			active := map[string]bool{}
			for _, a := range res.Alerts {
				active[string(a.Labels["alertname"])] = true
			}
			for _, want := range []string{"EventFailureRateHigh", "EventRetriesHigh",
				"TelemetryRecordsDropped", "TelemetryPublisherFailing", "TelemetryQueueNearlyFull"} {
				if !active[want] {
					return fmt.Errorf("alert %s not active; active: %v", want, slices.Sorted(maps.Keys(active)))
				}
			}
			for _, never := range []string{"EventSlow", "NetworkLatencyHigh"} {
				if active[never] {
					return fmt.Errorf("alert %s active, want inactive", never)
				}
			}
			return nil
		})
	})
}

// TestRemoteWriteDistinctSeries pushes names that differ only in invalid
// UTF-8, a name really "_overflow", a 256 KiB name, and names beyond
// MaxLabelValues to a real Prometheus, and checks that every run is
// counted once: no two series of one push have the same labels, so
// Prometheus drops none, and the overflow series holds only the overflow.
func TestRemoteWriteDistinctSeries(t *testing.T) {
	prom := testutil.StartPrometheus(t, testutil.PrometheusConfig{Flags: []string{"--web.enable-remote-write-receiver"}})
	pub, err := NewPublisher(Config{
		APIKey: testKey, OrgSlug: "1", Endpoint: prom.RemoteWriteURL(),
		Job: "distinct", Instance: "rw", Interval: time.Hour, MaxLabelValues: 5, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close(context.Background()) })
	long := string(make([]byte, 256<<10))
	runs := map[string]int{
		"a\xff":            1,
		"a\xfe":            2,
		"a\uFFFD":          4,
		OverflowLabelValue: 8,  // a real event of that name
		long:               16, // five names so far: the limit
		"beyond-1":         32, // counted under the overflow value
		"beyond-2":         64,
	}
	// In this order, so that the names beyond the limit are the last.
	order := []string{"a\xff", "a\xfe", "a\uFFFD", OverflowLabelValue, long, "beyond-1", "beyond-2"}
	ctx := context.Background()
	for _, name := range order {
		for range runs[name] {
			if err := pub.PublishEventMetrics(ctx, finishedEvent(name, telemetry.StatusCompleted, time.Second, 1)); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.PublishNetworkMetrics(ctx, finishedOp(name, time.Second, int64(runs[name]), 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sel := `job="distinct",instance="rw"`
	want := map[string]float64{
		`sum(event_duration_seconds_count{` + sel + `})`:                                           127,
		`sum(event_retries_total{` + sel + `})`:                                                    127,
		`sum(network_bytes_total{` + sel + `,direction="sent"})`:                                   127,
		`count(event_retries_total{` + sel + `})`:                                                  6,
		`count(network_latency_seconds_count{` + sel + `})`:                                        6,
		`event_retries_total{` + sel + `,event_name="` + OverflowLabelValue + `"}`:                 96,
		`network_bytes_total{` + sel + `,direction="sent",operation="` + OverflowLabelValue + `"}`: 96,
	}
	for _, name := range order[:5] {
		v := strconv.QuoteToASCII(metricdef.LabelValue(name)) // PromQL takes U+FFFD escaped only
		want[`event_retries_total{`+sel+`,event_name=`+v+`}`] = float64(runs[name])
		want[`network_bytes_total{`+sel+`,direction="sent",operation=`+v+`}`] = float64(runs[name])
	}
	wantValues(t, prom, want)
}
