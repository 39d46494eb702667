package telemetry_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/telemetrytest"
)

var (
	t0 = time.Date(2026, 11, 21, 23, 59, 59, 123456789, time.FixedZone("CET", 3600))
	t1 = t0.Add(1500 * time.Millisecond)
)

func TestMetricsJSONReport(t *testing.T) {
	r := newRecorder(t)
	must(t, r.StartEvent("load", "a", telemetry.WithProcessID(7), telemetry.WithPipelineID("p1")))
	must(t, r.RecordRetry("a"))
	must(t, r.EndEvent("a", errors.New(`quote " and newline`+"\n")))
	must(t, r.StartEvent("load", "pending"))
	must(t, r.Network().StartOperation("n", "worker", 8080, ""))
	must(t, r.Network().EndOperation("n", 10, 20, nil))

	out, err := r.MetricsJSON()
	must(t, err)
	var doc struct {
		GeneratedAt       string           `json:"generated_at"`
		Events            []map[string]any `json:"events"`
		NetworkOperations []map[string]any `json:"network_operations"`
		RetryStats        map[string]any   `json:"retry_stats"`
		Stats             map[string]any   `json:"stats"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("report is not valid JSON: %v\n%s", err, out)
	}
	if len(doc.Events) != 2 || len(doc.NetworkOperations) != 1 {
		t.Fatalf("got %d events and %d network operations, want 2 and 1", len(doc.Events), len(doc.NetworkOperations))
	}
	wantEventKeys := []string{"duration_seconds", "end_time", "error", "event_name", "metric_type", "pipeline_id",
		"process_id", "retry_count", "start_time", "status", "task_id"}
	ev := doc.Events[0]
	if got := slices.Sorted(maps.Keys(ev)); !slices.Equal(got, wantEventKeys) {
		t.Errorf("event keys: got %v, want %v", got, wantEventKeys)
	}
	if ev["task_id"] != "a" || ev["status"] != "failed" || ev["error"] != "quote \" and newline\n" ||
		ev["retry_count"] != 1.0 || ev["process_id"] != 7.0 || ev["pipeline_id"] != "p1" || ev["metric_type"] != "event" {
		t.Errorf("event a: got %v", ev)
	}
	for _, k := range []string{"start_time", "end_time"} {
		s, _ := ev[k].(string)
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil || !strings.HasSuffix(s, "Z") || len(s) != len("2006-01-02T15:04:05.000000000Z") {
			t.Errorf("%s = %q, want RFC 3339 UTC with nanoseconds", k, s)
		}
	}
	pend := doc.Events[1]
	if pend["status"] != "pending" || pend["end_time"] != nil || pend["error"] != nil || pend["process_id"] != nil || pend["duration_seconds"] != 0.0 {
		t.Errorf("pending event: got %v, want nulls and zero duration", pend)
	}
	wantNetKeys := []string{"bytes_received", "bytes_sent", "end_time", "error", "host", "latency_seconds", "metric_type",
		"operation", "port", "start_time", "status", "task_id"}
	if got := slices.Sorted(maps.Keys(doc.NetworkOperations[0])); !slices.Equal(got, wantNetKeys) {
		t.Errorf("network keys: got %v, want %v", got, wantNetKeys)
	}
	if doc.RetryStats["total_retries"] != 1.0 || doc.Stats["events_ended"] != 1.0 {
		t.Errorf("got retry_stats %v, stats %v", doc.RetryStats, doc.Stats)
	}

	// The report decodes back into a Report with the same records.
	var rep telemetry.Report
	must(t, json.Unmarshal(out, &rep))
	a, _ := r.Metrics("a")
	got := rep.Events[0]
	if got.TaskID != "a" || !got.StartTime.Equal(a.StartTime) || !got.EndTime.Equal(a.EndTime) || got.Error != a.Error ||
		got.Duration() != a.Duration() || got.RetryCount != 1 || got.ProcessID != 7 {
		t.Errorf("decoded %+v, want %+v", got, a)
	}
	// Report.MarshalJSON writes the same document as MetricsJSON.
	again, err := json.Marshal(rep)
	must(t, err)
	if !bytes.Equal(again, out) {
		t.Errorf("json.Marshal(Report) differs from MetricsJSON:\n%s\n%s", again, out)
	}
}

func TestFormatMetrics(t *testing.T) {
	ev := telemetry.EventMetrics{EventName: "load", TaskID: "t", StartTime: t0, EndTime: t1, Status: telemetry.StatusCompleted, RetryCount: 2}
	doc, err := telemetry.FormatMetrics(ev)
	must(t, err)
	want := map[string]any{
		"metric_type": "event", "event_name": "load", "task_id": "t",
		"start_time": "2026-11-21T22:59:59.123456789Z", "end_time": "2026-11-21T23:00:00.623456789Z",
		"status": "completed", "error": nil, "retry_count": 2, "process_id": nil, "pipeline_id": nil, "duration_seconds": 1.5,
	}
	if !maps.Equal(doc, want) {
		t.Errorf("got %v, want %v", doc, want)
	}
	// The map encodes to the same document as MarshalJSON.
	fromMap, _ := json.Marshal(doc)
	fromRecord, _ := json.Marshal(ev)
	var a, b map[string]any
	must(t, json.Unmarshal(fromMap, &a))
	must(t, json.Unmarshal(fromRecord, &b))
	if !maps.Equal(a, b) {
		t.Errorf("FormatMetrics and MarshalJSON differ:\n%s\n%s", fromMap, fromRecord)
	}

	nm := &telemetry.NetworkMetrics{TaskID: "t", Operation: "remote_call", Host: "h", Port: 80, StartTime: t0,
		Status: telemetry.StatusPending, BytesSent: 3}
	doc, err = telemetry.FormatMetrics(nm)
	must(t, err)
	if doc["metric_type"] != "network" || doc["end_time"] != nil || doc["bytes_sent"] != int64(3) || doc["latency_seconds"] != 0.0 {
		t.Errorf("got %v", doc)
	}

	if doc, err := telemetry.FormatMetrics(&ev); err != nil || !maps.Equal(doc, want) {
		t.Errorf("FormatMetrics(&ev): got %v, %v; want the document of ev", doc, err)
	}

	for _, bad := range []any{nil, "text", 42, (*telemetry.EventMetrics)(nil), (*telemetry.NetworkMetrics)(nil)} {
		if _, err := telemetry.FormatMetrics(bad); !errors.Is(err, telemetry.ErrUnsupportedRecord) {
			t.Errorf("FormatMetrics(%#v): got %v, want ErrUnsupportedRecord", bad, err)
		}
	}
	_, err = telemetry.FormatMetrics("text")
	if err.Error() != "telemetry: format metrics: unsupported record type string" {
		t.Errorf("got message %q", err)
	}
}

func TestUnmarshalRejectsBadDocuments(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"not JSON", `{`},
		{"unknown status", `{"metric_type":"event","status":"done","start_time":"2026-01-01T00:00:00Z"}`},
		{"bad time", `{"metric_type":"event","status":"pending","start_time":"yesterday"}`},
		{"wrong metric type", `{"metric_type":"network","status":"pending","start_time":"2026-01-01T00:00:00Z"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m telemetry.EventMetrics
			if err := json.Unmarshal([]byte(tc.doc), &m); err == nil {
				t.Errorf("decoded %+v from %s, want an error", m, tc.doc)
			}
		})
	}
	network := []struct{ name, doc, want string }{
		{"network: not JSON", `{"metric_type":"network",`, ""},
		{"network: trace id not hexadecimal", `{"metric_type":"network","status":"pending","start_time":"2026-01-01T00:00:00Z",` +
			`"trace_id":"0123456789abcdef0123456789abcdeg","span_id":"0123456789abcdef"}`, "trace_id"},
		{"network: span id of zeros", `{"metric_type":"network","status":"pending","start_time":"2026-01-01T00:00:00Z",` +
			`"trace_id":"0123456789abcdef0123456789abcdef","span_id":"0000000000000000"}`, "span_id"},
	}
	for _, tc := range network {
		t.Run(tc.name, func(t *testing.T) {
			var m telemetry.NetworkMetrics
			err := json.Unmarshal([]byte(tc.doc), &m)
			if err == nil || tc.want != "" && (!errors.Is(err, telemetry.ErrInvalidRecord) || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("decoding %s: got %v, want an error naming %q", tc.doc, err, tc.want)
			}
		})
	}
}

func TestJSONLinesPublisherRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	p, err := telemetry.NewJSONLinesPublisher(w)
	must(t, err)
	r := newRecorder(t, telemetry.WithPublishers(p))
	record(t, r, "t", 50)
	flush(t, r) // flushes the bufio.Writer too
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 100 {
		t.Fatalf("got %d lines, want 100", len(lines))
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("line is not JSON: %s", l)
		}
	}
	events, network, err := telemetry.ReadJSONLines(strings.NewReader(buf.String() + "\n\n"))
	must(t, err)
	if len(events) != 50 || len(network) != 50 {
		t.Fatalf("read %d events and %d network records, want 50 each", len(events), len(network))
	}
	for _, m := range events {
		want, _ := r.Metrics(m.TaskID)
		if m.EventName != want.EventName || m.Status != want.Status || m.Error != want.Error || m.RetryCount != want.RetryCount ||
			!m.StartTime.Equal(want.StartTime) || m.Duration() != want.Duration() {
			t.Errorf("read %+v, want %+v", m, want)
		}
	}
	for _, m := range network {
		want, _ := r.Network().Metrics(m.TaskID)
		if m.BytesSent != want.BytesSent || m.BytesReceived != want.BytesReceived || m.Host != want.Host || m.Latency() != want.Latency() {
			t.Errorf("read %+v, want %+v", m, want)
		}
	}
}

