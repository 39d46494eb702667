package telemetry

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/telemetry/internal/store"
)

// A StartOption adds optional data to a run at its start. It is a plain
// value so that passing one allocates nothing. The functions that take
// options only read them: they neither change nor keep the slice or its
// elements, so one slice of options may be passed to many calls, from
// many goroutines at once.
type StartOption struct {
	n    int64       // WithProcessID's process id, WithWait's duration
	s    string      // WithPipelineID
	t    time.Time   // WithEnqueueTime, WithStartTime
	span SpanContext // WithSpanContext (by value: a pointer would escape with the options)
	set  uint8       // which option this is: one bit (last, to pack with span)
}

const (
	setProcessID uint8 = 1 << iota
	setPipelineID
	setEnqueued
	setSpan
	setStarted
	setWait
)

// checkSpan returns an error wrapping [ErrInvalidOption] if the span
// context of o, a [WithSpanContext] option, is neither zero nor has both
// of its ids.
func (o *StartOption) checkSpan() error {
	if why := checkSpan(o.span); why != "" {
		return fmt.Errorf("%w: %s", ErrInvalidOption, why)
	}
	return nil
}

// ProcessID returns the process id that o gives, if it is a
// [WithProcessID] option.
func (o StartOption) ProcessID() (int, bool) { return int(o.n), o.set == setProcessID }

// PipelineID returns the pipeline id that o gives, if it is a
// [WithPipelineID] option.
func (o StartOption) PipelineID() (string, bool) { return o.s, o.set == setPipelineID }

// WithProcessID records the id of the process that runs the event.
func WithProcessID(pid int) StartOption { return StartOption{n: int64(pid), set: setProcessID} }

// WithPipelineID records the id of the pipeline run the event belongs to.
func WithPipelineID(id string) StartOption { return StartOption{s: id, set: setPipelineID} }

// WithEnqueueTime records when the event run's task was put in a queue,
// such as the enqueue time of a job queue's task, so that its record
// tells how long it waited ([EventMetrics.WaitTime]). t must not be the
// zero Time nor more than 146 years away from the Recorder's creation. An
// enqueue time after the start, which clocks of different machines can
// produce, is kept as given and counts as no wait. Of WithEnqueueTime and
// [WithWait], the last one given applies.
func WithEnqueueTime(t time.Time) StartOption { return StartOption{t: t, set: setEnqueued} }

// WithWait records that the event run's task waited d in a queue before
// the run started, for job queues that give the wait rather than the
// enqueue time (such as the time between a job's scheduled time and its
// attempt, both on the database's clock): the record's enqueue time is
// its start minus d, so its [EventMetrics.WaitTime] is exactly d. d must
// not be negative nor longer than 146 years. Of [WithEnqueueTime] and
// WithWait, the last one given applies.
func WithWait(d time.Duration) StartOption { return StartOption{n: int64(d), set: setWait} }

// WithStartTime gives the time the run started, for code that knows it
// better than the moment of the call: a job queue's attempt time, or the
// start of the span that traces the run, so that the record and the span
// agree. t must not be the zero Time, later than the call, nor more than
// 146 years before the Recorder's creation; a t read with time.Now in this
// process keeps the run's duration on the monotonic clock. It applies to
// event runs and network operations.
func WithStartTime(t time.Time) StartOption { return StartOption{t: t, set: setStarted} }

// WithSpanContext records the span that traces the run (an event run or a
// network operation): its ids go into the record, to the JSON report, and
// to publishers, such as the Prometheus publisher's exemplars. The zero
// SpanContext means not traced; any other that lacks an id (even one
// that only has Sampled set) is an error.
func WithSpanContext(s SpanContext) StartOption { return StartOption{span: s, set: setSpan} }

