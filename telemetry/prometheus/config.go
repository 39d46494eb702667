package prometheus

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	prom "github.com/prometheus/client_golang/prometheus"
)

// Defaults of [Config].
const (
	// DefaultPort is the port the metrics are served on when Config.Port is
	// zero. It is not 9090, which is the Prometheus server's own port.
	DefaultPort = 2112
	// DefaultAddr is the bind address when Config.Addr is empty: loopback
	// only, so that nothing is exposed unless asked for.
	DefaultAddr = "127.0.0.1"
	// DefaultPath is the HTTP path of the metrics when Config.Path is empty.
	DefaultPath = "/metrics"
	// DefaultMaxLabelValues is the number of distinct event names (and,
	// separately, of operations) that get series of their own when
	// Config.MaxLabelValues is zero.
	DefaultMaxLabelValues = 1000
	// DefaultNativeHistogramMaxBuckets is the bucket limit of each native
	// histogram when native histograms are enabled and
	// Config.NativeHistogramMaxBuckets is zero.
	DefaultNativeHistogramMaxBuckets = 160

	// DefaultReadHeaderTimeout is how long the metrics server waits for
	// the headers of a request when Config.ReadHeaderTimeout is zero.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout is how long the metrics server waits for a whole
	// request when Config.ReadTimeout is zero.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout is how long the metrics server may take to write
	// a response, from the end of the request headers, when
	// Config.WriteTimeout is zero.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleTimeout is how long the metrics server keeps an idle
	// keep-alive connection open when Config.IdleTimeout is zero: longer
	// than the usual scrape intervals, so that a scraper keeps its
	// connection.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxHeaderBytes is the largest request header the metrics
	// server reads when Config.MaxHeaderBytes is zero.
	DefaultMaxHeaderBytes = 16 << 10
	// DefaultMaxConcurrentScrapes is the number of scrapes served at once
	// when Config.MaxConcurrentScrapes is zero; further ones are answered
	// 503 Service Unavailable.
	DefaultMaxConcurrentScrapes = 8
)

// OverflowLabelValue is the event_name or operation label value under which
// records are counted once the number of distinct values has reached
// Config.MaxLabelValues. Their counts stay exact; only the name is lost. It
// is reserved: a record really named "_overflow" is counted under
// "_overflow~" and a hash instead, never under this value.
const OverflowLabelValue = metricdef.Overflow

// DefaultEventBuckets are the upper bounds, in seconds, of the buckets of
// event_duration_seconds when Config.EventBuckets is nil: from one
// millisecond to ten minutes, as pipeline events run.
var DefaultEventBuckets = metricdef.EventBuckets()

// DefaultLatencyBuckets are the upper bounds, in seconds, of the buckets of
// network_latency_seconds when Config.LatencyBuckets is nil: from half a
// millisecond to one minute.
var DefaultLatencyBuckets = metricdef.LatencyBuckets()

// DefaultWaitBuckets are the upper bounds, in seconds, of the buckets of
// event_wait_seconds when Config.WaitBuckets is nil: from five
// milliseconds to one hour, as tasks wait in job queues.
var DefaultWaitBuckets = metricdef.WaitBuckets()

