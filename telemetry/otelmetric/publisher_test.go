package otelmetric

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/telemetrytest"
)

var quiet = slog.New(slog.DiscardHandler)

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

// newManual returns a Publisher recording into an SDK MeterProvider read
// by a ManualReader.
func newManual(t testing.TB, cfg Config) (*Publisher, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	cfg.MeterProvider = mp
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	p, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, reader
}

func collect(t *testing.T, r *sdkmetric.ManualReader) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var ms []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			t.Errorf("got scope %q, want %q", sm.Scope.Name, ScopeName)
		}
		ms = append(ms, sm.Metrics...)
	}
	return ms
}

// TestPrometheusNames collects the instruments from a real SDK and
// translates each metric and attribute with the translator that
// Prometheus 3's OTLP receiver, Mimir and the collector's Prometheus
// exporters use, under every translation strategy: each gives exactly the
// name the dashboards and alerts query, and the same label names.
func TestPrometheusNames(t *testing.T) {
	p, reader := newManual(t, Config{})
	r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet), telemetry.WithPublishers(p))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx := context.Background()
	waited := finishedEvent("load", telemetry.StatusFailed, time.Second, 2)
	waited.EnqueueTime = waited.StartTime.Add(-time.Second) // makes event_wait_seconds too
	p.PublishEventMetrics(ctx, waited)
	p.PublishNetworkMetrics(ctx, finishedOp("query", time.Second, 1, 2))
	ms := collect(t, reader)
	want := []string{metricdef.EventDuration, metricdef.EventRetries, metricdef.EventWait, metricdef.NetworkBytes, metricdef.NetworkLatency,
		metricdef.Published, metricdef.FailedAttempts, metricdef.Dropped, metricdef.Panics, metricdef.QueueLength, metricdef.QueueCapacity}
	var got []string
	for _, strategy := range []otlptranslator.TranslationStrategyOption{
		otlptranslator.UnderscoreEscapingWithSuffixes, otlptranslator.NoUTF8EscapingWithSuffixes,
		otlptranslator.UnderscoreEscapingWithoutSuffixes, otlptranslator.NoTranslation,
	} {
		namer := otlptranslator.NewMetricNamer("", strategy)
		labels := otlptranslator.LabelNamer{UTF8Allowed: !strategy.ShouldEscape()}
		got = got[:0]
		for _, m := range ms {
			var typ otlptranslator.MetricType = otlptranslator.MetricTypeUnknown
			var attrs []attribute.Set
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				typ = otlptranslator.MetricTypeHistogram
				for _, dp := range d.DataPoints {
					attrs = append(attrs, dp.Attributes)
				}
			case metricdata.Sum[int64]:
				typ = otlptranslator.MetricTypeNonMonotonicCounter
				if d.IsMonotonic {
					typ = otlptranslator.MetricTypeMonotonicCounter
				}
				for _, dp := range d.DataPoints {
					attrs = append(attrs, dp.Attributes)
				}
			case metricdata.Gauge[int64]:
				typ = otlptranslator.MetricTypeGauge
				for _, dp := range d.DataPoints {
					attrs = append(attrs, dp.Attributes)
				}
			}
			name, err := namer.Build(otlptranslator.Metric{Name: m.Name, Unit: m.Unit, Type: typ})
			if err != nil {
				t.Fatal(err)
			}
			if name != m.Name {
				t.Errorf("%s: %s (unit %q) becomes %s in Prometheus, want %s", strategy, m.Name, m.Unit, name, m.Name)
			}
			got = append(got, name)
			for _, set := range attrs {
				for _, kv := range set.ToSlice() {
					if l, err := labels.Build(string(kv.Key)); err != nil || l != string(kv.Key) {
						t.Errorf("%s: attribute %s becomes label %s (%v)", strategy, kv.Key, l, err)
					}
				}
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: got metrics %v, want %v", strategy, got, want)
		}
	}
}

