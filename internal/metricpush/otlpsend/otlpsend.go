// Package otlpsend is the OTLP/HTTP [metricpush.Sender]: it converts a
// snapshot into the OpenTelemetry metrics data model (cumulative
// explicit-bucket histograms, monotonic sums and gauges with the names and
// attributes of the Prometheus series) and exports it with the official
// otlpmetrichttp exporter, whose own retries are off: the Pusher retries,
// knowing the HTTP status and Retry-After that a wrapping transport
// records (retry.CaptureTransport, which the trace exporter of
// telemetry/otlp shares). It is not part of the module's API.
package otlpsend

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
	"github.com/eventpipeline/eventpipeline/internal/metricpush"
	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/internal/safetext"
)

// Config configures a [Sender]. Every field must be set but Headers.
type Config struct {
	// URL is the full URL of the metrics signal, such as
	// http://127.0.0.1:4318/v1/metrics.
	URL string
	// Headers are sent with every request, values in clear.
	Headers map[string]string
	// Client sends the requests; it is not changed.
	Client *http.Client
	// Gzip compresses the request bodies.
	Gzip bool
	// Resource describes the process, such as service.name.
	Resource *resource.Resource
	// Scope is the instrumentation scope of the metrics.
	Scope string
	// Start is the start time of every cumulative point.
	Start time.Time
	// EventBuckets, LatencyBuckets and WaitBuckets are the histograms'
	// bounds.
	EventBuckets   []float64
	LatencyBuckets []float64
	WaitBuckets    []float64
	// Prefix starts every error message, such as "otlp".
	Prefix string
	// StatusError makes the error of a push answered with an HTTP status
	// other than 2xx: op says what was attempted and where.
	StatusError func(op string, code int, body string) error
}

// Sender pushes with OTLP over HTTP through the official exporter.
type Sender struct {
	c   Config
	url string // c.URL as errors show it: safetext.URLString
	exp *otlpmetrichttp.Exporter
}

var _ metricpush.Sender = (*Sender)(nil)

// New returns a Sender configured by c. It does no network I/O.
func New(c Config) (*Sender, error) {
	compression := otlpmetrichttp.NoCompression
	if c.Gzip {
		compression = otlpmetrichttp.GzipCompression
	}
	exp, err := otlpmetrichttp.New(context.Background(),
		otlpmetrichttp.WithEndpointURL(c.URL),
		otlpmetrichttp.WithHeaders(c.Headers),
		otlpmetrichttp.WithHTTPClient(retry.CaptureClient(c.Client)),
		otlpmetrichttp.WithCompression(compression),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}),
	)
	if err != nil {
		// Not expected: otlpmetrichttp.New refuses only a TLS
		// configuration for an insecure endpoint, and it gets none (the
		// TLS settings are in c.Client). Kept in case a new version adds
		// checks.
		return nil, fmt.Errorf("%s: OTLP exporter: %w", c.Prefix, err)
	}
	return &Sender{c: c, url: safetext.URLString(c.URL), exp: exp}, nil
}

// Metrics converts snap into the OTLP data model: cumulative histograms
// and monotonic sums with the same names and attributes as the Prometheus
// series, so that a Prometheus-compatible backend shows the same series
// for either protocol.
func (s *Sender) Metrics(snap *metricpush.Snapshot) *metricdata.ResourceMetrics {
	now := snap.Time
	var (
		durations = make([]metricdata.HistogramDataPoint[float64], 0, 2*len(snap.Events))
		retries   = make([]metricdata.DataPoint[int64], 0, len(snap.Events))
		waits     []metricdata.HistogramDataPoint[float64]
		latencies = make([]metricdata.HistogramDataPoint[float64], 0, len(snap.Ops))
		bytes     = make([]metricdata.DataPoint[int64], 0, 2*len(snap.Ops))
	)
	hist := func(h *metricpush.HistogramPoint, bounds []float64, attrs ...attribute.KeyValue) metricdata.HistogramDataPoint[float64] {
		return metricdata.HistogramDataPoint[float64]{
			Attributes:   attribute.NewSet(attrs...),
			StartTime:    s.c.Start,
			Time:         now,
			Count:        h.Count,
			Bounds:       bounds,
			BucketCounts: append([]uint64(nil), h.Counts...),
			Sum:          h.Sum,
		}
	}
	sum := func(v uint64, attrs ...attribute.KeyValue) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attrs...), StartTime: s.c.Start, Time: now, Value: int64(v)}
	}
	for i := range snap.Events {
		e := &snap.Events[i]
		name := attribute.String(metricdef.LabelEventName, e.Name)
		durations = append(durations,
			hist(&e.Completed, s.c.EventBuckets, name, attribute.String(metricdef.LabelStatus, metricdef.StatusCompleted)),
			hist(&e.Failed, s.c.EventBuckets, name, attribute.String(metricdef.LabelStatus, metricdef.StatusFailed)))
		retries = append(retries, sum(e.Retries, name))
		if e.Waited {
			waits = append(waits, hist(&e.Wait, s.c.WaitBuckets, name))
		}
	}
	for i := range snap.Ops {
		o := &snap.Ops[i]
		op := attribute.String(metricdef.LabelOperation, o.Name)
		latencies = append(latencies, hist(&o.Latency, s.c.LatencyBuckets, op))
		bytes = append(bytes,
			sum(o.Sent, op, attribute.String(metricdef.LabelDirection, metricdef.DirectionSent)),
			sum(o.Received, op, attribute.String(metricdef.LabelDirection, metricdef.DirectionReceived)))
	}
	var ms []metricdata.Metrics
	if len(snap.Events) > 0 {
		ms = append(ms,
			metricdata.Metrics{Name: metricdef.EventDuration, Description: metricdef.HelpEventDuration, Unit: "s",
				Data: metricdata.Histogram[float64]{DataPoints: durations, Temporality: metricdata.CumulativeTemporality}},
			metricdata.Metrics{Name: metricdef.EventRetries, Description: metricdef.HelpEventRetries, Unit: "{retry}",
				Data: metricdata.Sum[int64]{DataPoints: retries, Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}})
	}
	if len(waits) > 0 {
		ms = append(ms, metricdata.Metrics{Name: metricdef.EventWait, Description: metricdef.HelpEventWait, Unit: "s",
			Data: metricdata.Histogram[float64]{DataPoints: waits, Temporality: metricdata.CumulativeTemporality}})
	}
	if len(snap.Ops) > 0 {
		ms = append(ms,
			metricdata.Metrics{Name: metricdef.NetworkBytes, Description: metricdef.HelpNetworkBytes, Unit: "By",
				Data: metricdata.Sum[int64]{DataPoints: bytes, Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}},
			metricdata.Metrics{Name: metricdef.NetworkLatency, Description: metricdef.HelpNetworkLatency, Unit: "s",
				Data: metricdata.Histogram[float64]{DataPoints: latencies, Temporality: metricdata.CumulativeTemporality}})
	}
	if len(snap.Delivery) > 0 {
		ms = append(ms, s.deliveryMetrics(snap)...)
	}
	return &metricdata.ResourceMetrics{
		Resource:     s.c.Resource,
		ScopeMetrics: []metricdata.ScopeMetrics{{Scope: instrumentation.Scope{Name: s.c.Scope}, Metrics: ms}},
	}
}