// Config configures a [Publisher]. The zero Config is valid: it serves a
// registry of its own on http://127.0.0.1:2112/metrics with the default
// buckets and no namespace. Each field's doc says what its zero value means.
type Config struct {
	// Port is the TCP port the metrics are served on. Zero means
	// [DefaultPort] (2112). It must be in 0-65535. It is ignored when
	// Listener is set, and must be zero when nothing is served.
	Port int

	// Addr is the address of the interface to bind to, such as "0.0.0.0"
	// to accept scrapes from other hosts. Empty means [DefaultAddr]
	// ("127.0.0.1", this host only). It is ignored when Listener is set,
	// and must be empty when nothing is served.
	Addr string

	// Listener, if set, is where the metrics are served instead of Addr and
	// Port; the Publisher takes it over and closes it in Close (or at once
	// if NewPublisher fails). Tests use one bound to "127.0.0.1:0" to get a free port. nil means that the
	// Publisher listens on Addr:Port itself.
	Listener net.Listener

	// Path is the HTTP path the metrics are served on. Empty means
	// [DefaultPath] ("/metrics").
	Path string

	// Registry is where the metrics are registered. nil means a new
	// registry of the Publisher's own, which it always serves. A registry
	// given here is served only if Serve is set (it must then also be a
	// [prom.Gatherer], as *prom.Registry is), so that the Publisher fits
	// into an application that already exposes /metrics.
	Registry prom.Registerer

	// Serve makes the Publisher serve Registry on Addr:Port (or Listener)
	// although it was given by the user. false means that a given Registry
	// is not served by the Publisher. It has no effect when Registry is nil.
	Serve bool

	// Namespace, if not empty, prefixes every metric name with Namespace
	// and an underscore: "app" gives app_event_duration_seconds. Empty means
	// no prefix, the names that dashboards and alerts expect.
	Namespace string

	// ConstLabels are labels with fixed values added to every metric, such
	// as {"pipeline": "billing"}. nil means none. Their names must be valid
	// label names other than the metrics' own labels and "le".
	ConstLabels prom.Labels

	// EventBuckets are the bucket upper bounds, in seconds, of
	// event_duration_seconds: finite (not NaN or ±Inf: the +Inf bucket is
	// implicit) and strictly increasing, as the other metrics publishers
	// require. nil means [DefaultEventBuckets]. An empty non-nil slice means
	// no classic buckets, which is valid only with native histograms.
	EventBuckets []float64

	// LatencyBuckets are the bucket upper bounds, in seconds, of
	// network_latency_seconds: finite (not NaN or ±Inf: the +Inf bucket is
	// implicit) and strictly increasing, as the other metrics publishers
	// require. nil means [DefaultLatencyBuckets]. An empty non-nil slice
	// means no classic buckets, which is valid only with native histograms.
	LatencyBuckets []float64

	// WaitBuckets are the bucket upper bounds, in seconds, of
	// event_wait_seconds: finite (not NaN or ±Inf: the +Inf bucket is
	// implicit) and strictly increasing, as the other metrics publishers
	// require. nil means [DefaultWaitBuckets]. An empty non-nil slice means
	// no classic buckets, which is valid only with native histograms.
	WaitBuckets []float64

	// NativeHistogramBucketFactor, if greater than one, makes the three
	// histograms native histograms as well (exposed next to the classic
	// buckets): each bucket is at most this factor wider than the previous
	// one, so 1.1 gives about 10% resolution. Zero means classic buckets
	// only. Values in (0, 1] are invalid. To ingest them, the Prometheus
	// server needs --enable-feature=native-histograms (before 3.8) or the
	// scrape_native_histograms setting (from 3.8 on; required from 3.9).
	NativeHistogramBucketFactor float64

	// NativeHistogramMaxBuckets limits the buckets of each native
	// histogram; past it the resolution is reduced, and reset after an
	// hour. Zero means [DefaultNativeHistogramMaxBuckets]. It has no effect
	// without NativeHistogramBucketFactor.
	NativeHistogramMaxBuckets uint32

	// MaxLabelValues is the number of distinct event names that get series
	// of their own, and separately the number of distinct operations.
	// Records of further names are counted under [OverflowLabelValue], so
	// that an unbounded set of names cannot use unbounded memory. Zero
	// means [DefaultMaxLabelValues]; it must not be negative.
	MaxLabelValues int

	// ReadHeaderTimeout is how long the server waits for the headers of
	// a request, so that a client that sends them slowly (or not at all)
	// cannot hold a connection. Zero means [DefaultReadHeaderTimeout]
	// (10s); it must not be negative.
	ReadHeaderTimeout time.Duration

	// ReadTimeout is how long the server waits for a whole request,
	// headers included. Zero means [DefaultReadTimeout] (30s); it must not
	// be negative.
	ReadTimeout time.Duration

	// WriteTimeout is how long the server may take to write a response,
	// from the end of the request headers, so that a client that reads
	// slowly cannot hold a scrape. Zero means [DefaultWriteTimeout] (30s);
	// it must not be negative.
	WriteTimeout time.Duration

	// IdleTimeout is how long the server keeps an idle keep-alive
	// connection open between requests. Zero means [DefaultIdleTimeout]
	// (2m); it must not be negative.
	IdleTimeout time.Duration

	// MaxHeaderBytes is the largest request header, in bytes, the server
	// reads; larger ones are answered 431. Zero means
	// [DefaultMaxHeaderBytes] (16 KiB); it must not be negative.
	MaxHeaderBytes int

	// MaxConcurrentScrapes is the number of requests for the metrics
	// served at once, by the server and by [Publisher.Handler]; further
	// ones are answered 503 Service Unavailable at once. Zero means
	// [DefaultMaxConcurrentScrapes] (8); it must not be negative.
	MaxConcurrentScrapes int

	// Logger receives the Publisher's few log lines: serving started and
	// stopped, HTTP server errors, the first label overflow. nil means
	// [slog.Default] at the time of logging.
	Logger *slog.Logger
}

// reservedLabels are the label names of the metrics of this package, which
// ConstLabels must not use.
var reservedLabels = metricdef.ReservedLabels

// serves reports whether c asks for an HTTP server.
func (c *Config) serves() bool { return c.Registry == nil || c.Serve }

