package asynq

import (
	"math"
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
// the 19 digits of every time from September 2001 to 2286, the length it
// meets in practice, are read as three digits and two words of eight
// (parseEight) at constant offsets; other lengths, after the first
// len(s)%8 digits, eight digits at a time in a loop.
func parseTime(s string) (time.Time, bool) {
	var n uint64 // 19 digits fit: below 1e19 < 2^64
	if len(s) == len(maxInt64) {
		d0, d1, d2 := s[0]-'0', s[1]-'0', s[2]-'0'
		a, okA := parseEight(le64(s[3:11]))
		b, okB := parseEight(le64(s[11:19]))
		if d0 > 9 || d1 > 9 || d2 > 9 || !okA || !okB {
			return time.Time{}, false
		}
		n = (uint64(d0)*100+uint64(d1)*10+uint64(d2))*1e16 + a*1e8 + b
	} else {
		if len(s) == 0 || len(s) > len(maxInt64) {
			return time.Time{}, false
		}
		i := len(s) % 8
		for j := 0; j < i; j++ {
			d := s[j] - '0'
			if d > 9 {
				return time.Time{}, false
			}
			n = n*10 + uint64(d)
		}
		for ; i < len(s); i += 8 {
			v, ok := parseEight(le64(s[i : i+8]))
			if !ok {
				return time.Time{}, false
			}
			n = n*100_000_000 + v
		}
	}
	if n == 0 || n > math.MaxInt64 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(n)), true
}

// le64 returns the first eight bytes of s as a little-endian word, which
// the compiler reads with one load.
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// parseEight returns the number that eight decimal digits spell, read as
// a little-endian word (the first digit in the lowest byte), and whether
// they are all digits, with a few word operations instead of eight
// dependent multiplications.
func parseEight(v uint64) (uint64, bool) {
	const (
		hi    = 0xF0F0F0F0F0F0F0F0
		zeros = 0x3030303030303030
	)
	// Every byte is 0x30-0x3F, and adding 6 keeps it below 0x40: '0'-'9'.
	if v&hi != zeros || (v+0x0606060606060606)&hi != zeros {
		return 0, false
	}
	v -= zeros
	v = v*10 + v>>8 // each even byte: two digits
	return ((v&0x000000FF000000FF)*(100+1_000_000<<32) + (v>>16&0x000000FF000000FF)*(1+10_000<<32)) >> 32, true
}

// headerBytes returns the size of the headers, keys and values.
func headerBytes(h map[string]string) int64 {
	var n int64
	for k, v := range h {
		n += int64(len(k) + len(v))
	}
	return n
}
