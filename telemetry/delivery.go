package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PublisherStats are the delivery counters of one publisher attached to a
// Recorder. Every record handed to it ends up counted exactly once, in
// Published or in one of the Dropped counts, except those still queued.
type PublisherStats struct {
	// Name identifies the publisher: its [Namer] name or its type, with a
	// "#2", "#3"... suffix when several have the same name.
	Name string `json:"name"`
	// Synchronous reports whether it is called on the recording path
	// (a [SyncPublisher]) rather than through a queue.
	Synchronous bool `json:"synchronous"`
	// Queued is the number of records waiting in its queue.
	Queued int `json:"queued"`
	// QueueCapacity is the size of its queue.
	QueueCapacity int `json:"queue_capacity"`
	// Published is the number of records it accepted.
	Published uint64 `json:"published"`
	// FailedAttempts is the number of publish calls that returned an error
	// or panicked, retried or not.
	FailedAttempts uint64 `json:"failed_attempts"`
	// DroppedQueueFull is the number of records dropped because its queue
	// was full (or it was closed with records still queued).
	DroppedQueueFull uint64 `json:"dropped_queue_full"`
	// DroppedFailed is the number of records dropped after a permanent
	// error or the last attempt allowed by the [RetryPolicy].
	DroppedFailed uint64 `json:"dropped_failed"`
	// Panics is the number of publish calls that panicked. A panic is
	// recovered and treated as a permanent error.
	Panics uint64 `json:"panics"`
}

// Dropped returns the number of records the publisher lost, for any reason.
func (s PublisherStats) Dropped() uint64 { return s.DroppedQueueFull + s.DroppedFailed }

type itemKind uint8

const (
	itemEvent itemKind = iota
	itemNetwork
	itemFlush
)

// item is one entry of a publisher's queue. It holds records by value so
// that queueing one allocates nothing.
type item struct {
	kind   itemKind
	taskID string
	event  eventRecord
	net    networkRecord
	flush  *flushRequest
}

type flushRequest struct {
	ctx  context.Context
	done chan error
}

// outlet delivers the records of one Recorder to one publisher.
type outlet struct {
	name  string
	pub   Publisher
	batch BatchPublisher // nil unless pub batches
	sync  bool           // called on the recording path
	cfg   *config
	queue chan item
	stop  chan struct{} // closed when the worker should drain and exit
	done  chan struct{} // closed when the worker has exited
	ctx   context.Context
	abort context.CancelFunc // ends attempts and waits at once

	published, failedAttempts, droppedFull, droppedFailed, panics atomic.Uint64

	warnedFull   atomic.Bool // whether the first queue-full drop was logged
	logMu        sync.Mutex
	lastGiveUp   time.Time // when a give-up was last logged
	quietGiveUps int       // give-ups not logged since
}

func newOutlet(name string, p Publisher, cfg *config) *outlet {
	o := &outlet{name: name, pub: p, cfg: cfg}
	if sp, ok := p.(SyncPublisher); ok && sp.Synchronous() {
		o.sync = true
		return o
	}
	if bp, ok := p.(BatchPublisher); ok {
		o.batch = bp
	}
	o.queue = make(chan item, cfg.queueSize)
	o.stop = make(chan struct{})
	o.done = make(chan struct{})
	o.ctx, o.abort = context.WithCancel(context.Background())
	go o.run()
	return o
}

