package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/label"
	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/telemetry/internal/store"
)

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
// shards, appended under the shard lock that recording holds anyway,
// so that queueing costs no extra synchronization; the outlet's worker swaps
// those buffers for empty ones and delivers what it took.
//
// The worker is the only goroutine that calls a queued publisher while it
// runs: Flush included. Close calls the publisher's Close only after the
// worker has exited, so a publisher is never called concurrently with
// itself.
type outlet struct {
	name  string
	pub   Publisher
	batch BatchPublisher // nil unless pub batches
	sync  bool           // called on the recording path
	obs   Observer       // pub if it is a synchronous Observer, else nil
	slot  int            // index of its buffers in each shard; -1 if sync
	r     *Recorder
	cfg   *config

	notify  chan struct{}      // a record is waiting; capacity 1
	urgent  chan struct{}      // a buffer is half full; capacity 1
	flushes chan *flushRequest // flush requests for the worker
	stop    chan struct{}      // closed when the worker should drain and exit
	done    chan struct{}      // closed when the worker has exited
	ctx     context.Context    // ended by abort
	abort   context.CancelFunc // ends attempts and waits at once

	// statsMu is held while records move from the buffers to the worker
	// and from the worker to the counters, so that stats never count a
	// record twice or not at all.
	statsMu sync.Mutex
	taken   int // records the worker holds and has not settled; under statsMu

	// The worker's own: how many records of the batch it holds it has
	// handed to the publisher (settled, or in the call in progress), for
	// resume.
	doneEv, doneNw int
	// The worker's own: the largest Delivered of the PartialErrors of the
	// delivery in progress, capped at its size; reset when one starts.
	delivered int

	published, failedAttempts, droppedFull, droppedFailed, droppedClosed, panics atomic.Uint64

	// nextFullLog is when, on the Recorder's clock, the next line about
	// queue-full drops may be logged, plus one so that 0 means "no drop
	// yet"; fullLogged is how many had been dropped at the last line.
	nextFullLog  atomic.Int64
	fullLogged   atomic.Uint64
	logMu        sync.Mutex
	lastGiveUp   time.Time // when a give-up was last logged
	quietGiveUps int       // give-ups not logged since
}

type flushRequest struct {
	ctx  context.Context
	done chan error
}

