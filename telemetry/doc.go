// Package telemetry records how the events of a pipeline run (timing,
// success or failure, retries) and the network operations they make
// (latency, bytes, errors), answers questions about them in-process, and
// delivers every finished record to publishers: Prometheus, Elasticsearch,
// Grafana Cloud (each in a subpackage of its own), a JSON-lines file, or any
// [Publisher] of yours. It depends on the standard library only.
//
// The minimal use:
//
//	r, err := telemetry.NewRecorder()
//	if err != nil { ... }
//	defer r.Close(ctx)
//
//	r.StartEvent("extract", taskID)
//	err = extract(ctx)
//	r.EndEvent(taskID, err) // completed if err is nil, else failed
//
//	failed := r.FailedEvents()
//	slow, _ := r.SlowEvents(2 * time.Second)
//	report, _ := r.MetricsJSON()
//
// # Records
//
// An [EventMetrics] is one run of an event, identified by its task id: it is
// pending from [Recorder.StartEvent] until [Recorder.EndEvent], which makes it
// completed or failed; [Recorder.RecordRetry] counts its retries. A
// [NetworkMetrics] is one network operation, recorded the same way through
// [Recorder.Network]. Durations and latencies come from the monotonic clock.
// Bad calls (an empty name, ending a run twice, a port out of range...)
// return errors that say what was wrong; see [TaskError].
//
// # Memory
//
// A Recorder keeps the pending runs and the most recent finished ones, up to
// [WithMaxEvents] and [WithMaxNetworkOps] (100,000 each by default), evicting
// the oldest first and counting evictions in [Stats]. Queries and the JSON
// report see what is retained; [Recorder.RetryStats] and the totals of
// [Stats] count every record ever ended.
//
// # Publishing
//
// Each publisher attached with [WithPublishers], [Recorder.AddPublisher] or
// [MonitorEvents] gets every record that finishes. Recording never waits for
// a publisher: records are buffered per publisher (see [WithQueueSize]) and
// delivered by a goroutine of its own, in batches to a [BatchPublisher],
// retried with exponential backoff and jitter unless the error is
// [Permanent]. What is dropped (buffer full, retries exhausted, a panic) is
// counted in [PublisherStats]. [Recorder.Flush] waits for delivery of what
// was recorded before it; [Recorder.Close] delivers what is buffered and
// stops everything. A [SyncPublisher], such as the Prometheus one, is called
// on the recording path instead, without a queue.
//
// # The default Recorder
//
// The package-level functions ([MonitorEvents], [MetricsJSON],
// [FailedEvents], [SlowEvents], [RetryStats], [FailedNetworkOps],
// [SlowNetworkOps], and [StartEvent], [EndEvent], [RecordRetry]) are the
// seeds' utility functions; they use [Default]. Libraries should take a
// *Recorder instead, and tests create their own.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use unless its
// documentation says otherwise. Recording takes constant time whatever the
// number of records retained and allocates nothing.
package telemetry
