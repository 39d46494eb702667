package telemetry

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/label"
	"github.com/eventpipeline/eventpipeline/telemetry/internal/store"
)

// A Recorder records event runs and network operations, answers queries
// about them, and delivers every finished record to its publishers: one
// telemetry instance, for event runs and, through [Recorder.Network], for
// network operations.
//
// Recording (StartEvent, EndEvent, RecordRetry and the [Network] methods)
// takes constant time whatever the number of records retained, allocates
// nothing, and never waits for a publisher. A Recorder is safe for
// concurrent use. Create one with [NewRecorder]; the zero Recorder is not
// usable.
type Recorder struct {
	cfg config
	net Network

	events  store.Table[eventRecord, eventTotals]
	network store.Table[networkRecord, networkTotals]

	pubMu   sync.Mutex                // serializes changes of outlets
	outlets atomic.Pointer[[]*outlet] // read on every record, copied on change
	closed  atomic.Bool
}

// eventTotals are exact counts over every event run, retained or not.
type eventTotals struct {
	ended, failed uint64
	retries       uint64         // retries recorded, pending runs included
	withRetries   uint64         // ended runs that had at least one retry
	byRetryCount  map[int]uint64 // ended runs by their retry count (> 0)
}

func (t *eventTotals) init() { t.byRetryCount = make(map[int]uint64) }

// NewRecorder returns a new Recorder configured by opts. It starts a
// goroutine for each publisher given with [WithPublishers], and none
// otherwise. Invalid options are reported together in one error.
func NewRecorder(opts ...Option) (*Recorder, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	r := &Recorder{cfg: cfg}
	r.net.r = r
	r.events = store.NewTable[eventRecord](cfg.maxEvents, cfg.maxPending, (*eventTotals).init)
	r.network = store.NewTable[networkRecord, networkTotals](cfg.maxNetworkOps, cfg.maxPending, nil)
	r.outlets.Store(new([]*outlet))
	for _, p := range cfg.publishers {
		if err := r.AddPublisher(p); err != nil {
			r.Close(context.Background())
			return nil, err
		}
	}
	r.cfg.publishers = nil
	return r, nil
}

// A StartOption adds optional data to an event run at its start. It is a
// plain value so that passing one allocates nothing.
type StartOption struct {
	processID  int
	pipelineID string
	set        uint8
}

const (
	setProcessID uint8 = 1 << iota
	setPipelineID
)

// WithProcessID records the id of the process that runs the event.
func WithProcessID(pid int) StartOption { return StartOption{processID: pid, set: setProcessID} }

// WithPipelineID records the id of the pipeline run the event belongs to.
func WithPipelineID(id string) StartOption { return StartOption{pipelineID: id, set: setPipelineID} }

// StartEvent records the start of a run of the event eventName, identified
// by taskID. Its record has status pending until [Recorder.EndEvent].
// A task id may be started again after its previous run ended.
//
// It returns a [*TaskError] wrapping [ErrEmptyEventName], [ErrEmptyTaskID],
// [ErrInvalidProcessID], [ErrAlreadyStarted] (taskID is still pending),
// [ErrTooManyPending] or [ErrClosed].
func (r *Recorder) StartEvent(eventName, taskID string, opts ...StartOption) error {
	const op = "start event"
	switch {
	case taskID == "":
		return taskError(op, taskID, ErrEmptyTaskID)
	case eventName == "":
		return taskError(op, taskID, ErrEmptyEventName)
	}
	rec := eventRecord{name: eventName}
	for _, o := range opts {
		if o.set&setProcessID != 0 {
			if o.processID < 0 || int64(o.processID) > 1<<31-1 {
				return taskError(op, taskID, fmt.Errorf("%w: %d", ErrInvalidProcessID, o.processID))
			}
			rec.pid = int32(o.processID)
		}
		if o.set&setPipelineID != 0 {
			rec.pipelineID = o.pipelineID
		}
	}
	rec.start = time.Now()
	return begin(r, &r.events, op, taskID, rec)
}

