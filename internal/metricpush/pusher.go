package metricpush

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/internal/seriescache"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// A Result is the outcome of one HTTP attempt of a push.
type Result struct {
	Status     int           // HTTP status, 0 if no response
	RetryAfter time.Duration // from a Retry-After header, 0 if none
	Err        error         // nil on success
}

// A Sender pushes snapshots with one protocol.
type Sender interface {
	// Prepare encodes snap once, for all the attempts of one push. snap is
	// reused after the push: the attempt function must not keep it.
	Prepare(snap *Snapshot) (attempt func(ctx context.Context) Result, err error)
	// Close releases the sender's resources.
	Close(ctx context.Context) error
}

// Options configure a [Pusher]. Every field must be set, defaults applied,
// except Hint, Jitter, Logger and LogAttrs.
type Options struct {
	// Name is the publisher's name in telemetry.PublisherStats, such as
	// "otlp".
	Name string
	// Prefix starts its errors and log messages: the package's name, such
	// as "otlp".
	Prefix string
	// Protocol names the protocol in logs, such as "remote_write".
	Protocol string
	// URL is where the Sender pushes; logged as safetext.URL shows it,
	// without password, query values or fragment.
	URL *url.URL
	// Sender encodes and sends the pushes.
	Sender Sender
	// Client is the HTTP client of the Sender; if OwnsClient, Close
	// releases its idle connections.
	Client     *http.Client
	OwnsClient bool

	Interval       time.Duration
	Timeout        time.Duration // of one attempt, at most Interval
	Retry          telemetry.RetryPolicy
	EventBuckets   []float64 // owned by the Pusher
	LatencyBuckets []float64 // owned by the Pusher
	WaitBuckets    []float64 // owned by the Pusher
	MaxLabelValues int

	// Logger logs; nil means slog.Default() at the time of logging.
	Logger *slog.Logger
	// LogAttrs are added to the log line of the start, such as the job.
	LogAttrs []slog.Attr
	// Hint, if not nil, gives advice logged with a permanent HTTP status.
	Hint func(status int) string
	// Jitter draws the jitter of backoff waits (see retry.BackoffJitter);
	// nil means random. Tests pass one without jitter.
	Jitter func(b time.Duration) time.Duration
}

// A Pusher aggregates the records of a Recorder into cumulative histograms
// and counters, on the recording path, without locks (once a name's series
// exist), allocations or I/O, and pushes a snapshot of them every interval
// with its Sender, retrying transient failures within the interval. It is
// the engine of the OTLP, remote-write and Grafana Cloud publishers, which
// wrap it; its methods keep the contracts their docs state.
type Pusher struct {
	o   Options
	url string // o.URL as logs show it: safetext.URL

	events *seriescache.Cache[eventSeries]
	ops    *seriescache.Cache[opSeries]

	// rec is the Recorder p is attached to (see Attach), whose delivery
	// counters are pushed as the self-metrics; nil until then.
	rec atomic.Pointer[telemetry.Recorder]
	// pushedDelivery is the delivery counters of the last successful
	// push: Close pushes again if they changed since.
	pushedDelivery atomic.Pointer[[]telemetry.PublisherStats]

	sem  chan struct{} // held by the push in progress: one at a time
	snap Snapshot      // reused by pushes, guarded by sem
	// lastMs is the time of the last snapshot, in Unix milliseconds,
	// guarded by sem: each snapshot is taken at least a millisecond later
	// (see takeSnapshot).
	lastMs int64
	stop   chan struct{} // closed by Close to stop the pusher
	done   chan struct{} // closed when the pusher has exited
	ctx    context.Context
	abort  context.CancelFunc // ends pushes in progress when Close gives up

	errClosed, errCloseAgain, errFlushClosed error

	closed atomic.Bool
	// dirty reports whether records were published since the snapshot of
	// the last successful push. Publishing sets it (reading it first, so
	// that the cache line stays shared while it is set); a push clears it
	// and sets it again if it fails. Close skips its last push when it is
	// clear.
	dirty atomic.Bool
	// notBefore is when, in Unix nanoseconds, a receiver's Retry-After
	// lets the periodic pushes go on: one that asks for longer than the
	// retry policy waits holds them back (see run).
	notBefore atomic.Int64
	stats     counters
	logMu     sync.Mutex
	logged    map[int]bool // statuses whose permanent rejection was logged
	quiet     int          // give-ups not logged since the last one logged
	lastGU    time.Time    // when a give-up was last logged
	failed    bool         // the last push failed: log the next success
}

