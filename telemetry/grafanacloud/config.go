package grafanacloud

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
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
	// DefaultJob is the job label (OTLP: the service.name resource
	// attribute) when Config.Job is empty.
	DefaultJob = "eventpipeline"
	// DefaultMaxLabelValues is the number of distinct event names (and,
	// separately, of operations) that get series of their own when
	// Config.MaxLabelValues is zero.
	DefaultMaxLabelValues = 1000
)

// OverflowLabelValue is the event_name or operation label value under which
// records are counted once the number of distinct values has reached
// Config.MaxLabelValues. Their counts stay exact; only the name is lost.
// It is the same value as the Prometheus publisher's, and is reserved: a
// record really named "_overflow" is counted under "_overflow~" and a hash
// instead, never under this value.
const OverflowLabelValue = metricdef.Overflow

// DefaultEventBuckets are the upper bounds, in seconds, of the buckets of
// event_duration_seconds when Config.EventBuckets is nil: from one
// millisecond to ten minutes. They are the Prometheus publisher's defaults,
// so that one dashboard fits both.
var DefaultEventBuckets = metricdef.EventBuckets()

// DefaultLatencyBuckets are the upper bounds, in seconds, of the buckets of
// network_latency_seconds when Config.LatencyBuckets is nil: from half a
// millisecond to one minute, as in the Prometheus publisher.
var DefaultLatencyBuckets = metricdef.LatencyBuckets()

// DefaultWaitBuckets are the upper bounds, in seconds, of the buckets of
// event_wait_seconds when Config.WaitBuckets is nil: from five
// milliseconds to one hour, as in the Prometheus publisher.
var DefaultWaitBuckets = metricdef.WaitBuckets()

// A Protocol is the ingestion protocol a [Publisher] speaks.
type Protocol string

// The two protocols. Which one is used follows from Config.Endpoint (or is
// OTLP when only Config.Region is given).
const (
	// RemoteWrite is Prometheus remote write 1.0 (protobuf, snappy), as
	// accepted by a stack's metrics endpoint
	// https://prometheus-prod-NN-<region>.grafana.net/api/prom/push and by a
	// Prometheus server started with --web.enable-remote-write-receiver.
	RemoteWrite Protocol = "remote_write"
	// OTLP is OpenTelemetry's protocol over HTTP (protobuf), as accepted by
	// a stack's OTLP gateway https://otlp-gateway-<region>.grafana.net/otlp.
	OTLP Protocol = "otlp"
)