// StartEvent records the start of a run of the event eventName, identified
// by taskID. Its record has status pending until [Recorder.EndEvent].
// A task id may be started again after its previous run ended.
//
// It returns a [*TaskError] wrapping [ErrEmptyEventName], [ErrEmptyTaskID],
// [ErrInvalidProcessID], [ErrInvalidOption], [ErrAlreadyStarted] (taskID
// is still pending), [ErrTooManyPending] or [ErrClosed].
func (r *Recorder) StartEvent(eventName, taskID string, opts ...StartOption) error {
	const op = "start event"
	switch {
	case taskID == "":
		return taskError(op, taskID, ErrEmptyTaskID)
	case eventName == "":
		return taskError(op, taskID, ErrEmptyEventName)
	}
	rec := eventRecord{name: eventName}
	var at *time.Time // WithStartTime's
	var wait time.Duration
	hasWait := false
	for i := range opts {
		o := &opts[i] // not copied: an option is large
		switch o.set {
		case setProcessID:
			if o.n < 0 || o.n > 1<<31-1 {
				return taskError(op, taskID, fmt.Errorf("%w: %d", ErrInvalidProcessID, o.n))
			}
			rec.pid = int32(o.n)
		case setPipelineID:
			rec.pipelineID = o.s
		case setEnqueued:
			enq, err := r.clock.given(o.t, "enqueue time")
			if err != nil {
				return taskError(op, taskID, err)
			}
			rec.enq, rec.hasEnq = enq, true
			hasWait = false
		case setWait:
			if o.n < 0 || o.n > maxGiven {
				return taskError(op, taskID, fmt.Errorf("%w: the wait %v is negative or longer than 146 years", ErrInvalidOption, time.Duration(o.n)))
			}
			wait, hasWait = time.Duration(o.n), true
		case setSpan:
			if err := o.checkSpan(); err != nil {
				return taskError(op, taskID, err)
			}
			rec.span = o.span
		case setStarted:
			at = &o.t
		}
	}
	start := r.clock.now() // as r.clock.start does, without a call
	if at != nil {
		var err error
		if start, err = r.clock.startAt(at, start); err != nil {
			return taskError(op, taskID, err)
		}
	}
	if hasWait {
		rec.enq, rec.hasEnq = start-wait, true
	}
	rec.start = start
	return begin(r, r.events, op, taskID, &rec)
}

// EndEvent records the end of the pending run of taskID: completed if err is
// nil, else failed with err's text, truncated if it is longer than
// [WithMaxErrorLength]. The finished record is then handed to every
// publisher.
//
// It returns a [*TaskError] wrapping [ErrEmptyTaskID], [ErrNotStarted],
// [ErrAlreadyEnded] or [ErrClosed].
func (r *Recorder) EndEvent(taskID string, err error) error {
	return r.endEvent("end event", taskID, err, r.clock.now())
}

// EndEventAt is EndEvent for code that knows when the run ended better
// than the moment of the call: a job queue's finish time, or the end of
// the span that traces the run, so that the record and the span agree.
// end must not be the zero Time nor more than 146 years away from the
// Recorder's creation; an end before the run's start counts as
// an end at the start. A time from [Recorder.Now] gives the record exactly
// that end.
//
// It returns the errors of EndEvent, and one wrapping [ErrInvalidOption]
// for the zero Time.
func (r *Recorder) EndEventAt(taskID string, err error, end time.Time) error {
	const op = "end event"
	at, gerr := r.clock.given(end, "end time")
	if gerr != nil {
		return taskError(op, taskID, gerr)
	}
	return r.endEvent(op, taskID, err, at)
}

// Now returns the current time as the Recorder records it: its epoch's
// wall clock plus the monotonic time since. Given to [WithStartTime],
// [Recorder.EndEventAt] or [Network.EndOperationAt], it becomes the
// record's time exactly, so that code that also times a run (a tracer)
// can give it and the record the same times. It reads only the monotonic
// clock, which costs less than time.Now.
func (r *Recorder) Now() time.Time { return r.clock.time(r.clock.now()) }

// ErrorText returns the error text that r's record of a run that failed
// with err keeps: err's text cut at [WithMaxErrorLength] bytes (at a UTF-8
// boundary, ending with a marker such as "… [truncated, 11000 bytes]"), or
// "unknown error" if it is empty; "" for a nil err. Code that shows a
// run's error beside its record, such as on the span that traces the run,
// uses it so that both say the same.
func (r *Recorder) ErrorText(err error) string {
	if err == nil { // inlined: a run that did not fail costs a test
		return ""
	}
	_, text := endStatus(err, r.cfg.maxErrorLength)
	return text
}

// endEvent ends the pending run of taskID at now, an offset from the epoch.
func (r *Recorder) endEvent(op, taskID string, err error, now time.Duration) error {
	if taskID == "" {
		return taskError(op, taskID, ErrEmptyTaskID)
	}
	status, msg := endStatus(err, r.cfg.maxErrorLength)
	var rec eventRecord // the finished record, for the synchronous publishers
	return finish(r, r.events, op, taskID, &rec,
		func(rec *eventRecord, retries int32) {
			rec.dur = max(now-rec.start, 0)
			rec.status, rec.err = status, msg
			rec.retries = retries
		},
		(*eventTotals).add,
		func(o *outlet) {
			if o.obs != nil {
				o.observeEvent(&rec)
				return
			}
			o.publishSync(func(ctx context.Context) error { return o.pub.PublishEventMetrics(ctx, rec.metrics(r.clock, taskID)) })
		})
}