// newOutlet makes the outlet of p. The caller gives a queued outlet its
// buffers, then starts its worker, run.
func newOutlet(name string, p Publisher, r *Recorder, slot int) *outlet {
	o := &outlet{name: name, pub: p, r: r, cfg: &r.cfg, slot: -1}
	if sp, ok := p.(SyncPublisher); ok && sp.Synchronous() {
		o.sync = true
		o.obs, _ = p.(Observer)
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

// publisherName returns the name of p for its stats, bounded as a label
// value is.
func publisherName(p Publisher) string {
	if n, ok := p.(Namer); ok {
		if name := n.Name(); name != "" {
			return label.Value(name)
		}
	}
	return label.Value(strings.TrimPrefix(fmt.Sprintf("%T", p), "*"))
}

func (o *outlet) stats() PublisherStats {
	if !o.sync {
		o.statsMu.Lock()
		defer o.statsMu.Unlock()
	}
	s := PublisherStats{
		Name:             o.name,
		Synchronous:      o.sync,
		Published:        o.published.Load(),
		FailedAttempts:   o.failedAttempts.Load(),
		DroppedQueueFull: o.droppedFull.Load(),
		DroppedFailed:    o.droppedFailed.Load(),
		DroppedClosed:    o.droppedClosed.Load(),
		Panics:           o.panics.Load(),
	}
	if !o.sync {
		s.Queued = o.r.events.Queued(o.slot) + o.r.network.Queued(o.slot) + o.taken
		s.QueueCapacity = o.r.queueCapacity()
	}
	return s
}

// queueCapacity returns the number of records the buffers of one queued
// publisher hold: those of event records and of network records, in every
// shard of their table.
func (r *Recorder) queueCapacity() int {
	return r.events.OutCapacity(r.cfg.queueSize) + r.network.OutCapacity(r.cfg.queueSize)
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
	returned := false
	defer o.guardSync(&returned)
	err := publish(context.Background())
	returned = true
	o.settleSync(err)
}

// observeEvent is publishSync for an Observer: it hands it the observation
// of the finished event run rec.
func (o *outlet) observeEvent(rec *eventRecord) {
	returned := false
	defer o.guardSync(&returned)
	err := o.obs.ObserveEvent(context.Background(), rec.observation())
	returned = true
	o.settleSync(err)
}

// observeNetwork is observeEvent for network operations.
func (o *outlet) observeNetwork(rec *networkRecord) {
	returned := false
	defer o.guardSync(&returned)
	err := o.obs.ObserveNetwork(context.Background(), rec.observation())
	returned = true
	o.settleSync(err)
}

// guardSync is deferred by the calls to synchronous publishers: unless
// the call returned, it recovers the publisher's panic and counts it, as
// panicked counts a call of runtime.Goexit too, as a failed call: the
// same as for a queued publisher.
func (o *outlet) guardSync(returned *bool) {
	if !*returned {
		o.settleSync(o.panicked(recover()))
	}
}

// panicked counts a panic of the publisher, with value v, and returns the
// permanent error that the call it ended counts as. A nil v, which recover
// returns after runtime.Goexit, counts as a panic too.
func (o *outlet) panicked(v any) error {
	o.panics.Add(1)
	if v == nil {
		return o.goexitError()
	}
	return Permanent(fmt.Errorf("telemetry: publisher %s panicked: %v", o.name, v))
}

// goexitError returns the error of a call of the publisher that called
// runtime.Goexit.
func (o *outlet) goexitError() error {
	return Permanent(fmt.Errorf("telemetry: publisher %s called runtime.Goexit", o.name))
}

// settleSync counts the outcome of handing one record to a synchronous
// publisher: published, or dropped (and logged) if the call returned err.
func (o *outlet) settleSync(err error) {
	if err != nil {
		o.failedAttempts.Add(1)
		o.droppedFailed.Add(1)
		o.logGiveUp(1, 1, err)
		return
	}
	o.published.Add(1)
}

// dropSummaryInterval is the least time between two lines about records
// a publisher dropped: queue-full summaries, give-ups.
const dropSummaryInterval = 10 * time.Second

// dropFull counts a record dropped because the outlet's buffer was full,
// and logs the first such drop, then, while drops go on, a summary at most
// every dropSummaryInterval: the drops since the last line and in all. It
// reads the clock only at the first drop and every 256th, so that a
// publisher that cannot keep up costs recording little more. The caller
// holds a shard lock, on the recording path: lines are logged on a
// goroutine of their own, so that a log handler that blocks or panics
// never holds up, or crashes, recording.
func (o *outlet) dropFull() {
	n := o.droppedFull.Add(1)
	next := o.nextFullLog.Load()
	if next != 0 && n%256 != 0 {
		return
	}
	now := int64(o.r.clock.now()) + 1
	if next != 0 && now < next || !o.nextFullLog.CompareAndSwap(next, now+int64(dropSummaryInterval)) {
		return
	}
	last := o.fullLogged.Swap(n)
	if next == 0 {
		go o.warn("telemetry: publisher queue full, dropping records; see PublisherStats for the count",
			slog.String("publisher", o.name), slog.Int("queue_size", o.cfg.queueSize))
		return
	}
	go o.warn("telemetry: publisher queue full, records dropped",
		slog.String("publisher", o.name), slog.Uint64("dropped", n-last), slog.Uint64("queue_full", n))
}

// warn logs msg with attrs at level Warn: every log line of an outlet goes
// through it. A panic of the log handler is recovered and dropped: a broken
// log sink must not crash the program from a goroutine of the Recorder,
// nor make a recording call or Close panic.
func (o *outlet) warn(msg string, attrs ...slog.Attr) {
	defer func() { _ = recover() }()
	o.logger().LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}

func (o *outlet) logger() *slog.Logger {
	if o.cfg.logger != nil {
		return o.cfg.logger
	}
	return slog.Default()
}

// logGiveUp logs records dropped after failing, at most once per
// dropSummaryInterval per publisher, with the number of give-ups it did
// not log.
func (o *outlet) logGiveUp(records, attempts int, err error) {
	o.logMu.Lock()
	now := time.Now()
	if !o.lastGiveUp.IsZero() && now.Sub(o.lastGiveUp) < dropSummaryInterval {
		o.quietGiveUps++
		o.logMu.Unlock()
		return
	}
	quiet := o.quietGiveUps
	o.lastGiveUp, o.quietGiveUps = now, 0
	o.logMu.Unlock()
	o.warn("telemetry: publisher gave up, records dropped",
		slog.String("publisher", o.name), slog.Int("records", records), slog.Int("attempt", attempts),
		slog.Bool("permanent", IsPermanent(err)), slog.String("error", safetext.Cut(errorText(err), o.cfg.maxErrorLength)),
		slog.Int("give_ups_not_logged", quiet))
}

// logDrops logs, once when the publisher is closed, how many records it
// dropped in all and why, if it dropped any.
func (o *outlet) logDrops() {
	s := o.stats()
	if s.Dropped() == 0 {
		return
	}
	o.warn("telemetry: publisher closed, records dropped",
		slog.String("publisher", o.name), slog.Uint64("dropped", s.Dropped()),
		slog.Uint64("queue_full", s.DroppedQueueFull), slog.Uint64("failed", s.DroppedFailed),
		slog.Uint64("closed_before_delivery", s.DroppedClosed), slog.Uint64("published", s.Published))
}

// run is the worker. Each round it takes every record waiting in its
// buffers and delivers them: a BatchPublisher gets batches of up to
// MaxBatchSize records, a smaller remainder waiting up to BatchTimeout for
// more; any other publisher gets the records one by one. It exits when stop
// is closed and everything taken is settled, or as soon as abort is called:
// then it drops, and counts, what it still holds or finds queued.
//
// While records keep coming, the worker polls its buffers every
// drainInterval on a timer of its own, so that recorders never have to wake
// it; after idleRounds empty rounds it sleeps until a recorder's wake. A
// recorder that finds a buffer half full hurries it in either mode.
//
// A publisher that ends the worker's goroutine with runtime.Goexit does
// not end the worker: resume goes on in a new goroutine from b, the
// records held, and flushes, the flush requests not yet answered.
func (o *outlet) run(b Batch, flushes []*flushRequest) {
	returned := false
	var flushing *flushRequest // the request whose Flush is in progress
	defer func() {
		if !returned {
			o.resume(b, flushes, flushing)
			return
		}
		close(o.done)
	}()
	var (
		spareEv = make([][]store.Entry[eventRecord], o.r.events.NumShards())
		spareNw = make([][]store.Entry[networkRecord], o.r.network.NumShards())
		stopped bool
		expired bool // the partial batch has waited BatchTimeout
		timer   = time.NewTimer(time.Hour)
		timeout <-chan time.Time // non-nil while a partial batch waits
		pace    = time.NewTimer(time.Hour)
		idle    = idleRounds // start asleep
	)
	timer.Stop()
	pace.Stop()
	for !stopped && o.ctx.Err() == nil {
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
				flushing = f
				err = o.flushPublisher(f.ctx, fl)
				flushing = nil
			}
			f.done <- err
			flushes[i] = nil
		}
		flushes = flushes[:0]
	}
	timer.Stop()
	for _, f := range flushes { // handed over by resume, after an abort
		if f != nil {
			f.done <- ErrClosed
		}
	}
	// Close has begun, so no record can be queued any more: what is still
	// held or queued (only after an abort) is dropped before Close returns.
	o.statsMu.Lock()
	n := o.r.events.SwapOut(o.slot, spareEv) + o.r.network.SwapOut(o.slot, spareNw)
	o.droppedClosed.Add(uint64(o.taken + n))
	o.taken = 0
	o.statsMu.Unlock()
	returned = true
}