// Config configures a [Publisher]: the API key, the org slug (the stack's
// instance id), and the region or endpoint, plus how often and what to
// push.
//
// APIKey and OrgSlug are required, and so is one of Region and Endpoint.
// Every other zero field means the default given in its doc.
type Config struct {
	// APIKey is the token of a Grafana Cloud access policy with the
	// metrics:write scope. It is the password of HTTP
	// basic authentication. Required. It never appears in logs, errors or
	// fmt output: see [telemetry.Secret]. Set it with
	// telemetry.NewSecret(os.Getenv("GRAFANA_CLOUD_API_KEY")), for example.
	APIKey telemetry.Secret

	// OrgSlug is the numeric instance id of the stack
	// that authenticates the push, the user of HTTP basic authentication.
	// It is not the organisation's name: for remote write it is the
	// "Username / Instance ID" on the stack's Prometheus details page; for
	// OTLP the "Instance ID" on its OpenTelemetry (OTLP) page. Required; it
	// must not contain ':' or spaces. Errors never quote its value, in case
	// a token was pasted into it: they say what is wrong with it instead.
	OrgSlug string

	// Region is the stack's region, such as "prod-us-east-0" or
	// "prod-eu-west-2" (shown in the stack's URLs). Without Endpoint it
	// selects OTLP to the gateway
	// https://otlp-gateway-<Region>.grafana.net/otlp. Empty means that
	// Endpoint must be set. If both are set, Endpoint wins, but a malformed
	// Region is still an error.
	Region string

	// Endpoint overrides the URL derived from Region, and selects the
	// protocol by its path:
	//   - ending in /api/prom/push, /push or /api/v1/write: Prometheus
	//     remote write, such as
	//     https://prometheus-prod-13-prod-us-east-0.grafana.net/api/prom/push;
	//   - containing /otlp, or ending in /v1/metrics: OTLP over HTTP, such
	//     as https://otlp-gateway-prod-us-east-0.grafana.net/otlp
	//     (/v1/metrics is appended when missing, as the OTLP specification
	//     says).
	// It must be https, unless its host is a loopback address or
	// AllowInsecure is set, and must not contain credentials; an OTLP URL
	// must not have a ?query either, which the OTLP exporter would not
	// send. Empty means the OTLP gateway of Region.
	Endpoint string

	// AllowInsecure allows an http:// Endpoint on a host other than
	// loopback, which sends the API key in clear text. false means that
	// only https (or http to a loopback address: 127.0.0.0/8, ::1 or
	// localhost) is accepted.
	AllowInsecure bool

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
	// and a wait that would end after Retry.MaxElapsed is shortened so
	// that the last attempt comes then. Every push also ends within one
	// Interval: a wait that would outlast it is not started (the next
	// push carries the same values). Zero fields mean those of
	// [telemetry.DefaultRetryPolicy] (no attempt limit, 100ms to 5s, one
	// minute); none may be negative.
	Retry telemetry.RetryPolicy

	// Job is the value of the job label of every series (for OTLP, the
	// service.name resource attribute, which Grafana Cloud turns into the
	// job label). Empty means [DefaultJob] ("eventpipeline").
	Job string

	// Instance is the value of the instance label of every series (for
	// OTLP, the service.instance.id resource attribute). Each process that
	// pushes to one stack needs its own, or their cumulative counters
	// would mix. Empty means "<hostname>:<pid>", unique per process.
	Instance string

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
	// own, whose idle connections Close releases and which follows a
	// redirect only to the scheme, host and port of the endpoint, so that
	// the API key never goes elsewhere (a redirect elsewhere fails the push
	// with its status). Its Timeout, if any, applies on top of Timeout.
	HTTPClient *http.Client

	// Logger receives the Publisher's few log lines: start and stop, the
	// first rejection of each HTTP status, pushes given up, recovery, the
	// first label overflow. nil means [slog.Default] at the time of logging.
	Logger *slog.Logger
}