// validate returns every problem of c joined in one error, or nil.
func (c *Config) validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("prometheus: "+format, args...))
	}
	if c.Port < 0 || c.Port > 65535 {
		add("port %d is outside 0-65535", c.Port)
	}
	if c.serves() {
		if c.Registry != nil {
			if _, ok := c.Registry.(prom.Gatherer); !ok {
				add("Serve is set but Registry (%T) is not a prometheus.Gatherer", c.Registry)
			}
		}
		if c.Path != "" && c.Path[0] != '/' {
			add("path %q does not start with /", c.Path)
		}
	} else if c.Port != 0 || c.Addr != "" || c.Listener != nil || c.Path != "" {
		add("Port, Addr, Listener or Path set but nothing is served: set Serve, or leave Registry nil")
	}
	if c.Namespace != "" && !validMetricName(c.Namespace) {
		add("invalid namespace %q: use letters, digits, _ and :, not starting with a digit", c.Namespace)
	}
	if c.MaxLabelValues < 0 {
		add("MaxLabelValues %d is negative", c.MaxLabelValues)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ReadHeaderTimeout", c.ReadHeaderTimeout}, {"ReadTimeout", c.ReadTimeout}, {"WriteTimeout", c.WriteTimeout}, {"IdleTimeout", c.IdleTimeout}} {
		if d.v < 0 {
			add("%s %v is negative", d.name, d.v)
		}
	}
	if c.MaxHeaderBytes < 0 {
		add("MaxHeaderBytes %d is negative", c.MaxHeaderBytes)
	}
	if c.MaxConcurrentScrapes < 0 {
		add("MaxConcurrentScrapes %d is negative", c.MaxConcurrentScrapes)
	}
	native := c.NativeHistogramBucketFactor > 1
	if f := c.NativeHistogramBucketFactor; f < 0 || (f > 0 && f <= 1) || math.IsNaN(f) || math.IsInf(f, 0) {
		add("NativeHistogramBucketFactor %v must be zero or a finite number greater than 1", f)
	}
	for _, h := range []struct {
		name    string
		buckets []float64
	}{{"EventBuckets", c.EventBuckets}, {"LatencyBuckets", c.LatencyBuckets}, {"WaitBuckets", c.WaitBuckets}} {
		// The push publishers' check (metricdef.CheckBuckets), but for
		// an empty slice, which here means no classic buckets.
		if h.buckets != nil && len(h.buckets) == 0 && !native {
			add("%s is empty, which is valid only with native histograms (NativeHistogramBucketFactor > 1)", h.name)
		}
		for _, msg := range metricdef.CheckBounds(h.name, h.buckets) {
			add("%s", msg)
		}
	}
	for name, value := range c.ConstLabels {
		for _, r := range reservedLabels {
			if name == r {
				add("ConstLabels uses the reserved label name %q", name)
			}
		}
		if !validLabelName(name) {
			add("ConstLabels has the invalid label name %q", name)
		}
		if !utf8.ValidString(value) {
			add("ConstLabels[%q] is not valid UTF-8", name)
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with the zero fields that NewPublisher fills in
// set to their defaults.
func (c Config) withDefaults() Config {
	if c.MaxLabelValues == 0 {
		c.MaxLabelValues = DefaultMaxLabelValues
	}
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxConcurrentScrapes == 0 {
		c.MaxConcurrentScrapes = DefaultMaxConcurrentScrapes
	}
	return c
}

// validLabelName reports whether name is a label name that every Prometheus
// server accepts: [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__".
func validLabelName(name string) bool {
	if name == "" || (len(name) >= 2 && name[:2] == "__") {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// validMetricName reports whether name is a metric name (or prefix) that
// every Prometheus server accepts: [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(name string) bool {
	for i, r := range name {
		switch {
		case r == '_', r == ':', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return name != ""
}

// histogramOpts returns the options of one of the histograms.
func (c *Config) histogramOpts(name, help string, buckets, defaults []float64) prom.HistogramOpts {
	o := prom.HistogramOpts{
		Namespace:   c.Namespace,
		Name:        name,
		Help:        help,
		ConstLabels: c.ConstLabels,
		Buckets:     buckets,
	}
	if buckets == nil {
		o.Buckets = defaults
	}
	if c.NativeHistogramBucketFactor > 1 {
		o.NativeHistogramBucketFactor = c.NativeHistogramBucketFactor
		o.NativeHistogramMaxBucketNumber = c.NativeHistogramMaxBuckets
		if o.NativeHistogramMaxBucketNumber == 0 {
			o.NativeHistogramMaxBucketNumber = DefaultNativeHistogramMaxBuckets
		}
		o.NativeHistogramMinResetDuration = time.Hour
	}
	return o
}

// server returns the HTTP server of the metrics, with the limits of c
// (defaults applied).
func (c *Config) server(h http.Handler, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          errorLog,
	}
}
