package telemetry

import (
	"context"
	"fmt"
	"reflect"
)

// A Publisher sends finished records to a monitoring backend.
//
// A Recorder delivers to each of its publishers from a goroutine of its own,
// through a bounded queue, so a slow or failing publisher never makes the
// code that records wait. It never calls such a publisher concurrently with
// itself: its publish methods, Flush and Close are called from one goroutine
// at a time, and Close only after the last publish call has returned, even
// when [Recorder.Close] runs out of time. A [SyncPublisher] is the
// exception: it is called from every goroutine that records, so it must be
// safe for concurrent use, as must a publisher that is also used directly
// (or attached to several Recorders).
//
// Implementations must:
//   - honour ctx: return soon after it ends, with an error ([Recorder.Close]
//     waits for a call in progress to return);
//   - return nil only when the record is delivered, and an error otherwise;
//     an error is retried with backoff unless it is marked with [Permanent];
//   - not keep a reference to the record, or to anything it points to,
//     after returning.
//
// # Optional interfaces
//
// A publisher may also implement any of these interfaces, which the
// Recorder finds by type assertion; they are the whole set:
//   - [BatchPublisher]: PublishBatch is called instead of the per-record
//     methods, with batches of up to [WithMaxBatchSize] records.
//   - [SyncPublisher]: if Synchronous reports true, the publish methods are
//     called on the recording path, with no queue and no worker.
//   - [Observer]: a SyncPublisher whose observe methods are called on the
//     recording path instead of its publish methods, with only what metrics
//     are made of.
//   - [Flusher]: Flush is called by [Recorder.Flush] (and Close), after every
//     record recorded before it was handed over.
//   - [Closer]: Close is called once by [Recorder.Close], after the last
//     record was handed over and the publisher's worker has exited.
//   - [Attacher]: Attach is called once by [Recorder.AddPublisher], before
//     the first record; it is the way a publisher learns its Recorder, for
//     example to export [Recorder.PublisherStats].
//   - [Namer]: Name gives the publisher's name in [PublisherStats] and in log
//     messages, called once when it is attached.
type Publisher interface {
	// PublishEventMetrics sends the record of a finished event run.
	PublishEventMetrics(ctx context.Context, m EventMetrics) error
	// PublishNetworkMetrics sends the record of a finished network operation.
	PublishNetworkMetrics(ctx context.Context, m NetworkMetrics) error
}

// A Batch is a group of finished records handed to a [BatchPublisher].
// Its slices are reused after PublishBatch returns: do not keep them.
type Batch struct {
	Events  []EventMetrics   // finished event runs
	Network []NetworkMetrics // finished network operations
}

// Len returns the number of records in b.
func (b *Batch) Len() int { return len(b.Events) + len(b.Network) }

// A BatchPublisher is a Publisher that can send many records in one call,
// such as one bulk request. The Recorder then hands it batches of up to
// [WithMaxBatchSize] records, sent when full or after [WithBatchTimeout].
// A batch is retried as a whole: the same records come again in the next
// call.
//
// A batch delivered in part is reported by the error: a [*DroppedError]
// if the rest are given up on for good, which ends the batch's delivery;
// a [*PartialError] with the number delivered so far if the rest may yet
// go through, so that if the Recorder gives up on the batch it counts
// those as published and only the others as dropped. A publisher that
// delivers part of a batch should skip, when the batch comes again, the
// records it has already delivered (or deliver them idempotently).
type BatchPublisher interface {
	Publisher
	// PublishBatch sends every record of b. The rules of Publisher apply.
	PublishBatch(ctx context.Context, b *Batch) error
}

// A SyncPublisher is a Publisher that only updates in-process state, such as
// the histograms a Prometheus server scrapes, and so can be called on the
// recording path itself, without a queue. If Synchronous reports true, the
// Recorder calls its publish methods from the goroutine that ends the run,
// with [context.Background], before EndEvent or EndOperation returns; they
// must then be fast, never block, and be safe for concurrent use. Their
// errors and panics are counted but not retried. A run that ends while
// [Recorder.Close] runs may still be handed to a SyncPublisher after its
// Close was called: its publish methods must then return an error (such as
// [ErrClosed]), which is counted, rather than fail in another way.
type SyncPublisher interface {
	Publisher
	Synchronous() bool
}

// An Observer is a [SyncPublisher] that makes metrics of a finished run,
// such as histograms and counters, and so needs only some of its record:
// its name, status, duration, retries, wait and span. The Recorder then
// calls ObserveEvent and ObserveNetwork on the recording path instead of the
// publish methods, with an [EventObservation] or a [NetworkObservation],
// which spares it making the record's times and text. The rules of
// SyncPublisher apply to them, and ctx is [context.Background].
//
// The publish methods remain the way the publisher is called when used
// directly, or by code that holds whole records: they must have the same
// effect as observing the record's [EventMetrics.Observation] or
// [NetworkMetrics.Observation], which they usually call.
type Observer interface {
	SyncPublisher
	// ObserveEvent adds the finished event run o to the publisher's
	// metrics.
	ObserveEvent(ctx context.Context, o EventObservation) error
	// ObserveNetwork adds the finished network operation o to the
	// publisher's metrics.
	ObserveNetwork(ctx context.Context, o NetworkObservation) error
}

// A Flusher is a Publisher with buffers of its own. [Recorder.Flush] calls
// Flush after every record recorded before it was handed over.
type Flusher interface {
	Flush(ctx context.Context) error
}

// A Closer is a Publisher that holds resources, such as a listening port or
// a connection pool. [Recorder.Close] calls Close once, with its own ctx,
// after the last record was handed over and the last publish call has
// returned (for a queued publisher), even if that ctx has already ended.
type Closer interface {
	Close(ctx context.Context) error
}

// An Attacher is a Publisher that wants to know the Recorder it is attached
// to, such as one that exports the Recorder's [Recorder.PublisherStats].
// [Recorder.AddPublisher] (and so [WithPublishers] and [MonitorEvents])
// calls Attach once, before the publisher gets any record. Attach must not
// call the Recorder's recording methods.
type Attacher interface {
	Attach(r *Recorder)
}

// A Namer is a Publisher with a name of its own for [PublisherStats.Name],
// such as "prometheus". Without one, the name is derived from its type.
type Namer interface {
	Name() string
}

// isNil reports whether p is nil: the nil interface, or a nil pointer, map,
// func or channel of a publisher type, whose methods would panic or do
// nothing.
func isNil(p Publisher) bool {
	if p == nil {
		return true
	}
	switch v := reflect.ValueOf(p); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return v.IsNil()
	}
	return false
}

// nilPublisher returns the error for a nil p: [ErrNilPublisher], with the
// type of p if it has one.
func nilPublisher(p Publisher) error {
	if p == nil {
		return ErrNilPublisher
	}
	return &valueError{err: ErrNilPublisher, value: fmt.Sprintf("%T", p)}
}