// regionPattern is the shape of a Grafana Cloud region: lower-case words
// joined by '-', ending in a number, such as prod-us-east-0.
var regionPattern = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*-[0-9]+$`)

// target is where and how a Publisher pushes, resolved from a Config.
type target struct {
	protocol Protocol
	url      *url.URL
}

// resolve validates c and returns its target, or every problem joined in
// one error. Each message names the setting.
func (c *Config) resolve() (target, error) {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("grafanacloud: "+format, args...))
	}
	// Neither APIKey nor OrgSlug is ever quoted: a user may have pasted
	// the token, or "instance:token", into either.
	if c.APIKey.IsZero() {
		add("APIKey is required: the token of an access policy with the metrics:write scope")
	} else if strings.ContainsFunc(c.APIKey.Reveal(), spaceOrControl) {
		add("APIKey contains spaces or control characters")
	}
	switch {
	case c.OrgSlug == "":
		add("OrgSlug is required: the stack's numeric instance id, the user of basic authentication")
	case strings.ContainsRune(c.OrgSlug, ':'):
		add("OrgSlug contains ':': it must be the stack's instance id alone; the token goes in APIKey, not \"instance:token\" in OrgSlug")
	case strings.ContainsFunc(c.OrgSlug, spaceOrControl):
		add("OrgSlug contains spaces or control characters: it must be the stack's instance id alone")
	case !utf8.ValidString(c.OrgSlug):
		add("OrgSlug is not valid UTF-8")
	}
	if c.Region != "" && !regionPattern.MatchString(c.Region) {
		add("Region %q is malformed: want a Grafana Cloud region such as prod-us-east-0", c.Region)
	}
	var t target
	switch {
	case c.Endpoint != "":
		var err error
		if t, err = parseEndpoint(c.Endpoint, c.AllowInsecure); err != nil {
			errs = append(errs, err)
		}
	case c.Region != "":
		t.protocol = OTLP
		t.url = &url.URL{Scheme: "https", Host: "otlp-gateway-" + c.Region + ".grafana.net", Path: "/otlp/v1/metrics"}
	default:
		add("Region or Endpoint is required: a region such as prod-us-east-0, or the URL of the stack's remote-write or OTLP endpoint")
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
	if !utf8.ValidString(c.Job) {
		add("Job is not valid UTF-8")
	}
	if !utf8.ValidString(c.Instance) {
		add("Instance is not valid UTF-8")
	}
	if c.MaxLabelValues < 0 {
		add("MaxLabelValues %d is negative", c.MaxLabelValues)
	}
	for _, msg := range slices.Concat(metricdef.CheckBuckets("EventBuckets", c.EventBuckets),
		metricdef.CheckBuckets("LatencyBuckets", c.LatencyBuckets), metricdef.CheckBuckets("WaitBuckets", c.WaitBuckets)) {
		add("%s", msg)
	}
	if err := errors.Join(errs...); err != nil {
		return target{}, err
	}
	return t, nil
}

// spaceOrControl reports whether r is a space or a control character.
func spaceOrControl(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

// parseEndpoint checks a Config.Endpoint and derives the protocol from its
// path. Its errors show the URL as safetext.URL does: no password, query
// value or fragment.
func parseEndpoint(s string, allowInsecure bool) (target, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the input, which may hold credentials: say
		// only what is wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return target{}, fmt.Errorf("grafanacloud: Endpoint is not a valid URL: %v", err)
	}
	if u.User != nil {
		return target{}, fmt.Errorf("grafanacloud: Endpoint %q must not contain credentials: set OrgSlug and APIKey instead", safetext.URL(u))
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return target{}, fmt.Errorf("grafanacloud: Endpoint %q must be an http(s) URL", safetext.URL(u))
	}
	if u.Host == "" {
		return target{}, fmt.Errorf("grafanacloud: Endpoint %q has no host", safetext.URL(u))
	}
	if u.Fragment != "" {
		return target{}, fmt.Errorf("grafanacloud: Endpoint %q must not have a #fragment", safetext.URL(u))
	}
	if u.Scheme == "http" && !allowInsecure && !metricpush.IsLoopback(u.Hostname()) {
		return target{}, fmt.Errorf("grafanacloud: Endpoint %q is not https: the API key would be sent in clear text (set AllowInsecure to allow it)", safetext.URL(u))
	}
	path := strings.TrimRight(u.Path, "/")
	t := target{url: u}
	switch {
	case strings.Contains(path, "/loki/") || strings.Contains(path, "/tempo"):
		return target{}, fmt.Errorf("grafanacloud: Endpoint %q is a logs or traces URL: use the stack's Prometheus remote-write URL (…/api/prom/push) or its OTLP gateway (…/otlp)", safetext.URL(u))
	case strings.HasSuffix(path, "/push") || strings.HasSuffix(path, "/api/v1/write"):
		t.protocol = RemoteWrite
	case strings.HasSuffix(path, "/v1/metrics"):
		t.protocol = OTLP
	case strings.HasSuffix(path, "/otlp") || strings.Contains(path, "/otlp/"):
		t.protocol = OTLP
		path += "/v1/metrics"
	default:
		return target{}, fmt.Errorf("grafanacloud: Endpoint %q is neither a remote-write URL (path ending in /api/prom/push, /push or /api/v1/write) nor an OTLP URL (path containing /otlp or ending in /v1/metrics)", safetext.URL(u))
	}
	if t.protocol == OTLP && (u.RawQuery != "" || u.ForceQuery) {
		// The OTLP exporter posts to the URL's host and path only.
		return target{}, fmt.Errorf("grafanacloud: Endpoint %q must not have a ?query: the OTLP exporter does not send it", safetext.URL(u))
	}
	u.Path, u.RawPath = path, ""
	return t, nil
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
	// Copy the buckets: the caller may change its slices later.
	c.EventBuckets = append([]float64(nil), c.EventBuckets...)
	c.LatencyBuckets = append([]float64(nil), c.LatencyBuckets...)
	c.WaitBuckets = append([]float64(nil), c.WaitBuckets...)
	if c.MaxLabelValues == 0 {
		c.MaxLabelValues = DefaultMaxLabelValues
	}
	return c
}
