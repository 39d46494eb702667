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

	"github.com/eventpipeline/eventpipeline/telemetry/internal/store"
)

// PublisherStats are the delivery counters of one publisher attached to a
// Recorder. Every record handed to it ends up counted exactly once, in
// Published or in one of the Dropped counts, once it has left the queue.
type PublisherStats struct {
	// Name identifies the publisher: its [Namer] name or its type, with a
	// "#2", "#3"... suffix when several have the same name.
	Name string `json:"name"`
	// Synchronous reports whether it is called on the recording path
	// (a [SyncPublisher]) rather than through a queue.
	Synchronous bool `json:"synchronous"`
	// Queued is the number of records waiting for it: in its queue, or
	// taken by its worker and not yet delivered or dropped.
	Queued int `json:"queued"`
	// QueueCapacity is the size of its queue: [WithQueueSize] records of
	// each kind, events and network operations.
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
	// error, a [DroppedError], or the last attempt its [RetryPolicy] allows.
	DroppedFailed uint64 `json:"dropped_failed"`
	// Panics is the number of publish calls that panicked. A panic is
	// recovered and treated as a permanent error.
	Panics uint64 `json:"panics"`
}

// Dropped returns the number of records the publisher lost, for any reason.
func (s PublisherStats) Dropped() uint64 { return s.DroppedQueueFull + s.DroppedFailed }

// A busy worker takes what is waiting every drainInterval, by itself, so
// that recorders never pay for waking it; after idleRounds rounds that find
// nothing (50ms), it sleeps until a recorder wakes it.
const (
	drainInterval = time.Millisecond
	idleRounds    = 50
)

// outlet delivers the records of one Recorder to one publisher.
//
// A queued publisher's records wait in buffers inside the Recorder's
// partitions, appended under the partition lock that recording holds anyway,
// so that queueing costs no extra synchronization; the outlet's worker swaps
// those buffers for empty ones and delivers what it took.
type outlet struct {
	name  string
	pub   Publisher
	batch BatchPublisher // nil unless pub batches
	sync  bool           // called on the recording path
	slot  int            // index of its buffers in each partition; -1 if sync
	r     *Recorder
	cfg   *config

	notify  chan struct{}      // a record is waiting; capacity 1
	urgent  chan struct{}      // a buffer is half full; capacity 1
	flushes chan *flushRequest // flush requests for the worker
	stop    chan struct{}      // closed when the worker should drain and exit
	done    chan struct{}      // closed when the worker has exited
	ctx     context.Context    // ended by abort
	abort   context.CancelFunc // ends attempts and waits at once
	taken   atomic.Int64       // records the worker holds, not yet settled

	published, failedAttempts, droppedFull, droppedFailed, panics atomic.Uint64

	warnedFull   atomic.Bool // whether the first queue-full drop was logged
	logMu        sync.Mutex
	lastGiveUp   time.Time // when a give-up was last logged
	quietGiveUps int       // give-ups not logged since
}

type flushRequest struct {
	ctx  context.Context
	done chan error
}

// newOutlet makes the outlet of p. The caller gives a queued outlet its
// buffers, then calls start.
func newOutlet(name string, p Publisher, r *Recorder, slot int) *outlet {
	o := &outlet{name: name, pub: p, r: r, cfg: &r.cfg, slot: -1}
	if sp, ok := p.(SyncPublisher); ok && sp.Synchronous() {
		o.sync = true
		return o
	}
	if bp, ok := p.(BatchPublisher); ok {
		o.batch = bp
	}
	o.slot = slot
	o.notify = make(chan struct{}, 1)
	o.urgent = make(chan struct{}, 1)
	o.flushes = make(chan *flushRequest)
	o.stop = make(chan struct{})
	o.done = make(chan struct{})
	o.ctx, o.abort = context.WithCancel(context.Background())
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
	if !o.sync {
		s.Queued = o.r.events.Queued(o.slot) + o.r.network.Queued(o.slot) + int(o.taken.Load())
		s.QueueCapacity = 2 * o.cfg.queueSize
	}
	return s
}

