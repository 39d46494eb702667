package otelmetric

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/seriescache"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// ScopeName is the name of the Meter the Publisher gets from the
// MeterProvider: the instrumentation scope of its metrics.
const ScopeName = "github.com/eventpipeline/eventpipeline/telemetry/otelmetric"

// Units of the instruments, in UCUM as OpenTelemetry wants them. An
// OTLP-to-Prometheus translation keeps the names as they are: each already
// ends in its unit's Prometheus suffix (seconds, bytes) and counters in
// _total; curly-brace units are annotations it drops.
const (
	unitSeconds = "s"
	unitBytes   = "By"
	unitRetries = "{retry}"
	unitRecords = "{record}"
	unitAttempt = "{attempt}"
	unitPanics  = "{panic}"
)

// A Publisher records the records of a [telemetry.Recorder] into the
// instruments of a [metric.MeterProvider] of yours, as the four metrics of
// the module (and the delivery self-metrics of the Recorder it is attached
// to), named so that an OTLP-to-Prometheus translation gives the series of
// the Prometheus publisher. The MeterProvider's readers and exporters do
// the rest.
//
// It is a [telemetry.SyncPublisher]: the Recorder calls it on the recording
// path, where it adds to the instruments with attribute sets it made once
// per label value, allocating nothing.
//
// Create one with [NewPublisher]. A Publisher is safe for concurrent use.
type Publisher struct {
	name     string
	logger   *slog.Logger
	mp       metric.MeterProvider
	duration metric.Float64Histogram
	retries  metric.Int64Counter
	bytes    metric.Int64Counter
	latency  metric.Float64Histogram
	wait     metric.Float64Histogram
	reg      metric.Registration // of the self-metrics' callback

	events *seriescache.Cache[eventSeries]
	ops    *seriescache.Cache[opSeries]

	rec    atomic.Pointer[telemetry.Recorder]
	closed atomic.Bool
}

// eventSeries holds the options, each with its attribute set, of one
// event name: made once, so that recording allocates nothing.
type eventSeries struct {
	completed, failed []metric.RecordOption // event_name, status
	retries           []metric.AddOption    // event_name
	wait              []metric.RecordOption // event_name
}

// opSeries holds the options of one operation.
type opSeries struct {
	latency        []metric.RecordOption // operation
	sent, received []metric.AddOption    // operation, direction
}

var (
	_ telemetry.Publisher     = (*Publisher)(nil)
	_ telemetry.SyncPublisher = (*Publisher)(nil)
	_ telemetry.Observer      = (*Publisher)(nil)
	_ telemetry.Flusher       = (*Publisher)(nil)
	_ telemetry.Closer        = (*Publisher)(nil)
	_ telemetry.Namer         = (*Publisher)(nil)
	_ telemetry.Attacher      = (*Publisher)(nil)
)

// NewPublisher returns a new Publisher that records into cfg.MeterProvider.
// It creates the instruments; it starts no goroutine and does no I/O.
//
// It returns an error if cfg is invalid (every problem, each naming its
// setting, joined in one error), or one wrapping the MeterProvider's error
// if it refuses an instrument.
func NewPublisher(cfg Config) (*Publisher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m := cfg.MeterProvider.Meter(ScopeName)
	p := &Publisher{name: cfg.Name, logger: cfg.Logger, mp: cfg.MeterProvider}
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	p.duration, err = m.Float64Histogram(metricdef.EventDuration, metric.WithUnit(unitSeconds),
		metric.WithDescription(metricdef.HelpEventDuration), metric.WithExplicitBucketBoundaries(cfg.EventBuckets...))
	keep(err)
	p.retries, err = m.Int64Counter(metricdef.EventRetries, metric.WithUnit(unitRetries), metric.WithDescription(metricdef.HelpEventRetries))
	keep(err)
	p.bytes, err = m.Int64Counter(metricdef.NetworkBytes, metric.WithUnit(unitBytes), metric.WithDescription(metricdef.HelpNetworkBytes))
	keep(err)
	p.latency, err = m.Float64Histogram(metricdef.NetworkLatency, metric.WithUnit(unitSeconds),
		metric.WithDescription(metricdef.HelpNetworkLatency), metric.WithExplicitBucketBoundaries(cfg.LatencyBuckets...))
	keep(err)
	p.wait, err = m.Float64Histogram(metricdef.EventWait, metric.WithUnit(unitSeconds),
		metric.WithDescription(metricdef.HelpEventWait), metric.WithExplicitBucketBoundaries(cfg.WaitBuckets...))
	keep(err)
	keep(p.registerSelfMetrics(m))
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("otelmetric: create instruments: %w", err)
	}
	p.events = seriescache.New(cfg.MaxLabelValues, bindEvent, func(v string) { p.logOverflow(cfg.MaxLabelValues, metricdef.LabelEventName, v) })
	p.ops = seriescache.New(cfg.MaxLabelValues, bindOp, func(v string) { p.logOverflow(cfg.MaxLabelValues, metricdef.LabelOperation, v) })
	return p, nil
}

