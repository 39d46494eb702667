package prometheus

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/seriescache"
	"github.com/eventpipeline/eventpipeline/telemetry"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Names of the four metrics of the contract, before the namespace prefix.
// Dashboards and alerts depend on them.
const (
	// MetricEventDuration is a histogram of the duration of finished event
	// runs, labelled event_name and status (completed or failed).
	MetricEventDuration = metricdef.EventDuration
	// MetricEventRetries counts the retries of finished event runs,
	// labelled event_name.
	MetricEventRetries = metricdef.EventRetries
	// MetricNetworkBytes counts the bytes of finished network operations,
	// labelled operation and direction (sent or received).
	MetricNetworkBytes = metricdef.NetworkBytes
	// MetricNetworkLatency is a histogram of the latency of finished
	// network operations, labelled operation.
	MetricNetworkLatency = metricdef.NetworkLatency
	// MetricEventWait is a histogram of the time finished event runs
	// waited in a queue before they started, labelled event_name: only
	// runs whose enqueue time is known ([telemetry.WithEnqueueTime] or
	// [telemetry.WithWait]) are observed, so an event name has this series
	// only once one of its runs had an enqueue time.
	MetricEventWait = metricdef.EventWait
)

// Errors of the publish methods and Close.
var (
	errClosed     = fmt.Errorf("prometheus: publisher: %w", telemetry.ErrClosed)
	errCloseAgain = fmt.Errorf("prometheus: close: %w", telemetry.ErrClosed)
)

// A Publisher exposes the records of a [telemetry.Recorder] as Prometheus
// metrics, and the delivery counters of the Recorder it is attached to as
// self-metrics (see [Publisher.Attach]). It is a [telemetry.Observer]: the
// Recorder calls it on the recording path, where it updates in-process
// histograms and counters without blocking or allocating; Prometheus reads
// them when it scrapes.
//
// Create one with [NewPublisher]. A Publisher is safe for concurrent use.
type Publisher struct {
	cfg      Config
	registry prom.Registerer
	handler  http.Handler // nil if the registry is not a Gatherer

	duration *prom.HistogramVec
	retries  *prom.CounterVec
	bytes    *prom.CounterVec
	latency  *prom.HistogramVec
	wait     *prom.HistogramVec
	delivery *deliveryCollector // collects nothing until it has a Recorder

	events *seriescache.Cache[eventSeries]
	ops    *seriescache.Cache[opSeries]

	ln     net.Listener // nil if not serving
	srv    *http.Server
	served chan struct{} // closed when Serve has returned

	closed atomic.Bool
}

// eventSeries are the series of one event name.
type eventSeries struct {
	completed, failed prom.Observer
	retries           prom.Counter
	// wait is bound on the first run with an enqueue time, so that event
	// names that never wait in a queue have no event_wait_seconds series.
	// Binding twice gives the same child of the HistogramVec.
	wait  atomic.Pointer[prom.Observer]
	label string // the event_name label value
}

// opSeries are the series of one network operation.
type opSeries struct {
	latency        prom.Observer
	sent, received prom.Counter
}

var (
	_ telemetry.Publisher     = (*Publisher)(nil)
	_ telemetry.SyncPublisher = (*Publisher)(nil)
	_ telemetry.Observer      = (*Publisher)(nil)
	_ telemetry.Closer        = (*Publisher)(nil)
	_ telemetry.Namer         = (*Publisher)(nil)
	_ telemetry.Attacher      = (*Publisher)(nil)
	_ slog.LogValuer          = (*Publisher)(nil)
)

