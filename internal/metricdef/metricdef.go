// Package metricdef holds what the metrics publishers (Prometheus, Grafana
// Cloud) must agree on, so that one dashboard and one set of alerts fit
// every path: metric names, help texts, label names and values, default
// buckets, the reserved overflow label value, the checks a record must pass,
// and the bounding of label values. It depends on the standard library and
// internal/label only, and is not part of the module's API.
package metricdef

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"

	"github.com/eventpipeline/eventpipeline/internal/label"
)

// Names of the metrics of the contract, before any namespace prefix.
// Dashboards and alerts depend on them: they never change.
const (
	// EventDuration is a histogram of the duration of finished event runs,
	// labelled event_name and status (completed or failed).
	EventDuration = "event_duration_seconds"
	// EventRetries counts the retries of finished event runs, labelled
	// event_name.
	EventRetries = "event_retries_total"
	// NetworkBytes counts the bytes of finished network operations,
	// labelled operation and direction (sent or received).
	NetworkBytes = "network_bytes_total"
	// NetworkLatency is a histogram of the latency of finished network
	// operations, labelled operation.
	NetworkLatency = "network_latency_seconds"
	// EventWait is a histogram of the time finished event runs waited in a
	// queue before they started, labelled event_name: only runs whose
	// enqueue time is known (telemetry.WithEnqueueTime or WithWait) are
	// observed.
	EventWait = "event_wait_seconds"
)

// Help texts of the metrics of the contract.
const (
	HelpEventDuration  = "Duration of finished event runs in seconds, by event name and status (completed or failed)."
	HelpEventRetries   = "Retries of finished event runs, by event name."
	HelpNetworkBytes   = "Bytes of finished network operations, by operation and direction (sent or received)."
	HelpNetworkLatency = "Latency of finished network operations in seconds, by operation."
	HelpEventWait      = "Time finished event runs waited in a queue before they started, in seconds, by event name; only runs whose enqueue time is known."
)

// Names of the delivery self-metrics, before any namespace prefix. Each has
// the label publisher, the name of a publisher in
// telemetry.Recorder.PublisherStats.
const (
	// Published counts the records a publisher accepted.
	Published = "telemetry_publisher_records_published_total"
	// FailedAttempts counts publish calls that returned an error or
	// panicked, retried or not.
	FailedAttempts = "telemetry_publisher_failed_attempts_total"
	// Dropped counts the records a publisher lost, with the label reason:
	// [ReasonQueueFull], [ReasonFailed] or [ReasonClosed].
	Dropped = "telemetry_publisher_records_dropped_total"
	// Panics counts publish calls that panicked.
	Panics = "telemetry_publisher_panics_total"
	// QueueLength is the number of records waiting in a publisher's queue.
	QueueLength = "telemetry_publisher_queue_length"
	// QueueCapacity is the size of a publisher's queue; 0 for a
	// synchronous publisher.
	QueueCapacity = "telemetry_publisher_queue_capacity"
)

// Help texts of the delivery self-metrics.
const (
	HelpPublished      = "Records accepted by each telemetry publisher."
	HelpFailedAttempts = "Publish calls of each telemetry publisher that returned an error or panicked, retried or not."
	HelpDropped        = "Records lost by each telemetry publisher, by reason: queue_full, failed or closed."
	HelpPanics         = "Publish calls of each telemetry publisher that panicked."
	HelpQueueLength    = "Records waiting in the queue of each telemetry publisher."
	HelpQueueCapacity  = "Size of the queue of each telemetry publisher; 0 for synchronous publishers."
)

// Label names.
const (
	LabelEventName = "event_name"
	LabelStatus    = "status"
	LabelOperation = "operation"
	LabelDirection = "direction"
	LabelPublisher = "publisher"
	LabelReason    = "reason"
	LabelLe        = "le"
)

// ReservedLabels are the label names the metrics use themselves, which
// labels added by the user (constant labels) must not use.
var ReservedLabels = []string{LabelEventName, LabelStatus, LabelOperation, LabelDirection, LabelPublisher, LabelReason, LabelLe}

// Label values of fixed sets.
const (
	StatusCompleted   = "completed"  // status of a run or operation that succeeded
	StatusFailed      = "failed"     // status of a run or operation that failed
	DirectionSent     = "sent"       // direction of bytes sent
	DirectionReceived = "received"   // direction of bytes received
	ReasonQueueFull   = "queue_full" // reason of records dropped from a full queue
	ReasonFailed      = "failed"     // reason of records given up after errors
	ReasonClosed      = "closed"     // reason of records not delivered when Close ran out of time
)