func bindEvent(name string) *eventSeries {
	n := attribute.String(metricdef.LabelEventName, name)
	return &eventSeries{
		completed: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(n, attribute.String(metricdef.LabelStatus, metricdef.StatusCompleted)))},
		failed:    []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(n, attribute.String(metricdef.LabelStatus, metricdef.StatusFailed)))},
		retries:   []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(n))},
		wait:      []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(n))},
	}
}

func bindOp(name string) *opSeries {
	op := attribute.String(metricdef.LabelOperation, name)
	return &opSeries{
		latency:  []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(op))},
		sent:     []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(op, attribute.String(metricdef.LabelDirection, metricdef.DirectionSent)))},
		received: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(op, attribute.String(metricdef.LabelDirection, metricdef.DirectionReceived)))},
	}
}

// registerSelfMetrics makes the observable instruments of the delivery
// self-metrics and registers the callback that reads them from the
// Recorder p is attached to, when the MeterProvider collects.
func (p *Publisher) registerSelfMetrics(m metric.Meter) error {
	var errs []error
	counter := func(name, help, unit string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithDescription(help), metric.WithUnit(unit))
		errs = append(errs, err)
		return c
	}
	gauge := func(name, help, unit string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithDescription(help), metric.WithUnit(unit))
		errs = append(errs, err)
		return g
	}
	published := counter(metricdef.Published, metricdef.HelpPublished, unitRecords)
	failed := counter(metricdef.FailedAttempts, metricdef.HelpFailedAttempts, unitAttempt)
	dropped := counter(metricdef.Dropped, metricdef.HelpDropped, unitRecords)
	panics := counter(metricdef.Panics, metricdef.HelpPanics, unitPanics)
	queued := gauge(metricdef.QueueLength, metricdef.HelpQueueLength, unitRecords)
	capacity := gauge(metricdef.QueueCapacity, metricdef.HelpQueueCapacity, unitRecords)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		r := p.rec.Load()
		if r == nil {
			return nil
		}
		for _, s := range r.PublisherStats() {
			pub := attribute.String(metricdef.LabelPublisher, metricdef.LabelValue(s.Name))
			one := metric.WithAttributeSet(attribute.NewSet(pub))
			o.ObserveInt64(published, int64(s.Published), one)
			o.ObserveInt64(failed, int64(s.FailedAttempts), one)
			for _, d := range []struct {
				reason string
				n      uint64
			}{{metricdef.ReasonQueueFull, s.DroppedQueueFull}, {metricdef.ReasonFailed, s.DroppedFailed}, {metricdef.ReasonClosed, s.DroppedClosed}} {
				o.ObserveInt64(dropped, int64(d.n), metric.WithAttributeSet(attribute.NewSet(pub, attribute.String(metricdef.LabelReason, d.reason))))
			}
			o.ObserveInt64(panics, int64(s.Panics), one)
			o.ObserveInt64(queued, int64(s.Queued), one)
			o.ObserveInt64(capacity, int64(s.QueueCapacity), one)
		}
		return nil
	}, published, failed, dropped, panics, queued, capacity)
	p.reg = reg
	return err
}

// PublishEventMetrics records the finished run m: its duration into
// event_duration_seconds{event_name, status} and its retries into
// event_retries_total{event_name}. The event_name attribute is the bounded
// form of m.EventName (see the package doc). It never blocks and, once the
// name's attribute sets exist, allocates nothing (if the MeterProvider's
// instruments do not). ctx is passed to the instruments.
//
// It returns an error for a record with an empty event name or whose status
// is neither completed nor failed, and one wrapping [telemetry.ErrClosed]
// after Close.
func (p *Publisher) PublishEventMetrics(ctx context.Context, m telemetry.EventMetrics) error {
	return p.ObserveEvent(ctx, m.Observation())
}

// ObserveEvent is PublishEventMetrics for the [telemetry.EventObservation]
// of a run, which a Recorder passes instead of the whole record; it also
// records its wait into event_wait_seconds{event_name} if its enqueue time
// is known.
func (p *Publisher) ObserveEvent(ctx context.Context, o telemetry.EventObservation) error {
	if p.closed.Load() {
		return errClosed
	}
	if err := metricdef.CheckEvent(o.EventName, string(o.Status)); err != nil {
		return fmt.Errorf("otelmetric: %w", err)
	}
	s := p.events.Get(o.EventName)
	opts := s.completed
	if o.Status == telemetry.StatusFailed {
		opts = s.failed
	}
	p.duration.Record(ctx, o.Duration.Seconds(), opts...)
	if o.Retries > 0 {
		p.retries.Add(ctx, int64(o.Retries), s.retries...)
	}
	if o.Enqueued {
		p.wait.Record(ctx, o.Wait.Seconds(), s.wait...)
	}
	return nil
}

