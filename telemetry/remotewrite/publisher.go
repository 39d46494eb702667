package remotewrite

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/metricpush"
	"github.com/eventpipeline/eventpipeline/internal/metricpush/rwsend"
	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// userAgent is sent with every push.
const userAgent = "eventpipeline-telemetry-remotewrite"

// A Publisher pushes the records of a [telemetry.Recorder] with Prometheus
// remote write 1.0 to any receiver (Prometheus, Mimir, Thanos,
// VictoriaMetrics, Cortex, a vendor's gateway), as the series of the
// Prometheus publisher, and the delivery self-metrics of the Recorder it is
// attached to (see [Publisher.Attach]).
//
// It is a [telemetry.SyncPublisher]: the Recorder calls it on the recording
// path, where it only updates in-process histograms and counters, without
// blocking or allocating. A goroutine of its own pushes them every
// Config.Interval, and [Publisher.Flush] and [Publisher.Close] push at once.
//
// Create one with [NewPublisher]. A Publisher is safe for concurrent use.
type Publisher struct {
	url *url.URL
	eng *metricpush.Pusher
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
// goroutine that pushes every cfg.Interval. It does no network I/O: an
// unreachable receiver or wrong credentials show at the first push, in
// [Publisher.Stats], the log, and the error of [Publisher.Flush].
//
// It returns an error if cfg is invalid: every problem, each naming its
// setting, joined in one error. No secret is ever part of it.
func NewPublisher(cfg Config) (*Publisher, error) {
	return newPublisher(cfg, nil)
}

// newPublisher is NewPublisher with the backoff jitter, which tests
// replace with none.
func newPublisher(cfg Config, jitter func(time.Duration) time.Duration) (*Publisher, error) {
	u, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	client, owns, err := newClient(&cfg)
	if err != nil {
		return nil, err
	}
	headers := map[string]telemetry.Secret{"User-Agent": telemetry.NewSecret(userAgent)}
	for k, v := range cfg.Headers {
		headers[k] = v
	}
	switch {
	case cfg.Username != "":
		headers["Authorization"] = telemetry.NewSecret("Basic " +
			base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+cfg.Password.Reveal())))
	case !cfg.BearerToken.IsZero():
		headers["Authorization"] = telemetry.NewSecret("Bearer " + cfg.BearerToken.Reveal())
	}
	labels := map[string]string{"job": cfg.Job, "instance": cfg.Instance}
	for k, v := range cfg.ExternalLabels {
		labels[k] = v
	}
	sender := rwsend.New(rwsend.Config{
		URL:            u.String(),
		Headers:        headers,
		Client:         client,
		Labels:         labels,
		EventBuckets:   cfg.EventBuckets,
		LatencyBuckets: cfg.LatencyBuckets,
		WaitBuckets:    cfg.WaitBuckets,
		Prefix:         "remotewrite",
		StatusError:    statusError,
	})
	eng := metricpush.New(metricpush.Options{
		Name: cfg.Name, Prefix: "remotewrite", Protocol: "remote_write", URL: u, Sender: sender,
		Client: client, OwnsClient: owns,
		Interval: cfg.Interval, Timeout: cfg.Timeout, Retry: cfg.Retry,
		EventBuckets: cfg.EventBuckets, LatencyBuckets: cfg.LatencyBuckets, WaitBuckets: cfg.WaitBuckets,
		MaxLabelValues: cfg.MaxLabelValues,
		Logger:         cfg.Logger,
		LogAttrs:       []slog.Attr{slog.String("job", cfg.Job), slog.String("instance", cfg.Instance)},
		Hint:           hint,
		Jitter:         jitter,
	})
	return &Publisher{url: u, eng: eng}, nil
}

// newClient returns cfg.HTTPClient, or a client of the Publisher's own
// configured by cfg.TLSConfig and cfg.CACert (owns is then true).
func newClient(cfg *Config) (client *http.Client, owns bool, err error) {
	if cfg.HTTPClient != nil {
		return cfg.HTTPClient, false, nil
	}
	client, err = metricpush.NewClient(cfg.TLSConfig, cfg.CACert)
	if err != nil {
		return nil, false, fmt.Errorf("remotewrite: %w", err)
	}
	return client, true, nil
}

