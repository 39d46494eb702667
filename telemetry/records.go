package telemetry

import (
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry/internal/store"
)

// Status is the execution status of an event run or a network operation.
type Status string

// The three status values. Their string values are part of the JSON report
// and of every backend's documents and labels.
const (
	StatusPending   Status = "pending"   // started, not ended yet
	StatusCompleted Status = "completed" // ended without an error
	StatusFailed    Status = "failed"    // ended with an error
)

// statusCode is the one-byte form of Status used in stored records.
type statusCode uint8

const (
	pending statusCode = iota
	completed
	failed
)

func (c statusCode) status() Status {
	switch c {
	case completed:
		return StatusCompleted
	case failed:
		return StatusFailed
	}
	return StatusPending
}

// A clock reads the time of a Recorder as an offset from its epoch, a
// time.Now reading taken when the Recorder was created. time.Since(epoch)
// reads only the monotonic clock, which costs less than time.Now, and an
// offset takes 8 bytes where a time.Time takes 24; epoch.Add(offset) gives
// back a time.Time with both a wall clock and a monotonic reading. So the
// wall clock times of records follow the epoch's wall clock and the
// monotonic clock since, not later steps of the wall clock.
type clock struct {
	epoch     time.Time
	epochNano int64 // epoch.UnixNano()
}

func newClock() clock {
	epoch := time.Now()
	return clock{epoch: epoch, epochNano: epoch.UnixNano()}
}

// offset returns t as an offset from the epoch: t.Sub(epoch). A t with no
// monotonic clock reading, such as one parsed or sent by another machine,
// is measured by its wall clock, as t.Sub does, from Unix nanoseconds when
// t is within 136 years of 1970 (so that the difference cannot overflow),
// which costs less than t.Sub. t has no monotonic reading if t.In of its
// own location, which strips the reading and keeps the rest, equals t: the
// canonical test, t == t.Round(0), costs a call.
func (c clock) offset(t time.Time) time.Duration {
	if s := t.Unix(); s > -1<<32 && s < 1<<32 && t == t.In(t.Location()) {
		return time.Duration(t.UnixNano() - c.epochNano)
	}
	return t.Sub(c.epoch)
}

// now returns the current time as an offset from the epoch.
func (c clock) now() time.Duration { return time.Since(c.epoch) }

// time returns the time at offset d.
func (c clock) time(d time.Duration) time.Time { return c.epoch.Add(d) }

// EventMetrics is the record of one run of an event.
//
// A record returned by this package is a copy; changing it changes nothing
// in the Recorder.
type EventMetrics struct {
	EventName  string    // name of the event, such as "load_orders"
	TaskID     string    // id of this run (a task id may run again after it ended)
	StartTime  time.Time // when the run started
	EndTime    time.Time // when it ended; the zero Time while pending
	Status     Status    // pending, completed or failed
	Error      string    // the error text if the run failed, else ""; see [WithMaxErrorLength]
	RetryCount int       // number of retries recorded for this run
	ProcessID  int       // id of the process that ran it; 0 if not given
	PipelineID string    // id of the pipeline run it belongs to; "" if not given
	// EnqueueTime is when the run's task was put in a queue, if the code
	// that started it knew ([WithEnqueueTime], or its start minus
	// [WithWait]); the zero Time otherwise.
	EnqueueTime time.Time
	// Span identifies the span that traces the run ([WithSpanContext]);
	// the zero SpanContext if the run is not traced.
	Span SpanContext
}

// WaitTime returns how long the run waited in a queue before it started:
// StartTime minus EnqueueTime. It is 0 if the enqueue time is not known,
// and if it is after the start, as clocks of different machines can make
// it (such runs are counted in [Stats].EventsWaitClamped).
func (m EventMetrics) WaitTime() time.Duration {
	if m.EnqueueTime.IsZero() || m.EnqueueTime.After(m.StartTime) {
		return 0
	}
	return m.StartTime.Sub(m.EnqueueTime)
}