// RecordRetry records one more retry of the pending run of taskID.
//
// It returns a [*TaskError] wrapping [ErrEmptyTaskID], [ErrNotStarted],
// [ErrAlreadyEnded] (the latest run has ended) or [ErrClosed].
func (r *Recorder) RecordRetry(taskID string) error {
	const op = "record retry"
	if taskID == "" {
		return taskError(op, taskID, ErrEmptyTaskID)
	}
	if r.closed.Load() {
		return taskError(op, taskID, ErrClosed)
	}
	if r.events.Retry(taskID) != store.OK {
		return taskError(op, taskID, runError(r.events.Why(taskID)))
	}
	return nil
}

// Metrics returns the latest run of taskID, pending or finished, and whether
// there is one: the run started last, whatever times it was given. Finished
// runs are found while they are retained.
func (r *Recorder) Metrics(taskID string) (EventMetrics, bool) {
	return latest(r.events, taskID, (*eventRecord).setRetries,
		r.eventMetrics)
}

// eventTotals are exact counts over every event run, retained or not.
type eventTotals struct {
	ended, failed uint64
	waitClamped   uint64         // ended runs enqueued after they started
	withRetries   uint64         // ended runs that had at least one retry
	byRetryCount  map[int]uint64 // ended runs by their retry count (> 0)
}

func (t *eventTotals) init() { t.byRetryCount = make(map[int]uint64) }

func (t *eventTotals) add(rec *eventRecord) {
	t.ended++
	if rec.hasEnq && rec.enq > rec.start {
		t.waitClamped++
	}
	if rec.status == failed {
		t.failed++
	}
	if rec.retries > 0 {
		t.withRetries++
		t.byRetryCount[int(rec.retries)]++
	}
}

// Network records network operations, such as remote calls. Get one
// from [Recorder.Network]; its records are kept, queried, reported and
// published by that Recorder. The zero Network is not usable.
type Network struct {
	r *Recorder
}

// StartOperation records the start of a network operation of the task
// taskID to host:port. An empty operation means [DefaultOperation]. Of the
// options, only [WithSpanContext] and [WithStartTime] apply to network
// operations.
//
// It returns a [*TaskError] wrapping [ErrEmptyTaskID], [ErrEmptyHost],
// [ErrInvalidPort], [ErrInvalidOption], [ErrAlreadyStarted] (an operation
// of taskID is still pending), [ErrTooManyPending] or [ErrClosed].
func (n *Network) StartOperation(taskID, host string, port int, operation string, opts ...StartOption) error {
	const op = "start operation"
	switch {
	case taskID == "":
		return taskError(op, taskID, ErrEmptyTaskID)
	case host == "":
		return taskError(op, taskID, ErrEmptyHost)
	case port < 0 || port > 65535:
		return taskError(op, taskID, fmt.Errorf("%w: %d is outside 0-65535", ErrInvalidPort, port))
	}
	if operation == "" {
		operation = DefaultOperation
	}
	rec := networkRecord{operation: operation, host: host, port: uint16(port)}
	var at *time.Time // WithStartTime's
	for i := range opts {
		o := &opts[i]
		switch o.set {
		case setSpan:
			if err := o.checkSpan(); err != nil {
				return taskError(op, taskID, err)
			}
			rec.span = o.span
		case setStarted:
			at = &o.t
		case 0: // the zero StartOption adds nothing
		default:
			return taskError(op, taskID, fmt.Errorf("%w: only WithSpanContext and WithStartTime apply to a network operation", ErrInvalidOption))
		}
	}
	start, err := n.r.clock.start(at)
	if err != nil {
		return taskError(op, taskID, err)
	}
	rec.start = start
	return begin(n.r, n.r.network, op, taskID, &rec)
}

// EndOperation records the end of the pending network operation of taskID,
// with the bytes it sent and received and its error (nil for success). An
// error text longer than [WithMaxErrorLength] is truncated.
//
// It returns a [*TaskError] wrapping [ErrEmptyTaskID], [ErrNegativeBytes],
// [ErrNotStarted], [ErrAlreadyEnded] or [ErrClosed].
func (n *Network) EndOperation(taskID string, bytesSent, bytesReceived int64, err error) error {
	return n.endOperation("end operation", taskID, bytesSent, bytesReceived, err, n.r.clock.now())
}