// resume is deferred by run, whose goroutine the publisher ended with
// runtime.Goexit: in a publish call, which attempt counted as a panic, or
// in Flush, which contained did. It drops the records of that call as
// failed, answers that Flush with its error, and starts a new run with the
// records held that the publisher was not handed yet, b's from doneEv and
// doneNw on, and the flush requests not answered. The goroutine ends
// whatever a deferred call does, and the worker must go on: delivery
// stopped for good would leave the records counted as queued.
func (o *outlet) resume(b Batch, flushes []*flushRequest, flushing *flushRequest) {
	rest := Batch{Events: b.Events[o.doneEv:], Network: b.Network[o.doneNw:]}
	o.doneEv, o.doneNw = 0, 0
	o.statsMu.Lock()
	lost := o.taken - rest.Len() // the records of the call
	o.statsMu.Unlock()
	if lost > 0 {
		o.giveUp(lost, 1, o.goexitError())
	}
	var pending []*flushRequest
	for _, f := range flushes {
		switch {
		case f == nil:
		case f == flushing:
			f.done <- o.goexitError()
		default:
			pending = append(pending, f)
		}
	}
	o.hurry() // the new worker's first round is at once
	go o.run(rest, pending)
}

// take moves every record waiting in the outlet's buffers into b and
// returns how many it moved.
func (o *outlet) take(b *Batch, spareEv [][]store.Entry[eventRecord], spareNw [][]store.Entry[networkRecord]) int {
	o.statsMu.Lock()
	ne := o.r.events.SwapOut(o.slot, spareEv)
	nn := o.r.network.SwapOut(o.slot, spareNw)
	o.taken += ne + nn
	o.statsMu.Unlock()
	if ne > 0 {
		for i, recs := range spareEv {
			for j := range recs {
				b.Events = append(b.Events, recs[j].Rec.metrics(o.r.clock, recs[j].TaskID))
			}
			clear(recs) // drop references before the slice is reused
			spareEv[i] = recs[:0]
		}
	}
	if nn > 0 {
		for i, recs := range spareNw {
			for j := range recs {
				b.Network = append(b.Network, recs[j].Rec.metrics(o.r.clock, recs[j].TaskID))
			}
			clear(recs)
			spareNw[i] = recs[:0]
		}
	}
	return ne + nn
}

