package grafanacloud

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/retry"
)

// scopeName is the instrumentation scope of the metrics sent with OTLP.
const scopeName = "github.com/eventpipeline/eventpipeline/telemetry/grafanacloud"

// otlpSender pushes with OTLP over HTTP through the official exporter,
// whose own retries are off: the Publisher retries, within its interval,
// knowing the HTTP status that captureTransport records.
type otlpSender struct {
	url      string
	exp      *otlpmetrichttp.Exporter
	res      *resource.Resource
	start    time.Time // start time of every cumulative point
	eventB   []float64
	latencyB []float64
}

func newOTLPSender(c *Config, t target, client *http.Client, start time.Time) (*otlpSender, error) {
	wrapped := *client
	base := wrapped.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	wrapped.Transport = captureTransport{base: base}
	exp, err := otlpmetrichttp.New(context.Background(),
		otlpmetrichttp.WithEndpointURL(t.url.String()),
		otlpmetrichttp.WithHeaders(map[string]string{"Authorization": basicAuth(c.OrgSlug, c.APIKey).Reveal(), "User-Agent": userAgent}),
		otlpmetrichttp.WithHTTPClient(&wrapped),
		otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}),
	)
	if err != nil {
		return nil, fmt.Errorf("grafanacloud: OTLP exporter: %w", err)
	}
	return &otlpSender{
		url: t.url.String(),
		exp: exp,
		res: resource.NewSchemaless(
			attribute.String("service.name", c.Job),
			attribute.String("service.instance.id", c.Instance),
		),
		start:    start,
		eventB:   c.EventBuckets,
		latencyB: c.LatencyBuckets,
	}, nil
}

// metrics converts snap into the OTLP data model: cumulative histograms
// and monotonic sums with the same names and attributes as the Prometheus
// series, so that Grafana Cloud shows the same series for either protocol.
func (s *otlpSender) metrics(snap *snapshot) *metricdata.ResourceMetrics {
	now := snap.time
	var (
		durations = make([]metricdata.HistogramDataPoint[float64], 0, 2*len(snap.events))
		retries   = make([]metricdata.DataPoint[int64], 0, len(snap.events))
		latencies = make([]metricdata.HistogramDataPoint[float64], 0, len(snap.ops))
		bytes     = make([]metricdata.DataPoint[int64], 0, 2*len(snap.ops))
	)
	hist := func(h *histogramPoint, bounds []float64, attrs ...attribute.KeyValue) metricdata.HistogramDataPoint[float64] {
		return metricdata.HistogramDataPoint[float64]{
			Attributes:   attribute.NewSet(attrs...),
			StartTime:    s.start,
			Time:         now,
			Count:        h.count,
			Bounds:       bounds,
			BucketCounts: append([]uint64(nil), h.counts...),
			Sum:          h.sum,
		}
	}
	sum := func(v uint64, attrs ...attribute.KeyValue) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attrs...), StartTime: s.start, Time: now, Value: int64(v)}
	}
	for i := range snap.events {
		e := &snap.events[i]
		name := attribute.String(metricdef.LabelEventName, e.name)
		durations = append(durations,
			hist(&e.completed, s.eventB, name, attribute.String(metricdef.LabelStatus, metricdef.StatusCompleted)),
			hist(&e.failed, s.eventB, name, attribute.String(metricdef.LabelStatus, metricdef.StatusFailed)))
		retries = append(retries, sum(e.retries, name))
	}
	for i := range snap.ops {
		o := &snap.ops[i]
		op := attribute.String(metricdef.LabelOperation, o.name)
		latencies = append(latencies, hist(&o.latency, s.latencyB, op))
		bytes = append(bytes,
			sum(o.sent, op, attribute.String(metricdef.LabelDirection, metricdef.DirectionSent)),
			sum(o.received, op, attribute.String(metricdef.LabelDirection, metricdef.DirectionReceived)))
	}
	var ms []metricdata.Metrics
	if len(snap.events) > 0 {
		ms = append(ms,
			metricdata.Metrics{Name: MetricEventDuration, Description: metricdef.HelpEventDuration, Unit: "s",
				Data: metricdata.Histogram[float64]{DataPoints: durations, Temporality: metricdata.CumulativeTemporality}},
			metricdata.Metrics{Name: MetricEventRetries, Description: metricdef.HelpEventRetries, Unit: "{retry}",
				Data: metricdata.Sum[int64]{DataPoints: retries, Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}})
	}
	if len(snap.ops) > 0 {
		ms = append(ms,
			metricdata.Metrics{Name: MetricNetworkBytes, Description: metricdef.HelpNetworkBytes, Unit: "By",
				Data: metricdata.Sum[int64]{DataPoints: bytes, Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}},
			metricdata.Metrics{Name: MetricNetworkLatency, Description: metricdef.HelpNetworkLatency, Unit: "s",
				Data: metricdata.Histogram[float64]{DataPoints: latencies, Temporality: metricdata.CumulativeTemporality}})
	}
	if len(snap.delivery) > 0 {
		ms = append(ms, s.deliveryMetrics(snap)...)
	}
	return &metricdata.ResourceMetrics{
		Resource:     s.res,
		ScopeMetrics: []metricdata.ScopeMetrics{{Scope: instrumentation.Scope{Name: scopeName}, Metrics: ms}},
	}
}

