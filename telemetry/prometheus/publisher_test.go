package prometheus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var (
	t0    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	quiet = slog.New(slog.DiscardHandler)
)

// event returns a finished event record that took d.
func event(name string, d time.Duration, status telemetry.Status, retries int) telemetry.EventMetrics {
	return telemetry.EventMetrics{
		EventName: name, TaskID: "task-" + name, StartTime: t0, EndTime: t0.Add(d),
		Status: status, RetryCount: retries,
	}
}

// netOp returns a finished network record that took d.
func netOp(op string, d time.Duration, sent, received int64) telemetry.NetworkMetrics {
	return telemetry.NetworkMetrics{
		TaskID: "t", Operation: op, Host: "10.0.0.1", Port: 80, StartTime: t0, EndTime: t0.Add(d),
		Status: telemetry.StatusCompleted, BytesSent: sent, BytesReceived: received,
	}
}

// newPublisher returns a Publisher registered in a new registry that it
// does not serve, closed at the end of the test.
func newPublisher(t *testing.T, cfg prometheus.Config) (*prometheus.Publisher, *prom.Registry) {
	t.Helper()
	reg := prom.NewRegistry()
	cfg.Registry = reg
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	p, err := prometheus.NewPublisher(cfg)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p, reg
}

func mustPublish(t *testing.T, p *prometheus.Publisher, records ...any) {
	t.Helper()
	ctx := context.Background()
	for _, r := range records {
		var err error
		switch r := r.(type) {
		case telemetry.EventMetrics:
			err = p.PublishEventMetrics(ctx, r)
		case telemetry.NetworkMetrics:
			err = p.PublishNetworkMetrics(ctx, r)
		}
		if err != nil {
			t.Fatalf("publish %+v: %v", r, err)
		}
	}
}

func TestMetricsExposition(t *testing.T) {
	p, reg := newPublisher(t, prometheus.Config{
		EventBuckets:   []float64{0.1, 1},
		LatencyBuckets: []float64{0.01},
	})
	mustPublish(t, p,
		event("load", 50*time.Millisecond, telemetry.StatusCompleted, 0),
		event("load", 2*time.Second, telemetry.StatusCompleted, 2),
		event("load", 500*time.Millisecond, telemetry.StatusFailed, 1),
		event("transform", 10*time.Millisecond, telemetry.StatusCompleted, 0),
		netOp("remote_call", 5*time.Millisecond, 100, 2000),
		netOp("", 20*time.Millisecond, 50, 0), // empty operation: remote_call
		netOp("http_request", 5*time.Millisecond, 0, 7),
	)
	const want = `
# HELP event_duration_seconds Duration of finished event runs in seconds, by event name and status (completed or failed).
# TYPE event_duration_seconds histogram
event_duration_seconds_bucket{event_name="load",status="completed",le="0.1"} 1
event_duration_seconds_bucket{event_name="load",status="completed",le="1"} 1
event_duration_seconds_bucket{event_name="load",status="completed",le="+Inf"} 2
event_duration_seconds_sum{event_name="load",status="completed"} 2.05
event_duration_seconds_count{event_name="load",status="completed"} 2
event_duration_seconds_bucket{event_name="load",status="failed",le="0.1"} 0
event_duration_seconds_bucket{event_name="load",status="failed",le="1"} 1
event_duration_seconds_bucket{event_name="load",status="failed",le="+Inf"} 1
event_duration_seconds_sum{event_name="load",status="failed"} 0.5
event_duration_seconds_count{event_name="load",status="failed"} 1
event_duration_seconds_bucket{event_name="transform",status="completed",le="0.1"} 1
event_duration_seconds_bucket{event_name="transform",status="completed",le="1"} 1
event_duration_seconds_bucket{event_name="transform",status="completed",le="+Inf"} 1
event_duration_seconds_sum{event_name="transform",status="completed"} 0.01
event_duration_seconds_count{event_name="transform",status="completed"} 1
event_duration_seconds_bucket{event_name="transform",status="failed",le="0.1"} 0
event_duration_seconds_bucket{event_name="transform",status="failed",le="1"} 0
event_duration_seconds_bucket{event_name="transform",status="failed",le="+Inf"} 0
event_duration_seconds_sum{event_name="transform",status="failed"} 0
event_duration_seconds_count{event_name="transform",status="failed"} 0
# HELP event_retries_total Retries of finished event runs, by event name.
# TYPE event_retries_total counter
event_retries_total{event_name="load"} 3
event_retries_total{event_name="transform"} 0
# HELP network_bytes_total Bytes of finished network operations, by operation and direction (sent or received).
# TYPE network_bytes_total counter
network_bytes_total{direction="received",operation="http_request"} 7
network_bytes_total{direction="received",operation="remote_call"} 2000
network_bytes_total{direction="sent",operation="http_request"} 0
network_bytes_total{direction="sent",operation="remote_call"} 150
# HELP network_latency_seconds Latency of finished network operations in seconds, by operation.
# TYPE network_latency_seconds histogram
network_latency_seconds_bucket{operation="http_request",le="0.01"} 1
network_latency_seconds_bucket{operation="http_request",le="+Inf"} 1
network_latency_seconds_sum{operation="http_request"} 0.005
network_latency_seconds_count{operation="http_request"} 1
network_latency_seconds_bucket{operation="remote_call",le="0.01"} 1
network_latency_seconds_bucket{operation="remote_call",le="+Inf"} 2
network_latency_seconds_sum{operation="remote_call"} 0.025
network_latency_seconds_count{operation="remote_call"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// waited returns a finished event record that waited w in a queue before
// it started, and took a millisecond.
func waited(name string, w time.Duration, status telemetry.Status) telemetry.EventMetrics {
	m := event(name, time.Millisecond, status, 0)
	m.EnqueueTime = t0.Add(-w)
	return m
}

// TestWaitExposition checks event_wait_seconds: observed for the runs
// with an enqueue time, whatever their status; a wait that clock skew made
// negative counts as zero; event names whose runs never had an enqueue
// time have no series.
func TestWaitExposition(t *testing.T) {
	p, reg := newPublisher(t, prometheus.Config{WaitBuckets: []float64{0.1, 1}})
	skewed := event("load", time.Millisecond, telemetry.StatusCompleted, 0)
	skewed.EnqueueTime = t0.Add(time.Second) // "enqueued" after it started
	mustPublish(t, p,
		waited("load", 50*time.Millisecond, telemetry.StatusCompleted),
		waited("load", 3*time.Second, telemetry.StatusFailed),
		skewed,
		waited("transform", 500*time.Millisecond, telemetry.StatusCompleted),
		event("transform", time.Millisecond, telemetry.StatusCompleted, 0), // no enqueue time: not observed
		event("extract", time.Millisecond, telemetry.StatusCompleted, 0),   // never waits: no series
	)
	const want = `
# HELP event_wait_seconds Time finished event runs waited in a queue before they started, in seconds, by event name; only runs whose enqueue time is known.
# TYPE event_wait_seconds histogram
event_wait_seconds_bucket{event_name="load",le="0.1"} 2
event_wait_seconds_bucket{event_name="load",le="1"} 2
event_wait_seconds_bucket{event_name="load",le="+Inf"} 3
event_wait_seconds_sum{event_name="load"} 3.05
event_wait_seconds_count{event_name="load"} 3
event_wait_seconds_bucket{event_name="transform",le="0.1"} 0
event_wait_seconds_bucket{event_name="transform",le="1"} 1
event_wait_seconds_bucket{event_name="transform",le="+Inf"} 1
event_wait_seconds_sum{event_name="transform"} 0.5
event_wait_seconds_count{event_name="transform"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "event_wait_seconds"); err != nil {
		t.Error(err)
	}
}