// publisherName returns the name of p for its stats.
func publisherName(p Publisher) string {
	if n, ok := p.(Namer); ok {
		if name := n.Name(); name != "" {
			return name
		}
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", p), "*")
}

func (o *outlet) stats() PublisherStats {
	s := PublisherStats{
		Name:             o.name,
		Synchronous:      o.sync,
		Published:        o.published.Load(),
		FailedAttempts:   o.failedAttempts.Load(),
		DroppedQueueFull: o.droppedFull.Load(),
		DroppedFailed:    o.droppedFailed.Load(),
		Panics:           o.panics.Load(),
	}
	if o.queue != nil {
		s.Queued, s.QueueCapacity = len(o.queue), cap(o.queue)
	}
	return s
}

// offerEvent hands rec to the publisher without blocking. It runs on the
// recording path.
func (o *outlet) offerEvent(taskID string, rec *eventRecord) {
	if o.sync {
		o.callSync(func(ctx context.Context) error { return o.pub.PublishEventMetrics(ctx, rec.metrics(taskID)) })
		return
	}
	select {
	case o.queue <- item{kind: itemEvent, taskID: taskID, event: *rec}:
	default:
		o.dropFull()
	}
}

// offerNetwork is offerEvent for network records.
func (o *outlet) offerNetwork(taskID string, rec *networkRecord) {
	if o.sync {
		o.callSync(func(ctx context.Context) error { return o.pub.PublishNetworkMetrics(ctx, rec.metrics(taskID)) })
		return
	}
	select {
	case o.queue <- item{kind: itemNetwork, taskID: taskID, net: *rec}:
	default:
		o.dropFull()
	}
}

func (o *outlet) callSync(publish func(context.Context) error) {
	if err := o.attempt(context.Background(), publish); err != nil {
		o.droppedFailed.Add(1)
		o.logGiveUp(1, 1, err)
		return
	}
	o.published.Add(1)
}

func (o *outlet) dropFull() {
	o.droppedFull.Add(1)
	if !o.warnedFull.Swap(true) {
		o.logger().LogAttrs(context.Background(), slog.LevelWarn,
			"telemetry: publisher queue full, dropping records; see PublisherStats for the count",
			slog.String("publisher", o.name), slog.Int("queue_capacity", cap(o.queue)))
	}
}

func (o *outlet) logger() *slog.Logger {
	if o.cfg.logger != nil {
		return o.cfg.logger
	}
	return slog.Default()
}

// logGiveUp logs records dropped after failing, at most once per 10 seconds
// per publisher, with the number of give-ups it did not log.
func (o *outlet) logGiveUp(records, attempts int, err error) {
	o.logMu.Lock()
	now := time.Now()
	if !o.lastGiveUp.IsZero() && now.Sub(o.lastGiveUp) < 10*time.Second {
		o.quietGiveUps++
		o.logMu.Unlock()
		return
	}
	quiet := o.quietGiveUps
	o.lastGiveUp, o.quietGiveUps = now, 0
	o.logMu.Unlock()
	o.logger().LogAttrs(context.Background(), slog.LevelWarn, "telemetry: publisher gave up, records dropped",
		slog.String("publisher", o.name), slog.Int("records", records), slog.Int("attempt", attempts),
		slog.Bool("permanent", IsPermanent(err)), slog.String("error", err.Error()),
		slog.Int("give_ups_not_logged", quiet))
}

// run is the worker: it drains the queue into the publisher until stop is
// closed and the queue is empty. It takes what is queued in groups of up to
// MaxBatchSize records: a BatchPublisher gets each group as one batch (after
// waiting up to BatchTimeout for it to fill), any other publisher gets the
// records of a group one by one, under one timeout, as soon as they arrive.
func (o *outlet) run() {
	defer close(o.done)
	var (
		b       Batch
		flushes []*flushRequest
		timer   = time.NewTimer(time.Hour)
		timeout <-chan time.Time
	)
	timer.Stop()
	add := func(it *item) {
		switch it.kind {
		case itemEvent:
			b.Events = append(b.Events, it.event.metrics(it.taskID))
		case itemNetwork:
			b.Network = append(b.Network, it.net.metrics(it.taskID))
		case itemFlush:
			flushes = append(flushes, it.flush)
		}
	}
	send := func() {
		if b.Len() > 0 {
			if o.batch != nil {
				o.deliver(b.Len(), func(ctx context.Context) error { return o.batch.PublishBatch(ctx, &b) })
			} else {
				o.deliverEach(&b)
			}
			clear(b.Events) // drop references to strings before reuse
			clear(b.Network)
			b.Events, b.Network = b.Events[:0], b.Network[:0]
		}
		timer.Stop()
		timeout = nil
		for i, f := range flushes {
			var err error
			if fl, ok := o.pub.(Flusher); ok {
				err = fl.Flush(f.ctx)
			}
			f.done <- err
			flushes[i] = nil
		}
		flushes = flushes[:0]
	}
	for {
		select {
		case it := <-o.queue:
			add(&it)
		case <-timeout:
			send()
			continue
		case <-o.stop:
			for {
				select {
				case it := <-o.queue:
					add(&it)
					if b.Len() >= o.cfg.maxBatchSize {
						send()
					}
				default:
					send()
					return
				}
			}
		}
	drain: // take what is already queued, without waiting
		for b.Len() < o.cfg.maxBatchSize && len(flushes) == 0 {
			select {
			case it := <-o.queue:
				add(&it)
			default:
				break drain
			}
		}
		switch {
		case o.batch == nil || b.Len() >= o.cfg.maxBatchSize || len(flushes) > 0:
			send()
		case timeout == nil && b.Len() > 0:
			timer.Reset(o.cfg.batchTimeout)
			timeout = timer.C
		}
	}
}

// deliverEach publishes the records of b one by one under one shared
// timeout; a record whose attempt fails then gets its own retries.
func (o *outlet) deliverEach(b *Batch) {
	ctx, cancel := context.WithTimeout(o.ctx, o.cfg.publishTimeout)
	defer cancel()
	for i := range b.Events {
		m := &b.Events[i]
		publish := func(ctx context.Context) error { return o.pub.PublishEventMetrics(ctx, *m) }
		o.deliverFirst(ctx, publish)
	}
	for i := range b.Network {
		m := &b.Network[i]
		publish := func(ctx context.Context) error { return o.pub.PublishNetworkMetrics(ctx, *m) }
		o.deliverFirst(ctx, publish)
	}
}

// deliverFirst makes a first attempt under ctx and, if it fails, hands the
// record to deliver for the retries that remain.
func (o *outlet) deliverFirst(ctx context.Context, publish func(context.Context) error) {
	if o.ctx.Err() == nil && ctx.Err() == nil {
		err := o.attempt(ctx, publish)
		if err == nil {
			o.published.Add(1)
			return
		}
		if IsPermanent(err) || o.cfg.retry.MaxAttempts <= 1 {
			o.droppedFailed.Add(1)
			o.logGiveUp(1, 1, err)
			return
		}
	}
	o.deliver(1, publish)
}

// deliver makes up to MaxAttempts attempts to publish n records, waiting
// with exponential backoff and jitter between them, and counts the outcome.
func (o *outlet) deliver(n int, publish func(context.Context) error) {
	p := o.cfg.retry
	if o.ctx.Err() != nil { // closing gave up: drop without calling
		o.droppedFailed.Add(uint64(n))
		return
	}
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(o.ctx, o.cfg.publishTimeout)
		err := o.attempt(ctx, publish)
		cancel()
		if err == nil {
			o.published.Add(uint64(n))
			return
		}
		if de := (*DroppedError)(nil); errors.As(err, &de) {
			d := min(max(de.Dropped, 0), n)
			o.published.Add(uint64(n - d))
			o.droppedFailed.Add(uint64(d))
			o.logGiveUp(d, attempt, err)
			return
		}
		if IsPermanent(err) || attempt >= p.MaxAttempts || o.ctx.Err() != nil {
			o.droppedFailed.Add(uint64(n))
			o.logGiveUp(n, attempt, err)
			return
		}
		if !sleep(o.ctx, backoff(p, attempt, retryAfter(err))) {
			o.droppedFailed.Add(uint64(n))
			o.logGiveUp(n, attempt, err)
			return
		}
	}
}