// counters are the values of [Stats], updated with atomics.
type counters struct {
	pushes, failedAttempts, dropped, permanent atomic.Uint64
	lastPush, lastError                        atomic.Int64 // Unix nanoseconds, 0 for never
	lastStatus                                 atomic.Int64
	series                                     atomic.Int64
}

// New returns a Pusher with the options o and starts the goroutine that
// pushes every o.Interval. It does no network I/O.
func New(o Options) *Pusher {
	p := &Pusher{o: o, url: safetext.URL(o.URL), logged: make(map[int]bool)}
	p.errClosed = fmt.Errorf("%s: publisher: %w", o.Prefix, telemetry.ErrClosed)
	p.errCloseAgain = fmt.Errorf("%s: close: %w", o.Prefix, telemetry.ErrClosed)
	p.errFlushClosed = fmt.Errorf("%s: flush: %w", o.Prefix, telemetry.ErrClosed)
	p.events = seriescache.New(o.MaxLabelValues, p.bindEvent, func(name string) { p.logOverflow(metricdef.LabelEventName, name) })
	p.ops = seriescache.New(o.MaxLabelValues, p.bindOp, func(name string) { p.logOverflow(metricdef.LabelOperation, name) })
	p.sem = make(chan struct{}, 1)
	p.stop = make(chan struct{})
	p.done = make(chan struct{})
	p.ctx, p.abort = context.WithCancel(context.Background())
	go p.run()
	attrs := append([]slog.Attr{slog.String("publisher", o.Name), slog.String("protocol", o.Protocol), slog.String("url", p.url),
		slog.Duration("interval", o.Interval)}, o.LogAttrs...)
	p.logger().LogAttrs(context.Background(), slog.LevelInfo, o.Prefix+": pushing metrics", attrs...)
	return p
}

func (p *Pusher) bindEvent(name string) *eventSeries {
	return &eventSeries{name: name, completed: newHistogram(p.o.EventBuckets), failed: newHistogram(p.o.EventBuckets)}
}

func (p *Pusher) bindOp(name string) *opSeries {
	return &opSeries{name: name, latency: newHistogram(p.o.LatencyBuckets)}
}

// PublishEventMetrics adds the finished run m to the aggregates, as
// ObserveEvent does its Observation.
func (p *Pusher) PublishEventMetrics(ctx context.Context, m telemetry.EventMetrics) error {
	return p.ObserveEvent(ctx, m.Observation())
}

// ObserveEvent adds the finished run o to the aggregates.
func (p *Pusher) ObserveEvent(_ context.Context, o telemetry.EventObservation) error {
	if p.closed.Load() {
		return p.errClosed
	}
	if err := metricdef.CheckEvent(o.EventName, string(o.Status)); err != nil {
		return fmt.Errorf("%s: %w", p.o.Prefix, err)
	}
	s := p.events.Get(o.EventName)
	h := s.completed
	if o.Status == telemetry.StatusFailed {
		h = s.failed
	}
	h.observe(o.Duration.Seconds())
	if o.Retries > 0 {
		s.retries.Add(uint64(o.Retries))
	}
	if o.Enqueued {
		s.waitHistogram(p.o.WaitBuckets).observe(o.Wait.Seconds())
	}
	p.markDirty()
	return nil
}

// PublishNetworkMetrics adds the finished operation m to the aggregates,
// as ObserveNetwork does its Observation.
func (p *Pusher) PublishNetworkMetrics(ctx context.Context, m telemetry.NetworkMetrics) error {
	return p.ObserveNetwork(ctx, m.Observation())
}

// ObserveNetwork adds the finished operation o to the aggregates.
func (p *Pusher) ObserveNetwork(_ context.Context, o telemetry.NetworkObservation) error {
	if p.closed.Load() {
		return p.errClosed
	}
	if err := metricdef.CheckNetwork(string(o.Status), o.BytesSent, o.BytesReceived); err != nil {
		return fmt.Errorf("%s: %w", p.o.Prefix, err)
	}
	op := o.Operation
	if op == "" {
		op = telemetry.DefaultOperation
	}
	s := p.ops.Get(op)
	s.latency.observe(o.Latency.Seconds())
	s.sent.Add(uint64(o.BytesSent))
	s.received.Add(uint64(o.BytesReceived))
	p.markDirty()
	return nil
}