// TestWaitFromRecorder checks the path from the Recorder: a run started
// with telemetry.WithEnqueueTime is observed with its wait.
func TestWaitFromRecorder(t *testing.T) {
	p, reg := newPublisher(t, prometheus.Config{WaitBuckets: []float64{1, 10}})
	r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet), telemetry.WithPublishers(p))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	if err := r.StartEvent("resize", "t1", telemetry.WithEnqueueTime(time.Now().Add(-5*time.Second))); err != nil {
		t.Fatal(err)
	}
	if err := r.EndEvent("t1", nil); err != nil {
		t.Fatal(err)
	}
	m, _ := r.Metrics("t1")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "event_wait_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 1 || h.GetSampleSum() != m.WaitTime().Seconds() || h.GetBucket()[0].GetCumulativeCount() != 0 || h.GetBucket()[1].GetCumulativeCount() != 1 {
			t.Errorf("got count %d, sum %v, buckets %v; want 1 run that waited %v (5s to 10s)", h.GetSampleCount(), h.GetSampleSum(), h.GetBucket(), m.WaitTime())
		}
		return
	}
	t.Error("no event_wait_seconds in the registry")
}

func TestNamespaceAndConstLabels(t *testing.T) {
	p, reg := newPublisher(t, prometheus.Config{
		Namespace:      "app",
		ConstLabels:    prom.Labels{"pipeline": "billing"},
		EventBuckets:   []float64{1},
		LatencyBuckets: []float64{1},
	})
	mustPublish(t, p, event("load", time.Second/2, telemetry.StatusCompleted, 1), netOp("rpc", time.Second/4, 3, 4))
	const want = `
# HELP app_event_retries_total Retries of finished event runs, by event name.
# TYPE app_event_retries_total counter
app_event_retries_total{event_name="load",pipeline="billing"} 1
# HELP app_network_latency_seconds Latency of finished network operations in seconds, by operation.
# TYPE app_network_latency_seconds histogram
app_network_latency_seconds_bucket{operation="rpc",pipeline="billing",le="1"} 1
app_network_latency_seconds_bucket{operation="rpc",pipeline="billing",le="+Inf"} 1
app_network_latency_seconds_sum{operation="rpc",pipeline="billing"} 0.25
app_network_latency_seconds_count{operation="rpc",pipeline="billing"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"app_event_retries_total", "app_network_latency_seconds"); err != nil {
		t.Error(err)
	}
	if got := seriesCount(t, reg, "event_duration_seconds"); got != 0 {
		t.Errorf("got %d series without the namespace, want 0", got)
	}
	if got := seriesCount(t, reg, "app_event_duration_seconds"); got != 2 {
		t.Errorf("got %d app_event_duration_seconds series, want 2", got)
	}
}

// TestLabelValuesBounded checks that label values are valid UTF-8 of at
// most label.MaxLen bytes, kept distinct: names that differ only in
// invalid bytes, or past the limit, get series of their own.
func TestLabelValuesBounded(t *testing.T) {
	p, reg := newPublisher(t, prometheus.Config{EventBuckets: []float64{1}, LatencyBuckets: []float64{1}})
	long := strings.Repeat("n", 256<<10)
	mustPublish(t, p,
		event("bad\xffname", time.Second/2, telemetry.StatusCompleted, 2),
		event("bad\xfename", time.Second/2, telemetry.StatusCompleted, 3),
		event(long, time.Second/2, telemetry.StatusCompleted, 4),
		event(long+"2", time.Second/2, telemetry.StatusCompleted, 5),
		netOp("op\xc3", time.Second/2, 1, 0),
	)
	var want strings.Builder
	want.WriteString("# HELP event_retries_total Retries of finished event runs, by event name.\n# TYPE event_retries_total counter\n")
	for name, n := range map[string]int{"bad\xffname": 2, "bad\xfename": 3, long: 4, long + "2": 5} {
		fmt.Fprintf(&want, "event_retries_total{event_name=%q} %d\n", metricdef.LabelValue(name), n)
	}
	op := metricdef.LabelValue("op\xc3")
	fmt.Fprintf(&want, `# HELP network_bytes_total Bytes of finished network operations, by operation and direction (sent or received).
# TYPE network_bytes_total counter
network_bytes_total{direction="received",operation=%q} 0
network_bytes_total{direction="sent",operation=%q} 1
`, op, op)
	// The text format has no \u escape: put the character itself.
	exposition := strings.ReplaceAll(want.String(), `\ufffd`, "\uFFFD")
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exposition), "event_retries_total", "network_bytes_total"); err != nil {
		t.Error(err)
	}
}

// TestLongEventNameScrape checks that a 256 KiB event name does not repeat
// on every line of a scrape: each line stays short.
func TestLongEventNameScrape(t *testing.T) {
	p, err := prometheus.NewPublisher(prometheus.Config{Listener: listen(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	long := strings.Repeat("e", 256<<10)
	mustPublish(t, p, event(long, time.Second, telemetry.StatusCompleted, 1), netOp(long, time.Second, 1, 1))
	_, body, err := get(p.URL())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(body, "\n")
	var withName int
	for _, l := range lines {
		if len(l) > 512 {
			t.Fatalf("a scrape line has %d bytes: %.200s...", len(l), l)
		}
		if strings.Contains(l, `event_name="`+metricdef.LabelValue(long)+`"`) {
			withName++
		}
	}
	if withName == 0 {
		t.Errorf("no line carries the bounded event name %q", metricdef.LabelValue(long))
	}
}

func TestCardinalityOverflow(t *testing.T) {
	var logs bytes.Buffer
	p, reg := newPublisher(t, prometheus.Config{
		MaxLabelValues: 2, EventBuckets: []float64{1}, LatencyBuckets: []float64{1},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	for i := range 5 {
		name := "event-" + strconv.Itoa(i)
		mustPublish(t, p,
			event(name, time.Second/2, telemetry.StatusCompleted, 1),
			event(name, time.Second/2, telemetry.StatusCompleted, 1), // second time: still counted
			netOp("op-"+strconv.Itoa(i), time.Second/2, 10, 0),
		)
	}
	const want = `
# HELP event_retries_total Retries of finished event runs, by event name.
# TYPE event_retries_total counter
event_retries_total{event_name="_overflow"} 6
event_retries_total{event_name="event-0"} 2
event_retries_total{event_name="event-1"} 2
# HELP network_bytes_total Bytes of finished network operations, by operation and direction (sent or received).
# TYPE network_bytes_total counter
network_bytes_total{direction="received",operation="_overflow"} 0
network_bytes_total{direction="received",operation="op-0"} 0
network_bytes_total{direction="received",operation="op-1"} 0
network_bytes_total{direction="sent",operation="_overflow"} 30
network_bytes_total{direction="sent",operation="op-0"} 10
network_bytes_total{direction="sent",operation="op-1"} 10
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "event_retries_total", "network_bytes_total"); err != nil {
		t.Error(err)
	}
	// The first overflow of each label is logged, once.
	if got := strings.Count(logs.String(), "level=WARN"); got != 2 {
		t.Errorf("got %d warnings, want 2 (events, operations):\n%s", got, logs.String())
	}
	for _, want := range []string{"too many event names", "event_name=event-2", "too many network operations", "operation=op-2"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	// 3 event names (2 + overflow) x 2 statuses.
	if got := seriesCount(t, reg, "event_duration_seconds"); got != 6 {
		t.Errorf("got %d event_duration_seconds series, want 6", got)
	}
}