// attempt calls publish once, turning a panic into a permanent error.
func (o *outlet) attempt(ctx context.Context, publish func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			o.panics.Add(1)
			err = Permanent(fmt.Errorf("telemetry: publisher %s panicked: %v", o.name, v))
		}
		if err != nil {
			o.failedAttempts.Add(1)
		}
	}()
	return publish(ctx)
}

// backoff returns the wait before retry number attempt (1 for the first):
// InitialBackoff doubled per attempt, capped at MaxBackoff, less a random
// jitter of up to half; or the server's hint, capped at MaxBackoff.
func backoff(p RetryPolicy, attempt int, hint time.Duration) time.Duration {
	if hint > 0 {
		return min(hint, p.MaxBackoff)
	}
	d := p.InitialBackoff
	for i := 1; i < attempt && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	return d - rand.N(d/2+1)
}

// sleep waits d, or until ctx ends; it reports whether it waited all of d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// flush asks the worker to deliver what was queued before it, then to flush
// the publisher, and waits for that or for ctx.
func (o *outlet) flush(ctx context.Context) error {
	if o.sync {
		if f, ok := o.pub.(Flusher); ok {
			return f.Flush(ctx)
		}
		return nil
	}
	req := &flushRequest{ctx: ctx, done: make(chan error, 1)}
	select {
	case o.queue <- item{kind: itemFlush, flush: req}:
	case <-o.done:
		return nil // the worker has exited: nothing is left to deliver
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		if err != nil {
			return fmt.Errorf("telemetry: flush publisher %s: %w", o.name, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops the worker after it has drained the queue, then closes the
// publisher. If ctx ends first, attempts in progress are abandoned, the
// worker drops (and counts) what is still queued and exits shortly, and
// ctx.Err() is returned.
func (o *outlet) close(ctx context.Context) error {
	var err error
	if !o.sync {
		close(o.stop)
		select {
		case <-o.done:
			o.abort()
			o.dropLeftovers()
		case <-ctx.Done():
			o.abort()
			err = ctx.Err()
		}
	}
	if c, ok := o.pub.(Closer); ok {
		if cerr := c.Close(ctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("telemetry: close publisher %s: %w", o.name, cerr))
		}
	}
	return err
}

// dropLeftovers counts as dropped the records that racing recorders queued
// after the worker exited, and answers flush requests queued then.
func (o *outlet) dropLeftovers() {
	for {
		select {
		case it := <-o.queue:
			if it.kind == itemFlush {
				it.flush.done <- ErrClosed
			} else {
				o.droppedFull.Add(1)
			}
		default:
			return
		}
	}
}