// Overflow is the event_name or operation label value under which records
// are counted once the number of distinct values has reached the
// publisher's limit. It is reserved: [LabelValue] never returns it.
const Overflow = "_overflow"

// escapedOverflow is what [LabelValue] returns for a name that is really
// "_overflow": the name with the hash suffix that label.Value gives to the
// values it changes, so that it stays distinct from the overflow series.
var escapedOverflow = func() string {
	h := fnv.New64a()
	h.Write([]byte(Overflow))
	return Overflow + "~" + fmt.Sprintf("%016x", h.Sum64())
}()

// LabelValue returns the label value that stands for the record text s (an
// event name, an operation, a publisher name): [label.Value] of s (valid
// UTF-8 of at most label.MaxLen bytes, kept distinct with a hash suffix),
// except that s == [Overflow] gets a hash suffix too, so that a real name
// never poses as, or merges with, the overflow series. It allocates only
// when it changes s.
func LabelValue(s string) string {
	if s == Overflow {
		return escapedOverflow
	}
	return label.Value(s)
}

// EventBuckets returns a new copy of the default bucket upper bounds, in
// seconds, of event_duration_seconds: from one millisecond to ten minutes,
// as pipeline events run.
func EventBuckets() []float64 {
	return []float64{
		.001, .0025, .005, .01, .025, .05, .1, .25, .5,
		1, 2.5, 5, 10, 30, 60, 120, 300, 600,
	}
}

// LatencyBuckets returns a new copy of the default bucket upper bounds, in
// seconds, of network_latency_seconds: from half a millisecond to one
// minute.
func LatencyBuckets() []float64 {
	return []float64{
		.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5,
		1, 2.5, 5, 10, 30, 60,
	}
}

// WaitBuckets returns a new copy of the default bucket upper bounds, in
// seconds, of event_wait_seconds: from five milliseconds to one hour, as
// tasks wait in job queues.
func WaitBuckets() []float64 {
	return []float64{
		.005, .01, .025, .05, .1, .25, .5,
		1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
	}
}

// Errors of the record checks. A publisher wraps them with its own prefix.
var (
	// ErrNotFinished is the error of a record whose status is neither
	// completed nor failed.
	ErrNotFinished = errors.New("record is not finished (status must be completed or failed)")
	// ErrEmptyEventName is the error of an event record without a name.
	ErrEmptyEventName = errors.New("empty event name")
	// ErrNegativeBytes is the error of a network record with a negative
	// byte count.
	ErrNegativeBytes = errors.New("negative byte count")
)

// CheckEvent returns nil if an event record with this name and status can
// become metrics: a name that is not empty and a status of completed or
// failed. Otherwise it returns [ErrEmptyEventName] or [ErrNotFinished].
func CheckEvent(name, status string) error {
	if name == "" {
		return ErrEmptyEventName
	}
	return checkStatus(status)
}

// CheckNetwork returns nil if a network record with this status and byte
// counts can become metrics: a status of completed or failed and no
// negative byte count. Otherwise it returns [ErrNotFinished], or an error
// wrapping [ErrNegativeBytes] with both counts.
func CheckNetwork(status string, sent, received int64) error {
	if err := checkStatus(status); err != nil {
		return err
	}
	if sent < 0 || received < 0 {
		return fmt.Errorf("%w: sent %d, received %d", ErrNegativeBytes, sent, received)
	}
	return nil
}

func checkStatus(status string) error {
	if status != StatusCompleted && status != StatusFailed {
		return ErrNotFinished
	}
	return nil
}

// CheckBuckets returns a message for each problem of the bucket bounds b
// of the setting name: empty but not nil (nil means the defaults), and
// each problem [CheckBounds] finds. The push publishers check their
// bucket settings with it.
func CheckBuckets(name string, b []float64) []string {
	var bad []string
	if b != nil && len(b) == 0 {
		bad = append(bad, name+" is empty: leave it nil for the defaults")
	}
	return append(bad, CheckBounds(name, b)...)
}

// CheckBounds returns a message for each bound of the bucket bounds b of
// the setting name that is not finite (NaN or ±Inf) or not greater than
// the bound before it. It is [CheckBuckets] without the check for an
// empty slice, for a publisher to which an empty slice means something:
// no classic buckets, for the Prometheus publisher with native
// histograms. Such a publisher says itself when an empty slice is wrong.
func CheckBounds(name string, b []float64) []string {
	var bad []string
	for i, v := range b {
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			bad = append(bad, fmt.Sprintf("%s[%d] is %v: bounds must be finite", name, i, v))
		case i > 0 && v <= b[i-1]:
			bad = append(bad, fmt.Sprintf("%s are not strictly increasing: %v after %v", name, v, b[i-1]))
		}
	}
	return bad
}