// TestOverflowNameReserved checks that an event really named _overflow
// neither takes nor joins the overflow series.
func TestOverflowNameReserved(t *testing.T) {
	p, reg := newPublisher(t, prometheus.Config{MaxLabelValues: 1, EventBuckets: []float64{1}, LatencyBuckets: []float64{1}})
	mustPublish(t, p,
		event(prometheus.OverflowLabelValue, time.Second, telemetry.StatusCompleted, 1), // a real name, kept
		event("b", time.Second, telemetry.StatusCompleted, 10),                          // beyond the limit
		event("c", time.Second, telemetry.StatusCompleted, 100),
	)
	want := fmt.Sprintf(`
# HELP event_retries_total Retries of finished event runs, by event name.
# TYPE event_retries_total counter
event_retries_total{event_name="_overflow"} 110
event_retries_total{event_name=%q} 1
`, metricdef.LabelValue(prometheus.OverflowLabelValue))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "event_retries_total"); err != nil {
		t.Error(err)
	}
}

// seriesCount returns the number of series of the metric family name.
func seriesCount(t *testing.T, g prom.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func TestPublishRejectsUnfinished(t *testing.T) {
	p, _ := newPublisher(t, prometheus.Config{})
	ctx := context.Background()
	tests := []struct {
		name string
		err  error
	}{
		{"pending event", p.PublishEventMetrics(ctx, event("e", 0, telemetry.StatusPending, 0))},
		{"unknown status", p.PublishEventMetrics(ctx, event("e", 0, "done", 0))},
		{"empty event name", p.PublishEventMetrics(ctx, event("", 0, telemetry.StatusCompleted, 0))},
		{"pending operation", p.PublishNetworkMetrics(ctx, telemetry.NetworkMetrics{Operation: "op", Status: telemetry.StatusPending})},
		{"negative bytes", p.PublishNetworkMetrics(ctx, telemetry.NetworkMetrics{Operation: "op", Status: telemetry.StatusCompleted, BytesSent: -1})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil || !strings.HasPrefix(tc.err.Error(), "prometheus: ") {
				t.Errorf("got error %v, want one starting with %q", tc.err, "prometheus: ")
			}
		})
	}
}