// PublishEventMetrics adds the finished run m to the aggregates pushed
// next: its duration to event_duration_seconds{event_name, status} and its
// retries to event_retries_total{event_name}. The event_name label is
// the bounded form of m.EventName (see the package doc). It never blocks
// and does no I/O; ctx is not used.
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
// [telemetry.DefaultOperation]. The host, port, task id and error text are
// not used: they would make unbounded label values.
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

// Name returns Config.Name ("remotewrite" by default), the name of p in the
// Recorder's [telemetry.PublisherStats].
func (p *Publisher) Name() string { return p.eng.Name() }

// Attach makes p push the delivery counters of r, the Recorder it is
// attached to, as the telemetry_publisher_* self-metrics: for every
// publisher of r, p included. [telemetry.Recorder.AddPublisher] (and so
// [telemetry.WithPublishers] and [telemetry.MonitorEvents]) calls it. If p
// is attached to several Recorders, the first one's counters are pushed.
// Once attached, p pushes every interval, even before the first record.
func (p *Publisher) Attach(r *telemetry.Recorder) { p.eng.Attach(r) }

// URL returns the URL p pushes to, such as
// "http://127.0.0.1:9090/api/v1/write".
// It is the whole URL, with any query: to show it, print p, which hides
// the query's values.
func (p *Publisher) URL() string { return p.url.String() }

// String describes p by its URL, never its credentials.
func (p *Publisher) String() string { return "remotewrite.Publisher(" + safetext.URL(p.url) + ")" }

// Format writes [Publisher.String] whatever the verb, so that %v, %+v and
// %#v never print the fields, which hold the credentials.
func (p *Publisher) Format(f fmt.State, _ rune) { io.WriteString(f, p.String()) }

// LogValue shows p in logs by its name and URL.
func (p *Publisher) LogValue() slog.Value {
	return slog.GroupValue(slog.String("publisher", p.Name()), slog.String("url", safetext.URL(p.url)))
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
	// 429), such as 401 for wrong credentials.
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
// [*StatusError] for an HTTP status, marked with [telemetry.Permanent] if
// not worth retrying), ctx.Err() if ctx ends first, and an error wrapping
// [telemetry.ErrClosed] once Close has begun (Close pushes last).
func (p *Publisher) Flush(ctx context.Context) error { return p.eng.Flush(ctx) }

// Close stops the periodic pushes, makes a last push of everything
// recorded (retrying within one interval), once a push in progress (a
// Flush) has ended, unless the last push already had it, and releases
// the connections. Publishing afterwards returns an error wrapping
// [telemetry.ErrClosed]. A Recorder that p is attached to calls Close
// from [telemetry.Recorder.Close], after its last record.
//
// It returns the last push's error if it failed, or ctx.Err() if ctx ends
// first; the goroutine then still exits shortly. A second call returns an
// error wrapping [telemetry.ErrClosed]. Close is safe to call from several
// goroutines.
func (p *Publisher) Close(ctx context.Context) error { return p.eng.Close(ctx) }

// hint returns advice for a permanent HTTP status.
func hint(status int) string {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return "check Username and Password, BearerToken or Headers"
	case http.StatusNotFound:
		return "check URL: a Prometheus server needs --web.enable-remote-write-receiver and /api/v1/write; Mimir takes /api/v1/push"
	case http.StatusRequestEntityTooLarge:
		return "the push is larger than the receiver takes: lower MaxLabelValues or use fewer buckets, or raise the receiver's limit"
	case http.StatusBadRequest:
		return "the receiver rejected samples: out of order (another process with the same Job and Instance?) or too old"
	}
	return "see the error"
}

// A StatusError is the error of a push that the endpoint answered with an
// HTTP status other than 2xx. Pushes answered 408, 429 or 5xx are retried;
// the others are not, and their error is marked with [telemetry.Permanent].
type StatusError struct {
	Op   string // what was attempted and where, such as "remote write to http://..."
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
	msg := "remotewrite: " + e.Op + ": HTTP " + strconv.Itoa(e.Code) + " " + http.StatusText(e.Code)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Temporary reports whether another attempt may succeed: for 408, 429 and
// 5xx, the statuses the module retries everywhere.
func (e *StatusError) Temporary() bool { return retry.RetryableStatus(e.Code) }