// TestRecorded checks the values, attributes and bucket boundaries
// recorded into a real SDK.
func TestRecorded(t *testing.T) {
	p, reader := newManual(t, Config{EventBuckets: []float64{1, 10}})
	ctx := context.Background()
	for _, d := range []time.Duration{500 * time.Millisecond, 5 * time.Second, 20 * time.Second} {
		p.PublishEventMetrics(ctx, finishedEvent("load", telemetry.StatusCompleted, d, 1))
	}
	p.PublishEventMetrics(ctx, finishedEvent("load", telemetry.StatusFailed, time.Second, 0))
	p.PublishNetworkMetrics(ctx, finishedOp("", time.Second, 3, 4))
	got := map[string]string{}
	for _, m := range collect(t, reader) {
		switch d := m.Data.(type) {
		case metricdata.Histogram[float64]:
			for _, dp := range d.DataPoints {
				got[m.Name+"{"+dp.Attributes.Encoded(attribute.DefaultEncoder())+"}"] = fmt.Sprintf("%d %v %v %v", dp.Count, dp.Sum, dp.Bounds, dp.BucketCounts)
			}
		case metricdata.Sum[int64]:
			for _, dp := range d.DataPoints {
				got[m.Name+"{"+dp.Attributes.Encoded(attribute.DefaultEncoder())+"}"] = strconv.FormatInt(dp.Value, 10)
			}
		}
	}
	want := map[string]string{
		"event_duration_seconds{event_name=load,status=completed}":      "3 25.5 [1 10] [1 1 1]",
		"event_duration_seconds{event_name=load,status=failed}":         "1 1 [1 10] [1 0 0]",
		"event_retries_total{event_name=load}":                          "3",
		"network_latency_seconds{operation=remote_call}":                fmt.Sprintf("1 1 %v [0 0 0 0 0 0 0 0 0 0 1 0 0 0 0 0 0]", DefaultLatencyBuckets),
		"network_bytes_total{direction=sent,operation=remote_call}":     "3",
		"network_bytes_total{direction=received,operation=remote_call}": "4",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d points, want %d: %v", len(got), len(want), got)
	}
}

// TestOverflow checks that names beyond MaxLabelValues are counted under
// OverflowLabelValue, and that a name really "_overflow" is not.
func TestOverflow(t *testing.T) {
	p, reader := newManual(t, Config{MaxLabelValues: 2})
	ctx := context.Background()
	for _, name := range []string{"a", OverflowLabelValue, "c", "d"} {
		p.PublishEventMetrics(ctx, finishedEvent(name, telemetry.StatusCompleted, time.Second, 1))
	}
	got := map[string]int64{}
	for _, m := range collect(t, reader) {
		if d, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == metricdef.EventRetries {
			for _, dp := range d.DataPoints {
				v, _ := dp.Attributes.Value(metricdef.LabelEventName)
				got[v.AsString()] = dp.Value
			}
		}
	}
	want := map[string]int64{"a": 1, metricdef.LabelValue(OverflowLabelValue): 1, OverflowLabelValue: 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got retries by event_name %v, want %v", got, want)
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := NewPublisher(Config{MaxLabelValues: -1, EventBuckets: []float64{}, Name: "\xff"})
	for _, w := range []string{"otelmetric: MeterProvider is required", "MaxLabelValues -1 is negative", "EventBuckets is empty", "Name is not valid UTF-8"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("got %v, want it to contain %q", err, w)
		}
	}
}

func TestClose(t *testing.T) {
	p, _ := newManual(t, Config{})
	ctx := context.Background()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"close again": p.Close(ctx),
		"flush":       p.Flush(ctx),
		"publish":     p.PublishEventMetrics(ctx, finishedEvent("e", telemetry.StatusCompleted, 0, 0)),
		"publish op":  p.PublishNetworkMetrics(ctx, finishedOp("op", 0, 0, 0)),
	} {
		if !errors.Is(err, telemetry.ErrClosed) {
			t.Errorf("%s after Close: got %v, want ErrClosed", name, err)
		}
	}
}

func TestPublishAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	p, _ := newManual(t, Config{WaitBuckets: []float64{1, 10}})
	ctx := context.Background()
	ev := finishedEvent("load", telemetry.StatusCompleted, time.Millisecond, 2)
	op := finishedOp("rpc", time.Millisecond, 10, 20)
	p.PublishEventMetrics(ctx, ev) // makes the attribute sets and the SDK's series
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