func TestNewPublisherInvalidConfig(t *testing.T) {
	reg := prom.NewRegistry()
	tests := []struct {
		name string
		cfg  prometheus.Config
		want string
	}{
		{"negative port", prometheus.Config{Port: -1}, "port -1 is outside 0-65535"},
		{"port too large", prometheus.Config{Port: 70000}, "port 70000 is outside 0-65535"},
		{"port without serving", prometheus.Config{Registry: reg, Port: 9999}, "nothing is served"},
		{"serve a non-gatherer", prometheus.Config{Registry: registererOnly{reg}, Serve: true}, "not a prometheus.Gatherer"},
		{"relative path", prometheus.Config{Path: "metrics"}, `path "metrics" does not start with /`},
		{"negative max label values", prometheus.Config{MaxLabelValues: -1}, "MaxLabelValues -1 is negative"},
		{"bucket factor 1", prometheus.Config{NativeHistogramBucketFactor: 1}, "NativeHistogramBucketFactor 1 must be"},
		{"decreasing buckets", prometheus.Config{EventBuckets: []float64{1, 0.5}}, "EventBuckets are not strictly increasing"},
		{"repeated bucket", prometheus.Config{LatencyBuckets: []float64{1, 1}}, "LatencyBuckets are not strictly increasing"},
		{"empty buckets, classic only", prometheus.Config{EventBuckets: []float64{}}, "EventBuckets is empty"},
		{"decreasing wait buckets", prometheus.Config{WaitBuckets: []float64{2, 1}}, "WaitBuckets are not strictly increasing"},
		{"empty wait buckets, classic only", prometheus.Config{WaitBuckets: []float64{}}, "WaitBuckets is empty"},
		{"const label le", prometheus.Config{ConstLabels: prom.Labels{"le": "1"}}, `reserved label name "le"`},
		{"const label clash", prometheus.Config{ConstLabels: prom.Labels{"event_name": "x"}}, `reserved label name "event_name"`},
		{"const label invalid", prometheus.Config{ConstLabels: prom.Labels{"a-b": "x"}}, `invalid label name "a-b"`},
		{"const label value", prometheus.Config{ConstLabels: prom.Labels{"a": "\xff"}}, `ConstLabels["a"] is not valid UTF-8`},
		{"invalid namespace", prometheus.Config{Registry: reg, Namespace: "a-b"}, `invalid namespace "a-b"`},
		{"namespace starting with a digit", prometheus.Config{Registry: reg, Namespace: "1a"}, `invalid namespace "1a"`},
		{"const label starting with __", prometheus.Config{ConstLabels: prom.Labels{"__x": "1"}}, `invalid label name "__x"`},
		{"const label starting with a digit", prometheus.Config{ConstLabels: prom.Labels{"1a": "1"}}, `invalid label name "1a"`},
		{"negative timeout", prometheus.Config{ReadTimeout: -time.Second}, "ReadTimeout -1s is negative"},
		{"negative max header bytes", prometheus.Config{MaxHeaderBytes: -1}, "MaxHeaderBytes -1 is negative"},
		{"negative max concurrent scrapes", prometheus.Config{MaxConcurrentScrapes: -1}, "MaxConcurrentScrapes -1 is negative"},
		{"NaN bucket", prometheus.Config{EventBuckets: []float64{1, math.NaN()}}, "EventBuckets[1] is NaN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = quiet
			p, err := prometheus.NewPublisher(tc.cfg)
			if err == nil {
				p.Close(context.Background())
				t.Fatalf("got no error, want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "prometheus: ") {
				t.Errorf("got error %q, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestNewPublisherBucketBounds checks that the bucket bounds are refused
// for what the push publishers refuse them for (metricdef.CheckBuckets),
// with the same messages, and that an empty slice stays valid with native
// histograms, the one exception of this package.
func TestNewPublisherBucketBounds(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	tests := []struct {
		name string
		cfg  prometheus.Config
		want string // "" for a valid Config
	}{
		{"+Inf", prometheus.Config{EventBuckets: []float64{1, inf}}, "prometheus: EventBuckets[1] is +Inf: bounds must be finite"},
		{"+Inf alone", prometheus.Config{LatencyBuckets: []float64{inf}}, "prometheus: LatencyBuckets[0] is +Inf: bounds must be finite"},
		{"-Inf", prometheus.Config{WaitBuckets: []float64{-inf, 1}}, "prometheus: WaitBuckets[0] is -Inf: bounds must be finite"},
		{"+Inf with native histograms", prometheus.Config{NativeHistogramBucketFactor: 1.1, EventBuckets: []float64{1, inf}},
			"prometheus: EventBuckets[1] is +Inf: bounds must be finite"},
		{"NaN", prometheus.Config{LatencyBuckets: []float64{nan, 1}}, "prometheus: LatencyBuckets[0] is NaN: bounds must be finite"},
		{"decreasing", prometheus.Config{EventBuckets: []float64{1, 0.5}}, "prometheus: EventBuckets are not strictly increasing: 0.5 after 1"},
		{"duplicate", prometheus.Config{WaitBuckets: []float64{1, 1}}, "prometheus: WaitBuckets are not strictly increasing: 1 after 1"},
		{"empty, classic only", prometheus.Config{LatencyBuckets: []float64{}},
			"prometheus: LatencyBuckets is empty, which is valid only with native histograms (NativeHistogramBucketFactor > 1)"},
		{"empty with native histograms", prometheus.Config{NativeHistogramBucketFactor: 1.1,
			EventBuckets: []float64{}, LatencyBuckets: []float64{}, WaitBuckets: []float64{}}, ""},
		{"finite and increasing", prometheus.Config{EventBuckets: []float64{-1, 0, 1e300}, LatencyBuckets: []float64{0.5},
			WaitBuckets: []float64{1, 2}}, ""},
		{"nil: the defaults", prometheus.Config{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = quiet
			tc.cfg.Registry = prom.NewRegistry() // not served: nothing listens
			p, err := prometheus.NewPublisher(tc.cfg)
			if err == nil {
				p.Close(context.Background())
			}
			var got string
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got error %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewPublisherJoinsErrors(t *testing.T) {
	_, err := prometheus.NewPublisher(prometheus.Config{Port: -1, MaxLabelValues: -1})
	if err == nil || !strings.Contains(err.Error(), "port") || !strings.Contains(err.Error(), "MaxLabelValues") {
		t.Errorf("got %v, want both problems", err)
	}
}

// registererOnly hides the Gatherer side of a registry.
type registererOnly struct{ prom.Registerer }

func TestNewPublisherPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	p, err := prometheus.NewPublisher(prometheus.Config{Port: port, Logger: quiet})
	if err == nil {
		p.Close(context.Background())
		t.Fatal("got no error for a port in use")
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("got %v, want an error wrapping a *net.OpError and EADDRINUSE", err)
	}
	if !strings.HasPrefix(err.Error(), "prometheus: listen: ") {
		t.Errorf("got %q, want the prefix %q", err, "prometheus: listen: ")
	}
	// Nothing stays registered: a second try on a free port works.
	p, err = prometheus.NewPublisher(prometheus.Config{Listener: listen(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p.Close(context.Background())
}

// listen returns a listener on a free port of 127.0.0.1.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestServeOwnRegistry(t *testing.T) {
	p, err := prometheus.NewPublisher(prometheus.Config{Listener: listen(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.URL(), "http://127.0.0.1:") || !strings.HasSuffix(p.URL(), "/metrics") {
		t.Errorf("got URL %q", p.URL())
	}
	mustPublish(t, p, event("load", time.Second, telemetry.StatusFailed, 3))
	code, body, err := get(p.URL())
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", p.URL(), code, err)
	}
	for _, want := range []string{
		`event_duration_seconds_count{event_name="load",status="failed"} 1`,
		`event_retries_total{event_name="load"} 3`,
		`# TYPE event_duration_seconds histogram`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
	ctx := context.Background()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, _, err := get(p.URL()); err == nil {
		t.Error("still serving after Close")
	}
	if err := p.Close(ctx); !errors.Is(err, telemetry.ErrClosed) {
		t.Errorf("second Close: got %v, want ErrClosed", err)
	}
	if err := p.PublishEventMetrics(ctx, event("load", 1, telemetry.StatusCompleted, 0)); !errors.Is(err, telemetry.ErrClosed) {
		t.Errorf("PublishEventMetrics after Close: got %v, want ErrClosed", err)
	}
	if err := p.PublishNetworkMetrics(ctx, netOp("rpc", 1, 1, 1)); !errors.Is(err, telemetry.ErrClosed) {
		t.Errorf("PublishNetworkMetrics after Close: got %v, want ErrClosed", err)
	}
}

func TestDefaultAddress(t *testing.T) {
	p, err := prometheus.NewPublisher(prometheus.Config{Logger: quiet})
	if err != nil {
		// Another process may hold 2112 on a shared machine.
		if errors.Is(err, syscall.EADDRINUSE) {
			t.Skipf("port %d in use: %v", prometheus.DefaultPort, err)
		}
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	if got, want := p.URL(), "http://127.0.0.1:2112/metrics"; got != want {
		t.Errorf("got URL %q, want %q", got, want)
	}
}

func TestUserRegistry(t *testing.T) {
	reg := prom.NewRegistry()
	cfg := prometheus.Config{Registry: reg, Logger: quiet}
	p, err := prometheus.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.Addr() != nil || p.URL() != "" {
		t.Errorf("serves %v %q, want nothing", p.Addr(), p.URL())
	}
	// A second Publisher cannot register the same metrics.
	if p2, err := prometheus.NewPublisher(cfg); err == nil {
		p2.Close(context.Background())
		t.Error("second Publisher on one registry: got no error")
	}
	mustPublish(t, p, event("load", time.Second, telemetry.StatusCompleted, 0))
	if got := seriesCount(t, reg, "event_duration_seconds"); got != 2 {
		t.Errorf("got %d series, want 2", got)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := seriesCount(t, reg, "event_duration_seconds"); got != 0 {
		t.Errorf("after Close: got %d series, want 0 (unregistered)", got)
	}
	p, err = prometheus.NewPublisher(cfg)
	if err != nil {
		t.Fatalf("after Close, a new Publisher on the registry: %v", err)
	}
	p.Close(context.Background())
}

func TestUserRegistryServed(t *testing.T) {
	reg := prom.NewRegistry()
	other := prom.NewCounter(prom.CounterOpts{Name: "app_requests_total", Help: "Requests."})
	reg.MustRegister(other)
	other.Add(5)
	p, err := prometheus.NewPublisher(prometheus.Config{Registry: reg, Serve: true, Listener: listen(t), Path: "/m", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	mustPublish(t, p, netOp("rpc", time.Millisecond, 1, 2))
	_, body, err := get(p.URL())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"app_requests_total 5", `network_bytes_total{direction="received",operation="rpc"} 2`} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape of %s lacks %q", p.URL(), want)
		}
	}
	// Other paths are not found.
	if code, _, err := get(strings.TrimSuffix(p.URL(), "/m") + "/metrics"); err != nil || code != http.StatusNotFound {
		t.Errorf("GET /metrics when Path is /m: got %d, %v; want 404", code, err)
	}
	// The handler serves the same, for a mux of one's own.
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/anything", nil))
	if !strings.Contains(rec.Body.String(), "app_requests_total 5") {
		t.Errorf("Handler output lacks app_requests_total")
	}
}

func TestNativeHistograms(t *testing.T) {
	p, reg := newPublisher(t, prometheus.Config{NativeHistogramBucketFactor: 1.1, EventBuckets: []float64{}})
	mustPublish(t, p, event("load", 300*time.Millisecond, telemetry.StatusCompleted, 0))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h == nil {
				continue
			}
			switch mf.GetName() {
			case "event_duration_seconds":
				if h.Schema == nil || len(h.GetBucket()) != 0 {
					t.Errorf("event histogram: schema %v, %d classic buckets; want native only", h.Schema, len(h.GetBucket()))
				}
			case "network_latency_seconds":
				if h.Schema == nil || len(h.GetBucket()) != len(prometheus.DefaultLatencyBuckets) {
					t.Errorf("latency histogram: schema %v, %d classic buckets; want native and default classic", h.Schema, len(h.GetBucket()))
				}
			}
		}
	}
}

// failing is a queued publisher that always fails for good.
type failing struct{}

func (failing) PublishEventMetrics(context.Context, telemetry.EventMetrics) error {
	return telemetry.Permanent(errors.New("backend down"))
}
func (failing) PublishNetworkMetrics(context.Context, telemetry.NetworkMetrics) error {
	return telemetry.Permanent(errors.New("backend down"))
}
func (failing) Name() string { return "failing" }

func TestDeliverySelfMetrics(t *testing.T) {
	r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	p, reg := newPublisher(t, prometheus.Config{Namespace: "ns"})
	for _, pub := range []telemetry.Publisher{p, failing{}} {
		if err := r.AddPublisher(pub); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		id := strconv.Itoa(i)
		if err := r.StartEvent("load", id); err != nil {
			t.Fatal(err)
		}
		if err := r.EndEvent(id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	const want = `
# HELP ns_telemetry_publisher_failed_attempts_total Publish calls of each telemetry publisher that returned an error or panicked, retried or not.
# TYPE ns_telemetry_publisher_failed_attempts_total counter
ns_telemetry_publisher_failed_attempts_total{publisher="failing"} 3
ns_telemetry_publisher_failed_attempts_total{publisher="prometheus"} 0
# HELP ns_telemetry_publisher_panics_total Publish calls of each telemetry publisher that panicked.
# TYPE ns_telemetry_publisher_panics_total counter
ns_telemetry_publisher_panics_total{publisher="failing"} 0
ns_telemetry_publisher_panics_total{publisher="prometheus"} 0
# HELP ns_telemetry_publisher_queue_capacity Size of the queue of each telemetry publisher; 0 for synchronous publishers.
# TYPE ns_telemetry_publisher_queue_capacity gauge
ns_telemetry_publisher_queue_capacity{publisher="failing"} 16384
ns_telemetry_publisher_queue_capacity{publisher="prometheus"} 0
# HELP ns_telemetry_publisher_queue_length Records waiting in the queue of each telemetry publisher.
# TYPE ns_telemetry_publisher_queue_length gauge
ns_telemetry_publisher_queue_length{publisher="failing"} 0
ns_telemetry_publisher_queue_length{publisher="prometheus"} 0
# HELP ns_telemetry_publisher_records_dropped_total Records lost by each telemetry publisher, by reason: queue_full, failed or closed.
# TYPE ns_telemetry_publisher_records_dropped_total counter
ns_telemetry_publisher_records_dropped_total{publisher="failing",reason="closed"} 0
ns_telemetry_publisher_records_dropped_total{publisher="failing",reason="failed"} 3
ns_telemetry_publisher_records_dropped_total{publisher="failing",reason="queue_full"} 0
ns_telemetry_publisher_records_dropped_total{publisher="prometheus",reason="closed"} 0
ns_telemetry_publisher_records_dropped_total{publisher="prometheus",reason="failed"} 0
ns_telemetry_publisher_records_dropped_total{publisher="prometheus",reason="queue_full"} 0
# HELP ns_telemetry_publisher_records_published_total Records accepted by each telemetry publisher.
# TYPE ns_telemetry_publisher_records_published_total counter
ns_telemetry_publisher_records_published_total{publisher="failing"} 0
ns_telemetry_publisher_records_published_total{publisher="prometheus"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"ns_telemetry_publisher_failed_attempts_total", "ns_telemetry_publisher_panics_total",
		"ns_telemetry_publisher_queue_capacity", "ns_telemetry_publisher_queue_length",
		"ns_telemetry_publisher_records_dropped_total", "ns_telemetry_publisher_records_published_total"); err != nil {
		t.Error(err)
	}
}

// TestQueueCapacityMetricIsExact checks that
// telemetry_publisher_queue_capacity is the number of records a
// publisher's buffers hold, also for a queue size that is not a multiple
// of the number of shards (16 by default): each of the 16 shards of each
// kind holds 100/16 records rounded up, 7, so 112 of each kind and 224 in
// all, not 2*100.
func TestQueueCapacityMetricIsExact(t *testing.T) {
	r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet), telemetry.WithQueueSize(100))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	p, reg := newPublisher(t, prometheus.Config{Namespace: "ns"})
	for _, pub := range []telemetry.Publisher{p, failing{}} {
		if err := r.AddPublisher(pub); err != nil {
			t.Fatal(err)
		}
	}
	const want = `
# HELP ns_telemetry_publisher_queue_capacity Size of the queue of each telemetry publisher; 0 for synchronous publishers.
# TYPE ns_telemetry_publisher_queue_capacity gauge
ns_telemetry_publisher_queue_capacity{publisher="failing"} 224
ns_telemetry_publisher_queue_capacity{publisher="prometheus"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ns_telemetry_publisher_queue_capacity"); err != nil {
		t.Error(err)
	}
	for _, s := range r.PublisherStats() {
		if s.Name == "failing" && s.QueueCapacity != 224 {
			t.Errorf("PublisherStats: got QueueCapacity %d, want 224 as exported", s.QueueCapacity)
		}
	}
}

func TestRecorderClosesPublisher(t *testing.T) {
	r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	p, err := prometheus.NewPublisher(prometheus.Config{Listener: listen(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddPublisher(p); err != nil {
		t.Fatal(err)
	}
	net := r.Network()
	if err := net.StartOperation("t1", "db.internal", 5432, "query"); err != nil {
		t.Fatal(err)
	}
	if err := net.EndOperation("t1", 10, 20, errors.New("timeout")); err != nil {
		t.Fatal(err)
	}
	if err := r.StartEvent("load", "t1"); err != nil {
		t.Fatal(err)
	}
	r.RecordRetry("t1")
	if err := r.EndEvent("t1", errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	_, body, err := get(p.URL())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`event_duration_seconds_count{event_name="load",status="failed"} 1`,
		`event_retries_total{event_name="load"} 1`,
		`network_bytes_total{direction="sent",operation="query"} 10`,
		`network_latency_seconds_count{operation="query"} 1`,
		`telemetry_publisher_records_published_total{publisher="prometheus"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	for _, never := range []string{"t1", "db.internal", "5432", "boom", "timeout"} {
		if strings.Contains(body, never) {
			t.Errorf("scrape contains %q, which must never be a label value", never)
		}
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("Recorder.Close: %v", err)
	}
	if _, _, err := get(p.URL()); err == nil {
		t.Error("still serving after Recorder.Close")
	}
	if err := p.Close(context.Background()); !errors.Is(err, telemetry.ErrClosed) {
		t.Errorf("Close after Recorder.Close: got %v, want ErrClosed", err)
	}
}

func TestPublisherConcurrentSafe(t *testing.T) {
	p, reg := newPublisher(t, prometheus.Config{MaxLabelValues: 8})
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				name := "event-" + strconv.Itoa((g*each+i)%16) // 16 names, 8 kept
				if err := p.PublishEventMetrics(context.Background(), event(name, time.Millisecond, telemetry.StatusCompleted, 1)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Add(1)
	go func() { // scrapes meanwhile
		defer wg.Done()
		for range 20 {
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	var names int
	for _, mf := range mfs {
		if mf.GetName() == "event_retries_total" {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
				names++
			}
		}
	}
	if total != goroutines*each || names != 9 {
		t.Errorf("got %v retries in %d series, want %d in 9 (8 names + overflow)", total, names, goroutines*each)
	}
}

func TestCloseConcurrentSafe(t *testing.T) {
	p, err := prometheus.NewPublisher(prometheus.Config{Listener: listen(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = p.Close(context.Background()) })
	}
	wg.Wait()
	var ok int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, telemetry.ErrClosed):
			t.Errorf("Close: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d Close calls succeeded, want 1", ok)
	}
}

func TestPublishAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	p, _ := newPublisher(t, prometheus.Config{})
	ctx := context.Background()
	ev := event("load", time.Millisecond, telemetry.StatusCompleted, 2)
	op := netOp("rpc", time.Millisecond, 10, 20)
	mustPublish(t, p, ev, op) // binds the series
	if n := testing.AllocsPerRun(1000, func() { p.PublishEventMetrics(ctx, ev) }); n != 0 {
		t.Errorf("PublishEventMetrics: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { p.PublishNetworkMetrics(ctx, op) }); n != 0 {
		t.Errorf("PublishNetworkMetrics: %v allocations, want 0", n)
	}
	w := waited("load", time.Second, telemetry.StatusCompleted)
	mustPublish(t, p, w) // binds the wait series
	if n := testing.AllocsPerRun(1000, func() { p.PublishEventMetrics(ctx, w) }); n != 0 {
		t.Errorf("PublishEventMetrics of a run that waited: %v allocations, want 0", n)
	}
}

// TestWaitSeriesConcurrentSafe binds the wait series of the same names
// from many goroutines at once: every observation lands in one series per
// name.
func TestWaitSeriesConcurrentSafe(t *testing.T) {
	p, reg := newPublisher(t, prometheus.Config{})
	const goroutines, each = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if err := p.PublishEventMetrics(context.Background(), waited("e"+strconv.Itoa((g+i)%4), time.Second, telemetry.StatusCompleted)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	var series int
	for _, mf := range mfs {
		if mf.GetName() == "event_wait_seconds" {
			for _, m := range mf.GetMetric() {
				count += m.GetHistogram().GetSampleCount()
				series++
			}
		}
	}
	if count != goroutines*each || series != 4 {
		t.Errorf("got %d observations in %d series, want %d in 4", count, series, goroutines*each)
	}
}

// TestSelfMetricsOfTheAttachedRecorder checks that a publisher given to
// telemetry.WithPublishers exports the delivery counters of the Recorder it
// is attached to.
func TestSelfMetricsOfTheAttachedRecorder(t *testing.T) {
	reg := prom.NewRegistry()
	p, err := prometheus.NewPublisher(prometheus.Config{Registry: reg, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r, err := telemetry.NewRecorder(telemetry.WithPublishers(p), telemetry.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	for i := range 4 {
		id := strconv.Itoa(i)
		if err := r.StartEvent("load", id); err != nil {
			t.Fatal(err)
		}
		if err := r.EndEvent(id, nil); err != nil {
			t.Fatal(err)
		}
	}
	const want = `
# HELP telemetry_publisher_records_published_total Records accepted by each telemetry publisher.
# TYPE telemetry_publisher_records_published_total counter
telemetry_publisher_records_published_total{publisher="prometheus"} 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "telemetry_publisher_records_published_total"); err != nil {
		t.Error(err)
	}
}

// TestWaitExemplar checks that the wait of a traced, sampled run carries
// its trace and span ids as an exemplar, as its duration does.
func TestWaitExemplar(t *testing.T) {
	p, reg := newPublisher(t, prometheus.Config{WaitBuckets: []float64{1, 10}})
	m := waited("resize", 5*time.Second, telemetry.StatusCompleted)
	m.Span = telemetry.SpanContext{TraceID: [16]byte{0xab}, SpanID: [8]byte{0xcd}, Sampled: true}
	mustPublish(t, p, m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != prometheus.MetricEventWait {
			continue
		}
		for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
			if ex := b.GetExemplar(); ex != nil {
				labels := map[string]string{}
				for _, l := range ex.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if b.GetUpperBound() != 10 || labels[prometheus.ExemplarTraceID] != m.Span.TraceIDString() || labels[prometheus.ExemplarSpanID] != m.Span.SpanIDString() {
					t.Errorf("exemplar %v in bucket %v, want the run's ids in bucket 10", labels, b.GetUpperBound())
				}
				return
			}
		}
	}
	t.Error("no exemplar on event_wait_seconds")
}

// TestExemplarOnlyWhenSampled publishes runs and operations that were not
// traced, or traced but not sampled, and checks that no histogram bucket
// has an exemplar: a trace id that the tracing backend never received
// would make a dead link in Grafana.
func TestExemplarOnlyWhenSampled(t *testing.T) {
	p, reg := newPublisher(t, prometheus.Config{EventBuckets: []float64{1}, LatencyBuckets: []float64{1}, WaitBuckets: []float64{1}})
	unsampled := telemetry.SpanContext{TraceID: [16]byte{0xab}, SpanID: [8]byte{0xcd}}
	for _, sc := range []telemetry.SpanContext{{}, unsampled, {Sampled: true}} { // untraced, unsampled, invalid ids
		m := waited("resize", time.Second, telemetry.StatusCompleted)
		m.Span = sc
		op := netOp("rpc", time.Second, 1, 1)
		op.Span = sc
		mustPublish(t, p, m, op)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buckets int
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, b := range m.GetHistogram().GetBucket() {
				buckets++
				if ex := b.GetExemplar(); ex != nil {
					t.Errorf("%s bucket %v: exemplar %v, want none", mf.GetName(), b.GetUpperBound(), ex.GetLabel())
				}
			}
		}
	}
	if buckets == 0 {
		t.Fatal("no histogram buckets gathered")
	}
}
