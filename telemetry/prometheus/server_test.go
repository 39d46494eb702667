package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// These tests run a real Prometheus server (the prometheus binary in $PATH,
// which .ci/run installs) that scrapes a Publisher, and check what it
// stored through its HTTP API. They skip only when the binary is missing.

const (
	dashboardFile  = "../../examples/telemetry/prometheus_dashboard.json"
	alertsFile     = "../../examples/telemetry/prometheus_alerts.yml"
	alertsTestFile = "../../examples/telemetry/prometheus_alerts_test.yml"
	pollTimeout    = 60 * time.Second // the first scrape can take a while on a busy machine
)

// runs is the event workload of one phase: n runs of event, each retried
// retries times, failed or not, and enqueued wait before its start if wait
// is not zero (as a run taken from a job queue).
var runs = []struct {
	event   string
	failed  bool
	retries int
	n       int
	wait    time.Duration
}{
	{"extract", false, 0, 5, 0},
	{"extract", false, 1, 3, 0},
	{"extract", true, 2, 1, 0},
	{"transform", false, 0, 4, 0},
	{"transform", true, 1, 2, 0},
	{"load", false, 0, 3, 0},
	{"load", true, 0, 3, 0},
	{"resize", false, 0, 4, 2 * time.Second},
	{"resize", true, 0, 1, 30 * time.Second},
}

// ops is the network workload of one phase.
var ops = []struct {
	operation      string
	sent, received int64
	failed         bool
	n              int
}{
	{"remote_call", 100, 1000, false, 4},
	{"remote_call", 10, 0, true, 1},
	{"http_request", 50, 7, false, 3},
}

// expected holds what Prometheus should report after some phases, keyed by
// the label values of each series joined with "/".
type expected struct {
	counts  map[string]float64 // event_name/status: runs
	retries map[string]float64 // event_name: retries
	waited  map[string]float64 // event_name: runs with an enqueue time
	bytes   map[string]float64 // operation/direction: bytes
	opCount map[string]float64 // operation: operations
	records float64            // records handed to each publisher
}

func expect(phases int) expected {
	e := expected{counts: map[string]float64{}, retries: map[string]float64{}, waited: map[string]float64{},
		bytes: map[string]float64{}, opCount: map[string]float64{}}
	f := float64(phases)
	for _, r := range runs {
		status := "completed"
		if r.failed {
			status = "failed"
		}
		e.counts[r.event+"/"+status] += f * float64(r.n)
		e.retries[r.event] += f * float64(r.n*r.retries)
		if r.wait > 0 {
			e.waited[r.event] += f * float64(r.n)
		}
		e.records += f * float64(r.n)
	}
	for _, o := range ops {
		e.bytes[o.operation+"/sent"] += f * float64(o.n) * float64(o.sent)
		e.bytes[o.operation+"/received"] += f * float64(o.n) * float64(o.received)
		e.opCount[o.operation] += f * float64(o.n)
		e.records += f * float64(o.n)
	}
	return e
}

