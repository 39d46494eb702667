package otelmetric

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"unicode/utf8"

	"go.opentelemetry.io/otel/metric"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
)

// Defaults of [Config].
const (
	// DefaultMaxLabelValues is the number of distinct event names (and,
	// separately, of operations) that get attribute sets of their own when
	// Config.MaxLabelValues is zero. It fits the OpenTelemetry SDK's default
	// cardinality limit of 2000 data points per instrument, of which the
	// SDK keeps one for its own overflow: each name makes up to two data
	// points (completed and failed, sent and received), and
	// [OverflowLabelValue] two more, 2 × (998 + 1) = 1998.
	DefaultMaxLabelValues = 998
	// DefaultName is the publisher's name when Config.Name is empty.
	DefaultName = "otelmetric"
)

// OverflowLabelValue is the event_name or operation attribute value under
// which records are counted once the number of distinct values has reached
// Config.MaxLabelValues. It is the value of every metrics publisher of
// the module, and is reserved: a record really named "_overflow" is
// counted under "_overflow~" and a hash instead.
const OverflowLabelValue = metricdef.Overflow

// DefaultEventBuckets are the bucket boundaries, in seconds, of
// event_duration_seconds when Config.EventBuckets is nil: from one
// millisecond to ten minutes, as in every metrics publisher of the module.
var DefaultEventBuckets = metricdef.EventBuckets()

// DefaultLatencyBuckets are the bucket boundaries, in seconds, of
// network_latency_seconds when Config.LatencyBuckets is nil: from half a
// millisecond to one minute.
var DefaultLatencyBuckets = metricdef.LatencyBuckets()

// DefaultWaitBuckets are the bucket boundaries, in seconds, of
// event_wait_seconds when Config.WaitBuckets is nil: from five
// milliseconds to one hour, as in every metrics publisher of the module.
var DefaultWaitBuckets = metricdef.WaitBuckets()

// Config configures a [Publisher]. MeterProvider is required; every other
// zero field means the default given in its doc.
type Config struct {
	// MeterProvider provides the Meter whose instruments the Publisher
	// records into, such as an OpenTelemetry SDK MeterProvider with a
	// periodic reader and an OTLP exporter. The Publisher never uses the
	// global MeterProvider. Required.
	MeterProvider metric.MeterProvider

	// EventBuckets are the bucket boundaries, in seconds, finite and
	// strictly increasing, advised for event_duration_seconds (a View of the
	// MeterProvider may override them). nil means [DefaultEventBuckets];
	// an empty non-nil slice is invalid.
	EventBuckets []float64

	// LatencyBuckets are the bucket boundaries, in seconds, finite and
	// strictly increasing, advised for network_latency_seconds. nil means
	// [DefaultLatencyBuckets]; an empty non-nil slice is invalid.
	LatencyBuckets []float64

	// WaitBuckets are the bucket boundaries, in seconds, finite and
	// strictly increasing, advised for event_wait_seconds. nil means
	// [DefaultWaitBuckets]; an empty non-nil slice is invalid.
	WaitBuckets []float64

	// MaxLabelValues is the number of distinct event names that get
	// attribute sets of their own, and separately the number of distinct
	// operations. Records of further names are counted under
	// [OverflowLabelValue]. Zero means [DefaultMaxLabelValues]; it must
	// not be negative. Keep 2 × (MaxLabelValues + 1) below the
	// MeterProvider's cardinality limit (the SDK's is 2000, one of which it
	// keeps; sdkmetric.WithCardinalityLimit changes it): past that limit
	// the SDK records into a series of its own, otel.metric.overflow=true,
	// without event_name, status or operation.
	MaxLabelValues int

	// Name is the Publisher's name in [telemetry.PublisherStats] (the
	// publisher attribute of the self-metrics). Empty means [DefaultName]
	// ("otelmetric").
	Name string

	// Logger receives the first label overflow, the Publisher's one log
	// line. nil means [slog.Default] at the time of logging.
	Logger *slog.Logger
}

// validate returns every problem of c, each naming its setting.
func (c *Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("otelmetric: "+format, args...)) }
	if c.MeterProvider == nil {
		add("MeterProvider is required: pass the MeterProvider of your OpenTelemetry SDK")
	}
	if c.MaxLabelValues < 0 {
		add("MaxLabelValues %d is negative", c.MaxLabelValues)
	}
	if !utf8.ValidString(c.Name) {
		add("Name is not valid UTF-8")
	}
	for _, msg := range slices.Concat(metricdef.CheckBuckets("EventBuckets", c.EventBuckets),
		metricdef.CheckBuckets("LatencyBuckets", c.LatencyBuckets), metricdef.CheckBuckets("WaitBuckets", c.WaitBuckets)) {
		add("%s", msg)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.EventBuckets == nil {
		c.EventBuckets = DefaultEventBuckets
	}
	if c.LatencyBuckets == nil {
		c.LatencyBuckets = DefaultLatencyBuckets
	}
	if c.WaitBuckets == nil {
		c.WaitBuckets = DefaultWaitBuckets
	}
	c.EventBuckets = append([]float64(nil), c.EventBuckets...)
	c.LatencyBuckets = append([]float64(nil), c.LatencyBuckets...)
	c.WaitBuckets = append([]float64(nil), c.WaitBuckets...)
	if c.MaxLabelValues == 0 {
		c.MaxLabelValues = DefaultMaxLabelValues
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	return c
}
