package grafanacloud

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/internal/seriescache"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// userAgent is sent with every push.
const userAgent = "eventpipeline-telemetry-grafanacloud"

// Errors of the publish methods, Flush and Close.
var (
	errClosed     = fmt.Errorf("grafanacloud: publisher: %w", telemetry.ErrClosed)
	errCloseAgain = fmt.Errorf("grafanacloud: close: %w", telemetry.ErrClosed)
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
// Create one with [NewPublisher]. A Publisher is safe for concurrent use.
type Publisher struct {
	cfg      Config // with defaults applied
	target   target
	sender   sender
	client   *http.Client
	ownsConn bool // client is ours: Close releases its connections

	events *seriescache.Cache[eventSeries]
	ops    *seriescache.Cache[opSeries]

	// rec is the Recorder p is attached to (see Attach), whose delivery
	// counters are pushed as the self-metrics; nil until then.
	rec atomic.Pointer[telemetry.Recorder]
	// pushedDelivery is the delivery counters of the last successful
	// push: Close pushes again if they changed since.
	pushedDelivery atomic.Pointer[[]telemetry.PublisherStats]
	// jitter draws the jitter of backoff waits (see retry.BackoffJitter):
	// nil, random, but fixed in tests.
	jitter func(b time.Duration) time.Duration

	sem   chan struct{} // held by the push in progress: one at a time
	snap  snapshot      // reused by pushes, guarded by sem
	stop  chan struct{} // closed by Close to stop the pusher
	done  chan struct{} // closed when the pusher has exited
	ctx   context.Context
	abort context.CancelFunc // ends pushes in progress when Close gives up

	closed atomic.Bool
	// dirty reports whether records were published since the snapshot of
	// the last successful push. Publishing sets it (reading it first, so
	// that the cache line stays shared while it is set); a push clears it
	// and sets it again if it fails. Close skips its last push when it is
	// clear.
	dirty  atomic.Bool
	stats  counters
	logMu  sync.Mutex
	logged map[int]bool // statuses whose permanent rejection was logged
	quiet  int          // give-ups not logged since the last one logged
	lastGU time.Time    // when a give-up was last logged
	failed bool         // the last push failed: log the next success
}

// counters are the values of [Stats], updated with atomics.
type counters struct {
	pushes, failedAttempts, dropped, permanent atomic.Uint64
	lastPush, lastError                        atomic.Int64 // Unix nanoseconds, 0 for never
	lastStatus                                 atomic.Int64
	series                                     atomic.Int64
}

var (
	_ telemetry.Publisher     = (*Publisher)(nil)
	_ telemetry.SyncPublisher = (*Publisher)(nil)
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
	p := &Publisher{cfg: cfg, target: t, client: cfg.HTTPClient, logged: make(map[int]bool), jitter: jitter}
	if p.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 2
		p.client = &http.Client{Transport: tr}
		p.ownsConn = true
	}
	start := time.Now()
	switch t.protocol {
	case RemoteWrite:
		p.sender = newRemoteWriter(&cfg, t, p.client)
	case OTLP:
		if p.sender, err = newOTLPSender(&cfg, t, p.client, start); err != nil {
			return nil, err
		}
	}
	p.events = seriescache.New(cfg.MaxLabelValues, p.bindEvent, func(name string) { p.logOverflow("event_name", name) })
	p.ops = seriescache.New(cfg.MaxLabelValues, p.bindOp, func(name string) { p.logOverflow("operation", name) })
	p.sem = make(chan struct{}, 1)
	p.stop = make(chan struct{})
	p.done = make(chan struct{})
	p.ctx, p.abort = context.WithCancel(context.Background())
	go p.run()
	p.logger().LogAttrs(context.Background(), slog.LevelInfo, "grafanacloud: pushing metrics",
		slog.String("protocol", string(t.protocol)), slog.String("url", t.url.Redacted()),
		slog.Duration("interval", cfg.Interval), slog.String("job", cfg.Job), slog.String("instance", cfg.Instance))
	return p, nil
}

func (p *Publisher) bindEvent(name string) *eventSeries {
	return &eventSeries{name: name, completed: newHistogram(p.cfg.EventBuckets), failed: newHistogram(p.cfg.EventBuckets)}
}