func (p *Pusher) markDirty() {
	if !p.dirty.Load() {
		p.dirty.Store(true)
	}
}

// Attach makes p push the delivery counters of r; the first Recorder wins.
func (p *Pusher) Attach(r *telemetry.Recorder) {
	if r != nil {
		p.rec.CompareAndSwap(nil, r)
	}
}

// Name returns Options.Name.
func (p *Pusher) Name() string { return p.o.Name }

// URL returns Options.URL. It must not be changed.
func (p *Pusher) URL() *url.URL { return p.o.URL }

// Stats are the push counters of a [Pusher]. The publishers have a Stats
// type each with the same fields, to which it converts.
type Stats struct {
	Pushes            uint64    `json:"pushes"`
	FailedAttempts    uint64    `json:"failed_attempts"`
	DroppedPushes     uint64    `json:"dropped_pushes"`
	PermanentFailures uint64    `json:"permanent_failures"`
	LastPush          time.Time `json:"last_push"`
	LastError         time.Time `json:"last_error"`
	LastStatus        int       `json:"last_status"`
	Series            int       `json:"series"`
}

// Stats returns the current push counters of p. It reads atomics only.
func (p *Pusher) Stats() Stats {
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

// Done returns a channel closed once the pushing goroutine has exited.
func (p *Pusher) Done() <-chan struct{} { return p.done }

// LockedSnapshot takes a snapshot as a push does and holds the push lock
// until release is called, so that no push reuses the snapshot meanwhile.
// For tests.
func (p *Pusher) LockedSnapshot() (snap *Snapshot, release func()) {
	p.sem <- struct{}{}
	return p.takeSnapshot(), func() { <-p.sem }
}

// run is the pusher: it pushes every interval until stop is closed. A tick
// that finds a push in progress (a Flush), or comes before the end of the
// last Retry-After a receiver sent, skips its turn.
func (p *Pusher) run() {
	defer close(p.done)
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if time.Now().UnixNano() < p.notBefore.Load() {
				continue // the receiver asked for a longer wait
			}
			select {
			case p.sem <- struct{}{}:
			default:
				continue
			}
			ctx, cancel := context.WithTimeout(p.ctx, p.o.Interval)
			p.push(ctx)
			cancel()
			<-p.sem
		case <-p.stop:
			return
		}
	}
}

// Flush pushes the current aggregates now, retrying transient failures
// within one interval, and waits for the outcome. Once Close has begun, it
// returns an error wrapping telemetry.ErrClosed: Close pushes last.
func (p *Pusher) Flush(ctx context.Context) error {
	if p.closed.Load() {
		return p.errFlushClosed
	}
	return p.pushNow(ctx, false)
}

// pushNow waits for its turn and pushes under ctx, within one interval.
// If last, it is the last push, made by Close: if ctx ends before its turn,
// it is counted as dropped (see dropLast).
func (p *Pusher) pushNow(ctx context.Context, last bool) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		if last {
			p.dropLast(ctx, ctx.Err())
		}
		return ctx.Err()
	}
	defer func() { <-p.sem }()
	if last && !p.dirty.Load() && p.stats.pushes.Load() > 0 && !p.deliveryChanged() {
		// The last push already had everything (Recorder.Close has just
		// called Flush): push only what came after. Checked in turn, once
		// a Flush in progress has ended: it cleared dirty as it began, and
		// sets it again only if it fails.
		return nil
	}
	if !last && p.closed.Load() {
		// A Flush that began before Close got its turn after Close began:
		// Close pushes last (or has pushed) what it was to push, and may
		// have shut the Sender down.
		return p.errFlushClosed
	}
	ctx, cancel := context.WithTimeout(ctx, p.o.Interval)
	defer cancel()
	stop := context.AfterFunc(p.ctx, cancel) // Close gave up: end at once
	defer stop()
	return p.push(ctx)
}