// wake tells the worker that records are waiting. It never blocks, and
// costs no lock when the worker has already been told.
func (o *outlet) wake() {
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// hurry tells the worker that a buffer is half full, cutting its pause
// between rounds short. It never blocks.
func (o *outlet) hurry() {
	o.wake()
	select {
	case o.urgent <- struct{}{}:
	default:
	}
}

// publishSync hands a record to a synchronous publisher on the recording
// path; its errors and panics are counted, not retried.
func (o *outlet) publishSync(publish func(context.Context) error) {
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
			slog.String("publisher", o.name), slog.Int("queue_size", o.cfg.queueSize))
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

// run is the worker. Each round it takes every record waiting in its
// buffers and delivers them: a BatchPublisher gets batches of up to
// MaxBatchSize records, a smaller remainder waiting up to BatchTimeout for
// more; any other publisher gets the records one by one. It exits when stop
// is closed and everything taken is settled.
//
// While records keep coming, the worker polls its buffers every
// drainInterval on a timer of its own, so that recorders never have to wake
// it; after idleRounds empty rounds it sleeps until a recorder's wake. A
// recorder that finds a buffer half full hurries it in either mode.
func (o *outlet) run() {
	defer close(o.done)
	var (
		b       Batch
		spareEv = make([][]store.Entry[eventRecord], o.r.events.NumParts())
		spareNw = make([][]store.Entry[networkRecord], o.r.network.NumParts())
		flushes []*flushRequest
		stopped bool
		expired bool // the partial batch has waited BatchTimeout
		timer   = time.NewTimer(time.Hour)
		timeout <-chan time.Time // non-nil while a partial batch waits
		pace    = time.NewTimer(time.Hour)
		idle    = idleRounds // start asleep
	)
	timer.Stop()
	pace.Stop()
	for {
		var wake <-chan struct{}
		var poll <-chan time.Time
		if idle >= idleRounds {
			wake = o.notify
		} else {
			pace.Reset(drainInterval)
			poll = pace.C
		}
		select {
		case <-wake:
		case <-poll:
		case <-o.urgent:
		case <-timeout:
			timeout = nil
			expired = true
		case f := <-o.flushes:
			flushes = append(flushes, f)
		case <-o.stop:
			stopped = true
		}
		pace.Stop()
		if o.take(&b, spareEv, spareNw) > 0 || len(flushes) > 0 {
			idle = 0
		} else {
			idle++
		}
		o.send(&b, expired || stopped || len(flushes) > 0)
		expired = false
		switch {
		case b.Len() == 0:
			timer.Stop()
			timeout = nil
		case timeout == nil:
			timer.Reset(o.cfg.batchTimeout)
			timeout = timer.C
		}
		for i, f := range flushes {
			var err error
			if fl, ok := o.pub.(Flusher); ok {
				err = fl.Flush(f.ctx)
			}
			f.done <- err
			flushes[i] = nil
		}
		flushes = flushes[:0]
		if stopped {
			return
		}
	}
}

// take moves every record waiting in the outlet's buffers into b and
// returns how many it moved.
func (o *outlet) take(b *Batch, spareEv [][]store.Entry[eventRecord], spareNw [][]store.Entry[networkRecord]) int {
	before := b.Len()
	if o.r.events.SwapOut(o.slot, spareEv) > 0 {
		for i, recs := range spareEv {
			for j := range recs {
				b.Events = append(b.Events, recs[j].Rec.metrics(recs[j].TaskID))
			}
			clear(recs) // drop references before the slice is reused
			spareEv[i] = recs[:0]
		}
	}
	if o.r.network.SwapOut(o.slot, spareNw) > 0 {
		for i, recs := range spareNw {
			for j := range recs {
				b.Network = append(b.Network, recs[j].Rec.metrics(recs[j].TaskID))
			}
			clear(recs)
			spareNw[i] = recs[:0]
		}
	}
	o.taken.Store(int64(b.Len()))
	return b.Len() - before
}

// send delivers the records of b: all of them if all is set, else whole
// batches only, keeping a remainder smaller than MaxBatchSize in b.
func (o *outlet) send(b *Batch, all bool) {
	if o.batch == nil {
		o.deliverEach(b)
		b.Events, b.Network = reset(b.Events, len(b.Events)), reset(b.Network, len(b.Network))
		o.taken.Store(0)
		return
	}
	limit := o.cfg.maxBatchSize
	for b.Len() >= limit || (all && b.Len() > 0) {
		ne := min(len(b.Events), limit)
		nn := min(len(b.Network), limit-ne)
		chunk := Batch{Events: b.Events[:ne], Network: b.Network[:nn]}
		o.deliver(chunk.Len(), func(ctx context.Context) error { return o.batch.PublishBatch(ctx, &chunk) })
		b.Events, b.Network = reset(b.Events, ne), reset(b.Network, nn)
		o.taken.Store(int64(b.Len()))
	}
}

// reset removes the first n elements of s, keeping its array for reuse.
func reset[T any](s []T, n int) []T {
	k := copy(s, s[n:])
	clear(s[k:])
	return s[:k]
}

// deliverEach publishes the records of b one by one under one shared
// timeout; a record whose first attempt fails then gets its own retries.
func (o *outlet) deliverEach(b *Batch) {
	ctx, cancel := context.WithTimeout(o.ctx, o.cfg.publishTimeout)
	defer cancel()
	for i := range b.Events {
		m := &b.Events[i]
		o.deliverFirst(ctx, func(ctx context.Context) error { return o.pub.PublishEventMetrics(ctx, *m) })
	}
	for i := range b.Network {
		m := &b.Network[i]
		o.deliverFirst(ctx, func(ctx context.Context) error { return o.pub.PublishNetworkMetrics(ctx, *m) })
	}
}

// deliverFirst makes a first attempt under ctx and, if that calls for a
// retry, hands the record to deliver for the attempts that remain.
func (o *outlet) deliverFirst(ctx context.Context, publish func(context.Context) error) {
	if o.ctx.Err() != nil || ctx.Err() != nil {
		o.deliver(1, publish)
		return
	}
	err := o.attempt(ctx, publish)
	if o.settle(1, 1, err) {
		return
	}
	o.deliverFrom(2, 1, publish, err)
}

// deliver makes attempts to publish n records, as many as the RetryPolicy
// allows, waiting with exponential backoff and jitter between them, and
// counts the outcome.
func (o *outlet) deliver(n int, publish func(context.Context) error) {
	o.deliverFrom(1, n, publish, nil)
}

// deliverFrom is deliver from attempt number attempt on, the previous one
// having failed with err.
func (o *outlet) deliverFrom(attempt, n int, publish func(context.Context) error, err error) {
	first := time.Now()
	for ; ; attempt++ {
		if o.ctx.Err() != nil { // closing gave up: drop without calling
			o.droppedFailed.Add(uint64(n))
			return
		}
		if attempt > 1 {
			wait := backoff(o.cfg.retry, attempt-1, retryAfter(err))
			if time.Since(first)+wait > o.cfg.retry.MaxElapsed || !sleep(o.ctx, wait) {
				o.droppedFailed.Add(uint64(n))
				o.logGiveUp(n, attempt-1, err)
				return
			}
		}
		ctx, cancel := context.WithTimeout(o.ctx, o.cfg.publishTimeout)
		err = o.attempt(ctx, publish)
		cancel()
		if o.settle(n, attempt, err) {
			return
		}
	}
}

// settle counts the outcome of an attempt to publish n records and reports
// whether delivery is over: a success, a partial success, or a failure that
// is permanent or the last attempt allowed.
func (o *outlet) settle(n, attempt int, err error) bool {
	if err == nil {
		o.published.Add(uint64(n))
		return true
	}
	if de := (*DroppedError)(nil); errors.As(err, &de) {
		d := min(max(de.Dropped, 0), n)
		o.published.Add(uint64(n - d))
		o.droppedFailed.Add(uint64(d))
		o.logGiveUp(d, attempt, err)
		return true
	}
	if IsPermanent(err) || (o.cfg.retry.MaxAttempts > 0 && attempt >= o.cfg.retry.MaxAttempts) || o.ctx.Err() != nil {
		o.droppedFailed.Add(uint64(n))
		o.logGiveUp(n, attempt, err)
		return true
	}
	return false
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

// backoff returns the wait before retry number retry (1 for the first):
// InitialBackoff doubled per retry, capped at MaxBackoff, less a random
// jitter of up to half; or the server's hint, capped at MaxBackoff.
func backoff(p RetryPolicy, retry int, hint time.Duration) time.Duration {
	if hint > 0 {
		return min(hint, p.MaxBackoff)
	}
	d := p.InitialBackoff
	for i := 1; i < retry && d < p.MaxBackoff; i++ {
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

// flush asks the worker to deliver every record queued so far, then to
// flush the publisher, and waits for that or for ctx.
func (o *outlet) flush(ctx context.Context) error {
	var err error
	if o.sync {
		if f, ok := o.pub.(Flusher); ok {
			err = f.Flush(ctx)
		}
	} else {
		req := &flushRequest{ctx: ctx, done: make(chan error, 1)}
		select {
		case o.flushes <- req:
		case <-o.done:
			return nil // the worker has exited: nothing is left to deliver
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case err = <-req.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("telemetry: flush publisher %s: %w", o.name, err)
	}
	return nil
}

// close stops the worker after it has delivered what is queued, then closes
// the publisher. If ctx ends first, attempts in progress are abandoned, the
// worker drops (and counts) what it holds and exits shortly, and ctx.Err()
// is returned.
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

// dropLeftovers counts as dropped the records that recorders racing with
// Close queued after the worker's last round.
func (o *outlet) dropLeftovers() {
	spareEv := make([][]store.Entry[eventRecord], o.r.events.NumParts())
	spareNw := make([][]store.Entry[networkRecord], o.r.network.NumParts())
	n := o.r.events.SwapOut(o.slot, spareEv) + o.r.network.SwapOut(o.slot, spareNw)
	o.droppedFull.Add(uint64(n))
}