// TestCollector records through a Recorder into an SDK MeterProvider whose
// periodic reader exports with the SDK's OTLP/HTTP exporter to a real
// OpenTelemetry Collector, and checks the metric names, units, attributes
// and values the collector wrote.
func TestCollector(t *testing.T) {
	c := testutil.StartCollector(t)
	exp, err := otlpmetrichttp.New(context.Background(), otlpmetrichttp.WithEndpointURL(c.Endpoint+"/v1/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "otelmetric-test"))))
	defer mp.Shutdown(context.Background())
	p, err := NewPublisher(Config{MeterProvider: mp, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet), telemetry.WithPublishers(p))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		id := "load-" + strconv.Itoa(i)
		r.StartEvent("load", id)
		r.RecordRetry(id)
		var runErr error
		if i == 2 {
			runErr = errors.New("disk full")
		}
		r.EndEvent(id, runErr)
		r.Network().StartOperation(id, "db.internal", 5432, "query")
		r.Network().EndOperation(id, 10, 100, nil)
	}
	if err := r.Flush(context.Background()); err != nil { // the MeterProvider's ForceFlush: an export
		t.Fatal(err)
	}
	want := map[string]string{
		"event_duration_seconds{event_name=load,status=completed}":          "histogram s 2",
		"event_duration_seconds{event_name=load,status=failed}":             "histogram s 1",
		"event_retries_total{event_name=load}":                              "sum {retry} 3",
		"network_bytes_total{direction=sent,operation=query}":               "sum By 30",
		"network_bytes_total{direction=received,operation=query}":           "sum By 300",
		"network_latency_seconds{operation=query}":                          "histogram s 3",
		"telemetry_publisher_records_published_total{publisher=otelmetric}": "sum {record} 6",
		"telemetry_publisher_queue_capacity{publisher=otelmetric}":          "gauge {record} 0",
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		latest, err := c.LatestMetrics()
		if err != nil {
			return err
		}
		var errs []error
		for k, w := range want {
			p, ok := latest[k]
			v := p.Value
			if p.Kind == "histogram" {
				v = float64(p.Count)
				if fmt.Sprint(p.Bounds) != fmt.Sprint(DefaultEventBuckets) && fmt.Sprint(p.Bounds) != fmt.Sprint(DefaultLatencyBuckets) {
					errs = append(errs, fmt.Errorf("%s: got bounds %v, want the defaults", k, p.Bounds))
				}
			}
			if got := fmt.Sprintf("%s %s %v", p.Kind, p.Unit, v); !ok || got != w {
				errs = append(errs, fmt.Errorf("%s: got %q (present %v), want %q", k, got, ok, w))
			}
			if ok && (p.Resource["service.name"] != "otelmetric-test" || p.Scope != ScopeName) {
				errs = append(errs, fmt.Errorf("%s: got resource %v, scope %s", k, p.Resource, p.Scope))
			}
		}
		return errors.Join(errs...)
	})
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestConformance runs the conformance kit against Publishers recording
// into SDK MeterProviders, and reads what was delivered from their readers.
func TestConformance(t *testing.T) {
	var reader *sdkmetric.ManualReader
	err := telemetrytest.TestPublisher(func() (telemetry.Publisher, error) {
		var p *Publisher
		p, reader = newManual(t, Config{})
		return p, nil
	}, func() (events, network []string) {
		var ev, ops uint64
		for _, m := range collect(t, reader) {
			if d, ok := m.Data.(metricdata.Histogram[float64]); ok {
				for _, dp := range d.DataPoints {
					switch m.Name {
					case metricdef.EventDuration:
						ev += dp.Count
					case metricdef.NetworkLatency:
						ops += dp.Count
					}
				}
			}
		}
		return conformanceIDs(int(ev)), conformanceIDs(int(ops))
	})
	if err != nil {
		t.Error(err)
	}
}

// conformanceIDs returns the task ids of the first n records of the
// conformance kit: a metrics backend delivers counts, not task ids.
func conformanceIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("conformance-", i)
	}
	return ids
}

