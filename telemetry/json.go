package telemetry

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// timeLayout is RFC 3339 with a fixed nine-digit fraction, always in UTC.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// MarshalJSON encodes m as the standardized document of an event run: the
// fields of [FormatMetrics], in snake_case, with times in RFC 3339 (UTC,
// nanoseconds) and null for an absent end time, error, process id or
// pipeline id.
func (m EventMetrics) MarshalJSON() ([]byte, error) {
	return appendEvent(nil, &m), nil
}

// MarshalJSON encodes m as the standardized document of a network
// operation: the fields of [FormatMetrics], as for EventMetrics.
func (m NetworkMetrics) MarshalJSON() ([]byte, error) {
	return appendNetwork(nil, &m), nil
}

func appendEvent(b []byte, m *EventMetrics) []byte {
	b = append(b, `{"metric_type":"event","event_name":`...)
	b = appendString(b, m.EventName)
	b = append(b, `,"task_id":`...)
	b = appendString(b, m.TaskID)
	b = appendTimes(b, m.StartTime, m.EndTime)
	b = append(b, `,"status":`...)
	b = appendString(b, string(m.Status))
	b = append(b, `,"error":`...)
	b = appendOptString(b, m.Error)
	b = append(b, `,"retry_count":`...)
	b = strconv.AppendInt(b, int64(m.RetryCount), 10)
	b = append(b, `,"process_id":`...)
	if m.ProcessID == 0 {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(m.ProcessID), 10)
	}
	b = append(b, `,"pipeline_id":`...)
	b = appendOptString(b, m.PipelineID)
	b = append(b, `,"duration_seconds":`...)
	b = strconv.AppendFloat(b, m.Duration().Seconds(), 'f', -1, 64)
	return append(b, '}')
}

func appendNetwork(b []byte, m *NetworkMetrics) []byte {
	b = append(b, `{"metric_type":"network","task_id":`...)
	b = appendString(b, m.TaskID)
	b = append(b, `,"operation":`...)
	b = appendString(b, m.Operation)
	b = append(b, `,"host":`...)
	b = appendString(b, m.Host)
	b = append(b, `,"port":`...)
	b = strconv.AppendInt(b, int64(m.Port), 10)
	b = appendTimes(b, m.StartTime, m.EndTime)
	b = append(b, `,"status":`...)
	b = appendString(b, string(m.Status))
	b = append(b, `,"bytes_sent":`...)
	b = strconv.AppendInt(b, m.BytesSent, 10)
	b = append(b, `,"bytes_received":`...)
	b = strconv.AppendInt(b, m.BytesReceived, 10)
	b = append(b, `,"error":`...)
	b = appendOptString(b, m.Error)
	b = append(b, `,"latency_seconds":`...)
	b = strconv.AppendFloat(b, m.Latency().Seconds(), 'f', -1, 64)
	return append(b, '}')
}

func appendTimes(b []byte, start, end time.Time) []byte {
	b = append(b, `,"start_time":"`...)
	b = start.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","end_time":`...)
	if end.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = end.UTC().AppendFormat(b, timeLayout)
	return append(b, '"')
}

func appendOptString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does, so the output is always valid JSON.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' { // valid JSON, but not JavaScript
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// jsonRecord is the decoding form of both documents.
type jsonRecord struct {
	MetricType    string  `json:"metric_type"`
	EventName     string  `json:"event_name"`
	TaskID        string  `json:"task_id"`
	Operation     string  `json:"operation"`
	Host          string  `json:"host"`
	Port          int     `json:"port"`
	StartTime     string  `json:"start_time"`
	EndTime       *string `json:"end_time"`
	Status        Status  `json:"status"`
	Error         *string `json:"error"`
	RetryCount    int     `json:"retry_count"`
	ProcessID     *int    `json:"process_id"`
	PipelineID    *string `json:"pipeline_id"`
	BytesSent     int64   `json:"bytes_sent"`
	BytesReceived int64   `json:"bytes_received"`
}