func TestReadJSONLinesErrors(t *testing.T) {
	good := `{"metric_type":"event","event_name":"e","task_id":"t","start_time":"2026-01-01T00:00:00Z","end_time":null,"status":"pending"}`
	tests := []struct{ name, input, want string }{
		{"not JSON", good + "\n{oops\n", "line 2: invalid record: not a JSON document: invalid character 'o' looking for beginning of object key string"},
		{"unknown kind", `{"metric_type":"metric"}`, `line 1: invalid record: metric_type is "metric", want "event" or "network"`},
		{"no time", `{"metric_type":"network","status":"completed"}`, `line 1: invalid record: start_time "" is not an RFC 3339 time`},
		{"bad end time", good + "\n" + strings.Replace(good, "null", `"tomorrow"`, 1), `line 2: invalid record: end_time "tomorrow" is not an RFC 3339 time`},
		{"wrong type", `{"metric_type":"network","port":"80"}`, `line 1: invalid record: port is string, want int`},
		{"number too big", `{"metric_type":"event","retry_count":1e30}`, `line 1: invalid record: retry_count is number 1e30, want int`},
		{"array", good + "\n\n[]", `line 3: invalid record: not a JSON object`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := telemetry.ReadJSONLines(strings.NewReader(tc.input))
			if want := "telemetry: read JSON lines: " + tc.want; err == nil || err.Error() != want || !errors.Is(err, telemetry.ErrInvalidRecord) {
				t.Errorf("got %v, want %q", err, want)
			}
		})
	}
	// A value quoted in the message is bounded.
	huge := strings.Replace(good, `"pending"`, `"`+strings.Repeat("x", 100_000)+`"`, 1)
	if _, _, err := telemetry.ReadJSONLines(strings.NewReader(huge)); err == nil {
		t.Error("a status of 100,000 bytes: got no error")
	} else if len(err.Error()) > 300 || !strings.HasPrefix(err.Error(), `telemetry: read JSON lines: line 1: invalid record: status is "xxx`) {
		t.Errorf("got %d bytes of message, want the status quoted in at most 300: %.300s", len(err.Error()), err)
	}
	if _, err := telemetry.NewJSONLinesPublisher(nil); err == nil {
		t.Error("NewJSONLinesPublisher(nil): got no error")
	}
}

