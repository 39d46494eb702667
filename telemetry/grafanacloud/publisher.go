package grafanacloud

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/metricpush"
	"github.com/eventpipeline/eventpipeline/internal/metricpush/otlpsend"
	"github.com/eventpipeline/eventpipeline/internal/metricpush/rwsend"
	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// userAgent is sent with every push.
const userAgent = "eventpipeline-telemetry-grafanacloud"

// scopeName is the instrumentation scope of the metrics sent with OTLP.
const scopeName = "github.com/eventpipeline/eventpipeline/telemetry/grafanacloud"

// Names of the four metrics of the contract. Dashboards and alerts depend
// on them; they are the Prometheus publisher's names.
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
)

// A Publisher pushes the records of a [telemetry.Recorder] to Grafana Cloud
// as metrics, with the names and labels of the Prometheus publisher, and
// the delivery self-metrics of the Recorder it is attached to (see
// [Publisher.Attach]). It is a
// [telemetry.SyncPublisher]: the Recorder calls it on the recording path,
// where it only updates in-process histograms and counters, without
// blocking or allocating. A goroutine of its own pushes them every
// Config.Interval with Prometheus remote write or OTLP, and
// [Publisher.Flush] and [Publisher.Close] push at once.
//
// It is a preset of the publishers of packages otlp and remotewrite: the
// same aggregation, pushes and retries, with the URL and credentials
// derived from a Grafana Cloud stack's settings.
//
// Create one with [NewPublisher]. A Publisher is safe for concurrent use.
type Publisher struct {
	target target
	eng    *metricpush.Pusher
}

var (
	_ telemetry.Publisher     = (*Publisher)(nil)
	_ telemetry.SyncPublisher = (*Publisher)(nil)
	_ telemetry.Observer      = (*Publisher)(nil)
	_ telemetry.Flusher       = (*Publisher)(nil)
	_ telemetry.Closer        = (*Publisher)(nil)
	_ telemetry.Namer         = (*Publisher)(nil)
	_ telemetry.Attacher      = (*Publisher)(nil)
	_ slog.LogValuer          = (*Publisher)(nil)
	_ fmt.Formatter           = (*Publisher)(nil)
)

// NewPublisher returns a new Publisher configured by cfg, and starts the
// goroutine that pushes every cfg.Interval. It does no network I/O: a wrong
// key or an unreachable endpoint shows at the first push, in [Publisher.Stats],
// the log, and the error of [Publisher.Flush].
//
// It returns an error if cfg is invalid: every problem, each naming its
// setting (APIKey, OrgSlug, Region, Endpoint, ...), joined in one error.
// The API key is never part of it.
func NewPublisher(cfg Config) (*Publisher, error) {
	return newPublisher(cfg, nil)
}

// newPublisher is NewPublisher with the backoff function, which tests
// replace with one without jitter.
func newPublisher(cfg Config, jitter func(b time.Duration) time.Duration) (*Publisher, error) {
	t, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := metricpush.Options{
		Name: "grafanacloud", Prefix: "grafanacloud", Protocol: string(t.protocol), URL: t.url,
		Client: cfg.HTTPClient, Interval: cfg.Interval, Timeout: cfg.Timeout, Retry: cfg.Retry,
		EventBuckets: cfg.EventBuckets, LatencyBuckets: cfg.LatencyBuckets, WaitBuckets: cfg.WaitBuckets,
		MaxLabelValues: cfg.MaxLabelValues,
		Logger:         cfg.Logger,
		LogAttrs:       []slog.Attr{slog.String("job", cfg.Job), slog.String("instance", cfg.Instance)},
		Hint:           hint, Jitter: jitter,
	}
	if o.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 2
		o.Client = &http.Client{Transport: tr, CheckRedirect: metricpush.SameOriginRedirect}
		o.OwnsClient = true
	}
	auth := basicAuth(cfg.OrgSlug, cfg.APIKey)
	switch t.protocol {
	case RemoteWrite:
		o.Sender = rwsend.New(rwsend.Config{
			URL:            t.url.String(),
			Headers:        map[string]telemetry.Secret{"Authorization": auth, "User-Agent": telemetry.NewSecret(userAgent)},
			Client:         o.Client,
			Labels:         map[string]string{"job": cfg.Job, "instance": cfg.Instance},
			EventBuckets:   cfg.EventBuckets,
			LatencyBuckets: cfg.LatencyBuckets,
			WaitBuckets:    cfg.WaitBuckets,
			Prefix:         "grafanacloud",
			StatusError:    statusError,
		})
	case OTLP:
		if o.Sender, err = otlpsend.New(otlpsend.Config{
			URL:     t.url.String(),
			Headers: map[string]string{"Authorization": auth.Reveal(), "User-Agent": userAgent},
			Client:  o.Client,
			Gzip:    true,
			Resource: resource.NewSchemaless(
				attribute.String("service.name", cfg.Job),
				attribute.String("service.instance.id", cfg.Instance),
			),
			Scope:          scopeName,
			Start:          time.Now(),
			EventBuckets:   cfg.EventBuckets,
			LatencyBuckets: cfg.LatencyBuckets,
			WaitBuckets:    cfg.WaitBuckets,
			Prefix:         "grafanacloud",
			StatusError:    statusError,
		}); err != nil {
			return nil, err
		}
	}
	return &Publisher{target: t, eng: metricpush.New(o)}, nil
}