// NewPublisher returns a new Publisher configured by cfg. It registers the
// metrics in cfg.Registry (or a registry of its own) and, if it serves
// them, listens on cfg.Addr:cfg.Port before it returns, serving from a
// goroutine of its own until [Publisher.Close].
//
// It returns an error, and holds nothing, if cfg is invalid (all problems
// joined), if a metric cannot be registered (for example because another
// Publisher registered it in the same registry), or if it cannot listen,
// such as when the port is in use; that error wraps the [net.OpError].
func NewPublisher(cfg Config) (*Publisher, error) {
	if err := cfg.validate(); err != nil {
		if cfg.Listener != nil {
			cfg.Listener.Close()
		}
		return nil, err
	}
	cfg = cfg.withDefaults()
	// Keep our own copies: the caller may reuse what it passed.
	cfg.ConstLabels = maps.Clone(cfg.ConstLabels)
	cfg.EventBuckets = slices.Clone(cfg.EventBuckets)
	cfg.LatencyBuckets = slices.Clone(cfg.LatencyBuckets)
	cfg.WaitBuckets = slices.Clone(cfg.WaitBuckets)
	p := &Publisher{cfg: cfg, registry: cfg.Registry}
	if p.registry == nil {
		p.registry = prom.NewRegistry()
	}
	if g, ok := p.registry.(prom.Gatherer); ok {
		p.handler = promhttp.HandlerFor(g, promhttp.HandlerOpts{
			ErrorLog:            promLogger{p},
			ErrorHandling:       promhttp.ContinueOnError,
			MaxRequestsInFlight: cfg.MaxConcurrentScrapes,
			EnableOpenMetrics:   true, // exemplars travel only in OpenMetrics
		})
	}

	p.duration = prom.NewHistogramVec(cfg.histogramOpts(MetricEventDuration, metricdef.HelpEventDuration,
		cfg.EventBuckets, DefaultEventBuckets), []string{metricdef.LabelEventName, metricdef.LabelStatus})
	p.retries = prom.NewCounterVec(prom.CounterOpts{
		Namespace: cfg.Namespace, Name: MetricEventRetries, ConstLabels: cfg.ConstLabels,
		Help: metricdef.HelpEventRetries,
	}, []string{metricdef.LabelEventName})
	p.bytes = prom.NewCounterVec(prom.CounterOpts{
		Namespace: cfg.Namespace, Name: MetricNetworkBytes, ConstLabels: cfg.ConstLabels,
		Help: metricdef.HelpNetworkBytes,
	}, []string{metricdef.LabelOperation, metricdef.LabelDirection})
	p.latency = prom.NewHistogramVec(cfg.histogramOpts(MetricNetworkLatency, metricdef.HelpNetworkLatency,
		cfg.LatencyBuckets, DefaultLatencyBuckets), []string{metricdef.LabelOperation})
	p.wait = prom.NewHistogramVec(cfg.histogramOpts(MetricEventWait, metricdef.HelpEventWait,
		cfg.WaitBuckets, DefaultWaitBuckets), []string{metricdef.LabelEventName})
	p.delivery = newDeliveryCollector(cfg.Namespace, cfg.ConstLabels)
	p.events = seriescache.New(cfg.MaxLabelValues, p.bindEvent, func(v string) {
		p.logger().LogAttrs(context.Background(), slog.LevelWarn,
			"prometheus: too many event names, counting further ones as "+OverflowLabelValue,
			slog.Int("max_label_values", cfg.MaxLabelValues), slog.String("event_name", v))
	})
	p.ops = seriescache.New(cfg.MaxLabelValues, p.bindOp, func(v string) {
		p.logger().LogAttrs(context.Background(), slog.LevelWarn,
			"prometheus: too many network operations, counting further ones as "+OverflowLabelValue,
			slog.Int("max_label_values", cfg.MaxLabelValues), slog.String("operation", v))
	})

	var registered []prom.Collector
	for _, c := range p.collectors() {
		if err := p.registry.Register(c); err != nil {
			for _, r := range registered {
				p.registry.Unregister(r)
			}
			if cfg.Listener != nil {
				cfg.Listener.Close()
			}
			return nil, fmt.Errorf("prometheus: register metrics: %w", err)
		}
		registered = append(registered, c)
	}

	if cfg.serves() {
		if err := p.listen(); err != nil {
			p.unregister()
			return nil, err
		}
	}
	return p, nil
}

// collectors returns what p registers.
func (p *Publisher) collectors() []prom.Collector {
	return []prom.Collector{p.duration, p.retries, p.bytes, p.latency, p.wait, p.delivery}
}

func (p *Publisher) unregister() {
	for _, c := range p.collectors() {
		p.registry.Unregister(c)
	}
}

// listen binds the listening socket and starts serving.
func (p *Publisher) listen() error {
	ln := p.cfg.Listener
	if ln == nil {
		addr, port := p.cfg.Addr, p.cfg.Port
		if addr == "" {
			addr = DefaultAddr
		}
		if port == 0 {
			port = DefaultPort
		}
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("prometheus: listen: %w", err)
		}
	}
	// Match the path exactly rather than through a ServeMux, whose
	// patterns would give meaning to spaces and braces in Config.Path.
	path, metrics := p.cfg.Path, p.handler
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		metrics.ServeHTTP(w, r)
	})
	p.ln = ln
	p.srv = p.cfg.server(serve, log.New(logWriter{p}, "", 0))
	p.served = make(chan struct{})
	go func() {
		defer close(p.served)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.logger().LogAttrs(context.Background(), slog.LevelError, "prometheus: serving metrics stopped",
				slog.String("error", err.Error()))
		}
	}()
	p.logger().LogAttrs(context.Background(), slog.LevelInfo, "prometheus: serving metrics",
		slog.String("url", p.URL()))
	return nil
}