// deliveryMetrics converts the delivery counters of snap into monotonic
// sums and gauges with the names and attributes of the self-metrics.
func (s *otlpSender) deliveryMetrics(snap *snapshot) []metricdata.Metrics {
	n := len(snap.delivery)
	var (
		published = make([]metricdata.DataPoint[int64], 0, n)
		failed    = make([]metricdata.DataPoint[int64], 0, n)
		dropped   = make([]metricdata.DataPoint[int64], 0, 3*n)
		panics    = make([]metricdata.DataPoint[int64], 0, n)
		queued    = make([]metricdata.DataPoint[int64], 0, n)
		capacity  = make([]metricdata.DataPoint[int64], 0, n)
	)
	point := func(v int64, start time.Time, attrs ...attribute.KeyValue) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attrs...), StartTime: start, Time: snap.time, Value: v}
	}
	for i := range snap.delivery {
		d := &snap.delivery[i]
		pub := attribute.String(metricdef.LabelPublisher, d.Name)
		published = append(published, point(int64(d.Published), s.start, pub))
		failed = append(failed, point(int64(d.FailedAttempts), s.start, pub))
		dropped = append(dropped,
			point(int64(d.DroppedQueueFull), s.start, pub, attribute.String(metricdef.LabelReason, metricdef.ReasonQueueFull)),
			point(int64(d.DroppedFailed), s.start, pub, attribute.String(metricdef.LabelReason, metricdef.ReasonFailed)),
			point(int64(d.DroppedClosed), s.start, pub, attribute.String(metricdef.LabelReason, metricdef.ReasonClosed)))
		panics = append(panics, point(int64(d.Panics), s.start, pub))
		queued = append(queued, point(int64(d.Queued), time.Time{}, pub))
		capacity = append(capacity, point(int64(d.QueueCapacity), time.Time{}, pub))
	}
	sum := func(name, help, unit string, pts []metricdata.DataPoint[int64]) metricdata.Metrics {
		return metricdata.Metrics{Name: name, Description: help, Unit: unit,
			Data: metricdata.Sum[int64]{DataPoints: pts, Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}}
	}
	gauge := func(name, help, unit string, pts []metricdata.DataPoint[int64]) metricdata.Metrics {
		return metricdata.Metrics{Name: name, Description: help, Unit: unit, Data: metricdata.Gauge[int64]{DataPoints: pts}}
	}
	return []metricdata.Metrics{
		sum(metricdef.Published, metricdef.HelpPublished, "{record}", published),
		sum(metricdef.FailedAttempts, metricdef.HelpFailedAttempts, "{attempt}", failed),
		sum(metricdef.Dropped, metricdef.HelpDropped, "{record}", dropped),
		sum(metricdef.Panics, metricdef.HelpPanics, "{panic}", panics),
		gauge(metricdef.QueueLength, metricdef.HelpQueueLength, "{record}", queued),
		gauge(metricdef.QueueCapacity, metricdef.HelpQueueCapacity, "{record}", capacity),
	}
}

func (s *otlpSender) prepare(snap *snapshot) (func(context.Context) attemptResult, error) {
	rm := s.metrics(snap)
	return func(ctx context.Context) attemptResult {
		var c capture
		err := s.exp.Export(context.WithValue(ctx, captureKey{}, &c), rm)
		switch {
		case err == nil:
			return attemptResult{status: c.status}
		case c.status == 0:
			return attemptResult{err: fmt.Errorf("grafanacloud: OTLP export to %s: %w", s.url, err)}
		case c.status/100 == 2:
			// A partial success: some points were rejected, and would be
			// again. Not retried, but reported.
			return attemptResult{status: c.status, err: fmt.Errorf("grafanacloud: OTLP export to %s: partial success: %w", s.url, err)}
		default:
			return attemptResult{status: c.status, retryAfter: c.retryAfter,
				err: &StatusError{Op: "OTLP export to " + s.url, Code: c.status, Body: err.Error()}}
		}
	}, nil
}

func (s *otlpSender) close(ctx context.Context) error {
	if err := s.exp.Shutdown(ctx); err != nil {
		return fmt.Errorf("grafanacloud: shut down OTLP exporter: %w", err)
	}
	return nil
}

// captureKey is the context key under which an OTLP attempt passes its
// *capture to captureTransport.
type captureKey struct{}

// capture is what captureTransport saw of the last response of an attempt.
type capture struct {
	status     int
	retryAfter time.Duration
}

// captureTransport records the status and Retry-After header of responses
// into the *capture found in the request's context, if any. The exporter
// does not report them in a form that can be matched.
type captureTransport struct{ base http.RoundTripper }

func (t captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if c, ok := req.Context().Value(captureKey{}).(*capture); ok && resp != nil {
		c.status = resp.StatusCode
		c.retryAfter = retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return resp, err
}