// PublishEventMetrics adds the finished run m to the aggregates pushed
// next: its duration to event_duration_seconds{event_name, status} and its
// retries to event_retries_total{event_name}. The event_name label is the
// bounded form of m.EventName (see the package doc). It never blocks and
// does no I/O; ctx is not used.
//
// It returns an error for a record with an empty event name or whose status
// is neither completed nor failed, and one wrapping [telemetry.ErrClosed]
// after Close.
func (p *Publisher) PublishEventMetrics(ctx context.Context, m telemetry.EventMetrics) error {
	return p.eng.PublishEventMetrics(ctx, m)
}

// ObserveEvent is PublishEventMetrics for the [telemetry.EventObservation]
// of a run, which a Recorder passes instead of the whole record.
func (p *Publisher) ObserveEvent(ctx context.Context, o telemetry.EventObservation) error {
	return p.eng.ObserveEvent(ctx, o)
}

// PublishNetworkMetrics adds the finished operation m to the aggregates
// pushed next: its latency to network_latency_seconds{operation} and its
// bytes to network_bytes_total{operation, direction}. It never blocks and
// does no I/O; ctx is not used. An empty operation counts as
// [telemetry.DefaultOperation]; the operation label is its bounded form.
// The host, port, task id and error text are not used: they would make
// unbounded label values.
//
// It returns an error for a record whose status is neither completed nor
// failed or whose byte counts are negative, and one wrapping
// [telemetry.ErrClosed] after Close.
func (p *Publisher) PublishNetworkMetrics(ctx context.Context, m telemetry.NetworkMetrics) error {
	return p.eng.PublishNetworkMetrics(ctx, m)
}

// ObserveNetwork is PublishNetworkMetrics for the
// [telemetry.NetworkObservation] of an operation, which a Recorder passes
// instead of the whole record.
func (p *Publisher) ObserveNetwork(ctx context.Context, o telemetry.NetworkObservation) error {
	return p.eng.ObserveNetwork(ctx, o)
}

// Synchronous reports true: the Recorder calls p on the recording path,
// without a queue, since publishing only updates in-process aggregates.
func (p *Publisher) Synchronous() bool { return true }

// Name returns "grafanacloud", the name of p in the Recorder's
// [telemetry.PublisherStats].
func (p *Publisher) Name() string { return "grafanacloud" }

// Attach makes p push the delivery counters of r, the Recorder it is
// attached to, as the telemetry_publisher_* self-metrics (the ones the
// Prometheus publisher exports): for every publisher of r, p included.
// [telemetry.Recorder.AddPublisher] (and so [telemetry.WithPublishers] and
// [telemetry.MonitorEvents]) calls it; there is no need to call it
// yourself. If p is attached to several Recorders, the first one's counters
// are pushed. Once attached, p pushes every interval, even before the
// first record.
func (p *Publisher) Attach(r *telemetry.Recorder) { p.eng.Attach(r) }

// Protocol returns the protocol p pushes with.
func (p *Publisher) Protocol() Protocol { return p.target.protocol }

// URL returns the URL p pushes to, such as
// "https://otlp-gateway-prod-us-east-0.grafana.net/otlp/v1/metrics".
// It is the whole URL, with any query: to show it, print p, which hides
// the query's values.
func (p *Publisher) URL() string { return p.target.url.String() }

// String describes p by its protocol and URL, never its credentials.
func (p *Publisher) String() string {
	return "grafanacloud.Publisher(" + string(p.target.protocol) + " " + safetext.URL(p.target.url) + ")"
}

// Format writes [Publisher.String] whatever the verb, so that %v, %+v and
// %#v never print the fields, which hold the credentials.
func (p *Publisher) Format(f fmt.State, _ rune) { io.WriteString(f, p.String()) }

