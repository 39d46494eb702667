package remotewrite

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
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
	// DefaultJob is the job label when Config.Job is empty.
	DefaultJob = "eventpipeline"
	// DefaultMaxLabelValues is the number of distinct event names (and,
	// separately, of operations) that get series of their own when
	// Config.MaxLabelValues is zero.
	DefaultMaxLabelValues = 1000
	// DefaultName is the publisher's name when Config.Name is empty.
	DefaultName = "remotewrite"
)

// OverflowLabelValue is the event_name or operation label value under
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

// Config configures a [Publisher]: the receiver's URL, how to authenticate
// to it, and how often and what to push. URL is required; every other zero
// field means the default given in its doc.
type Config struct {
	// URL is the remote-write URL of the receiver, such as
	// http://127.0.0.1:9090/api/v1/write (Prometheus started with
	// --web.enable-remote-write-receiver), https://mimir.example.com/api/v1/push,
	// a Thanos Receive's /api/v1/receive or a VictoriaMetrics /api/v1/write.
	// It must be http or https without credentials in it (use Username and
	// Password, BearerToken or Headers). With credentials, it must be https
	// unless its host is loopback or AllowInsecure is set. Required.
	URL string

	// Username and Password authenticate with HTTP basic authentication.
	// Empty means none; Password needs Username.
	Username string
	Password telemetry.Secret

	// BearerToken, if not zero, is sent as "Authorization: Bearer <token>".
	// It cannot be combined with Username and Password.
	BearerToken telemetry.Secret

	// Headers are sent with every request, such as
	// {"X-Scope-OrgID": telemetry.NewSecret("tenant-1")} for a multi-tenant
	// Mimir. Their values are secrets: they never appear in logs, errors or
	// fmt output. They must not set Authorization together with Username
	// or BearerToken. nil means none.
	Headers map[string]telemetry.Secret

	// AllowInsecure allows, at the risk of sending credentials in clear
	// text or to an impostor, an http:// URL on a host other than loopback
	// with credentials, and a TLSConfig with InsecureSkipVerify. false
	// refuses both.
	AllowInsecure bool

	// TLSConfig configures HTTPS: client certificates, server name,
	// minimum version. nil means Go's defaults, which verify the server's
	// certificate against the system's roots. It is cloned.
	TLSConfig *tls.Config

	// CACert holds PEM-encoded certificate authorities trusted for HTTPS
	// instead of the system's roots (they replace TLSConfig.RootCAs). nil
	// means the system's roots.
	CACert []byte

	// Interval is how often the aggregated metrics are pushed; transient
	// failures are retried within it. Zero means [DefaultInterval] (15s);
	// otherwise it must be at least [MinInterval] (10ms). [Publisher.Flush]
	// and [Publisher.Close] push at once as well. A receiver's Retry-After
	// holds the periodic pushes back until it has passed (retries within a
	// push wait at most the retry policy's MaxBackoff).
	Interval time.Duration

	// Timeout limits each HTTP attempt. Zero means [DefaultTimeout] (10s);
	// it is capped at Interval and must not be negative.
	Timeout time.Duration

	// Retry sets how failed pushes are retried, as everywhere in the
	// module: connection errors, 408, 429 and 5xx are retried, other
	// statuses are not (the push's error is then marked with
	// [telemetry.Permanent]). Waits grow exponentially with jitter from
	// Retry.InitialBackoff to Retry.MaxBackoff, or follow a Retry-After
	// header; there are at most Retry.MaxAttempts attempts if it is set,
	// and the last attempt comes at Retry.MaxElapsed at the latest. Every
	// push also ends within one Interval. Zero fields mean those of
	// [telemetry.DefaultRetryPolicy]; none may be negative.
	Retry telemetry.RetryPolicy

	// Job is the job label of every series. Empty means [DefaultJob]
	// ("eventpipeline").
	Job string

	// Instance is the instance label of every series. Each process that
	// pushes to one receiver needs its own, or their cumulative counters
	// would mix. Empty means "<hostname>:<pid>", unique per process.
	Instance string

	// ExternalLabels are further labels of every series, such as
	// {"cluster": "eu-1"}. Names must be valid Prometheus label names, not
	// start with "__", and not be job, instance or a label of the metrics
	// themselves (event_name, status, operation, direction, publisher,
	// reason, le). nil means none.
	ExternalLabels map[string]string

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
	// host and port of URL, so that the credentials never go elsewhere; a
	// redirect elsewhere fails the push with its status.
	HTTPClient *http.Client

	// Name is the Publisher's name in [telemetry.PublisherStats] (the
	// publisher label of the self-metrics). Empty means [DefaultName]
	// ("remotewrite").
	Name string

	// Logger receives the Publisher's few log lines: start and stop, the
	// first rejection of each HTTP status, pushes given up, recovery, the
	// first label overflow. nil means [slog.Default] at the time of logging.
	Logger *slog.Logger
}