// EndEvent records the end of the pending run of taskID: completed if err is
// nil, else failed with err's text, truncated if it is longer than
// [WithMaxErrorLength]. The finished record is then handed to every
// publisher.
//
// It returns a [*TaskError] wrapping [ErrEmptyTaskID], [ErrNotStarted],
// [ErrAlreadyEnded] or [ErrClosed].
func (r *Recorder) EndEvent(taskID string, err error) error {
	const op = "end event"
	now := time.Since(epoch)
	if taskID == "" {
		return taskError(op, taskID, ErrEmptyTaskID)
	}
	status, msg := endStatus(err, r.cfg.maxErrorLength)
	return finish(r, &r.events, op, taskID,
		func(rec eventRecord) eventRecord {
			rec.dur = sinceStart(now, rec.start)
			rec.status, rec.err = status, msg
			return rec
		},
		(*eventTotals).add,
		func(o *outlet, taskID string, rec eventRecord) {
			o.publishSync(func(ctx context.Context) error { return o.pub.PublishEventMetrics(ctx, rec.metrics(taskID)) })
		})
}

func (t *eventTotals) add(rec eventRecord) {
	t.ended++
	if rec.status == failed {
		t.failed++
	}
	if rec.retries > 0 {
		t.withRetries++
		t.byRetryCount[int(rec.retries)]++
	}
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
	p, h := r.events.Part(taskID)
	p.Lock()
	rec, st := p.Runs.Pending(h, taskID)
	if st == store.OK {
		rec.retries++
		p.Totals.retries++
	}
	p.Unlock()
	if st != store.OK {
		return taskError(op, taskID, runError(st))
	}
	return nil
}

// Metrics returns the latest run of taskID, pending or finished, and whether
// there is one. Finished runs are found while they are retained.
func (r *Recorder) Metrics(taskID string) (EventMetrics, bool) {
	return latest(&r.events, taskID, func(e *store.Entry[eventRecord]) EventMetrics { return e.Rec.metrics(e.TaskID) })
}

// Network returns the Network that records network operations into r.
func (r *Recorder) Network() *Network { return &r.net }

// AddPublisher attaches p: from now on it receives every record that
// finishes, through a queue and a goroutine of its own (or on the recording
// path if it is a [SyncPublisher]). A [*CompositePublisher] is attached as
// its members, so that each has its own queue, retries and stats. If p is an
// [Attacher], its Attach method is called first.
//
// It returns an error wrapping [ErrNilPublisher] or [ErrClosed].
func (r *Recorder) AddPublisher(p Publisher) error {
	if p == nil {
		return callError("add publisher", ErrNilPublisher)
	}
	if c, ok := p.(*CompositePublisher); ok {
		var errs []error
		for _, m := range c.pubs {
			errs = append(errs, r.AddPublisher(m))
		}
		return errors.Join(errs...)
	}
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	if r.closed.Load() {
		return callError("add publisher", ErrClosed)
	}
	old := *r.outlets.Load()
	slot := 0
	for _, o := range old {
		if !o.sync {
			slot++
		}
	}
	base := publisherName(p)
	name := base
	for n, taken := 2, true; taken; n++ {
		taken = false
		for _, o := range old {
			if o.name == name {
				taken = true
				name = label.Value(base + "#" + strconv.Itoa(n))
				break
			}
		}
	}
	if a, ok := p.(Attacher); ok {
		a.Attach(r)
	}
	o := newOutlet(name, p, r, slot)
	if !o.sync {
		// The buffers exist before any recorder can see the outlet.
		r.events.AddOut(r.cfg.queueSize)
		r.network.AddOut(r.cfg.queueSize)
		go o.run()
	}
	outs := append(old[:len(old):len(old)], o)
	r.outlets.Store(&outs)
	return nil
}

// enqueue appends a finished record to the buffers of the queued outlets in
// its partition, whose lock the caller holds. It reports whether a buffer
// has just become half full.
func enqueue[R, T any](p *store.Partition[R, T], outs []*outlet, taskID string, rec *R) (pressure bool) {
	for _, o := range outs {
		if o.sync {
			continue
		}
		ok, half := p.Offer(o.slot, taskID, rec)
		if !ok {
			o.dropFull()
		}
		pressure = pressure || half
	}
	return pressure
}

// handOver delivers a finished record to the synchronous publishers and
// tells the workers of the others that it is waiting. Under pressure (a
// buffer half full) it hurries the workers and yields the processor once,
// so that a worker gets to run before its buffer overflows; it never blocks.
func handOver(outs []*outlet, pressure bool, publishSync func(*outlet)) {
	for _, o := range outs {
		switch {
		case o.sync:
			publishSync(o)
		case pressure:
			o.hurry()
		default:
			o.wake()
		}
	}
	if pressure {
		runtime.Gosched()
	}
}

// Flush waits until every record that finished before the call has been
// delivered to (or dropped by) every publisher, and each publisher that is a
// [Flusher] has flushed. It returns ctx.Err() if ctx ends first, the
// publishers' Flush errors joined, or [ErrClosed] after Close.
func (r *Recorder) Flush(ctx context.Context) error {
	if r.closed.Load() {
		return callError("flush", ErrClosed)
	}
	return r.flush(ctx)
}