func (p *Publisher) bindOp(name string) *opSeries {
	return &opSeries{name: name, latency: newHistogram(p.cfg.LatencyBuckets)}
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
func (p *Publisher) PublishEventMetrics(_ context.Context, m telemetry.EventMetrics) error {
	if p.closed.Load() {
		return errClosed
	}
	if err := metricdef.CheckEvent(m.EventName, string(m.Status)); err != nil {
		return fmt.Errorf("grafanacloud: %w", err)
	}
	s := p.events.Get(m.EventName)
	h := s.completed
	if m.Status == telemetry.StatusFailed {
		h = s.failed
	}
	h.observe(m.Duration().Seconds())
	if m.RetryCount > 0 {
		s.retries.Add(uint64(m.RetryCount))
	}
	p.markDirty()
	return nil
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
func (p *Publisher) PublishNetworkMetrics(_ context.Context, m telemetry.NetworkMetrics) error {
	if p.closed.Load() {
		return errClosed
	}
	if err := metricdef.CheckNetwork(string(m.Status), m.BytesSent, m.BytesReceived); err != nil {
		return fmt.Errorf("grafanacloud: %w", err)
	}
	op := m.Operation
	if op == "" {
		op = telemetry.DefaultOperation
	}
	s := p.ops.Get(op)
	s.latency.observe(m.Latency().Seconds())
	s.sent.Add(uint64(m.BytesSent))
	s.received.Add(uint64(m.BytesReceived))
	p.markDirty()
	return nil
}

func (p *Publisher) markDirty() {
	if !p.dirty.Load() {
		p.dirty.Store(true)
	}
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
func (p *Publisher) Attach(r *telemetry.Recorder) {
	if r != nil {
		p.rec.CompareAndSwap(nil, r)
	}
}

// Protocol returns the protocol p pushes with.
func (p *Publisher) Protocol() Protocol { return p.target.protocol }

// URL returns the URL p pushes to, such as
// "https://otlp-gateway-prod-us-east-0.grafana.net/otlp/v1/metrics".
func (p *Publisher) URL() string { return p.target.url.String() }

// String describes p by its protocol and URL, never its credentials.
func (p *Publisher) String() string {
	return "grafanacloud.Publisher(" + string(p.target.protocol) + " " + p.target.url.Redacted() + ")"
}

// Format writes [Publisher.String] whatever the verb, so that %v, %+v and
// %#v never print the fields, which hold the credentials.
func (p *Publisher) Format(f fmt.State, _ rune) { io.WriteString(f, p.String()) }

// LogValue shows p in logs by its kind, protocol and URL.
func (p *Publisher) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("publisher", p.Name()),
		slog.String("protocol", string(p.target.protocol)),
		slog.String("url", p.target.url.Redacted()))
}

// Stats are the push counters of a [Publisher].
type Stats struct {
	// Pushes is the number of pushes the endpoint accepted.
	Pushes uint64 `json:"pushes"`
	// FailedAttempts is the number of HTTP attempts that failed, retried
	// or not.
	FailedAttempts uint64 `json:"failed_attempts"`
	// DroppedPushes is the number of pushes given up: after a permanent
	// error, or when the attempts or the interval ran out. Since the
	// values are cumulative, the next push that succeeds carries what a
	// dropped one had: only resolution in time is lost.
	DroppedPushes uint64 `json:"dropped_pushes"`
	// PermanentFailures is the number of dropped pushes that the endpoint
	// rejected with a status not worth retrying (4xx other than 429), such
	// as 401 for a wrong instance id or token.
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
func (p *Publisher) Stats() Stats {
	c := &p.stats
	s := Stats{
		Pushes:            c.pushes.Load(),
		FailedAttempts:    c.failedAttempts.Load(),
		DroppedPushes:     c.dropped.Load(),
		PermanentFailures: c.permanent.Load(),
		LastStatus:        int(c.lastStatus.Load()),
		Series:            int(c.series.Load()),
	}
	if t := c.lastPush.Load(); t != 0 {
		s.LastPush = time.Unix(0, t)
	}
	if t := c.lastError.Load(); t != 0 {
		s.LastError = time.Unix(0, t)
	}
	return s
}

// run is the pusher: it pushes every interval until stop is closed. A tick
// that finds a push in progress (a Flush) skips its turn.
func (p *Publisher) run() {
	defer close(p.done)
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			select {
			case p.sem <- struct{}{}:
			default:
				continue
			}
			ctx, cancel := context.WithTimeout(p.ctx, p.cfg.Interval)
			p.push(ctx)
			cancel()
			<-p.sem
		case <-p.stop:
			return
		}
	}
}

// Flush pushes the current aggregates now, retrying transient failures
// within one Config.Interval, and waits for the outcome. The Recorder calls
// it from [telemetry.Recorder.Flush].
//
// It returns nil once the endpoint has accepted the push (or if nothing was
// recorded yet), the push's last error if it was given up (a
// [*StatusError] for an HTTP status), ctx.Err() if ctx ends first, and an
// error wrapping [telemetry.ErrClosed] after Close.
func (p *Publisher) Flush(ctx context.Context) error {
	if p.closed.Load() {
		return fmt.Errorf("grafanacloud: flush: %w", telemetry.ErrClosed)
	}
	return p.pushNow(ctx)
}