// Close stops the periodic pushes, waits for a push in progress (a Flush)
// to end, makes a last push unless the last push already had everything,
// and releases the connections.
func (p *Pusher) Close(ctx context.Context) error {
	if !p.closed.CompareAndSwap(false, true) {
		return p.errCloseAgain
	}
	close(p.stop)
	var err error
	select {
	case <-p.done:
		err = p.pushNow(ctx, true)
	case <-ctx.Done():
		err = ctx.Err()
		p.dropLast(ctx, err)
	}
	p.abort()
	if cerr := p.o.Sender.Close(ctx); cerr != nil && err == nil {
		err = cerr
	}
	if p.o.OwnsClient {
		p.o.Client.CloseIdleConnections()
	}
	p.logger().LogAttrs(context.Background(), slog.LevelInfo, p.o.Prefix+": stopped pushing metrics",
		slog.String("url", p.url), slog.Uint64("pushes", p.stats.pushes.Load()),
		slog.Uint64("dropped_pushes", p.stats.dropped.Load()))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// dropLast counts and logs the last push, which Close could not start
// because ctx ended (err), as dropped, if it had anything to carry: records
// published, or delivery counters changed, since the last successful push.
func (p *Pusher) dropLast(ctx context.Context, err error) {
	if !p.dirty.Load() && !p.deliveryChanged() {
		return
	}
	p.stats.dropped.Add(1)
	p.logger().LogAttrs(context.WithoutCancel(ctx), slog.LevelWarn, p.o.Prefix+": last push not made: Close's context ended",
		slog.String("url", p.url), slog.String("error", err.Error()))
}

// deliveryChanged reports whether the delivery counters of the Recorder p
// is attached to changed since the last successful push.
func (p *Pusher) deliveryChanged() bool {
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
func (p *Pusher) takeSnapshot() *Snapshot {
	s := &p.snap
	// Samples of a series must come in strictly increasing milliseconds:
	// a receiver such as Prometheus rejects the whole push (400) for a
	// sample at the time of the last one with another value, or before it.
	// Two pushes within one millisecond (a Flush right after another), or
	// a wall clock stepped back, would do that: such a snapshot is dated
	// one millisecond after the last.
	s.Time = time.Now()
	if ms := s.Time.UnixMilli(); ms <= p.lastMs {
		s.Time = time.UnixMilli(p.lastMs + 1)
	}
	p.lastMs = s.Time.UnixMilli()
	s.Delivery = nil
	if r := p.rec.Load(); r != nil {
		s.Delivery = boundNames(r.PublisherStats())
	}
	events := p.events.All()
	s.Events = s.Events[:0]
	for _, e := range events {
		s.Events = append(s.Events, EventPoint{})
		pt := &s.Events[len(s.Events)-1]
		pt.Name = e.name
		e.completed.read(&pt.Completed)
		e.failed.read(&pt.Failed)
		pt.Retries = e.retries.Load()
		if w := e.wait.Load(); w != nil {
			pt.Waited = true
			w.read(&pt.Wait)
		}
	}
	ops := p.ops.All()
	s.Ops = s.Ops[:0]
	for _, o := range ops {
		s.Ops = append(s.Ops, OpPoint{})
		pt := &s.Ops[len(s.Ops)-1]
		pt.Name = o.name
		o.latency.read(&pt.Latency)
		pt.Sent, pt.Received = o.sent.Load(), o.received.Load()
	}
	return s
}

// push sends one snapshot, retrying transient failures with exponential
// backoff and jitter while ctx lasts and attempts remain. The caller holds
// sem. It counts and logs the outcome, and returns the last error, marked
// with telemetry.Permanent if the endpoint rejected it for good.
func (p *Pusher) push(ctx context.Context) (err error) {
	p.dirty.Store(false) // before the snapshot: what comes after is dirty
	snap := p.takeSnapshot()
	if len(snap.Events) == 0 && len(snap.Ops) == 0 && len(snap.Delivery) == 0 {
		return nil // nothing recorded yet, and no Recorder
	}
	defer func() {
		if err != nil {
			p.dirty.Store(true)
		}
	}()
	p.stats.series.Store(int64(snap.Series(len(p.o.EventBuckets), len(p.o.LatencyBuckets), len(p.o.WaitBuckets))))
	attempt, err := p.o.Sender.Prepare(snap)
	if err != nil {
		p.stats.dropped.Add(1)
		p.logGiveUp(ctx, 0, 0, err)
		return err
	}
	first := time.Now()
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, p.o.Timeout)
		res := attempt(actx)
		cancel()
		p.stats.lastStatus.Store(int64(res.Status))
		if res.Err == nil {
			pushed := snap.Delivery // snap is reused: keep the slice, not a pointer into it
			p.pushedDelivery.Store(&pushed)
			p.stats.pushes.Add(1)
			p.stats.lastPush.Store(time.Now().UnixNano())
			p.notBefore.Store(0) // the receiver takes pushes again
			p.logRecovered(ctx, n)
			return nil
		}
		p.stats.failedAttempts.Add(1)
		p.stats.lastError.Store(time.Now().UnixNano())
		if res.RetryAfter > 0 {
			// Retries within this push wait at most MaxBackoff (the
			// one retry schedule); the periodic pushes wait for all of
			// it, unless a push gets through first.
			p.notBefore.Store(time.Now().Add(res.RetryAfter).UnixNano())
		}
		if res.Status != 0 && !retry.RetryableStatus(res.Status) {
			p.stats.dropped.Add(1)
			p.stats.permanent.Add(1)
			p.logPermanent(ctx, res.Status, res.Err)
			return telemetry.Permanent(res.Err)
		}
		if ctx.Err() != nil {
			// The interval (or the caller's ctx) ran out during the attempt.
			p.stats.dropped.Add(1)
			p.logGiveUp(ctx, n, res.Status, res.Err)
			return res.Err
		}
		// The one retry schedule: the server's hint or the backoff, capped
		// at MaxBackoff, the last attempt at MaxElapsed exactly.
		wait, again := retry.Policy(p.o.Retry).Next(n, time.Since(first), res.RetryAfter, p.o.Jitter)
		if !again {
			p.stats.dropped.Add(1)
			p.logGiveUp(ctx, n, res.Status, res.Err)
			return res.Err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// The wait would outlast the interval: give up, the next push
			// carries these values anyway.
			p.stats.dropped.Add(1)
			p.logGiveUp(ctx, n, res.Status, res.Err)
			return res.Err
		}
		if !retry.Sleep(ctx, wait) {
			p.stats.dropped.Add(1)
			p.logGiveUp(ctx, n, res.Status, res.Err)
			return res.Err
		}
	}
}

