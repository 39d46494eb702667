package telemetry

import (
	"context"
	"fmt"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry/internal/store"
)

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
}

// Latency returns how long the operation took, measured with the monotonic
// clock. It is 0 while the operation is pending.
func (m NetworkMetrics) Latency() time.Duration {
	if m.EndTime.IsZero() {
		return 0
	}
	return m.EndTime.Sub(m.StartTime)
}

// networkRecord is the compact form in which network operations are stored
// and queued, beside their task id.
type networkRecord struct {
	operation string
	host      string
	err       string
	start     time.Time
	dur       time.Duration
	sent      int64
	received  int64
	port      uint16
	status    statusCode
}

// startKey and endKey are those of eventRecord.
func (r *networkRecord) startKey() time.Duration { return r.start.Sub(epoch) }
func (r *networkRecord) endKey() time.Duration   { return r.start.Sub(epoch) + r.dur }

func (r *networkRecord) metrics(taskID string) NetworkMetrics {
	m := NetworkMetrics{
		TaskID:        taskID,
		Operation:     r.operation,
		Host:          r.host,
		Port:          int(r.port),
		StartTime:     r.start,
		Status:        r.status.status(),
		BytesSent:     r.sent,
		BytesReceived: r.received,
		Error:         r.err,
	}
	if r.status != pending {
		m.EndTime = r.start.Add(r.dur)
	}
	return m
}

// Network records network operations, such as remote calls. Get one
// from [Recorder.Network]; its records are kept, queried, reported and
// published by that Recorder. The zero Network is not usable.
type Network struct {
	r *Recorder
}

// StartOperation records the start of a network operation of the task
// taskID to host:port. An empty operation means [DefaultOperation].
//
// It returns a [*TaskError] wrapping [ErrEmptyTaskID], [ErrEmptyHost],
// [ErrInvalidPort], [ErrAlreadyStarted] (an operation of taskID is still
// pending), [ErrTooManyPending] or [ErrClosed].
func (n *Network) StartOperation(taskID, host string, port int, operation string) error {
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
	rec := networkRecord{operation: operation, host: host, port: uint16(port), start: time.Now()}
	return begin(n.r, &n.r.network, op, taskID, rec)
}

// EndOperation records the end of the pending network operation of taskID,
// with the bytes it sent and received and its error (nil for success). An
// error text longer than [WithMaxErrorLength] is truncated.
//
// It returns a [*TaskError] wrapping [ErrEmptyTaskID], [ErrNegativeBytes],
// [ErrNotStarted], [ErrAlreadyEnded] or [ErrClosed].
func (n *Network) EndOperation(taskID string, bytesSent, bytesReceived int64, err error) error {
	const op = "end operation"
	now := time.Since(epoch)
	switch {
	case taskID == "":
		return taskError(op, taskID, ErrEmptyTaskID)
	case bytesSent < 0:
		return taskError(op, taskID, fmt.Errorf("%w: bytes sent %d", ErrNegativeBytes, bytesSent))
	case bytesReceived < 0:
		return taskError(op, taskID, fmt.Errorf("%w: bytes received %d", ErrNegativeBytes, bytesReceived))
	}
	status, msg := endStatus(err, n.r.cfg.maxErrorLength)
	return finish(n.r, &n.r.network, op, taskID,
		func(rec networkRecord) networkRecord {
			rec.dur = sinceStart(now, rec.start)
			rec.status, rec.err = status, msg
			rec.sent, rec.received = bytesSent, bytesReceived
			return rec
		},
		(*networkTotals).add,
		func(o *outlet, taskID string, rec networkRecord) {
			o.publishSync(func(ctx context.Context) error { return o.pub.PublishNetworkMetrics(ctx, rec.metrics(taskID)) })
		})
}

// Metrics returns the latest run of the operation of taskID, pending or
// finished, and whether there is one. Finished runs are found while they are
// retained.
func (n *Network) Metrics(taskID string) (NetworkMetrics, bool) {
	return latest(&n.r.network, taskID, func(e *store.Entry[networkRecord]) NetworkMetrics { return e.Rec.metrics(e.TaskID) })
}

// FailedOperations returns the retained finished operations that failed,
// oldest first.
func (n *Network) FailedOperations() []NetworkMetrics {
	return n.r.selectNetwork(func(rec *networkRecord) bool { return rec.status == failed })
}

// SlowOperations returns the retained finished operations that took longer
// than threshold, such as [DefaultSlowThreshold], oldest first. A negative
// threshold is an error wrapping [ErrNegativeThreshold].
func (n *Network) SlowOperations(threshold time.Duration) ([]NetworkMetrics, error) {
	if threshold < 0 {
		return nil, callError("slow operations", thresholdError(threshold))
	}
	return n.r.selectNetwork(func(rec *networkRecord) bool { return rec.dur > threshold }), nil
}

// networkTotals are exact counts over every network operation that ended,
// retained or not.
type networkTotals struct {
	ended, failed  uint64
	sent, received int64
}

func (t *networkTotals) add(rec networkRecord) {
	t.ended++
	if rec.status == failed {
		t.failed++
	}
	t.sent += rec.sent
	t.received += rec.received
}