// pushNow waits for its turn and pushes under ctx, within one interval.
func (p *Publisher) pushNow(ctx context.Context) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.sem }()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Interval)
	defer cancel()
	stop := context.AfterFunc(p.ctx, cancel) // Close gave up: end at once
	defer stop()
	return p.push(ctx)
}

// Close stops the periodic pushes, makes a last push of everything
// recorded (retrying within one interval) unless the last push already
// had it, and releases the connections.
// Publishing afterwards returns an error wrapping [telemetry.ErrClosed].
// A Recorder that p is attached to calls Close from
// [telemetry.Recorder.Close], after its last record.
//
// It returns the last push's error if it failed, or ctx.Err() if ctx ends
// first; the goroutine then still exits shortly. A second call returns an
// error wrapping [telemetry.ErrClosed]. Close is safe to call from several
// goroutines.
func (p *Publisher) Close(ctx context.Context) error {
	if !p.closed.CompareAndSwap(false, true) {
		return errCloseAgain
	}
	close(p.stop)
	var err error
	select {
	case <-p.done:
		// Recorder.Close has just called Flush: push only what came after.
		if p.dirty.Load() || p.stats.pushes.Load() == 0 || p.deliveryChanged() {
			err = p.pushNow(ctx)
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.abort()
	if cerr := p.sender.close(ctx); cerr != nil && err == nil {
		err = cerr
	}
	if p.ownsConn {
		p.client.CloseIdleConnections()
	}
	p.logger().LogAttrs(context.Background(), slog.LevelInfo, "grafanacloud: stopped pushing metrics",
		slog.String("url", p.target.url.Redacted()), slog.Uint64("pushes", p.stats.pushes.Load()),
		slog.Uint64("dropped_pushes", p.stats.dropped.Load()))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// deliveryChanged reports whether the delivery counters of the Recorder p
// is attached to changed since the last successful push.
func (p *Publisher) deliveryChanged() bool {
	r := p.rec.Load()
	if r == nil {
		return false
	}
	pushed := p.pushedDelivery.Load()
	return pushed == nil || !slices.Equal(boundNames(r.PublisherStats()), *pushed)
}

// boundNames replaces the name of each stats by its label value.
func boundNames(stats []telemetry.PublisherStats) []telemetry.PublisherStats {
	for i := range stats {
		stats[i].Name = metricdef.LabelValue(stats[i].Name)
	}
	return stats
}

// takeSnapshot reads every series into p.snap. The caller holds sem.
func (p *Publisher) takeSnapshot() *snapshot {
	s := &p.snap
	s.time = time.Now()
	s.delivery = nil
	if r := p.rec.Load(); r != nil {
		s.delivery = boundNames(r.PublisherStats())
	}
	events := p.events.All()
	s.events = s.events[:0]
	for _, e := range events {
		s.events = append(s.events, eventPoint{})
		pt := &s.events[len(s.events)-1]
		pt.name = e.name
		e.completed.read(&pt.completed)
		e.failed.read(&pt.failed)
		pt.retries = e.retries.Load()
	}
	ops := p.ops.All()
	s.ops = s.ops[:0]
	for _, o := range ops {
		s.ops = append(s.ops, opPoint{})
		pt := &s.ops[len(s.ops)-1]
		pt.name = o.name
		o.latency.read(&pt.latency)
		pt.sent, pt.received = o.sent.Load(), o.received.Load()
	}
	return s
}

// push sends one snapshot, retrying transient failures with exponential
// backoff and jitter while ctx lasts and attempts remain. The caller holds
// sem. It counts and logs the outcome, and returns the last error.
func (p *Publisher) push(ctx context.Context) (err error) {
	p.dirty.Store(false) // before the snapshot: what comes after is dirty
	snap := p.takeSnapshot()
	if len(snap.events) == 0 && len(snap.ops) == 0 && len(snap.delivery) == 0 {
		return nil // nothing recorded yet, and no Recorder
	}
	defer func() {
		if err != nil {
			p.dirty.Store(true)
		}
	}()
	p.stats.series.Store(int64(snap.series(len(p.cfg.EventBuckets), len(p.cfg.LatencyBuckets))))
	attempt, err := p.sender.prepare(snap)
	if err != nil {
		p.stats.dropped.Add(1)
		p.logGiveUp(ctx, 0, 0, err)
		return err
	}
	policy := p.cfg.Retry
	first := time.Now()
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		res := attempt(actx)
		cancel()
		p.stats.lastStatus.Store(int64(res.status))
		if res.err == nil {
			pushed := snap.delivery // snap is reused: keep the slice, not a pointer into it
			p.pushedDelivery.Store(&pushed)
			p.stats.pushes.Add(1)
			p.stats.lastPush.Store(time.Now().UnixNano())
			p.logRecovered(ctx, n)
			return nil
		}
		p.stats.failedAttempts.Add(1)
		p.stats.lastError.Store(time.Now().UnixNano())
		if res.status != 0 && !retry.RetryableStatus(res.status) {
			p.stats.dropped.Add(1)
			p.stats.permanent.Add(1)
			p.logPermanent(ctx, res.status, res.err)
			return telemetry.Permanent(res.err)
		}
		if ctx.Err() != nil {
			// The interval (or the caller's ctx) ran out during the attempt.
			p.stats.dropped.Add(1)
			p.logGiveUp(ctx, n, res.status, res.err)
			return res.err
		}
		// The one retry schedule: the server's hint or the backoff, capped
		// at MaxBackoff, the last attempt at MaxElapsed exactly.
		wait, again := retry.Policy(policy).Next(n, time.Since(first), res.retryAfter, p.jitter)
		if !again {
			p.stats.dropped.Add(1)
			p.logGiveUp(ctx, n, res.status, res.err)
			return res.err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// The wait would outlast the interval: give up, the next push
			// carries these values anyway.
			p.stats.dropped.Add(1)
			p.logGiveUp(ctx, n, res.status, res.err)
			return res.err
		}
		if !retry.Sleep(ctx, wait) {
			p.stats.dropped.Add(1)
			p.logGiveUp(ctx, n, res.status, res.err)
			return res.err
		}
	}
}

// basicAuth returns the Authorization header value of user and key, as a
// Secret: it holds the key.
func basicAuth(user string, key telemetry.Secret) telemetry.Secret {
	return telemetry.NewSecret("Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+key.Reveal())))
}

func (p *Publisher) logger() *slog.Logger {
	if p.cfg.Logger != nil {
		return p.cfg.Logger
	}
	return slog.Default()
}

// logPermanent logs the first rejection with each HTTP status; later ones
// are only counted.
func (p *Publisher) logPermanent(ctx context.Context, status int, err error) {
	p.logMu.Lock()
	first := !p.logged[status]
	p.logged[status] = true
	p.failed = true
	p.logMu.Unlock()
	if first {
		p.logger().LogAttrs(ctx, slog.LevelError,
			"grafanacloud: push rejected, not retrying; further rejections with this status are only counted in Stats",
			slog.String("url", p.target.url.Redacted()), slog.Int("status_code", status),
			slog.String("error", err.Error()), slog.String("hint", hint(status)))
	}
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

// logGiveUp logs a push given up after transient failures, at most once a
// minute, with the number of give-ups not logged since.
func (p *Publisher) logGiveUp(ctx context.Context, attempts, status int, err error) {
	p.logMu.Lock()
	p.failed = true
	now := time.Now()
	if !p.lastGU.IsZero() && now.Sub(p.lastGU) < time.Minute {
		p.quiet++
		p.logMu.Unlock()
		return
	}
	quiet := p.quiet
	p.lastGU, p.quiet = now, 0
	p.logMu.Unlock()
	p.logger().LogAttrs(context.WithoutCancel(ctx), slog.LevelWarn,
		"grafanacloud: push given up; the next push carries its values",
		slog.String("url", p.target.url.Redacted()), slog.Int("attempt", attempts), slog.Int("status_code", status),
		slog.String("error", err.Error()), slog.Int("give_ups_not_logged", quiet))
}

// logRecovered logs the first success after failures.
func (p *Publisher) logRecovered(ctx context.Context, attempts int) {
	p.logMu.Lock()
	was := p.failed
	p.failed = false
	p.logMu.Unlock()
	if was {
		p.logger().LogAttrs(ctx, slog.LevelInfo, "grafanacloud: push succeeded again",
			slog.String("url", p.target.url.Redacted()), slog.Int("attempt", attempts))
	}
}

// logOverflow logs the first name counted under OverflowLabelValue, by its
// bounded label value.
func (p *Publisher) logOverflow(label, value string) {
	p.logger().LogAttrs(context.Background(), slog.LevelWarn,
		"grafanacloud: too many distinct "+label+" values, counting further ones as "+OverflowLabelValue,
		slog.Int("max_label_values", p.cfg.MaxLabelValues), slog.String(label, value))
}
