package otlp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/metricpush"
	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// Defaults of [Config].
const (
	// DefaultInterval is how often the metrics are pushed when
	// Config.Interval is zero.
	DefaultInterval = 15 * time.Second
	// MinInterval is the smallest Config.Interval accepted.
	MinInterval = 10 * time.Millisecond
	// DefaultTimeout is the time limit of one HTTP attempt when
	// Config.Timeout is zero (capped at the interval).
	DefaultTimeout = 10 * time.Second
	// DefaultServiceName is the service.name resource attribute (the job
	// label after translation to Prometheus) when Config.ServiceName is
	// empty.
	DefaultServiceName = "eventpipeline"
	// DefaultMaxLabelValues is the number of distinct event names (and,
	// separately, of operations) that get series of their own when
	// Config.MaxLabelValues is zero.
	DefaultMaxLabelValues = 1000
	// DefaultName is the publisher's name when Config.Name is empty.
	DefaultName = "otlp"
)

// OverflowLabelValue is the event_name or operation attribute value under
// which records are counted once the number of distinct values has reached
// Config.MaxLabelValues. It is the value of every metrics publisher of
// the module, and is reserved: a record really named "_overflow" is
// counted under "_overflow~" and a hash instead.
const OverflowLabelValue = metricdef.Overflow

// DefaultEventBuckets are the upper bounds, in seconds, of the buckets of
// event_duration_seconds when Config.EventBuckets is nil: from one
// millisecond to ten minutes, as in every metrics publisher of the module.
var DefaultEventBuckets = metricdef.EventBuckets()

// DefaultLatencyBuckets are the upper bounds, in seconds, of the buckets of
// network_latency_seconds when Config.LatencyBuckets is nil: from half a
// millisecond to one minute.
var DefaultLatencyBuckets = metricdef.LatencyBuckets()

// DefaultWaitBuckets are the upper bounds, in seconds, of the buckets of
// event_wait_seconds when Config.WaitBuckets is nil: from five
// milliseconds to one hour, as in every metrics publisher of the module.
var DefaultWaitBuckets = metricdef.WaitBuckets()

// A Compression is how request bodies are compressed.
type Compression string

// The compressions.
const (
	// Gzip compresses bodies with gzip, which every collector accepts.
	Gzip Compression = "gzip"
	// NoCompression sends bodies as they are.
	NoCompression Compression = "none"
)