// LogValue shows p in logs by its kind, protocol and URL.
func (p *Publisher) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("publisher", p.Name()),
		slog.String("protocol", string(p.target.protocol)),
		slog.String("url", safetext.URL(p.target.url)))
}

// Stats are the push counters of a [Publisher].
type Stats struct {
	// Pushes is the number of pushes the endpoint accepted.
	Pushes uint64 `json:"pushes"`
	// FailedAttempts is the number of HTTP attempts that failed, retried
	// or not.
	FailedAttempts uint64 `json:"failed_attempts"`
	// DroppedPushes is the number of pushes given up: after a permanent
	// error, or when the attempts or the interval ran out, and the last
	// push with records not yet pushed that Close could not make because
	// its context ended. Since the values are cumulative, the next push
	// that succeeds carries what a dropped one had: only resolution in
	// time is lost.
	DroppedPushes uint64 `json:"dropped_pushes"`
	// PermanentFailures is the number of dropped pushes that the endpoint
	// rejected with a status not worth retrying (4xx other than 408 and
	// 429), such as 401 for a wrong instance id or token.
	PermanentFailures uint64 `json:"permanent_failures"`
	// LastPush is when a push last succeeded; the zero Time if never.
	LastPush time.Time `json:"last_push"`
	// LastError is when an attempt last failed; the zero Time if never.
	LastError time.Time `json:"last_error"`
	// LastStatus is the HTTP status of the last attempt; 0 if it got no
	// response or there was none.
	LastStatus int `json:"last_status"`
	// Series is the number of series (in Prometheus terms) of the last push.
	Series int `json:"series"`
}

// Stats returns the current push counters of p. It reads atomics only.
func (p *Publisher) Stats() Stats { return Stats(p.eng.Stats()) }

// Flush pushes the current aggregates now, retrying transient failures
// within one Config.Interval, and waits for the outcome. The Recorder calls
// it from [telemetry.Recorder.Flush].
//
// It returns nil once the endpoint has accepted the push (or if nothing was
// recorded yet), the push's last error if it was given up (a
// [*StatusError] for an HTTP status), ctx.Err() if ctx ends first, and an
// error wrapping [telemetry.ErrClosed] once Close has begun (Close pushes
// last).
func (p *Publisher) Flush(ctx context.Context) error { return p.eng.Flush(ctx) }

// Close stops the periodic pushes, makes a last push of everything
// recorded (retrying within one interval), once a push in progress (a
// Flush) has ended, unless the last push already had it, and releases
// the connections.
// Publishing afterwards returns an error wrapping [telemetry.ErrClosed].
// A Recorder that p is attached to calls Close from
// [telemetry.Recorder.Close], after its last record.
//
// It returns the last push's error if it failed, or ctx.Err() if ctx ends
// first; the goroutine then still exits shortly. A second call returns an
// error wrapping [telemetry.ErrClosed]. Close is safe to call from several
// goroutines.
func (p *Publisher) Close(ctx context.Context) error { return p.eng.Close(ctx) }

// basicAuth returns the Authorization header value of user and key, as a
// Secret: it holds the key.
func basicAuth(user string, key telemetry.Secret) telemetry.Secret {
	return telemetry.NewSecret("Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+key.Reveal())))
}

// hint returns advice for a permanent HTTP status.
func hint(status int) string {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return "check OrgSlug (the instance id shown with the endpoint's URL in the Grafana Cloud portal) and APIKey (a token with the metrics:write scope)"
	case http.StatusNotFound:
		return "check Endpoint (or Region)"
	}
	return "see the error"
}

// A StatusError is the error of a push that the endpoint answered with an
// HTTP status other than 2xx. Pushes answered 408, 429 or 5xx are retried;
// the others are not, and their error is marked with [telemetry.Permanent].
type StatusError struct {
	Op   string // what was attempted and where, such as "remote write to https://..."
	Code int    // the HTTP status code
	// Body is the start of the response body, for diagnosis: 512 bytes
	// at most, on one line, control characters escaped. A longer body is
	// cut and ends with a marker of its length, such as "… [truncated,
	// 2048 bytes]", or "at least" a length when only part of it was
	// counted (the first MiB, or up to a broken connection).
	Body string
}

func statusError(op string, code int, body string) error {
	return &StatusError{Op: op, Code: code, Body: body}
}

// Error returns a message with the operation, the status and the body.
func (e *StatusError) Error() string {
	msg := "grafanacloud: " + e.Op + ": HTTP " + strconv.Itoa(e.Code) + " " + http.StatusText(e.Code)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Temporary reports whether another attempt may succeed: for 408, 429 and
// 5xx, the statuses the module retries everywhere.
func (e *StatusError) Temporary() bool { return retry.RetryableStatus(e.Code) }