func (r *Recorder) flush(ctx context.Context) error {
	outs := *r.outlets.Load()
	errs := make([]error, len(outs))
	var wg sync.WaitGroup
	for i, o := range outs {
		wg.Go(func() { errs[i] = o.flush(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close stops recording, delivers what is buffered, stops the publishers'
// goroutines and closes every publisher that is a [Closer]. After Close,
// recording calls, Flush and AddPublisher return [ErrClosed]; queries and
// the report keep working on what was recorded.
//
// If ctx ends first, Close cuts short the publish attempts in progress and
// the waits between attempts, drops what is still queued, and returns
// ctx.Err() as soon as each publisher has returned from the call it was in
// (at once for a publisher that honours its ctx, as a Publisher must).
// Either way, when Close returns, every record handed to a queued publisher
// is counted in its [PublisherStats] as published or dropped (Queued is 0),
// each publisher that dropped records has logged one warning with their
// number by reason, and the goroutines have exited. A publisher's Close
// never runs while another of its methods does.
//
// A second call returns [ErrClosed]. Close is safe to call from several
// goroutines.
func (r *Recorder) Close(ctx context.Context) error {
	r.pubMu.Lock()
	first := r.closed.CompareAndSwap(false, true)
	r.pubMu.Unlock()
	if !first {
		return callError("close", ErrClosed)
	}
	err := r.flush(ctx)
	outs := *r.outlets.Load()
	errs := make([]error, len(outs)+1)
	errs[0] = err
	var wg sync.WaitGroup
	for i, o := range outs {
		wg.Go(func() { errs[i+1] = o.close(ctx) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}

// Stats are counters of a Recorder: what it retains and evicted, and how
// delivery to each publisher goes. Ended, evicted and failed counts cover
// every record since the Recorder was created, retained or not.
type Stats struct {
	EventsPending   int    `json:"events_pending"`
	EventsRetained  int    `json:"events_retained"`
	EventsEnded     uint64 `json:"events_ended"`
	EventsFailed    uint64 `json:"events_failed"`
	EventsEvicted   uint64 `json:"events_evicted"`
	NetworkPending  int    `json:"network_pending"`
	NetworkRetained int    `json:"network_retained"`
	NetworkEnded    uint64 `json:"network_ended"`
	NetworkFailed   uint64 `json:"network_failed"`
	NetworkEvicted  uint64 `json:"network_evicted"`
	// BytesSent and BytesReceived are totals over every network operation.
	BytesSent     int64 `json:"bytes_sent"`
	BytesReceived int64 `json:"bytes_received"`
	// Publishers has the delivery counters of each attached publisher,
	// in the order they were attached.
	Publishers []PublisherStats `json:"publishers"`
}

// Stats returns the current counters of r.
func (r *Recorder) Stats() Stats {
	var s Stats
	r.events.Locked(s.addEvents)
	r.network.Locked(s.addNetwork)
	s.Publishers = r.PublisherStats()
	return s
}

// addEvents adds the event counters of locked partitions to s.
func (s *Stats) addEvents(parts []store.Partition[eventRecord, eventTotals]) {
	for i := range parts {
		p := &parts[i]
		s.EventsPending += p.Runs.NumPending()
		s.EventsRetained += p.Runs.Retained()
		s.EventsEnded += p.Totals.ended
		s.EventsFailed += p.Totals.failed
		s.EventsEvicted += p.Runs.Evicted()
	}
}

// addNetwork adds the network counters of locked partitions to s.
func (s *Stats) addNetwork(parts []store.Partition[networkRecord, networkTotals]) {
	for i := range parts {
		p := &parts[i]
		s.NetworkPending += p.Runs.NumPending()
		s.NetworkRetained += p.Runs.Retained()
		s.NetworkEnded += p.Totals.ended
		s.NetworkFailed += p.Totals.failed
		s.NetworkEvicted += p.Runs.Evicted()
		s.BytesSent += p.Totals.sent
		s.BytesReceived += p.Totals.received
	}
}

// PublisherStats returns the delivery counters of each attached publisher,
// in the order they were attached.
func (r *Recorder) PublisherStats() []PublisherStats {
	outs := *r.outlets.Load()
	s := make([]PublisherStats, len(outs))
	for i, o := range outs {
		s[i] = o.stats()
	}
	return s
}
