package telemetry

import (
	"strconv"
	"time"
	"unicode/utf8"
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

// epoch is the origin of monotonic offsets: time.Since(epoch) reads only the
// monotonic clock, half the cost of time.Now, which the end of a run needs.
var epoch = time.Now()

// sinceStart returns how long ago start (a time.Now reading) was, given
// now, an offset from epoch.
func sinceStart(now time.Duration, start time.Time) time.Duration {
	return now - start.Sub(epoch)
}

// endStatus returns the status and error text of a run that ended with
// err, the text cut to at most maxLen bytes by truncate.
func endStatus(err error, maxLen int) (statusCode, string) {
	if err == nil {
		return completed, ""
	}
	msg := err.Error()
	if msg == "" {
		// A failure must stay visible as one even if its error has no text.
		msg = "unknown error"
	}
	return failed, truncate(msg, maxLen)
}

// truncate returns s if it has at most maxLen bytes. Otherwise it returns
// s cut at a UTF-8 character boundary and followed by a marker giving the
// length of s, "… [truncated, 1048576 bytes]", in maxLen bytes at most;
// if maxLen cannot hold the marker, the marker alone, cut to maxLen.
func truncate(s string, maxLen int) string {
	if len(s) <= maxLen {
		return s
	}
	marker := "… [truncated, " + strconv.Itoa(len(s)) + " bytes]"
	if maxLen < len(marker) {
		return cutAtRune(marker, maxLen)
	}
	return cutAtRune(s, maxLen-len(marker)) + marker
}

// cutAtRune returns the longest prefix of s of at most n bytes that ends at
// a character boundary. Where s is not valid UTF-8, it cuts at n.
func cutAtRune(s string, n int) string {
	if n >= len(s) {
		return s
	}
	for i := n; i >= 0 && i > n-utf8.UTFMax; i-- {
		if i == 0 || utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:n]
}

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

// eventRecord is the compact form in which events are stored and queued,
// beside their task id.
// Keeping it small keeps the retained memory per event low.
type eventRecord struct {
	name       string
	pipelineID string
	err        string
	start      time.Time // carries the monotonic reading taken at start
	dur        time.Duration
	pid        int32
	retries    int32
	status     statusCode
}

// startKey and endKey return the start and end of the run as offsets from
// epoch on the monotonic clock, for ordering.
func (r *eventRecord) startKey() time.Duration { return r.start.Sub(epoch) }
func (r *eventRecord) endKey() time.Duration   { return r.start.Sub(epoch) + r.dur }

func (r *eventRecord) metrics(taskID string) EventMetrics {
	m := EventMetrics{
		EventName:  r.name,
		TaskID:     taskID,
		StartTime:  r.start,
		Status:     r.status.status(),
		Error:      r.err,
		RetryCount: int(r.retries),
		ProcessID:  int(r.pid),
		PipelineID: r.pipelineID,
	}
	if r.status != pending {
		m.EndTime = r.start.Add(r.dur)
	}
	return m
}