// send delivers the records of b: all of them if all is set, else whole
// batches only, keeping a remainder smaller than MaxBatchSize in b.
//
// It keeps doneEv and doneNw up to date: the records of b handed to the
// publisher, for resume.
func (o *outlet) send(b *Batch, all bool) {
	if o.batch == nil {
		o.deliverEach(b)
		b.Events, b.Network = reset(b.Events, len(b.Events)), reset(b.Network, len(b.Network))
		o.doneEv, o.doneNw = 0, 0
		return
	}
	limit := o.cfg.maxBatchSize
	for b.Len() >= limit || (all && b.Len() > 0) {
		ne := min(len(b.Events), limit)
		nn := min(len(b.Network), limit-ne)
		chunk := Batch{Events: b.Events[:ne], Network: b.Network[:nn]}
		o.doneEv, o.doneNw = ne, nn
		o.deliver(chunk.Len(), func(ctx context.Context) error { return o.batch.PublishBatch(ctx, &chunk) })
		b.Events, b.Network = reset(b.Events, ne), reset(b.Network, nn)
		o.doneEv, o.doneNw = 0, 0
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
		o.doneEv = i + 1
		o.deliverFirst(ctx, func(ctx context.Context) error { return o.pub.PublishEventMetrics(ctx, *m) })
	}
	for i := range b.Network {
		m := &b.Network[i]
		o.doneNw = i + 1
		o.deliverFirst(ctx, func(ctx context.Context) error { return o.pub.PublishNetworkMetrics(ctx, *m) })
	}
}