// TestWaitHistogram checks event_wait_seconds: the wait of a run given an
// enqueue time, in seconds, by event name, with the wait buckets; a run
// without one is not observed.
func TestWaitHistogram(t *testing.T) {
	p, reader := newManual(t, Config{})
	ctx := context.Background()
	m := finishedEvent("resize", telemetry.StatusCompleted, time.Second, 0)
	p.PublishEventMetrics(ctx, m) // no enqueue time
	m.EnqueueTime = m.StartTime.Add(-3 * time.Second)
	p.PublishEventMetrics(ctx, m)
	var found bool
	for _, metric := range collect(t, reader) {
		if metric.Name != metricdef.EventWait {
			continue
		}
		found = true
		h, ok := metric.Data.(metricdata.Histogram[float64])
		if !ok || len(h.DataPoints) != 1 || metric.Unit != "s" {
			t.Fatalf("got %+v, want one histogram point in seconds", metric)
		}
		pt := h.DataPoints[0]
		name, _ := pt.Attributes.Value(metricdef.LabelEventName)
		if pt.Count != 1 || pt.Sum != 3 || name.AsString() != "resize" || !slices.Equal(pt.Bounds, metricdef.WaitBuckets()) {
			t.Errorf("got count %d sum %v event %q bounds %v; want 1, 3, resize and the wait buckets", pt.Count, pt.Sum, name.AsString(), pt.Bounds)
		}
	}
	if !found {
		t.Errorf("no %s metric", metricdef.EventWait)
	}
}

// TestDefaultLimitWithinSDKCardinalityLimit records more event names and
// operations than the default MaxLabelValues, each with both statuses and
// both directions, into an SDK MeterProvider with its default cardinality
// limit, and checks that every data point keeps its labels: none is folded
// into the SDK's own overflow series (otel.metric.overflow=true, without
// event_name or operation), which a dashboard would miss, and the runs of
// the extra names are all under OverflowLabelValue.
func TestDefaultLimitWithinSDKCardinalityLimit(t *testing.T) {
	t.Setenv("OTEL_GO_X_CARDINALITY_LIMIT", "") // the SDK's default
	p, reader := newManual(t, Config{})
	ctx := context.Background()
	const extra = 10
	names := DefaultMaxLabelValues + extra
	for i := range names {
		name := "event-" + strconv.Itoa(i)
		for _, status := range []telemetry.Status{telemetry.StatusCompleted, telemetry.StatusFailed} {
			if err := p.PublishEventMetrics(ctx, finishedEvent(name, status, time.Millisecond, 1)); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.PublishNetworkMetrics(ctx, finishedOp("op-"+strconv.Itoa(i), time.Millisecond, 1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	counts := map[string]uint64{} // metric/label value: runs or retries
	for _, m := range collect(t, reader) {
		var sets []attribute.Set
		var values []uint64
		switch d := m.Data.(type) {
		case metricdata.Histogram[float64]:
			for _, dp := range d.DataPoints {
				sets, values = append(sets, dp.Attributes), append(values, dp.Count)
			}
		case metricdata.Sum[int64]:
			for _, dp := range d.DataPoints {
				sets, values = append(sets, dp.Attributes), append(values, uint64(dp.Value))
			}
		}
		for i, set := range sets {
			if set.HasValue("otel.metric.overflow") {
				t.Errorf("%s: %d in the SDK's overflow series %v, without the labels of their records", m.Name, values[i], set.ToSlice())
				continue
			}
			label := metricdef.LabelEventName
			if strings.HasPrefix(m.Name, "network_") {
				label = metricdef.LabelOperation
			}
			if v, ok := set.Value(attribute.Key(label)); ok && v.AsString() == OverflowLabelValue {
				counts[m.Name] += values[i]
			}
		}
	}
	for _, want := range []struct {
		metric string
		n      uint64
	}{{metricdef.EventDuration, 2 * extra}, {metricdef.EventRetries, 2 * extra}, {metricdef.NetworkLatency, extra}, {metricdef.NetworkBytes, 2 * extra}} {
		if got := counts[want.metric]; got != want.n {
			t.Errorf("%s under %s: got %d, want %d", want.metric, OverflowLabelValue, got, want.n)
		}
	}
}