// Config configures a [Publisher] or the [TracerProvider] of
// [NewTracerProvider]: where the collector is, how to reach it, and how
// often and what to push. Endpoint is required; every other zero field
// means the default given in its doc.
type Config struct {
	// Endpoint is the base URL of an OTLP/HTTP receiver, such as
	// http://127.0.0.1:4318 (a local OpenTelemetry Collector) or
	// https://otlp.example.com/otlp. Metrics are posted to Endpoint +
	// "/v1/metrics", as the OTLP specification says of a base URL; an
	// Endpoint that already ends in /v1/metrics is used as it is. It must
	// be http or https without credentials or a ?query, which the OTLP
	// exporter would not send (put credentials in Headers). With
	// Headers, it must be https unless its host is loopback or
	// AllowInsecure is set. Required.
	Endpoint string

	// Headers are sent with every request, such as
	// {"Authorization": telemetry.NewSecret("Bearer ...")}. Their values
	// are secrets: they never appear in logs, errors or fmt output. nil
	// means none.
	Headers map[string]telemetry.Secret

	// AllowInsecure allows, at the risk of sending credentials in clear
	// text or to an impostor, an http:// Endpoint on a host other than
	// loopback with Headers, and a TLSConfig with InsecureSkipVerify.
	// false refuses both.
	AllowInsecure bool

	// TLSConfig configures HTTPS: client certificates, server name,
	// minimum version. nil means Go's defaults, which verify the server's
	// certificate against the system's roots. It is cloned.
	TLSConfig *tls.Config

	// CACert holds PEM-encoded certificate authorities trusted for HTTPS
	// instead of the system's roots (they replace TLSConfig.RootCAs). nil
	// means the system's roots.
	CACert []byte

	// Compression compresses request bodies. Empty means [Gzip].
	Compression Compression

	// Interval is how often the aggregated metrics are pushed; transient
	// failures are retried within it. Zero means [DefaultInterval] (15s);
	// otherwise it must be at least [MinInterval] (10ms). [Publisher.Flush]
	// and [Publisher.Close] push at once as well. A receiver's Retry-After
	// holds the periodic pushes back until it has passed (retries within a
	// push wait at most the retry policy's MaxBackoff).
	Interval time.Duration

	// Timeout limits each HTTP attempt, of a push or of a span export.
	// Zero means [DefaultTimeout] (10s); it is capped at Interval and
	// must not be negative.
	Timeout time.Duration

	// Retry sets how failed pushes and span exports are retried, as
	// everywhere in the module: connection errors, 408, 429 and 5xx are
	// retried, other statuses are not (the error is then marked with
	// [telemetry.Permanent]). Waits grow exponentially with jitter from
	// Retry.InitialBackoff to Retry.MaxBackoff, or follow a Retry-After
	// header; there are at most Retry.MaxAttempts attempts if it is set,
	// and the last attempt comes at Retry.MaxElapsed at the latest. Every
	// push also ends within one Interval: a wait that would outlast it is
	// not started (the next push carries the same values). A span
	// export ends with its context instead (see the package doc,
	// # Traces), its spans then dropped. Zero fields mean those of
	// [telemetry.DefaultRetryPolicy]; none may be negative.
	Retry telemetry.RetryPolicy

	// ServiceName is the service.name resource attribute, which an
	// OTLP-to-Prometheus translation turns into the job label. Empty
	// means [DefaultServiceName] ("eventpipeline").
	ServiceName string

	// ServiceInstanceID is the service.instance.id resource attribute,
	// which becomes the instance label. Each process that pushes to one
	// backend needs its own, or their cumulative values would mix. Empty
	// means "<hostname>:<pid>", unique per process.
	ServiceInstanceID string

	// ResourceAttributes are further resource attributes, such as
	// {"deployment.environment.name": "prod"}. They must not set
	// service.name or service.instance.id. nil means none.
	ResourceAttributes map[string]string

	// EventBuckets are the bucket upper bounds, in seconds, finite and
	// strictly increasing, of event_duration_seconds. nil means
	// [DefaultEventBuckets]; an empty non-nil slice is invalid.
	EventBuckets []float64

	// LatencyBuckets are the bucket upper bounds, in seconds, finite and
	// strictly increasing, of network_latency_seconds. nil means
	// [DefaultLatencyBuckets]; an empty non-nil slice is invalid.
	LatencyBuckets []float64

	// WaitBuckets are the bucket upper bounds, in seconds, finite and
	// strictly increasing, of event_wait_seconds. nil means
	// [DefaultWaitBuckets]; an empty non-nil slice is invalid.
	WaitBuckets []float64

	// MaxLabelValues is the number of distinct event names that get series
	// of their own, and separately the number of distinct operations.
	// Records of further names are counted under [OverflowLabelValue].
	// Zero means [DefaultMaxLabelValues]; it must not be negative.
	MaxLabelValues int

	// HTTPClient sends the pushes. nil means a client of the Publisher's
	// own, configured by TLSConfig and CACert, whose idle connections
	// Close releases; a client of yours cannot be combined with them.
	// The Publisher's own client follows a redirect only to the scheme,
	// host and port of Endpoint, so that Headers never go elsewhere; a
	// redirect elsewhere fails the push with its status. Its Timeout, if
	// any, applies on top of Timeout.
	HTTPClient *http.Client

	// Name is the Publisher's name in [telemetry.PublisherStats] (the
	// publisher label of the self-metrics) and in its log lines and
	// errors. Empty means [DefaultName] ("otlp").
	Name string

	// Logger receives the Publisher's few log lines: start and stop, the
	// first rejection of each HTTP status, pushes given up, recovery, the
	// first label overflow; and the TracerProvider's: start and stop, span
	// exports given up with their count of spans, recovery, and single
	// failed attempts at Debug. nil means [slog.Default] at the time of
	// logging.
	Logger *slog.Logger
}

