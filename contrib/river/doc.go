// Package river records the jobs of River (github.com/riverqueue/river,
// a PostgreSQL-backed job queue) in a telemetry Recorder, and carries
// trace context from the code that inserts a job to the worker that works
// it, in the job's metadata. It is the module
// github.com/eventpipeline/eventpipeline/contrib/river, apart from the
// core module so that the core's users never download a PostgreSQL
// driver.
//
// Its name is that of the upstream package; import one of them under
// another name:
//
//	import (
//		"github.com/riverqueue/river"
//		"github.com/riverqueue/river/riverdriver/riverpgxv5"
//		"github.com/riverqueue/river/rivertype"
//		epriver "github.com/eventpipeline/eventpipeline/contrib/river"
//	)
//
//	mw := epriver.NewMiddleware(epriver.Config{Recorder: rec})
//	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
//		Queues:     map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
//		Workers:    workers,
//		Middleware: []rivertype.Middleware{mw},
//	})
//
// The same [Middleware] records on the workers and writes the trace
// context on the inserting side: a client that only inserts needs it too,
// for the trace to join.
//
// # Job attempts
//
// Each attempt of a job is one event run: the kind is the event name
// ([Config.EventName] changes that), the job id the task id, the
// attempts before this one the retry count, the worker's process id the
// process id. A job that fails twice and then succeeds leaves three runs
// of its id: failed with retry count 0, failed with 1, completed with 2.
// Since every run adds its retry count, event_retries_total and
// RetryStats.TotalRetries grow by 0+1+2 for it; RetryStats.EventsWithRetries
// counts the retried attempts themselves. A snoozed attempt
// (river.JobSnooze) counts as completed, a cancelled one (river.JobCancel)
// as failed.
//
// A worker that ignores its context may still run when River's rescuer
// makes its job available again (after Config.RescueStuckJobsAfter). If
// the new attempt starts in the same process while the earlier one is
// still pending, it is recorded under the job id followed by "#" and its
// attempt number, such as "42#2", so that both are recorded; the job id
// stays the span's message id. Should a run be pending under that id too
// (other code recording into the same Recorder under "42#2"), the new
// attempt takes the first of "42#2#2", "42#2#3", and so on up to
// "42#2#8", that no pending run has; only if all of them are pending is
// it refused (and counted by [Middleware.Failures]).
//
// # Wait in the queue
//
// The wait of an attempt is River's: from the job's scheduled_at (when it
// became available: its insert, its scheduled time, or the time of its
// retry or the end of its snooze) to its attempted_at. The database takes
// attempted_at, and the scheduled_at of a job inserted without a
// scheduled time; the scheduled_at of a retry or a snooze is set by the
// worker that failed or snoozed the previous attempt, on its clock (River's
// retry policy), and that of a scheduled job by the inserting code. The
// record's start is the moment the worker started it, on the worker's
// clock (so its duration is measured on the monotonic clock), and its
// enqueue time that start minus the wait, so that the wait is River's
// exactly whatever the offset between the worker's clock and the
// database's. The Prometheus publisher observes it in event_wait_seconds.
// A scheduled_at set by a machine's clock makes River's wait off by that
// clock's offset from the database's; a wait that clock skew makes
// negative counts as none, and is counted
// (telemetry.Stats.EventsWaitClamped).
//
// # Trace context
//
// At insert, the Middleware writes into each job's metadata, under
// [MetadataKey], the trace context of the insert's ctx through
// [Config.Propagator] (by default OpenTelemetry's global propagator),
// and the run id of the pipeline that inserted it, if a pipeline event
// did. At work, it extracts the context into the worker's ctx. With a
// [Config.TracerProvider], each insert is a producer span and each
// attempt a consumer span, a child of it, with the messaging attributes
// of the OpenTelemetry semantic conventions (system "river", the queue as
// destination, the job id as message id) and [AttrJobKind] and
// [AttrJobAttempt]; the records carry the consumer span's ids. A span
// that failed has status Error and an exception event (as
// span.RecordError makes) with the error text of its record, cut at
// telemetry.WithMaxErrorLength (telemetry.Recorder.ErrorText); a failed
// insert, which has no record, has the text the Recorder would keep,
// never a longer text. Without one, no span is made and no span ids are
// recorded.
//
// # Cost
//
// Without a TracerProvider, and for a job without the Middleware's
// metadata, the Middleware adds the recording of one event run to an
// attempt, and for a job id of 100 or more one allocation (the id in
// decimal). BenchmarkMiddleware measures it against the same worker
// function called directly; the figures are in the Goals table of the
// repository's docs/performance.md. Metadata with trace context costs its
// JSON decoding.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use unless
// its documentation says otherwise.
package river
