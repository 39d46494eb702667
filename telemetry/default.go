package telemetry

import (
	"context"
	"sync/atomic"
	"time"
)

var defaultRecorder atomic.Pointer[Recorder]

// Default returns the default Recorder, which the package-level functions
// use. It is created on first use with no options; creating it starts no
// goroutine. Libraries should take a *Recorder rather than call Default.
func Default() *Recorder {
	if r := defaultRecorder.Load(); r != nil {
		return r
	}
	r, err := NewRecorder()
	if err != nil { // no options: cannot happen
		panic(err)
	}
	if defaultRecorder.CompareAndSwap(nil, r) {
		return r
	}
	return defaultRecorder.Load()
}

// SetDefault makes r the default Recorder. It does not close the previous
// one. A nil r is ignored.
func SetDefault(r *Recorder) {
	if r != nil {
		defaultRecorder.Store(r)
	}
}

// MonitorEvents attaches publishers to the default Recorder, which records
// from its creation on. With no publishers it
// only makes sure the default Recorder exists. It returns an error wrapping
// [ErrNilPublisher], [ErrDuplicatePublisher] or [ErrClosed], as
// [Recorder.AddPublisher] does; the publishers before the one refused are
// attached.
func MonitorEvents(publishers ...Publisher) error {
	r := Default()
	for _, p := range publishers {
		if err := r.AddPublisher(p); err != nil {
			return err
		}
	}
	return nil
}

// StartEvent calls [Recorder.StartEvent] on the default Recorder.
func StartEvent(eventName, taskID string, opts ...StartOption) error {
	return Default().StartEvent(eventName, taskID, opts...)
}

// EndEvent calls [Recorder.EndEvent] on the default Recorder.
func EndEvent(taskID string, err error) error { return Default().EndEvent(taskID, err) }

// RecordRetry calls [Recorder.RecordRetry] on the default Recorder.
func RecordRetry(taskID string) error { return Default().RecordRetry(taskID) }

// MetricsJSON returns the JSON report of the default Recorder. See
// [Recorder.MetricsJSON].
func MetricsJSON() ([]byte, error) { return Default().MetricsJSON() }

// FailedEvents returns the failed events of the default Recorder. See
// [Recorder.FailedEvents].
func FailedEvents() []EventMetrics { return Default().FailedEvents() }

// SlowEvents returns the events of the default Recorder that took longer
// than threshold. See [Recorder.SlowEvents].
func SlowEvents(threshold time.Duration) ([]EventMetrics, error) {
	return Default().SlowEvents(threshold)
}

// RetryStats returns the retry statistics of the default Recorder. See
// [Recorder.RetryStats].
func RetryStats() RetrySummary { return Default().RetryStats() }

// FailedNetworkOps returns the failed network operations of the default
// Recorder. See [Network.FailedOperations].
func FailedNetworkOps() []NetworkMetrics { return Default().Network().FailedOperations() }

// SlowNetworkOps returns the network operations of the default Recorder
// that took longer than threshold. See [Network.SlowOperations].
func SlowNetworkOps(threshold time.Duration) ([]NetworkMetrics, error) {
	return Default().Network().SlowOperations(threshold)
}

// Flush calls [Recorder.Flush] on the default Recorder.
func Flush(ctx context.Context) error { return Default().Flush(ctx) }

// Close calls [Recorder.Close] on the default Recorder. Replace it with
// [SetDefault] to record again.
func Close(ctx context.Context) error { return Default().Close(ctx) }