// EndOperationAt is EndOperation with the time the operation ended, as
// [Recorder.EndEventAt] is for event runs.
func (n *Network) EndOperationAt(taskID string, bytesSent, bytesReceived int64, err error, end time.Time) error {
	const op = "end operation"
	at, gerr := n.r.clock.given(end, "end time")
	if gerr != nil {
		return taskError(op, taskID, gerr)
	}
	return n.endOperation(op, taskID, bytesSent, bytesReceived, err, at)
}

// endOperation ends the pending operation of taskID at now, an offset from
// the epoch.
func (n *Network) endOperation(op, taskID string, bytesSent, bytesReceived int64, err error, now time.Duration) error {
	switch {
	case taskID == "":
		return taskError(op, taskID, ErrEmptyTaskID)
	case bytesSent < 0:
		return taskError(op, taskID, fmt.Errorf("%w: bytes sent %d", ErrNegativeBytes, bytesSent))
	case bytesReceived < 0:
		return taskError(op, taskID, fmt.Errorf("%w: bytes received %d", ErrNegativeBytes, bytesReceived))
	}
	status, msg := endStatus(err, n.r.cfg.maxErrorLength)
	var rec networkRecord // the finished record, for the synchronous publishers
	return finish(n.r, n.r.network, op, taskID, &rec,
		func(rec *networkRecord, _ int32) {
			rec.dur = max(now-rec.start, 0)
			rec.status, rec.err = status, msg
			rec.sent, rec.received = bytesSent, bytesReceived
		},
		(*networkTotals).add,
		func(o *outlet) {
			if o.obs != nil {
				o.observeNetwork(&rec)
				return
			}
			o.publishSync(func(ctx context.Context) error {
				return o.pub.PublishNetworkMetrics(ctx, rec.metrics(n.r.clock, taskID))
			})
		})
}

// Metrics returns the latest run of the operation of taskID, pending or
// finished, and whether there is one: the run started last, whatever times
// it was given. Finished runs are found while they are retained.
func (n *Network) Metrics(taskID string) (NetworkMetrics, bool) {
	return latest(n.r.network, taskID, nil,
		n.r.networkMetrics)
}

// networkTotals are exact counts over every network operation that ended,
// retained or not.
type networkTotals struct {
	ended, failed  uint64
	sent, received int64
}

func (t *networkTotals) add(rec *networkRecord) {
	t.ended++
	if rec.status == failed {
		t.failed++
	}
	t.sent += rec.sent
	t.received += rec.received
}

// start returns the start of a run as an offset from c's epoch: the time
// at points to (a WithStartTime option's), or now if at is nil.
func (c clock) start(at *time.Time) (time.Duration, error) {
	now := c.now()
	if at == nil {
		return now, nil
	}
	return c.startAt(at, now)
}

// startAt is start for an at that is not nil, now being the current
// offset from c's epoch.
func (c clock) startAt(at *time.Time, now time.Duration) (time.Duration, error) {
	start, err := c.given(*at, "start time")
	if err != nil {
		return 0, err
	}
	if start > now {
		return 0, fmt.Errorf("%w: the start time %v is later than now", ErrInvalidOption, *at)
	}
	return start, nil
}

// maxGiven bounds the offsets of the times that callers give, and the
// waits: about 146 years either side of the Recorder's creation, so that
// the difference of two offsets, a duration or a wait, always fits in a
// time.Duration (offsets further away would overflow, or be clamped by
// time.Time.Sub, and give the run a wrong time and duration). It is one
// less than 1<<62: the difference of two offsets at the bounds, 1<<63,
// would not fit.
const maxGiven = 1<<62 - 1

// given returns t, a time given by the caller as its what, as an offset
// from c's epoch; or an error wrapping [ErrInvalidOption] if t is the zero
// Time or further than maxGiven from the epoch.
func (c clock) given(t time.Time, what string) (time.Duration, error) {
	if d := c.offset(t); d >= -maxGiven && d <= maxGiven && !t.IsZero() {
		return d, nil
	}
	return 0, badGiven(what, t)
}

// badGiven returns the error of given for t, the zero Time or a time
// further than maxGiven from the epoch.
func badGiven(what string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("%w: the %s is the zero Time", ErrInvalidOption, what)
	}
	return fmt.Errorf("%w: the %s %v is more than 146 years away from the Recorder's creation", ErrInvalidOption, what, t)
}

