package asynq

import (
	"strconv"
	"strings"
	"time"
)

// The task headers this package writes (with [Client.Enqueue] and
// [RemoteEvent]) and reads (in the [Middleware]), besides those of the
// trace context propagator (traceparent, tracestate and baggage for W3C
// Trace Context and Baggage).
const (
	// HeaderEnqueueTime is the time the task became ready to run, as
	// decimal Unix nanoseconds: the time of the enqueue, or for a task
	// scheduled with asynq.ProcessAt or asynq.ProcessIn the start of the
	// second of its time (asynq keeps it in whole seconds). The Middleware
	// records the wait of a first attempt from it.
	HeaderEnqueueTime = "eventpipeline-enqueue-time"
	// HeaderPipelineID is the run id of the pipeline that enqueued the
	// task, when a pipeline event enqueued it; the Middleware records it
	// as the run's pipeline id.
	HeaderPipelineID = "eventpipeline-pipeline-id"
)

// TaskTypePrefix starts the task type of every remote event
// ([TaskType]).
const TaskTypePrefix = "eventpipeline:"

// TaskType returns the asynq task type of the remote event named event:
// "eventpipeline:" and the name.
func TaskType(event string) string { return TaskTypePrefix + event }

// DefaultEventName is the event name the [Middleware] records a task run
// under when [Config.EventName] is nil: the task type, or for the task of
// a remote event ([TaskType]) the event's name, so that the worker's runs
// and the caller's carry the same name. The queue is not part of it.
func DefaultEventName(queue, taskType string) string {
	if name, ok := strings.CutPrefix(taskType, TaskTypePrefix); ok && name != "" {
		return name
	}
	return taskType
}

// formatTime returns t as decimal Unix nanoseconds.
func formatTime(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

// maxInt64 is the largest int64 in decimal.
const maxInt64 = "9223372036854775807"

// parseTime parses decimal Unix nanoseconds, digits only; it reports
// false for an empty, malformed, too large or zero value. It is
// strconv.ParseInt without its generality, on the path of every task run:
// the digits before and after the last nine go to two sums that do not
// wait for each other.
func parseTime(s string) (time.Time, bool) {
	if len(s) == 0 || len(s) > len(maxInt64) || (len(s) == len(maxInt64) && s > maxInt64) {
		return time.Time{}, false
	}
	split := max(len(s)-9, 0)
	var hi, lo int64
	for i := 0; i < split; i++ {
		d := s[i] - '0'
		if d > 9 {
			return time.Time{}, false
		}
		hi = hi*10 + int64(d)
	}
	for i := split; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return time.Time{}, false
		}
		lo = lo*10 + int64(d)
	}
	n := hi*1_000_000_000 + lo
	if n == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// headerBytes returns the size of the headers, keys and values.
func headerBytes(h map[string]string) int64 {
	var n int64
	for k, v := range h {
		n += int64(len(k) + len(v))
	}
	return n
}