// FuzzEventJSONRoundTrip checks that any event record that keeps to the
// record contract encodes to valid JSON that decodes back to the same record
// (strings made valid UTF-8), and that decoding refuses any other.
func FuzzEventJSONRoundTrip(f *testing.F) {
	f.Add("load", "task-1", "", "", 0, 0, int64(0), int64(1500))
	f.Add("é\u2028\"\\\x00", "\xff\xfe", "err\nline", "p", 3, 4242, int64(1_700_000_000_123_456_789), int64(-1))
	f.Add("e", "t", "", "", -2, -1, int64(0), int64(1))
	f.Fuzz(func(t *testing.T, name, id, errText, pipeline string, retries, pid int, startNanos, durNanos int64) {
		start := time.Unix(0, startNanos)
		m := telemetry.EventMetrics{EventName: name, TaskID: id, StartTime: start, Status: telemetry.StatusCompleted,
			Error: errText, RetryCount: retries, ProcessID: pid, PipelineID: pipeline}
		if durNanos >= 0 {
			m.EndTime = start.Add(time.Duration(durNanos))
		} else {
			m.Status = telemetry.StatusPending
		}
		if m.StartTime.Year() < 0 || m.StartTime.Year() > 9999 || m.EndTime.Year() > 9999 {
			t.Skip("RFC 3339 covers years 0000-9999 only")
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON: %s", b)
		}
		var got telemetry.EventMetrics
		err = json.Unmarshal(b, &got)
		if retries < 0 || retries >= 1<<31 || pid < 0 || pid >= 1<<31 {
			if !errors.Is(err, telemetry.ErrInvalidRecord) {
				t.Fatalf("decode %s: got %v, want ErrInvalidRecord", b, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		want := m
		want.EventName, want.TaskID, want.Error, want.PipelineID = valid(name), valid(id), valid(errText), valid(pipeline)
		if got.EventName != want.EventName || got.TaskID != want.TaskID || got.Error != want.Error || got.PipelineID != want.PipelineID ||
			got.RetryCount != want.RetryCount || got.ProcessID != want.ProcessID || got.Status != want.Status ||
			!got.StartTime.Equal(want.StartTime) || !got.EndTime.Equal(want.EndTime) || got.Duration() != want.Duration() {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", b, got, want)
		}
	})
}

// FuzzReadJSONLines checks the record contract from the reader's side: no
// input makes the reader panic, and whatever records it accepts, the writer
// writes without refusing any, and the reader reads back the same.
func FuzzReadJSONLines(f *testing.F) {
	f.Add(`{"metric_type":"event","event_name":"e","task_id":"t","start_time":"2026-01-01T00:00:00Z","end_time":null,"status":"pending"}`)
	f.Add(`{"metric_type":"network","task_id":"t","host":"h","port":1,"start_time":"2026-01-01T00:00:00.5Z","end_time":"2026-01-01T00:00:01Z","status":"completed"}`)
	f.Add(`{"metric_type":"event","start_time":"0000-01-01T00:00:00+00:00","end_time":"9999-12-31T23:59:59.999999999Z","status":"failed","retry_count":3,"process_id":0}` + "\n{\"metric_ty")
	f.Add("{}\n[]\nnull")
	f.Fuzz(func(t *testing.T, input string) {
		events, network, err := telemetry.ReadJSONLines(strings.NewReader(input))
		if err != nil && !errors.Is(err, telemetry.ErrTornLine) {
			return
		}
		var buf bytes.Buffer
		p, err := telemetry.NewJSONLinesPublisher(&buf)
		must(t, err)
		if err := p.PublishBatch(context.Background(), &telemetry.Batch{Events: events, Network: network}); err != nil {
			t.Fatalf("the writer refused records the reader accepted: %v", err)
		}
		e2, n2, err := telemetry.ReadJSONLines(&buf)
		if err != nil || len(e2) != len(events) || len(n2) != len(network) {
			t.Fatalf("re-read of accepted records: %d/%d events, %d/%d network, %v", len(e2), len(events), len(n2), len(network), err)
		}
		for i := range events {
			a, b := events[i], e2[i]
			if a.EventName != b.EventName || a.TaskID != b.TaskID || a.Error != b.Error || a.PipelineID != b.PipelineID ||
				a.RetryCount != b.RetryCount || a.ProcessID != b.ProcessID || a.Status != b.Status ||
				!a.StartTime.Equal(b.StartTime) || !a.EndTime.Equal(b.EndTime) {
				t.Errorf("event %d: read %+v, re-read %+v", i, a, b)
			}
		}
		for i := range network {
			a, b := network[i], n2[i]
			if a.TaskID != b.TaskID || a.Operation != b.Operation || a.Host != b.Host || a.Port != b.Port || a.Error != b.Error ||
				a.BytesSent != b.BytesSent || a.BytesReceived != b.BytesReceived || a.Status != b.Status ||
				!a.StartTime.Equal(b.StartTime) || !a.EndTime.Equal(b.EndTime) {
				t.Errorf("network %d: read %+v, re-read %+v", i, a, b)
			}
		}
	})
}

// valid replaces each byte of invalid UTF-8 in s with U+FFFD, as
// encoding/json does.
func valid(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r) // RuneError for an invalid byte
		i += size
	}
	return b.String()
}

func TestJSONLinesPublisherConforms(t *testing.T) {
	var buf *bytes.Buffer
	err := telemetrytest.TestPublisher(func() (telemetry.Publisher, error) {
		buf = &bytes.Buffer{}
		return telemetry.NewJSONLinesPublisher(buf)
	}, func() (events, network []string) {
		evs, nets, err := telemetry.ReadJSONLines(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Errorf("reading back: %v", err)
		}
		for _, m := range evs {
			events = append(events, m.TaskID)
		}
		for _, m := range nets {
			network = append(network, m.TaskID)
		}
		return events, network
	})
	if err != nil {
		t.Error(err)
	}
}

// TestJSONEscapesTerminalControls checks that text from records never
// reaches a JSON document with a raw control or bidirectional character that
// a terminal showing the file would act on, and that it decodes back to the
// same text.
func TestJSONEscapesTerminalControls(t *testing.T) {
	name := "evil\x1b[2J\r\nrow\u0085\u009b\u202e\u2066\u061c\u200e\u2028end"
	m := telemetry.EventMetrics{EventName: name, TaskID: "t1", Status: telemetry.StatusFailed, Error: name,
		StartTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), EndTime: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range string(b) {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' {
			t.Fatalf("JSON holds the raw character %U: %s", r, b)
		}
	}
	for _, want := range []string{`\u001b`, `\r\n`, `\u0085`, `\u009b`, `\u202e`, `\u2066`, `\u061c`, `\u200e`, `\u2028`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks the escape %s: %s", want, b)
		}
	}
	var back telemetry.EventMetrics
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.EventName != name || back.Error != name {
		t.Errorf("round trip: got %q / %q, want %q", back.EventName, back.Error, name)
	}
}

func TestWriteJSON(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder(t)
		must(t, r.StartEvent("load", "a"))
		must(t, r.EndEvent("a", nil))
		want, err := r.MetricsJSON()
		must(t, err)
		var buf bytes.Buffer
		must(t, r.WriteJSON(&buf))
		if got := buf.String(); got != string(want) {
			t.Errorf("WriteJSON wrote\n%s\nwant what MetricsJSON returns:\n%s", got, want)
		}

		errDisk := errors.New("disk full")
		if err := r.WriteJSON(failingWriter{errDisk}); !errors.Is(err, errDisk) {
			t.Errorf("WriteJSON to a failing writer: got %v, want %v", err, errDisk)
		}
	})
}

// failingWriter is an io.Writer whose every Write fails with err.
type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