// record runs the workload of one phase on r.
func record(t *testing.T, r *telemetry.Recorder, phase int) {
	t.Helper()
	id := 0
	next := func() string { id++; return "p" + strconv.Itoa(phase) + "-" + strconv.Itoa(id) }
	for _, w := range runs {
		for range w.n {
			task := next()
			var opts []telemetry.StartOption
			if w.wait > 0 {
				opts = append(opts, telemetry.WithEnqueueTime(time.Now().Add(-w.wait)))
			}
			if err := r.StartEvent(w.event, task, opts...); err != nil {
				t.Fatal(err)
			}
			for range w.retries {
				if err := r.RecordRetry(task); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			if w.failed {
				err = errors.New("upstream returned 503")
			}
			if err := r.EndEvent(task, err); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, o := range ops {
		for range o.n {
			task := next()
			if err := r.Network().StartOperation(task, "api.internal", 443, o.operation); err != nil {
				t.Fatal(err)
			}
			var err error
			if o.failed {
				err = errors.New("connection reset")
			}
			if err := r.Network().EndOperation(task, o.sent, o.received, err); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// stalled is a queued publisher whose backend never answers: each attempt
// runs into the publish timeout. With a small queue it drops records.
type stalled struct{}

func (stalled) PublishEventMetrics(ctx context.Context, _ telemetry.EventMetrics) error {
	<-ctx.Done()
	return ctx.Err()
}
func (stalled) PublishNetworkMetrics(ctx context.Context, _ telemetry.NetworkMetrics) error {
	<-ctx.Done()
	return ctx.Err()
}
func (stalled) Name() string { return "stalled" }

// panicky is a queued publisher that rejects events and panics on network
// records.
type panicky struct{}

func (panicky) PublishEventMetrics(context.Context, telemetry.EventMetrics) error {
	return telemetry.Permanent(errors.New("400 bad request"))
}
func (panicky) PublishNetworkMetrics(context.Context, telemetry.NetworkMetrics) error {
	panic("publisher bug")
}
func (panicky) Name() string { return "panicky" }

// vector runs q and returns its samples keyed by the values of labels,
// joined with "/".
func vector(ctx context.Context, srv *testutil.Prometheus, q string, labels ...string) (map[string]float64, error) {
	v, err := srv.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	m := make(map[string]float64, len(v))
	for _, s := range v {
		var key []string
		for _, l := range labels {
			key = append(key, string(s.Metric[model.LabelName(l)]))
		}
		m[strings.Join(key, "/")] = float64(s.Value)
	}
	return m, nil
}

// matches queries Prometheus until every query returns want.
func matches(t *testing.T, srv *testutil.Prometheus, want expected) {
	t.Helper()
	checks := []struct {
		query  string
		labels []string
		want   map[string]float64
	}{
		{`sum by (event_name, status) (event_duration_seconds_count)`, []string{"event_name", "status"}, want.counts},
		{`sum by (event_name, status) (event_duration_seconds_bucket{le="+Inf"})`, []string{"event_name", "status"}, want.counts},
		{`sum by (event_name) (event_retries_total)`, []string{"event_name"}, want.retries},
		{`sum by (event_name) (event_wait_seconds_count)`, []string{"event_name"}, want.waited},
		// le is "1.0" in the OpenMetrics exposition, "1" in the text format.
		{`sum by (event_name) (event_wait_seconds_bucket{le=~"1|1.0"})`, []string{"event_name"}, map[string]float64{"resize": 0}},
		{`sum by (operation, direction) (network_bytes_total)`, []string{"operation", "direction"}, want.bytes},
		{`sum by (operation) (network_latency_seconds_count)`, []string{"operation"}, want.opCount},
		{`sum by (publisher) (telemetry_publisher_records_published_total{publisher="prometheus"})`, []string{"publisher"},
			map[string]float64{"prometheus": want.records}},
		// Every record handed to the panicky publisher is dropped, one way or another.
		{`sum by (publisher) (telemetry_publisher_records_dropped_total{publisher="panicky"})`, []string{"publisher"},
			map[string]float64{"panicky": want.records}},
	}
	testutil.Eventually(t, pollTimeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, c := range checks {
			got, err := vector(ctx, srv, c.query, c.labels...)
			if err != nil {
				return err
			}
			if !maps.Equal(got, c.want) {
				return fmt.Errorf("%s: got %v, want %v", c.query, got, c.want)
			}
		}
		return nil
	})
}

// TestPrometheusServer records a known workload, has a real Prometheus
// scrape it, and checks the stored values exactly; then runs every query of
// the Grafana dashboard and every alerting rule against that server.
func TestPrometheusServer(t *testing.T) {
	r, err := telemetry.NewRecorder(
		telemetry.WithLogger(quiet),
		telemetry.WithQueueSize(4),
		telemetry.WithPublishTimeout(20*time.Millisecond),
		telemetry.WithRetry(telemetry.RetryPolicy{MaxAttempts: 1}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	srv := scrapedWithAlerts(t, r, panicky{}, stalled{})

	// Two phases, each scraped, so that rate() over the window sees an
	// increase, as a dashboard of a running pipeline does.
	for phase := 1; phase <= 2; phase++ {
		record(t, r, phase)
		if err := r.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		matches(t, srv, expect(phase))
	}
	// The stalled publisher lost records to its full queue.
	testutil.Eventually(t, pollTimeout, func() error {
		got, err := vector(context.Background(), srv,
			`sum by (publisher, reason) (telemetry_publisher_records_dropped_total{publisher="stalled"})`, "reason")
		if err != nil {
			return err
		}
		if got["queue_full"] == 0 {
			return fmt.Errorf("stalled publisher: got drops %v, want some queue_full", got)
		}
		return nil
	})

	t.Run("dashboard", func(t *testing.T) {
		queries := testutil.DashboardQueries(t, dashboardFile)
		for _, q := range queries {
			t.Run(q.Name, func(t *testing.T) {
				testutil.Eventually(t, pollTimeout, func() error { return testutil.HasLegendData(context.Background(), srv, q) })
			})
		}
	})

	// With one job, event and operation picked instead of "All" (".*",
	// which also matches a label that a series lacks), every query still
	// has data: each label it filters on exists. "resize" has runs of
	// each status, with waits in a queue. The rate window reaches back to
	// the first phase, however long the subtests above took.
	t.Run("dashboard with picked values", func(t *testing.T) {
		picked := map[string]string{"job": "eventpipeline", "event_name": "resize", "operation": "remote_call", "__rate_interval": "10m"}
		for _, q := range testutil.DashboardQueriesFor(t, dashboardFile, picked) {
			t.Run(q.Name, func(t *testing.T) {
				testutil.Eventually(t, pollTimeout, func() error { return testutil.HasLegendData(context.Background(), srv, q) })
			})
		}
	})

	t.Run("alerts", func(t *testing.T) {
		// Every rule of the file is loaded, evaluates without error, and its
		// expression runs as a query.
		var names []string
		testutil.Eventually(t, pollTimeout, func() error {
			res, err := srv.API.Rules(context.Background(), nil)
			if err != nil {
				return err
			}
			names = names[:0]
			for _, g := range res.Groups {
				for _, rule := range g.Rules {
					a, ok := rule.(v1.AlertingRule)
					if !ok {
						return fmt.Errorf("group %s: unexpected rule %T", g.Name, rule)
					}
					if a.Health != v1.RuleHealthGood {
						return fmt.Errorf("rule %s: health %q, error %q", a.Name, a.Health, a.LastError)
					}
					if _, err := srv.Query(context.Background(), a.Query); err != nil {
						return fmt.Errorf("rule %s: %w", a.Name, err)
					}
					names = append(names, a.Name)
				}
			}
			return nil
		})
		if len(names) != 8 {
			t.Errorf("got rules %v, want the 8 of %s", names, alertsFile)
		}
		// Every alert's expression has data (its comparisons made bool, so
		// that series below the threshold count too).
		testutil.Eventually(t, pollTimeout, func() error {
			qs, err := testutil.AlertQueries(context.Background(), srv)
			if err != nil {
				return err
			}
			for _, q := range qs {
				if err := testutil.HasData(context.Background(), srv, q.Expr); err != nil {
					return fmt.Errorf("alert %s: %w", q.Name, err)
				}
			}
			return nil
		})
		// The workload fails 7 of 26 runs, retries "extract" 5 times in 9
		// runs, and drops telemetry: those alerts become active (pending
		// until their "for" has passed). Its events and calls are fast.
		testutil.Eventually(t, pollTimeout, func() error {
			res, err := srv.API.Alerts(context.Background())
			if err != nil {
				return err
			}
			active := map[string]bool{}
			for _, a := range res.Alerts {
				active[string(a.Labels["alertname"])] = true
			}
			for _, want := range []string{"EventFailureRateHigh", "EventRetriesHigh", "TelemetryRecordsDropped", "TelemetryPublisherFailing"} {
				if !active[want] {
					return fmt.Errorf("alert %s not active; active: %v", want, slices.Sorted(maps.Keys(active)))
				}
			}
			for _, never := range []string{"EventSlow", "NetworkLatencyHigh", "EventFailureRateRising"} {
				if active[never] {
					return fmt.Errorf("alert %s active, want inactive", never)
				}
			}
			return nil
		})
	})
}

// TestPrometheusServerNativeHistograms checks that native histograms reach
// a Prometheus server that ingests them.
func TestPrometheusServerNativeHistograms(t *testing.T) {
	r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	pub, err := prometheus.NewPublisher(prometheus.Config{Listener: listen(t), NativeHistogramBucketFactor: 1.1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddPublisher(pub); err != nil {
		t.Fatal(err)
	}
	srv := testutil.StartPrometheus(t, testutil.PrometheusConfig{
		Targets: []string{pub.Addr().String()},
		Flags:   []string{"--enable-feature=native-histograms"},
	})
	record(t, r, 1)
	want := expect(1)
	testutil.Eventually(t, pollTimeout, func() error {
		const q = `sum by (event_name, status) (histogram_count(event_duration_seconds))`
		got, err := vector(context.Background(), srv, q, "event_name", "status")
		if err != nil {
			return err
		}
		if !maps.Equal(got, want.counts) {
			return fmt.Errorf("%s: got %v, want %v", q, got, want.counts)
		}
		return nil
	})
}

// TestDashboard checks the dashboard's structure, and with promtool (if
// installed) that every query parses.
func TestDashboard(t *testing.T) {
	d := testutil.LoadDashboard(t, dashboardFile)
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want a current one (>= 36)", d.SchemaVersion)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: want both", d.UID, d.Title)
	}
	var ds bool
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			ds = true
		}
	}
	if !ds {
		t.Error(`no template variable "datasource" of type datasource for prometheus`)
	}
	qs := testutil.DashboardQueries(t, dashboardFile)
	var titles []string
	var walk func([]testutil.Panel)
	walk = func(ps []testutil.Panel) {
		for _, p := range ps {
			titles = append(titles, p.Title)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	all := strings.Join(titles, "\n")
	for _, want := range []string{"p50 / p95 / p99", "throughput", "failure rate", "Queue wait", "Retries", "Network throughput", "Network latency", "dropped", "queue"} {
		if !strings.Contains(all, want) {
			t.Errorf("no panel title mentions %q", want)
		}
	}
	// Every metric of the contract is used.
	var exprs strings.Builder
	for _, q := range qs {
		exprs.WriteString(q.Expr + "\n")
	}
	for _, m := range []string{
		prometheus.MetricEventDuration, prometheus.MetricEventRetries, prometheus.MetricNetworkBytes, prometheus.MetricNetworkLatency,
		prometheus.MetricEventWait,
		prometheus.MetricPublished, prometheus.MetricFailedAttempts, prometheus.MetricDropped, prometheus.MetricQueueLength,
	} {
		if !strings.Contains(exprs.String(), m) {
			t.Errorf("no query uses %s", m)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skipf("skipping the parse check: no promtool in $PATH (%v)", err)
	}
	// promtool parses the expressions of recording rules: make one per query.
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range qs {
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, strconv.Quote(q.Expr))
	}
	file := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
}

// TestAlertRules checks the alerting rules with promtool: their syntax,
// and their unit tests (which alerts fire on which series, with which
// labels and annotations).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skipf("skipping: no promtool in $PATH (%v); install it, e.g. apt-get install prometheus", err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"check rules", []string{"check", "rules", alertsFile}, "SUCCESS: 8 rules found"},
		{"test rules", []string{"test", "rules", alertsTestFile}, "SUCCESS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(promtool, tc.args...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(tc.args, " "), err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("promtool %s: got %q, want %q", strings.Join(tc.args, " "), out, tc.want)
			}
		})
	}
}

// blocked is a queued publisher whose backend does not answer until
// release is closed: its queue fills, and further records are dropped.
// entered, of capacity one, receives a value as a publish call starts
// if it is empty.
type blocked struct{ entered, release chan struct{} }

func (b blocked) PublishEventMetrics(ctx context.Context, _ telemetry.EventMetrics) error {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (b blocked) PublishNetworkMetrics(ctx context.Context, m telemetry.NetworkMetrics) error {
	return b.PublishEventMetrics(ctx, telemetry.EventMetrics{})
}
func (blocked) Name() string { return "blocked" }

// TestQueueNearlyFullAlertOneKind fills the queue of a publisher with
// event records only, as a pipeline without network instrumentation does,
// until it drops records, and checks with a real Prometheus that the
// TelemetryQueueNearlyFull alert is active for it: the queue of each kind
// of record is full at half of telemetry_publisher_queue_capacity, which
// counts both.
func TestQueueNearlyFullAlertOneKind(t *testing.T) {
	const size = 64 // a multiple of the number of shards of the buffers (at most 16), so that it is exact
	r, err := telemetry.NewRecorder(
		telemetry.WithLogger(quiet),
		telemetry.WithQueueSize(size),
		telemetry.WithPublishTimeout(time.Hour),
		telemetry.WithRetry(telemetry.RetryPolicy{MaxAttempts: 1}),
	)
	if err != nil {
		t.Fatal(err)
	}
	b := blocked{entered: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(func() {
		close(b.release)
		r.Close(context.Background())
	})
	srv := scrapedWithAlerts(t, r, b)
	// The first run is taken by the publisher's worker, whose publish
	// call hangs, as when the backend stops answering; the next fill the
	// queue of event records, and the rest are dropped.
	for i := range 4 * size {
		id := "run-" + strconv.Itoa(i)
		if err := r.StartEvent("load", id); err != nil {
			t.Fatal(err)
		}
		if err := r.EndEvent(id, nil); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-b.entered
		}
	}
	var stats telemetry.PublisherStats
	for _, s := range r.PublisherStats() {
		if s.Name == "blocked" {
			stats = s
		}
	}
	if stats.DroppedQueueFull == 0 {
		t.Fatalf("the blocked publisher dropped nothing: %+v", stats)
	}
	testutil.Eventually(t, pollTimeout, func() error {
		res, err := srv.API.Alerts(context.Background())
		if err != nil {
			return err
		}
		var active []string
		for _, a := range res.Alerts {
			if a.Labels["alertname"] == "TelemetryQueueNearlyFull" && a.Labels["publisher"] == "blocked" {
				return nil
			}
			active = append(active, a.Labels.String())
		}
		return fmt.Errorf("TelemetryQueueNearlyFull not active for the blocked publisher (%d queued of capacity %d, %d dropped as queue_full); active: %v",
			stats.Queued, stats.QueueCapacity, stats.DroppedQueueFull, active)
	})
}

// scrapedWithAlerts attaches a Prometheus publisher to r, then pubs, and
// starts a Prometheus that scrapes the publisher with the shipped alert
// rules.
func scrapedWithAlerts(t *testing.T, r *telemetry.Recorder, pubs ...telemetry.Publisher) *testutil.Prometheus {
	t.Helper()
	pub, err := prometheus.NewPublisher(prometheus.Config{Listener: listen(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append([]telemetry.Publisher{pub}, pubs...) {
		if err := r.AddPublisher(p); err != nil {
			t.Fatal(err)
		}
	}
	rules, err := filepath.Abs(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.StartPrometheus(t, testutil.PrometheusConfig{
		Targets:   []string{pub.Addr().String()},
		RuleFiles: []string{rules},
	})
}