func (p *Publisher) bindEvent(name string) *eventSeries {
	return &eventSeries{
		completed: p.duration.WithLabelValues(name, metricdef.StatusCompleted),
		failed:    p.duration.WithLabelValues(name, metricdef.StatusFailed),
		retries:   p.retries.WithLabelValues(name),
		label:     name,
	}
}

// waitObserver returns the event_wait_seconds series of s, binding it on
// first use.
func (p *Publisher) waitObserver(s *eventSeries) prom.Observer {
	if o := s.wait.Load(); o != nil {
		return *o
	}
	o := p.wait.WithLabelValues(s.label)
	s.wait.Store(&o)
	return o
}

func (p *Publisher) bindOp(op string) *opSeries {
	return &opSeries{
		latency:  p.latency.WithLabelValues(op),
		sent:     p.bytes.WithLabelValues(op, metricdef.DirectionSent),
		received: p.bytes.WithLabelValues(op, metricdef.DirectionReceived),
	}
}

// PublishEventMetrics observes the finished run m as [Publisher.ObserveEvent]
// does its [telemetry.EventMetrics.Observation]. It never blocks; ctx is
// not used.
//
// It returns an error for a record with an empty event name or whose
// status is neither completed nor failed, and one wrapping
// [telemetry.ErrClosed] after Close.
func (p *Publisher) PublishEventMetrics(ctx context.Context, m telemetry.EventMetrics) error {
	return p.ObserveEvent(ctx, m.Observation())
}

// ObserveEvent observes the duration of the finished run o in
// event_duration_seconds{event_name, status}, adds its retries to
// event_retries_total{event_name}, and, if its enqueue time is known,
// observes its wait in event_wait_seconds{event_name}; both histograms get
// the run's trace and span ids as an exemplar when it was traced and
// sampled. The event_name label is the bounded form of o.EventName (see
// the package doc). It never blocks; ctx is not used. A Recorder calls it
// instead of PublishEventMetrics.
//
// It returns an error for an empty event name or a status that is neither
// completed nor failed, and one wrapping [telemetry.ErrClosed] after Close.
func (p *Publisher) ObserveEvent(_ context.Context, o telemetry.EventObservation) error {
	if p.closed.Load() {
		return errClosed
	}
	if err := metricdef.CheckEvent(o.EventName, string(o.Status)); err != nil {
		return fmt.Errorf("prometheus: %w", err)
	}
	s := p.events.Get(o.EventName)
	if o.Status == telemetry.StatusFailed {
		observe(s.failed, o.Duration.Seconds(), &o.Span)
	} else {
		observe(s.completed, o.Duration.Seconds(), &o.Span)
	}
	if o.Retries > 0 {
		s.retries.Add(float64(o.Retries))
	}
	if o.Enqueued {
		observe(p.waitObserver(s), o.Wait.Seconds(), &o.Span)
	}
	return nil
}

// PublishNetworkMetrics observes the finished operation m as
// [Publisher.ObserveNetwork] does its
// [telemetry.NetworkMetrics.Observation]. It never blocks; ctx is not used.
//
// It returns an error for a record whose status is neither completed nor
// failed or whose byte counts are negative, and one wrapping
// [telemetry.ErrClosed] after Close.
func (p *Publisher) PublishNetworkMetrics(ctx context.Context, m telemetry.NetworkMetrics) error {
	return p.ObserveNetwork(ctx, m.Observation())
}

// ObserveNetwork observes the latency of the finished operation o in
// network_latency_seconds{operation} and adds its bytes to
// network_bytes_total{operation, direction}. It never blocks; ctx is not
// used. An empty operation counts as [telemetry.DefaultOperation]; the
// operation label is the bounded form of the operation. A Recorder calls
// it instead of PublishNetworkMetrics.
//
// It returns an error for a status that is neither completed nor failed or
// negative byte counts, and one wrapping [telemetry.ErrClosed] after Close.
func (p *Publisher) ObserveNetwork(_ context.Context, o telemetry.NetworkObservation) error {
	if p.closed.Load() {
		return errClosed
	}
	if err := metricdef.CheckNetwork(string(o.Status), o.BytesSent, o.BytesReceived); err != nil {
		return fmt.Errorf("prometheus: %w", err)
	}
	op := o.Operation
	if op == "" {
		op = telemetry.DefaultOperation
	}
	s := p.ops.Get(op)
	observe(s.latency, o.Latency.Seconds(), &o.Span)
	if o.BytesSent > 0 {
		s.sent.Add(float64(o.BytesSent))
	}
	if o.BytesReceived > 0 {
		s.received.Add(float64(o.BytesReceived))
	}
	return nil
}