func (j *jsonRecord) decode(data []byte, want string) (start, end time.Time, err error) {
	if err := json.Unmarshal(data, j); err != nil {
		return start, end, err
	}
	if j.MetricType != "" && j.MetricType != want {
		return start, end, fmt.Errorf("telemetry: decode %s record: metric_type is %q", want, j.MetricType)
	}
	switch j.Status {
	case StatusPending, StatusCompleted, StatusFailed:
	default:
		return start, end, fmt.Errorf("telemetry: decode %s record: unknown status %q", want, j.Status)
	}
	if start, err = time.Parse(time.RFC3339Nano, j.StartTime); err != nil {
		return start, end, fmt.Errorf("telemetry: decode %s record: start_time: %w", want, err)
	}
	if j.EndTime != nil {
		if end, err = time.Parse(time.RFC3339Nano, *j.EndTime); err != nil {
			return start, end, fmt.Errorf("telemetry: decode %s record: end_time: %w", want, err)
		}
	}
	return start, end, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// UnmarshalJSON decodes the document written by [EventMetrics.MarshalJSON].
// duration_seconds is ignored: Duration is derived from the times.
func (m *EventMetrics) UnmarshalJSON(data []byte) error {
	var j jsonRecord
	start, end, err := j.decode(data, "event")
	if err != nil {
		return err
	}
	*m = EventMetrics{
		EventName: j.EventName, TaskID: j.TaskID, StartTime: start, EndTime: end,
		Status: j.Status, Error: deref(j.Error), RetryCount: j.RetryCount,
		ProcessID: deref(j.ProcessID), PipelineID: deref(j.PipelineID),
	}
	return nil
}

// UnmarshalJSON decodes the document written by [NetworkMetrics.MarshalJSON].
// latency_seconds is ignored: Latency is derived from the times.
func (m *NetworkMetrics) UnmarshalJSON(data []byte) error {
	var j jsonRecord
	start, end, err := j.decode(data, "network")
	if err != nil {
		return err
	}
	*m = NetworkMetrics{
		TaskID: j.TaskID, Operation: j.Operation, Host: j.Host, Port: j.Port,
		StartTime: start, EndTime: end, Status: j.Status,
		BytesSent: j.BytesSent, BytesReceived: j.BytesReceived, Error: deref(j.Error),
	}
	return nil
}

// FormatMetrics returns the standardized document of a record, as a map
// ready for any encoder. record must be an EventMetrics or a NetworkMetrics
// (or a non-nil pointer to one); anything else is an error wrapping
// [ErrUnsupportedRecord].
//
// The keys are those of the JSON report: metric_type ("event" or
// "network"), then for events event_name, task_id, start_time, end_time,
// status, error, retry_count, process_id, pipeline_id and duration_seconds,
// and for network operations task_id, operation, host, port, start_time,
// end_time, status, bytes_sent, bytes_received, error and latency_seconds.
// Times are RFC 3339 strings in UTC; absent values are nil.
func FormatMetrics(record any) (map[string]any, error) {
	switch m := record.(type) {
	case EventMetrics:
		return formatEvent(&m), nil
	case *EventMetrics:
		if m != nil {
			return formatEvent(m), nil
		}
	case NetworkMetrics:
		return formatNetwork(&m), nil
	case *NetworkMetrics:
		if m != nil {
			return formatNetwork(m), nil
		}
	}
	return nil, callError("format metrics", &valueError{err: ErrUnsupportedRecord, value: fmt.Sprintf("%T", record)})
}

func formatEvent(m *EventMetrics) map[string]any {
	doc := map[string]any{
		"metric_type":      "event",
		"event_name":       m.EventName,
		"task_id":          m.TaskID,
		"start_time":       formatTime(m.StartTime),
		"end_time":         optTime(m.EndTime),
		"status":           string(m.Status),
		"error":            optString(m.Error),
		"retry_count":      m.RetryCount,
		"process_id":       nil,
		"pipeline_id":      optString(m.PipelineID),
		"duration_seconds": m.Duration().Seconds(),
	}
	if m.ProcessID != 0 {
		doc["process_id"] = m.ProcessID
	}
	return doc
}

func formatNetwork(m *NetworkMetrics) map[string]any {
	return map[string]any{
		"metric_type":     "network",
		"task_id":         m.TaskID,
		"operation":       m.Operation,
		"host":            m.Host,
		"port":            m.Port,
		"start_time":      formatTime(m.StartTime),
		"end_time":        optTime(m.EndTime),
		"status":          string(m.Status),
		"bytes_sent":      m.BytesSent,
		"bytes_received":  m.BytesReceived,
		"error":           optString(m.Error),
		"latency_seconds": m.Latency().Seconds(),
	}
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func optTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return formatTime(t)
}

func optString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
