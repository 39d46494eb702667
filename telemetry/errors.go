package telemetry

import (
	"errors"
	"strconv"
	"strings"

	"github.com/eventpipeline/eventpipeline/internal/safetext"
)

// Errors returned for bad input and bad state. Each is wrapped in a
// [*TaskError] (or another error that names the call), so match them with
// [errors.Is].
var (
	// ErrEmptyEventName is returned by StartEvent when the event name is empty.
	ErrEmptyEventName = errors.New("telemetry: empty event name")
	// ErrEmptyTaskID is returned by every call that takes a task id when it is empty.
	ErrEmptyTaskID = errors.New("telemetry: empty task id")
	// ErrAlreadyStarted is returned when a task id is started again while its
	// previous run is still pending.
	ErrAlreadyStarted = errors.New("telemetry: task already started and still pending")
	// ErrNotStarted is returned when a task id that was never started is ended
	// or retried; also when its runs have all ended and been evicted (see
	// [WithMaxEvents]), since memory is bounded: a Recorder does not remember
	// the task ids of the records it no longer retains.
	ErrNotStarted = errors.New("telemetry: task was never started")
	// ErrAlreadyEnded is returned when a task id whose latest run has already
	// ended, and is retained, is ended or retried again.
	ErrAlreadyEnded = errors.New("telemetry: task already ended")
	// ErrEmptyHost is returned by StartOperation when the host is empty.
	ErrEmptyHost = errors.New("telemetry: empty host")
	// ErrInvalidProcessID is returned by StartEvent for a negative process id
	// or one that does not fit in 32 bits.
	ErrInvalidProcessID = errors.New("telemetry: invalid process id")
	// ErrInvalidPort is returned by StartOperation for a port outside 0-65535.
	ErrInvalidPort = errors.New("telemetry: invalid port")
	// ErrNegativeBytes is returned by EndOperation for a negative byte count.
	ErrNegativeBytes = errors.New("telemetry: negative byte count")
	// ErrNegativeThreshold is returned by the slow-record queries for a
	// negative threshold.
	ErrNegativeThreshold = errors.New("telemetry: negative threshold")
	// ErrTooManyPending is returned by StartEvent and StartOperation when the
	// number of pending runs has reached its limit (see [WithMaxPending]).
	ErrTooManyPending = errors.New("telemetry: too many pending tasks")
	// ErrNilPublisher is returned when a nil Publisher is given, or a nil
	// pointer (map, func or channel) of a publisher type.
	ErrNilPublisher = errors.New("telemetry: nil publisher")
	// ErrDuplicatePublisher is returned when a publisher is attached to a
	// Recorder to which it is already attached, or given twice, so that it
	// would be called concurrently with itself and closed twice.
	ErrDuplicatePublisher = errors.New("telemetry: publisher already attached")
	// ErrUnsupportedRecord is returned by FormatMetrics for a value that is
	// neither an EventMetrics nor a NetworkMetrics.
	ErrUnsupportedRecord = errors.New("telemetry: unsupported record type")
	// ErrClosed is returned by every recording, publishing, Flush and Close
	// call made after [Recorder.Close] (or a publisher's Close) has begun.
	ErrClosed = errors.New("telemetry: closed")
)

// A TaskError reports a recording call that was refused, naming the call and
// the task id. Err is one of the sentinel errors of this package, possibly
// wrapped with details; [errors.Is] sees through a TaskError to it.
type TaskError struct {
	Op     string // the call, such as "end event" or "start operation"
	TaskID string // the task id it was given
	Err    error  // why it was refused
}

// Error returns a message of the form `telemetry: end event "t1": task was never started`.
// A task id longer than 256 bytes is quoted cut, with its length
// (`"t1t1…… [truncated, 1048576 bytes]"`), so that a long id does not make
// a long message; TaskID keeps it whole.
func (e *TaskError) Error() string {
	return "telemetry: " + e.Op + " " + strconv.Quote(safetext.Cut(e.TaskID, maxQuotedTaskID)) + ": " + reason(e.Err)
}

// maxQuotedTaskID is the most bytes of a task id that a TaskError's
// message quotes.
const maxQuotedTaskID = 256

// Unwrap returns e.Err.
func (e *TaskError) Unwrap() error { return e.Err }

// reason returns the message of err without this package's prefix, so that
// it reads well after another prefixed message.
func reason(err error) string {
	if err == nil {
		return "<nil>"
	}
	return strings.TrimPrefix(err.Error(), "telemetry: ")
}

func taskError(op, taskID string, err error) error {
	return &TaskError{Op: op, TaskID: taskID, Err: err}
}

// opError is the error of a call that takes no task id. Its message names the
// call; Unwrap gives the sentinel.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return "telemetry: " + e.op + ": " + reason(e.err) }

func (e *opError) Unwrap() error { return e.err }

func callError(op string, err error) error { return &opError{op: op, err: err} }

// valueError is a sentinel error with the offending value.
type valueError struct {
	err   error
	value string
}

func (e *valueError) Error() string { return e.err.Error() + " " + e.value }

func (e *valueError) Unwrap() error { return e.err }

var errNilWriter = errors.New("telemetry: nil io.Writer")

// A DroppedError is returned by a publisher that delivered a batch (or a
// record) in part and gave up on the rest for good, such as a bulk request
// in which some documents were rejected by a mapping error. The Recorder
// counts Dropped records as dropped and the others as published, and does
// not retry. Err says why; it should name the reason once, not per record.
// In a batch retried after a [*PartialError], Dropped includes the records
// given up on in the earlier calls, as all the others count as published.
type DroppedError struct {
	Dropped int   // records given up on, at most the number handed over
	Err     error // why
}

// Error returns a message with the count and the reason.
func (e *DroppedError) Error() string {
	return "telemetry: " + strconv.Itoa(e.Dropped) + " record(s) dropped: " + reason(e.Err)
}

// Unwrap returns e.Err.
func (e *DroppedError) Unwrap() error { return e.Err }

// A PartialError is returned by a [BatchPublisher] that delivered part of
// a batch and failed on the rest for now, such as a bulk request in which
// some documents were indexed and others refused with 429. Delivered is the
// number of records of the batch delivered so far, by this call and by the
// earlier calls with the same batch; Err says why the others were not.
//
// Whether the batch is retried is decided as for any error: a
// PartialError is transient unless marked with [Permanent], and
// [RetryAfter] may wrap it or be wrapped by it. Its count matters only when
// the batch's delivery ends without success: when the Recorder gives up (a
// permanent error, or the last attempt its [RetryPolicy] allows) or
// [Recorder.Close] runs out of time, it counts as published the largest
// Delivered reported for the batch, capped at the batch's size, and as
// dropped only the others. A publisher that does not send again, when a
// batch comes back, the records it already delivered should therefore
// return a PartialError with every failure of that batch once a record of
// it was delivered. A [*DroppedError] ends delivery with its own count
// instead.
type PartialError struct {
	Delivered int   // records of the batch delivered so far, at most its size
	Err       error // why the others were not
}

// Error returns a message with the count and the reason.
func (e *PartialError) Error() string {
	return "telemetry: " + strconv.Itoa(e.Delivered) + " record(s) delivered, the others not: " + reason(e.Err)
}

// Unwrap returns e.Err.
func (e *PartialError) Unwrap() error { return e.Err }