// deliveryMetrics converts the delivery counters of snap into monotonic
// sums and gauges with the names and attributes of the self-metrics.
func (s *Sender) deliveryMetrics(snap *metricpush.Snapshot) []metricdata.Metrics {
	n := len(snap.Delivery)
	var (
		published = make([]metricdata.DataPoint[int64], 0, n)
		failed    = make([]metricdata.DataPoint[int64], 0, n)
		dropped   = make([]metricdata.DataPoint[int64], 0, 3*n)
		panics    = make([]metricdata.DataPoint[int64], 0, n)
		queued    = make([]metricdata.DataPoint[int64], 0, n)
		capacity  = make([]metricdata.DataPoint[int64], 0, n)
	)
	point := func(v int64, start time.Time, attrs ...attribute.KeyValue) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attrs...), StartTime: start, Time: snap.Time, Value: v}
	}
	for i := range snap.Delivery {
		d := &snap.Delivery[i]
		pub := attribute.String(metricdef.LabelPublisher, d.Name)
		published = append(published, point(int64(d.Published), s.c.Start, pub))
		failed = append(failed, point(int64(d.FailedAttempts), s.c.Start, pub))
		dropped = append(dropped,
			point(int64(d.DroppedQueueFull), s.c.Start, pub, attribute.String(metricdef.LabelReason, metricdef.ReasonQueueFull)),
			point(int64(d.DroppedFailed), s.c.Start, pub, attribute.String(metricdef.LabelReason, metricdef.ReasonFailed)),
			point(int64(d.DroppedClosed), s.c.Start, pub, attribute.String(metricdef.LabelReason, metricdef.ReasonClosed)))
		panics = append(panics, point(int64(d.Panics), s.c.Start, pub))
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

// Prepare converts snap once, for every attempt of one push.
func (s *Sender) Prepare(snap *metricpush.Snapshot) (func(context.Context) metricpush.Result, error) {
	rm := s.Metrics(snap)
	return func(ctx context.Context) metricpush.Result {
		ctx, c := retry.WithCapture(ctx)
		err := s.exp.Export(ctx, rm)
		switch {
		case err == nil:
			return metricpush.Result{Status: c.Status}
		case c.Status == 0:
			return metricpush.Result{Err: fmt.Errorf("%s: OTLP export to %s: %w", s.c.Prefix, s.url, err)}
		case c.Status/100 == 2:
			// A partial success: some points were rejected, and would be
			// again. Not retried, but reported.
			return metricpush.Result{Status: c.Status, Err: fmt.Errorf("%s: OTLP export to %s: partial success: %w", s.c.Prefix, s.url, err)}
		default:
			return metricpush.Result{Status: c.Status, RetryAfter: c.RetryAfter,
				Err: s.c.StatusError("OTLP export to "+s.url, c.Status, errorText(err))}
		}
	}, nil
}

// Close shuts the exporter down.
func (s *Sender) Close(ctx context.Context) error {
	if err := s.exp.Shutdown(ctx); err != nil {
		return fmt.Errorf("%s: shut down OTLP exporter: %w", s.c.Prefix, err)
	}
	return nil
}

// errorText returns the start of err's text as an error keeps it
// (safetext.Body): the exporter puts up to 4 MiB of the answer's body
// into it.
func errorText(err error) string { return safetext.Body(err.Error()) }