func (p *Pusher) logger() *slog.Logger {
	if p.o.Logger != nil {
		return p.o.Logger
	}
	return slog.Default()
}

// logPermanent logs the first rejection with each HTTP status; later ones
// are only counted.
func (p *Pusher) logPermanent(ctx context.Context, status int, err error) {
	p.logMu.Lock()
	first := !p.logged[status]
	p.logged[status] = true
	p.failed = true
	p.logMu.Unlock()
	if first {
		attrs := []slog.Attr{slog.String("url", p.url), slog.Int("status_code", status),
			slog.String("error", err.Error())}
		if p.o.Hint != nil {
			attrs = append(attrs, slog.String("hint", p.o.Hint(status)))
		}
		p.logger().LogAttrs(ctx, slog.LevelError,
			p.o.Prefix+": push rejected, not retrying; further rejections with this status are only counted in Stats", attrs...)
	}
}

// logGiveUp logs a push given up after transient failures, at most once a
// minute, with the number of give-ups not logged since.
func (p *Pusher) logGiveUp(ctx context.Context, attempts, status int, err error) {
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
		p.o.Prefix+": push given up; the next push carries its values",
		slog.String("url", p.url), slog.Int("attempt", attempts), slog.Int("status_code", status),
		slog.String("error", err.Error()), slog.Int("give_ups_not_logged", quiet))
}

// logRecovered logs the first success after failures.
func (p *Pusher) logRecovered(ctx context.Context, attempts int) {
	p.logMu.Lock()
	was := p.failed
	p.failed = false
	p.logMu.Unlock()
	if was {
		p.logger().LogAttrs(ctx, slog.LevelInfo, p.o.Prefix+": push succeeded again",
			slog.String("url", p.url), slog.Int("attempt", attempts))
	}
}

// logOverflow logs the first name counted under metricdef.Overflow, by its
// bounded label value.
func (p *Pusher) logOverflow(label, value string) {
	p.logger().LogAttrs(context.Background(), slog.LevelWarn,
		p.o.Prefix+": too many distinct "+label+" values, counting further ones as "+metricdef.Overflow,
		slog.Int("max_label_values", p.o.MaxLabelValues), slog.String(label, value))
}