// begin adds rec as the pending run of taskID in t.
func begin[R, T any](r *Recorder, t *store.Table[R, T], op, taskID string, rec *R) error {
	if r.closed.Load() {
		return taskError(op, taskID, ErrClosed)
	}
	if st := t.Start(taskID, rec); st != store.OK {
		return taskError(op, taskID, runError(st))
	}
	return nil
}

// finish ends the pending run of taskID in t: end completes its record
// and count adds it to the shard's totals; then the record goes into the
// buffers of the queued publishers and, copied to *rec, through
// publishSync to the synchronous ones.
func finish[R, T any](r *Recorder, t *store.Table[R, T], op, taskID string, rec *R,
	end func(*R, int32), count func(*T, *R), publishSync func(*outlet)) error {
	outs := r.outlets.Load()
	s, h := t.Acquire(taskID)
	if r.closed.Load() {
		// Checked under the shard's lock, which the publishers' workers
		// take for their last round after Close began, so that no record
		// is queued after that round.
		t.Release(s)
		return taskError(op, taskID, ErrClosed)
	}
	e, retries, st := t.End(s, h, taskID)
	if st != store.OK {
		t.Release(s)
		return taskError(op, taskID, runError(t.Why(taskID)))
	}
	end(&e.Rec, retries)
	count(&s.Totals, &e.Rec)
	if len(outs.all) == 0 { // no publisher: nothing to hand over
		t.Ended(s)
		t.Release(s)
		return nil
	}
	pressure := enqueue(s, outs.queued, e.TaskID, &e.Rec)
	if len(outs.sync) > 0 {
		*rec = e.Rec // for the synchronous publishers: e is reused once s is released
	}
	t.Ended(s)
	t.Release(s)
	for _, o := range outs.sync {
		publishSync(o)
	}
	// Tell the workers of the queued publishers that a record is waiting.
	// Under pressure (a buffer half full), hurry them and yield the
	// processor once, so that a worker gets to run before its buffer
	// overflows; never block.
	for _, o := range outs.queued {
		if pressure {
			o.hurry()
		} else {
			o.wake()
		}
	}
	if pressure {
		runtime.Gosched()
	}
	return nil
}

// latest returns the latest run of taskID in t, pending or retained, as
// metrics makes it; pending, if not nil, gives a pending record the
// retries recorded for it.
func latest[R, T, M any](t *store.Table[R, T], taskID string, pending func(*R, int32), metrics func(*store.Entry[R]) M) (M, bool) {
	var (
		m  M
		ok bool
	)
	t.Locked(func(v *store.View[R, T]) {
		var e store.Entry[R]
		if e, ok = v.Latest(taskID, pending); ok {
			m = metrics(&e)
		}
	})
	return m, ok
}

// runError returns the sentinel error of a refused [store.Table] call, or nil
// for [store.OK].
func runError(st store.Status) error {
	switch st {
	case store.OK: // not reached: its callers pass only refusals
		return nil
	case store.AlreadyStarted:
		return ErrAlreadyStarted
	case store.TooManyPending:
		return ErrTooManyPending
	case store.AlreadyEnded:
		return ErrAlreadyEnded
	case store.NotStarted:
		return ErrNotStarted
	}
	panic("telemetry: unknown store status") // not reached: the cases above are every Status
}

// enqueue appends a finished record to the buffers of the queued outlets
// outs in its shard, which the caller has acquired. It reports whether a
// buffer has just become half full.
func enqueue[R, T any](p *store.Shard[R, T], outs []*outlet, taskID string, rec *R) (pressure bool) {
	for _, o := range outs {
		ok, half := p.Offer(o.slot, taskID, rec)
		if !ok {
			o.dropFull()
		}
		pressure = pressure || half
	}
	return pressure
}

// endStatus returns the status and error text of a run that ended with
// err, the text cut to at most maxLen bytes by truncate.
func endStatus(err error, maxLen int) (statusCode, string) {
	if err == nil {
		return completed, ""
	}
	msg := errorText(err)
	if msg == "" {
		// A failure must stay visible as one even if its error has no text.
		msg = "unknown error"
	}
	return failed, safetext.Cut(msg, maxLen)
}

// errorText returns err.Error(), or, if that panics (as the method of a
// typed nil pointer may), err as fmt prints it, which recovers the panic
// and says so: recording never panics on bad input.
func errorText(err error) (msg string) {
	defer func() {
		if recover() != nil {
			msg = fmt.Sprint(err)
		}
	}()
	return err.Error()
}