// resolve validates c and returns the metrics URL, or every problem joined
// in one error. Each message names the setting; no header value is ever
// quoted.
func (c *Config) resolve() (*url.URL, error) {
	const prefix = "otlp: "
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(prefix+format, args...)) }
	u, err := metricpush.ParseURL("Endpoint", c.Endpoint)
	if err != nil {
		add("%s", err.Error())
	} else {
		if u.RawQuery != "" || u.ForceQuery {
			// The OTLP exporter posts to the URL's host and path only.
			add("Endpoint %q must not have a ?query: the OTLP exporter does not send it (put credentials in Headers)", safetext.URL(u))
		}
		if u.Scheme == "http" && len(c.Headers) > 0 && !c.AllowInsecure && !metricpush.IsLoopback(u.Hostname()) {
			add("Endpoint %q is not https, so Headers (credentials) would be sent in clear text; use https://, or set AllowInsecure to allow it", safetext.URL(u))
		}
		path := strings.TrimRight(u.Path, "/")
		if !strings.HasSuffix(path, "/v1/metrics") {
			path += "/v1/metrics"
		}
		u.Path, u.RawPath = path, ""
	}
	for name, v := range c.Headers {
		if msg := metricpush.CheckHeader("Headers", name, v.Reveal()); msg != "" {
			add("%s", msg)
		}
	}
	if c.TLSConfig != nil && c.TLSConfig.InsecureSkipVerify && !c.AllowInsecure {
		add("TLSConfig.InsecureSkipVerify is set: the server's certificate would not be verified (set AllowInsecure to allow it)")
	}
	if c.HTTPClient != nil && (c.TLSConfig != nil || len(c.CACert) > 0) {
		add("TLSConfig and CACert configure the Publisher's own client; with an HTTPClient of yours, configure TLS on it")
	}
	switch c.Compression {
	case "", Gzip, NoCompression:
	default:
		add("Compression %q is unknown: want %q or %q", c.Compression, Gzip, NoCompression)
	}
	if c.Interval < 0 {
		add("Interval %v is negative", c.Interval)
	} else if c.Interval > 0 && c.Interval < MinInterval {
		add("Interval %v is below the minimum %v", c.Interval, MinInterval)
	}
	if c.Timeout < 0 {
		add("Timeout %v is negative", c.Timeout)
	}
	if err := c.Retry.Validate(); err != nil {
		add("Retry: %s", strings.ReplaceAll(err.Error(), "telemetry: retry policy: ", ""))
	}
	for _, f := range []struct{ name, v string }{{"ServiceName", c.ServiceName}, {"ServiceInstanceID", c.ServiceInstanceID}, {"Name", c.Name}} {
		if !utf8.ValidString(f.v) {
			add("%s is not valid UTF-8", f.name)
		}
	}
	for k, v := range c.ResourceAttributes {
		switch {
		case k == "service.name" || k == "service.instance.id":
			add("ResourceAttributes sets %s: use ServiceName or ServiceInstanceID", k)
		case k == "" || !utf8.ValidString(k) || !utf8.ValidString(v):
			add("ResourceAttributes: %q is an empty or invalid UTF-8 key, or its value is invalid UTF-8", k)
		}
	}
	if c.MaxLabelValues < 0 {
		add("MaxLabelValues %d is negative", c.MaxLabelValues)
	}
	for _, msg := range slices.Concat(metricdef.CheckBuckets("EventBuckets", c.EventBuckets),
		metricdef.CheckBuckets("LatencyBuckets", c.LatencyBuckets), metricdef.CheckBuckets("WaitBuckets", c.WaitBuckets)) {
		add("%s", msg)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return u, nil
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	c.Timeout = min(c.Timeout, c.Interval)
	if c.Compression == "" {
		c.Compression = Gzip
	}
	if c.ServiceName == "" {
		c.ServiceName = DefaultServiceName
	}
	if c.ServiceInstanceID == "" {
		c.ServiceInstanceID = metricpush.DefaultInstance()
	}
	if c.EventBuckets == nil {
		c.EventBuckets = DefaultEventBuckets
	}
	if c.LatencyBuckets == nil {
		c.LatencyBuckets = DefaultLatencyBuckets
	}
	// Copy the buckets: the caller may change its slices later.
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