// deliverFirst makes a first attempt to publish one record under ctx and,
// if that calls for a retry, goes on as deliver does.
func (o *outlet) deliverFirst(ctx context.Context, publish func(context.Context) error) {
	if o.ctx.Err() != nil || ctx.Err() != nil {
		o.deliver(1, publish)
		return
	}
	o.delivered = 0
	first := o.r.clock.now() // the monotonic clock alone, cheaper than time.Now
	err := o.attempt(ctx, publish)
	if o.settle(1, 1, err) {
		return
	}
	o.retry(first, 2, 1, publish, err)
}

// deliver makes attempts to publish n records, as many as the RetryPolicy
// allows, waiting with exponential backoff and jitter between them, and
// counts the outcome.
func (o *outlet) deliver(n int, publish func(context.Context) error) {
	o.delivered = 0
	o.retry(o.r.clock.now(), 1, n, publish, nil)
}

// retry is deliver from attempt number attempt on, the first attempt having
// started at first and the previous one, if any, having failed with err.
// Retries go on until MaxElapsed after first: a wait that would end later
// is cut to end then, for a last attempt at that deadline.
func (o *outlet) retry(first time.Duration, attempt, n int, publish func(context.Context) error, err error) {
	for ; ; attempt++ {
		if attempt > 1 {
			hint, _ := RetryAfterOf(err)
			wait, again := retry.Policy(o.cfg.retry).Next(attempt-1, o.r.clock.now()-first, hint, o.cfg.jitter)
			if !again {
				o.giveUp(n, attempt-1, err)
				return
			}
			if !retry.Sleep(o.ctx, wait) {
				o.cutShort(n) // Close gave up during the wait
				return
			}
		}
		if o.ctx.Err() != nil { // Close gave up: drop without calling
			o.cutShort(n)
			return
		}
		ctx, cancel := context.WithTimeout(o.ctx, o.cfg.publishTimeout)
		err = o.attempt(ctx, publish)
		cancel()
		if o.settle(n, attempt, err) {
			return
		}
	}
}

// settle counts the outcome of attempt number attempt to publish n records
// and reports whether delivery is over: a success, a partial success, an
// attempt that Close cut short, or a failure that is permanent or the last
// attempt allowed.
func (o *outlet) settle(n, attempt int, err error) bool {
	if err == nil {
		o.count(n, 0, 0)
		return true
	}
	if d, ok := droppedIn(err); ok {
		d = min(max(d, 0), n)
		o.count(n-d, d, 0)
		if d > 0 {
			o.logGiveUp(d, attempt, err)
		}
		return true
	}
	o.delivered = max(o.delivered, min(deliveredIn(err), n))
	switch {
	case o.ctx.Err() != nil:
		o.cutShort(n)
	case IsPermanent(err) || (o.cfg.retry.MaxAttempts > 0 && attempt >= o.cfg.retry.MaxAttempts):
		o.giveUp(n, attempt, err)
	default:
		return false
	}
	return true
}

// droppedIn returns the Dropped count of the [DroppedError] in err, if any.
// (Kept out of settle so that a success costs no allocation.)
func droppedIn(err error) (int, bool) {
	var de *DroppedError
	if errors.As(err, &de) {
		return de.Dropped, true
	}
	return 0, false
}

// deliveredIn returns the Delivered count of the [PartialError] in err, or
// 0. (Kept out of settle, as droppedIn is.)
func deliveredIn(err error) int {
	var pe *PartialError
	if errors.As(err, &pe) {
		return pe.Delivered
	}
	return 0
}

// giveUp ends the delivery of n records after attempts failed attempts, the
// last with err: those a PartialError reported delivered are published, the
// others dropped.
func (o *outlet) giveUp(n, attempts int, err error) {
	d := min(o.delivered, n)
	o.count(d, n-d, 0)
	if n > d {
		o.logGiveUp(n-d, attempts, err)
	}
}