// PublishNetworkMetrics records the finished operation m: its latency into
// network_latency_seconds{operation} and its bytes into
// network_bytes_total{operation, direction}. An empty operation counts as
// [telemetry.DefaultOperation]. The host, port, task id and error text are
// not used: they would make unbounded attribute values. It never blocks
// and allocates nothing once the operation's attribute sets exist.
//
// It returns an error for a record whose status is neither completed nor
// failed or whose byte counts are negative, and one wrapping
// [telemetry.ErrClosed] after Close.
func (p *Publisher) PublishNetworkMetrics(ctx context.Context, m telemetry.NetworkMetrics) error {
	return p.ObserveNetwork(ctx, m.Observation())
}

// ObserveNetwork is PublishNetworkMetrics for the
// [telemetry.NetworkObservation] of an operation, which a Recorder passes
// instead of the whole record.
func (p *Publisher) ObserveNetwork(ctx context.Context, o telemetry.NetworkObservation) error {
	if p.closed.Load() {
		return errClosed
	}
	if err := metricdef.CheckNetwork(string(o.Status), o.BytesSent, o.BytesReceived); err != nil {
		return fmt.Errorf("otelmetric: %w", err)
	}
	op := o.Operation
	if op == "" {
		op = telemetry.DefaultOperation
	}
	s := p.ops.Get(op)
	p.latency.Record(ctx, o.Latency.Seconds(), s.latency...)
	p.bytes.Add(ctx, o.BytesSent, s.sent...)
	p.bytes.Add(ctx, o.BytesReceived, s.received...)
	return nil
}

// Synchronous reports true: the Recorder calls p on the recording path,
// without a queue, since recording into instruments only updates
// in-process aggregates.
func (p *Publisher) Synchronous() bool { return true }

// Name returns Config.Name ("otelmetric" by default), the name of p in the
// Recorder's [telemetry.PublisherStats].
func (p *Publisher) Name() string { return p.name }

// Attach makes p observe the delivery counters of r, the Recorder it is
// attached to, as the telemetry_publisher_* self-metrics, whenever the
// MeterProvider collects. [telemetry.Recorder.AddPublisher] calls it. If p
// is attached to several Recorders, the first one's counters are observed.
func (p *Publisher) Attach(r *telemetry.Recorder) {
	if r != nil {
		p.rec.CompareAndSwap(nil, r)
	}
}

// Flush calls the MeterProvider's ForceFlush, if it has one (as the
// OpenTelemetry SDK's has), so that [telemetry.Recorder.Flush] exports what
// was recorded; otherwise it does nothing. It returns the error of
// ForceFlush, ctx.Err() if ctx ends first, and an error wrapping
// [telemetry.ErrClosed] after Close. Note that ForceFlush exports every
// metric of the MeterProvider, not only these.
func (p *Publisher) Flush(ctx context.Context) error {
	if p.closed.Load() {
		return errFlushClosed
	}
	if f, ok := p.mp.(interface{ ForceFlush(context.Context) error }); ok {
		if err := f.ForceFlush(ctx); err != nil {
			return fmt.Errorf("otelmetric: flush the MeterProvider: %w", err)
		}
	}
	return ctx.Err()
}

// Close unregisters the callback of the self-metrics; publishing
// afterwards returns an error wrapping [telemetry.ErrClosed]. It neither
// flushes nor shuts down the MeterProvider, which is yours: shut it down
// after the Recorder is closed. A second call returns an error wrapping
// [telemetry.ErrClosed].
func (p *Publisher) Close(context.Context) error {
	if !p.closed.CompareAndSwap(false, true) {
		return errCloseAgain
	}
	if p.reg != nil {
		if err := p.reg.Unregister(); err != nil {
			return fmt.Errorf("otelmetric: unregister the self-metrics: %w", err)
		}
	}
	return nil
}

// Errors of the publish methods, Flush and Close.
var (
	errClosed      = fmt.Errorf("otelmetric: publisher: %w", telemetry.ErrClosed)
	errFlushClosed = fmt.Errorf("otelmetric: flush: %w", telemetry.ErrClosed)
	errCloseAgain  = fmt.Errorf("otelmetric: close: %w", telemetry.ErrClosed)
)

func (p *Publisher) logOverflow(limit int, label, value string) {
	l := p.logger
	if l == nil {
		l = slog.Default()
	}
	l.LogAttrs(context.Background(), slog.LevelWarn,
		"otelmetric: too many distinct "+label+" values, counting further ones as "+metricdef.Overflow,
		slog.Int("max_label_values", limit), slog.String(label, strings.Clone(value)))
}