// Synchronous reports true: the Recorder calls p on the recording path,
// without a queue, since publishing only updates in-process metrics.
func (p *Publisher) Synchronous() bool { return true }

// Name returns "prometheus", the publisher label of p's own self-metrics.
func (p *Publisher) Name() string { return "prometheus" }

// Addr returns the address p serves on, with the port actually bound, or
// nil if p serves nothing.
func (p *Publisher) Addr() net.Addr {
	if p.ln == nil {
		return nil
	}
	return p.ln.Addr()
}

// URL returns the URL of the metrics p serves, such as
// "http://127.0.0.1:2112/metrics", or "" if p serves nothing.
func (p *Publisher) URL() string {
	if p.ln == nil {
		return ""
	}
	return "http://" + p.ln.Addr().String() + p.cfg.Path
}

// Handler returns an http.Handler that serves the metrics of p's registry
// in the Prometheus exposition formats, to mount on a mux of one's own. It
// returns nil if the registry is not a [prom.Gatherer].
func (p *Publisher) Handler() http.Handler { return p.handler }

// Close stops serving (waiting for scrapes in progress until ctx ends) and
// unregisters p's metrics from the registry, so that a new Publisher can
// register there. Publishing afterwards returns an error wrapping
// [telemetry.ErrClosed]. A Recorder that p is attached to calls Close from
// [telemetry.Recorder.Close].
//
// It returns an error wrapping ctx.Err() if ctx ends before the scrapes in
// progress, whose connections are then closed. A second call returns an error wrapping
// [telemetry.ErrClosed]. Close is safe to call from several goroutines.
func (p *Publisher) Close(ctx context.Context) error {
	if !p.closed.CompareAndSwap(false, true) {
		return errCloseAgain
	}
	p.unregister()
	if p.srv == nil {
		return nil
	}
	err := p.srv.Shutdown(ctx)
	if err != nil {
		p.srv.Close()
	}
	<-p.served
	p.logger().LogAttrs(ctx, slog.LevelInfo, "prometheus: stopped serving metrics",
		slog.String("addr", p.ln.Addr().String()))
	if err != nil {
		return fmt.Errorf("prometheus: close: %w", err)
	}
	return nil
}

// Attach makes p export the delivery counters of r, the Recorder it is
// attached to, as the telemetry_publisher_* self-metrics: for every
// publisher of r, p included. [telemetry.Recorder.AddPublisher] (and so
// [telemetry.WithPublishers] and [telemetry.MonitorEvents]) calls it; there
// is no need to call it yourself. If p is attached to several Recorders,
// the first one's counters are exported. Until p is attached, there are no
// self-metrics.
func (p *Publisher) Attach(r *telemetry.Recorder) {
	if r != nil {
		p.delivery.r.CompareAndSwap(nil, r)
	}
}

// LogValue shows p in logs as its kind and the URL it serves, if any.
func (p *Publisher) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kind", "prometheus"), slog.String("url", p.URL()))
}

func (p *Publisher) logger() *slog.Logger {
	if p.cfg.Logger != nil {
		return p.cfg.Logger
	}
	return slog.Default()
}

// observe observes v in o, with the trace id and span id of sc as an
// exemplar if sc is a sampled span; an untraced record allocates nothing.
func observe(o prom.Observer, v float64, sc *telemetry.SpanContext) {
	if sc.Sampled && sc.IsValid() {
		if eo, ok := o.(prom.ExemplarObserver); ok {
			eo.ObserveWithExemplar(v, prom.Labels{ExemplarTraceID: sc.TraceIDString(), ExemplarSpanID: sc.SpanIDString()})
			return
		}
	}
	o.Observe(v)
}

// The labels of the exemplars of the histograms: a sampled run's trace id
// and span id, 32 and 16 lowercase hexadecimal digits.
const (
	ExemplarTraceID = "trace_id"
	ExemplarSpanID  = "span_id"
)

// promLogger passes promhttp's errors to the Publisher's logger.
type promLogger struct{ p *Publisher }

func (l promLogger) Println(v ...any) {
	l.p.logger().LogAttrs(context.Background(), slog.LevelError, "prometheus: serving metrics: "+fmt.Sprint(v...))
}

// logWriter passes the http.Server's errors to the Publisher's logger.
type logWriter struct{ p *Publisher }

func (w logWriter) Write(b []byte) (int, error) {
	msg := string(b)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	w.p.logger().LogAttrs(context.Background(), slog.LevelWarn, "prometheus: http server: "+msg)
	return len(b), nil
}