// Duration returns how long the run took. It is measured with the monotonic
// clock, so changes of the wall clock do not affect it. It is 0 while the run
// is pending.
func (m EventMetrics) Duration() time.Duration {
	if m.EndTime.IsZero() {
		return 0
	}
	return m.EndTime.Sub(m.StartTime)
}

// An EventObservation is the part of the record of a finished event run
// that metrics are made of, as an [Observer] gets it: what
// [EventMetrics.Observation] returns.
type EventObservation struct {
	EventName string        // name of the event
	Status    Status        // completed or failed
	Duration  time.Duration // how long the run took: [EventMetrics.Duration]
	Retries   int           // retries recorded for the run: [EventMetrics.RetryCount]
	// Wait is how long the run waited in a queue before it started
	// ([EventMetrics.WaitTime]) if Enqueued, and 0 otherwise.
	Wait time.Duration
	// Enqueued reports whether the run's enqueue time is known: whether
	// [EventMetrics.EnqueueTime] is not the zero Time.
	Enqueued bool
	Span     SpanContext // the span that traces the run, if any
}

// Observation returns the part of m that metrics are made of.
func (m EventMetrics) Observation() EventObservation {
	return EventObservation{
		EventName: m.EventName, Status: m.Status, Duration: m.Duration(), Retries: m.RetryCount,
		Wait: m.WaitTime(), Enqueued: !m.EnqueueTime.IsZero(), Span: m.Span,
	}
}

// eventRecord is the compact form in which events are stored and queued,
// beside their task id. Keeping it small keeps the retained memory per
// event low. The store requires its string fields first and no other
// pointer (see package store, Memory).
type eventRecord struct {
	name       string
	pipelineID string
	err        string
	start      time.Duration // offset from the Recorder's epoch; see clock
	dur        time.Duration
	enq        time.Duration // enqueue time, offset from the epoch, if hasEnq
	span       SpanContext
	pid        int32
	retries    int32
	status     statusCode
	hasEnq     bool
}

// wait returns how long the run waited in a queue, and whether that is
// known; an enqueue time after the start counts as no wait.
func (r *eventRecord) wait() (time.Duration, bool) {
	if !r.hasEnq {
		return 0, false
	}
	return max(r.start-r.enq, 0), true
}

// observation returns the observation of the finished run r holds, which
// equals the Observation of its metrics.
func (r *eventRecord) observation() EventObservation {
	wait, enqueued := r.wait()
	return EventObservation{
		EventName: r.name, Status: r.status.status(), Duration: r.dur, Retries: int(r.retries),
		Wait: wait, Enqueued: enqueued, Span: r.span,
	}
}

// setRetries sets the retries of a pending record, which the store keeps
// beside it.
func (r *eventRecord) setRetries(n int32) { r.retries = n }

// eventFuncs tell the store what it needs to know of an event record.
var eventFuncs = store.Funcs[eventRecord]{
	Start: (*eventRecord).startKey,
	Finished: func(r *eventRecord) (time.Duration, time.Duration, bool) {
		return r.endKey(), r.dur, r.status == failed
	},
}

// networkFuncs are eventFuncs for network records.
var networkFuncs = store.Funcs[networkRecord]{
	Start: (*networkRecord).startKey,
	Finished: func(r *networkRecord) (time.Duration, time.Duration, bool) {
		return r.endKey(), r.dur, r.status == failed
	},
}

// startKey and endKey return the start and end of the run as offsets from
// epoch on the monotonic clock, for ordering.
func (r *eventRecord) startKey() time.Duration { return r.start }

func (r *eventRecord) endKey() time.Duration { return r.start + r.dur }

// metrics returns the record of the run of taskID that r holds. It is
// fill, into a result of its own.
func (r *eventRecord) metrics(c clock, taskID string) (m EventMetrics) {
	r.fill(&m, &c, taskID)
	return m
}