// cutShort ends the delivery of n records because Close gave up: those a
// PartialError reported delivered are published, the others dropped.
func (o *outlet) cutShort(n int) {
	d := min(o.delivered, n)
	o.count(d, 0, n-d)
}

// count settles records the worker holds: published ones, ones dropped
// after failing, and ones dropped because Close gave up.
func (o *outlet) count(published, failed, closed int) {
	o.statsMu.Lock()
	o.published.Add(uint64(published))
	o.droppedFailed.Add(uint64(failed))
	o.droppedClosed.Add(uint64(closed))
	o.taken -= published + failed + closed
	o.statsMu.Unlock()
}

// attempt calls publish once, turning a panic into a permanent error. A
// call of runtime.Goexit counts as a panic too; the goroutine then ends,
// and run resumes.
func (o *outlet) attempt(ctx context.Context, publish func(context.Context) error) (err error) {
	returned := false
	defer func() {
		if !returned {
			err = o.panicked(recover())
		}
		if err != nil {
			o.failedAttempts.Add(1)
		}
	}()
	err = publish(ctx)
	returned = true
	return err
}

// contained calls f, o's publisher's Flush or Close, and returns its
// error, or the error of its panic (counted, as every panic of a
// publisher, and a call of runtime.Goexit is one): a publisher's bug must
// not crash the program from a goroutine of the Recorder.
func (o *outlet) contained(f func() error) (err error) {
	returned := false
	defer func() {
		if !returned {
			err = o.panicked(recover())
		}
	}()
	err = f()
	returned = true
	return err
}

// flushPublisher calls fl.Flush, the publisher's, for a Flush with ctx,
// under a ctx that abort ends too: Close, when its own ctx ends, cuts a
// flush in progress short as it does a publish attempt, whatever the ctx
// of the Flush that asked for it. A flush that Close cut short returns
// ErrClosed.
func (o *outlet) flushPublisher(ctx context.Context, fl Flusher) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(o.ctx, cancel)()
	err := o.contained(func() error { return fl.Flush(fctx) })
	if err != nil && ctx.Err() == nil && o.ctx.Err() != nil {
		return ErrClosed
	}
	return err
}

// flush asks the worker to deliver every record queued so far, then to
// flush the publisher, and waits for that or for ctx.
func (o *outlet) flush(ctx context.Context) error {
	var err error
	if o.sync {
		if f, ok := o.pub.(Flusher); ok {
			err = o.contained(func() error { return f.Flush(ctx) })
		}
	} else {
		req := &flushRequest{ctx: ctx, done: make(chan error, 1)}
		select {
		case o.flushes <- req:
		case <-o.done:
			// Close stopped the worker before it took the request: the
			// publisher did not flush for it, and Close may have dropped
			// what it waited for.
			return ErrClosed
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

// close stops the worker after it has delivered what is queued, logs what
// the publisher dropped, then closes the publisher. If ctx ends first, the
// attempt in progress and any wait are cut short, the worker drops (and
// counts) what it holds, and close returns ctx.Err() once the worker has
// exited: as soon as the publisher returns from the attempt, which it does
// at once if it honours its ctx. So when close returns, every record handed
// to the publisher is published or dropped, and the publisher's Close never
// runs while one of its other methods does.
func (o *outlet) close(ctx context.Context) error {
	var err error
	if !o.sync {
		close(o.stop)
		select {
		case <-o.done:
		case <-ctx.Done():
			err = ctx.Err()
			o.abort()
			<-o.done
		}
		o.abort()
	}
	o.logDrops()
	if c, ok := o.pub.(Closer); ok {
		if cerr := o.contained(func() error { return c.Close(ctx) }); cerr != nil {
			err = errors.Join(err, fmt.Errorf("telemetry: close publisher %s: %w", o.name, cerr))
		}
	}
	return err
}