// labelName is the shape of a Prometheus label name.
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// resolve validates c and returns its URL, or every problem joined in one
// error. Each message names the setting; no secret is ever quoted.
func (c *Config) resolve() (*url.URL, error) {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("remotewrite: "+format, args...)) }
	hasCreds := c.Username != "" || !c.Password.IsZero() || !c.BearerToken.IsZero() || len(c.Headers) > 0
	u, err := metricpush.ParseURL("URL", c.URL)
	if err != nil {
		add("%s", err.Error())
	} else if u.Scheme == "http" && hasCreds && !c.AllowInsecure && !metricpush.IsLoopback(u.Hostname()) {
		add("URL %q is not https, so the credentials would be sent in clear text; use https://, or set AllowInsecure to allow it", safetext.URL(u))
	}
	if !c.Password.IsZero() && c.Username == "" {
		add("Password is set without Username")
	}
	if strings.ContainsRune(c.Username, ':') || strings.ContainsFunc(c.Username, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		add("Username contains ':' or a control character")
	}
	if !c.BearerToken.IsZero() && (c.Username != "" || !c.Password.IsZero()) {
		add("BearerToken cannot be combined with Username and Password: choose one way to authenticate")
	}
	if strings.ContainsFunc(c.BearerToken.Reveal()+c.Password.Reveal(), func(r rune) bool { return r < ' ' || r == 0x7f }) {
		add("Password or BearerToken holds a control character")
	}
	for name, v := range c.Headers {
		if msg := metricpush.CheckHeader("Headers", name, v.Reveal()); msg != "" {
			add("%s", msg)
		}
		if strings.EqualFold(name, "Authorization") && (c.Username != "" || !c.BearerToken.IsZero()) {
			add("Headers sets Authorization together with Username or BearerToken")
		}
	}
	if c.TLSConfig != nil && c.TLSConfig.InsecureSkipVerify && !c.AllowInsecure {
		add("TLSConfig.InsecureSkipVerify is set: the server's certificate would not be verified (set AllowInsecure to allow it)")
	}
	if c.HTTPClient != nil && (c.TLSConfig != nil || len(c.CACert) > 0) {
		add("TLSConfig and CACert configure the Publisher's own client; with an HTTPClient of yours, configure TLS on it")
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
	for _, f := range []struct{ name, v string }{{"Job", c.Job}, {"Instance", c.Instance}, {"Name", c.Name}} {
		if !utf8.ValidString(f.v) {
			add("%s is not valid UTF-8", f.name)
		}
	}
	for k, v := range c.ExternalLabels {
		switch {
		case !labelName.MatchString(k):
			add("ExternalLabels: %q is not a valid label name", k)
		case strings.HasPrefix(k, "__") || k == "job" || k == "instance" || slices.Contains(metricdef.ReservedLabels, k):
			add("ExternalLabels: %q is reserved", k)
		case !utf8.ValidString(v):
			add("ExternalLabels[%q] is not valid UTF-8", k)
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
	if c.Job == "" {
		c.Job = DefaultJob
	}
	if c.Instance == "" {
		c.Instance = metricpush.DefaultInstance()
	}
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