// fill sets every field of m to the record of the run of taskID that r
// holds, in place: queries fill the records they return in their result,
// without copying them from one variable to another.
func (r *eventRecord) fill(m *EventMetrics, c *clock, taskID string) {
	m.EventName, m.TaskID = r.name, taskID
	m.StartTime, m.EndTime, m.EnqueueTime = c.time(r.start), time.Time{}, time.Time{}
	if r.status != pending {
		m.EndTime = c.time(r.start + r.dur)
	}
	if r.hasEnq {
		m.EnqueueTime = c.time(r.enq)
	}
	m.Status, m.Error, m.PipelineID = r.status.status(), r.err, r.pipelineID
	m.RetryCount, m.ProcessID = int(r.retries), int(r.pid)
	m.Span = r.span
}

// DefaultOperation is the operation name StartOperation records when it is
// given an empty one.
const DefaultOperation = "remote_call"

// NetworkMetrics is the record of one network operation.
//
// A record returned by this package is a copy; changing it changes nothing
// in the Recorder.
type NetworkMetrics struct {
	TaskID        string    // id of the task that made the call
	Operation     string    // kind of operation, such as "remote_call" or "http_request"
	Host          string    // remote host
	Port          int       // remote port, 0-65535
	StartTime     time.Time // when the operation started
	EndTime       time.Time // when it ended; the zero Time while pending
	Status        Status    // pending, completed or failed
	BytesSent     int64     // bytes sent
	BytesReceived int64     // bytes received
	Error         string    // the error text if the operation failed, else ""; see [WithMaxErrorLength]
	// Span identifies the client span that traces the operation
	// ([WithSpanContext]); the zero SpanContext if it is not traced.
	Span SpanContext
}

// Latency returns how long the operation took, measured with the monotonic
// clock. It is 0 while the operation is pending.
func (m NetworkMetrics) Latency() time.Duration {
	if m.EndTime.IsZero() {
		return 0
	}
	return m.EndTime.Sub(m.StartTime)
}

// A NetworkObservation is the part of the record of a finished network
// operation that metrics are made of, as an [Observer] gets it: what
// [NetworkMetrics.Observation] returns.
type NetworkObservation struct {
	Operation     string        // kind of operation; "" only if the record's is
	Status        Status        // completed or failed
	Latency       time.Duration // how long it took: [NetworkMetrics.Latency]
	BytesSent     int64         // bytes sent
	BytesReceived int64         // bytes received
	Span          SpanContext   // the client span that traces it, if any
}

// Observation returns the part of m that metrics are made of.
func (m NetworkMetrics) Observation() NetworkObservation {
	return NetworkObservation{
		Operation: m.Operation, Status: m.Status, Latency: m.Latency(),
		BytesSent: m.BytesSent, BytesReceived: m.BytesReceived, Span: m.Span,
	}
}

// networkRecord is the compact form in which network operations are stored
// and queued, beside their task id, laid out as eventRecord is.
type networkRecord struct {
	operation string
	host      string
	err       string
	start     time.Duration // offset from the Recorder's epoch; see clock
	dur       time.Duration
	span      SpanContext
	sent      int64
	received  int64
	port      uint16
	status    statusCode
}

// startKey and endKey are those of eventRecord.
func (r *networkRecord) startKey() time.Duration { return r.start }

func (r *networkRecord) endKey() time.Duration { return r.start + r.dur }

// observation is eventRecord.observation for network records.
func (r *networkRecord) observation() NetworkObservation {
	return NetworkObservation{
		Operation: r.operation, Status: r.status.status(), Latency: r.dur,
		BytesSent: r.sent, BytesReceived: r.received, Span: r.span,
	}
}

// metrics is eventRecord.metrics for network records.
func (r *networkRecord) metrics(c clock, taskID string) (m NetworkMetrics) {
	r.fill(&m, &c, taskID)
	return m
}

// fill is eventRecord.fill for network records.
func (r *networkRecord) fill(m *NetworkMetrics, c *clock, taskID string) {
	m.TaskID, m.Operation, m.Host, m.Port = taskID, r.operation, r.host, int(r.port)
	m.StartTime, m.EndTime = c.time(r.start), time.Time{}
	if r.status != pending {
		m.EndTime = c.time(r.start + r.dur)
	}
	m.Status, m.BytesSent, m.BytesReceived, m.Error = r.status.status(), r.sent, r.received, r.err
	m.Span = r.span
}
