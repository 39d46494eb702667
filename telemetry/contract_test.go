package telemetry_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// The tests of this file check the data contracts users rely on (the JSON
// report, JSON lines, the queries and Stats) field by field.

// hostile holds texts that a JSON encoder must escape or replace: invalid
// UTF-8, the UTF-8 encoding of lone surrogates (invalid in UTF-8), U+2028
// and U+2029, controls, quotes, and valid non-ASCII text.
var hostile = []string{
	"plain",
	"naïve 日本語 🚀 \u00a0 café",
	"bad \xff byte",
	"lone surrogate \xed\xa0\x80 high and \xed\xbf\xbf low",
	"line\u2028sep\u2029para",
	"ctl \x00\x01\x1f\x7f \u0085\u009f",
	`quote " back \ slash`,
	"bidi \u202e\u2066\u200f",
	"truncated rune \xe6\x97",
	strings.Repeat("é", 300) + "\xc3",
}

// spanOf returns a valid span context made from i.
func spanOf(i int) telemetry.SpanContext {
	var s telemetry.SpanContext
	for k := range s.TraceID {
		s.TraceID[k] = byte(i + k + 1)
	}
	for k := range s.SpanID {
		s.SpanID[k] = byte(2*i + k + 1)
	}
	s.Sampled = i%2 == 0
	return s
}

// recordHostile records one event run and one network operation for each
// hostile text, with every optional field set on some, and returns the
// task ids.
func recordHostile(t *testing.T, r *telemetry.Recorder) []string {
	t.Helper()
	base := r.Now().Add(-time.Hour)
	var ids []string
	for i, s := range hostile {
		id := fmt.Sprintf("task-%d-%s", i, s)
		start := base.Add(time.Duration(i)*time.Second + time.Duration(i*7919+1))
		opts := []telemetry.StartOption{telemetry.WithStartTime(start), telemetry.WithPipelineID(s)}
		if i%2 == 0 {
			opts = append(opts, telemetry.WithProcessID(1000+i), telemetry.WithSpanContext(spanOf(i)))
		}
		if i%3 == 0 {
			opts = append(opts, telemetry.WithEnqueueTime(start.Add(-time.Duration(i*1_000_003+1))))
		}
		must(t, r.StartEvent(s, id, opts...))
		for range i % 4 {
			must(t, r.RecordRetry(id))
		}
		var err error
		if i%2 == 1 || s != "plain" && i%5 == 0 {
			err = errors.New("failed: " + s)
		}
		must(t, r.EndEventAt(id, err, start.Add(time.Duration(i)*time.Millisecond+time.Duration(i*31+1))))

		nopts := []telemetry.StartOption{telemetry.WithStartTime(start)}
		if i%2 == 1 {
			nopts = append(nopts, telemetry.WithSpanContext(spanOf(i+100)))
		}
		must(t, r.Network().StartOperation(id, "host-"+s, 1+i*6000, s, nopts...))
		must(t, r.Network().EndOperationAt(id, int64(i)<<33, int64(i*i), err, start.Add(time.Duration(i*977+3))))
		ids = append(ids, id)
	}
	return ids
}

// A diff gathers the differences of a record from the one it should be.
type diff []string

// str notes a string field that differs from want, compared as the
// encoder writes it: invalid UTF-8 replaced with U+FFFD.
func (d *diff) str(name, got, want string) {
	if want = validEach(want); got != want {
		*d = append(*d, fmt.Sprintf("%s %q, want %q", name, got, want))
	}
}

// time notes a time field that is not the instant it should be.
func (d *diff) time(name string, got, want time.Time) {
	if !got.Equal(want) {
		*d = append(*d, fmt.Sprintf("%s %v, want %v", name, got, want))
	}
}

// eventDiff reports how got differs from want, a record of the Recorder,
// after a round trip through JSON, or "".
func eventDiff(got, want telemetry.EventMetrics) string {
	var d diff
	d.str("event_name", got.EventName, want.EventName)
	d.str("task_id", got.TaskID, want.TaskID)
	d.str("error", got.Error, want.Error)
	d.str("pipeline_id", got.PipelineID, want.PipelineID)
	d.str("status", string(got.Status), string(want.Status))
	d.time("start_time", got.StartTime, want.StartTime)
	d.time("end_time", got.EndTime, want.EndTime)
	d.time("enqueue_time", got.EnqueueTime, want.EnqueueTime)
	if got.Duration() != want.Duration() || got.WaitTime() != want.WaitTime() {
		d = append(d, fmt.Sprintf("duration %v wait %v, want %v and %v", got.Duration(), got.WaitTime(), want.Duration(), want.WaitTime()))
	}
	if got.RetryCount != want.RetryCount || got.ProcessID != want.ProcessID || got.Span != want.Span {
		d = append(d, fmt.Sprintf("retries %d pid %d span %+v, want %d %d %+v", got.RetryCount, got.ProcessID, got.Span,
			want.RetryCount, want.ProcessID, want.Span))
	}
	return strings.Join(d, "; ")
}

// networkDiff is eventDiff for network operations.
func networkDiff(got, want telemetry.NetworkMetrics) string {
	var d diff
	d.str("task_id", got.TaskID, want.TaskID)
	d.str("operation", got.Operation, want.Operation)
	d.str("host", got.Host, want.Host)
	d.str("error", got.Error, want.Error)
	d.str("status", string(got.Status), string(want.Status))
	d.time("start_time", got.StartTime, want.StartTime)
	d.time("end_time", got.EndTime, want.EndTime)
	if got.Latency() != want.Latency() || got.Port != want.Port || got.BytesSent != want.BytesSent ||
		got.BytesReceived != want.BytesReceived || got.Span != want.Span {
		d = append(d, fmt.Sprintf("got %+v, want %+v", got, want))
	}
	return strings.Join(d, "; ")
}

// validEach replaces each byte of s that is not part of valid UTF-8 with
// U+FFFD, as the JSON encoders do.
func validEach(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// checkJSONText fails the test if b is not valid JSON in valid UTF-8 with
// no raw character that the encoder promises to escape.
func checkJSONText(t *testing.T, what string, b []byte) {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("%s is not valid JSON: %q", what, b)
	}
	if !utf8.Valid(b) {
		t.Fatalf("%s is not valid UTF-8: %q", what, b)
	}
	for _, r := range string(b) {
		if r < 0x20 || r >= 0x80 && r <= 0x9f || r == '\u2028' || r == '\u2029' || r == '\u202e' || r == '\u2066' || r == '\u200f' {
			t.Fatalf("%s holds the raw character %U: %q", what, r, b)
		}
	}
}

// TestReportAndJSONLinesRoundTripEveryField checks that every field of
// every record, hostile strings included, comes back from the JSON report
// (MetricsJSON, decoded into a Report) and from JSON lines (ReadJSONLines)
// as the Recorder holds it: times to the nanosecond in UTC, durations,
// waits, spans, retries, bytes, and texts with invalid UTF-8 replaced.
func TestReportAndJSONLinesRoundTripEveryField(t *testing.T) {
	var buf bytes.Buffer
	p, err := telemetry.NewJSONLinesPublisher(&buf)
	must(t, err)
	r := newRecorder(t, telemetry.WithPublishers(p))
	ids := recordHostile(t, r)
	flush(t, r)

	out, err := r.MetricsJSON()
	must(t, err)
	checkJSONText(t, "MetricsJSON", out)
	for i, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		checkJSONText(t, fmt.Sprintf("line %d", i+1), []byte(line))
	}
	var rep telemetry.Report
	must(t, json.Unmarshal(out, &rep))
	evs, nets, err := telemetry.ReadJSONLines(&buf)
	must(t, err)
	if len(rep.Events) != len(ids) || len(evs) != len(ids) || len(rep.NetworkOperations) != len(ids) || len(nets) != len(ids) {
		t.Fatalf("got %d/%d events and %d/%d operations, want %d each", len(rep.Events), len(evs), len(rep.NetworkOperations), len(nets), len(ids))
	}
	want := map[string]telemetry.EventMetrics{}
	wantNet := map[string]telemetry.NetworkMetrics{}
	for _, id := range ids {
		m, ok := r.Metrics(id)
		n, ok2 := r.Network().Metrics(id)
		if !ok || !ok2 {
			t.Fatalf("no record of %q", id)
		}
		want[validEach(id)], wantNet[validEach(id)] = m, n
	}
	for _, from := range []struct {
		name string
		evs  []telemetry.EventMetrics
		nets []telemetry.NetworkMetrics
	}{{"report", rep.Events, rep.NetworkOperations}, {"JSON lines", evs, nets}} {
		for _, got := range from.evs {
			if got.StartTime.Location() != time.UTC || got.EndTime.Location() != time.UTC || got.EnqueueTime.Location() != time.UTC {
				t.Errorf("%s: event %q: times not in UTC: %v %v %v", from.name, got.TaskID, got.StartTime, got.EndTime, got.EnqueueTime)
			}
			if d := eventDiff(got, want[got.TaskID]); d != "" {
				t.Errorf("%s: event %q: %s", from.name, got.TaskID, d)
			}
		}
		for _, got := range from.nets {
			if got.StartTime.Location() != time.UTC || got.EndTime.Location() != time.UTC {
				t.Errorf("%s: operation %q: times not in UTC", from.name, got.TaskID)
			}
			if d := networkDiff(got, wantNet[got.TaskID]); d != "" {
				t.Errorf("%s: operation %q: %s", from.name, got.TaskID, d)
			}
		}
	}
	// A Report decoded and encoded again is the same document, but that
	// the replacement characters are now written as they are, not as
	// \ufffd.
	again, err := json.Marshal(rep)
	must(t, err)
	if !bytes.Equal(again, bytes.ReplaceAll(out, []byte(`\ufffd`), []byte("\ufffd"))) {
		t.Errorf("Report re-encoded differs:\n%s\n%s", again, out)
	}
}

// TestReportFieldsExactly checks each field of the report's records byte
// for byte: names in snake_case, times in RFC 3339 UTC with nine
// fractional digits, durations in seconds, null for what is absent, the
// optional keys only when set, and the same document from MetricsJSON,
// MarshalJSON of the record and the JSON-lines writer.
func TestReportFieldsExactly(t *testing.T) {
	var lines bytes.Buffer
	p, err := telemetry.NewJSONLinesPublisher(&lines)
	must(t, err)
	r := newRecorder(t, telemetry.WithPublishers(p))
	start := time.Date(2026, 11, 21, 23, 59, 59, 123456789, time.FixedZone("CET", 3600))
	span := telemetry.SpanContext{Sampled: true}
	copy(span.TraceID[:], "\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36")
	copy(span.SpanID[:], "\x00\xf0\x67\xaa\x0b\xa9\x02\xb7")
	must(t, r.StartEvent("load", "a", telemetry.WithStartTime(start), telemetry.WithEnqueueTime(start.Add(-250*time.Millisecond)),
		telemetry.WithProcessID(7), telemetry.WithPipelineID("p1"), telemetry.WithSpanContext(span)))
	must(t, r.RecordRetry("a"))
	must(t, r.RecordRetry("a"))
	must(t, r.EndEventAt("a", errors.New("boom ✗"), start.Add(1500*time.Millisecond)))
	must(t, r.StartEvent("load", "b", telemetry.WithStartTime(start.Add(time.Nanosecond))))
	must(t, r.EndEventAt("b", nil, start.Add(3*time.Nanosecond)))
	must(t, r.StartEvent("load", "c", telemetry.WithStartTime(start.Add(time.Minute))))
	must(t, r.Network().StartOperation("n", "db.internal", 5432, "", telemetry.WithStartTime(start)))
	must(t, r.Network().EndOperationAt("n", 1<<40, 0, errors.New("reset"), start.Add(2*time.Second+time.Microsecond)))
	flush(t, r)

	wantA := `{"metric_type":"event","event_name":"load","task_id":"a","start_time":"2026-11-21T22:59:59.123456789Z",` +
		`"end_time":"2026-11-21T23:00:00.623456789Z","status":"failed","error":"boom ✗","retry_count":2,"process_id":7,` +
		`"pipeline_id":"p1","duration_seconds":1.5,"enqueue_time":"2026-11-21T22:59:58.873456789Z","wait_seconds":0.25,` +
		`"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","trace_sampled":true}`
	wantB := `{"metric_type":"event","event_name":"load","task_id":"b","start_time":"2026-11-21T22:59:59.123456790Z",` +
		`"end_time":"2026-11-21T22:59:59.123456792Z","status":"completed","error":null,"retry_count":0,"process_id":null,` +
		`"pipeline_id":null,"duration_seconds":0.000000002}`
	wantC := `{"metric_type":"event","event_name":"load","task_id":"c","start_time":"2026-11-21T23:00:59.123456789Z",` +
		`"end_time":null,"status":"pending","error":null,"retry_count":0,"process_id":null,"pipeline_id":null,"duration_seconds":0}`
	wantN := `{"metric_type":"network","task_id":"n","operation":"remote_call","host":"db.internal","port":5432,` +
		`"start_time":"2026-11-21T22:59:59.123456789Z","end_time":"2026-11-21T23:00:01.123457789Z","status":"failed",` +
		`"bytes_sent":1099511627776,"bytes_received":0,"error":"reset","latency_seconds":2.000001}`

	out, err := r.MetricsJSON()
	must(t, err)
	var doc struct {
		GeneratedAt string            `json:"generated_at"`
		Events      []json.RawMessage `json:"events"`
		Network     []json.RawMessage `json:"network_operations"`
		RetryStats  json.RawMessage   `json:"retry_stats"`
		Stats       map[string]any    `json:"stats"`
	}
	must(t, json.Unmarshal(out, &doc))
	// Finished runs, oldest end first (b ended before a), then pending.
	got := []string{string(doc.Events[0]), string(doc.Events[1]), string(doc.Events[2]), string(doc.Network[0])}
	want := []string{wantB, wantA, wantC, wantN}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("report record %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	if g, err := time.Parse(time.RFC3339Nano, doc.GeneratedAt); err != nil || g.Location() != time.UTC ||
		len(doc.GeneratedAt) != len("2006-01-02T15:04:05.000000000Z") {
		t.Errorf("generated_at %q, want RFC 3339 UTC with nanoseconds", doc.GeneratedAt)
	}
	if got := string(doc.RetryStats); got != `{"total_retries":2,"events_with_retries":1,"retry_distribution":{"2":1}}` {
		t.Errorf("retry_stats %s", got)
	}
	wantStats := map[string]any{"events_pending": 1.0, "events_retained": 2.0, "events_ended": 2.0, "events_failed": 1.0,
		"events_evicted": 0.0, "network_pending": 0.0, "network_retained": 1.0, "network_ended": 1.0, "network_failed": 1.0,
		"network_evicted": 0.0, "bytes_sent": float64(1 << 40), "bytes_received": 0.0}
	pubs := doc.Stats["publishers"]
	delete(doc.Stats, "publishers")
	if !maps.Equal(doc.Stats, wantStats) {
		t.Errorf("stats %v,\nwant %v", doc.Stats, wantStats)
	}
	if ps, _ := pubs.([]any); len(ps) != 1 || ps[0].(map[string]any)["name"] != "jsonlines" || ps[0].(map[string]any)["published"] != 3.0 {
		t.Errorf("stats.publishers %v", pubs)
	}

	// The same documents from the record types and the JSON-lines file
	// (which has the finished records only, in the order they ended).
	a, _ := r.Metrics("a")
	b, _ := r.Metrics("b")
	c, _ := r.Metrics("c")
	n, _ := r.Network().Metrics("n")
	for i, m := range []any{b, a, c, n} {
		j, err := json.Marshal(m)
		must(t, err)
		if string(j) != want[i] {
			t.Errorf("MarshalJSON of record %d:\n got %s\nwant %s", i, j, want[i])
		}
	}
	// The file has one line for each finished record, in no order the
	// contract sets.
	if got, want := slices.Sorted(strings.Lines(lines.String())), slices.Sorted(strings.Lines(wantA+"\n"+wantB+"\n"+wantN+"\n")); !slices.Equal(got, want) {
		t.Errorf("JSON lines:\n got %s\nwant %s", got, want)
	}
	// FormatMetrics has the same keys and values.
	for i, m := range []any{b, a, c, n} {
		doc, err := telemetry.FormatMetrics(m)
		must(t, err)
		j, _ := json.Marshal(doc)
		var x, y map[string]any
		must(t, json.Unmarshal(j, &x))
		must(t, json.Unmarshal([]byte(want[i]), &y))
		if !maps.EqualFunc(x, y, func(u, v any) bool { return fmt.Sprint(u) == fmt.Sprint(v) }) {
			t.Errorf("FormatMetrics of record %d:\n got %v\nwant %v", i, x, y)
		}
	}
}

// TestTotalsWithAndWithoutEviction checks the summary of the report (retry
// statistics and stats) against the records: equal to their sums while
// nothing is evicted, and the exact totals, not the retained ones, once
// records are evicted.
func TestTotalsWithAndWithoutEviction(t *testing.T) {
	for _, limit := range []int{1000, 7, 4096} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			r := newRecorder(t, telemetry.WithMaxEvents(limit), telemetry.WithMaxNetworkOps(limit))
			const n = 5000
			var (
				failed, netFailed, sent, received int64
				retries                           uint64
				withRetries                       uint64
				byCount                           = map[int]uint64{}
			)
			for i := range n {
				id := fmt.Sprint("t", i)
				k := i * 7 % 5
				var err error
				if i%3 == 0 {
					err, failed = errors.New("x"), failed+1
				}
				runEvent(t, r, "e", id, k, err)
				if k > 0 {
					retries += uint64(k)
					withRetries++
					byCount[k]++
				}
				must(t, r.Network().StartOperation(id, "h", 1, ""))
				var nerr error
				if i%4 == 0 {
					nerr, netFailed = errors.New("y"), netFailed+1
				}
				must(t, r.Network().EndOperation(id, int64(i), int64(2*i), nerr))
				sent, received = sent+int64(i), received+int64(2*i)
			}
			// Pending runs count in the retry statistics too.
			must(t, r.StartEvent("e", "pending"))
			must(t, r.RecordRetry("pending"))
			retries, withRetries, byCount[1] = retries+1, withRetries+1, byCount[1]+1

			rep := r.Report()
			if len(rep.Events) != min(limit, n)+1 || len(rep.NetworkOperations) != min(limit, n) {
				t.Fatalf("report has %d events and %d operations, want %d and %d", len(rep.Events), len(rep.NetworkOperations), min(limit, n)+1, min(limit, n))
			}
			rs := rep.RetryStats
			if rs.TotalRetries != retries || rs.EventsWithRetries != withRetries || !maps.Equal(rs.ByRetryCount, byCount) {
				t.Errorf("retry_stats %+v, want %d, %d, %v", rs, retries, withRetries, byCount)
			}
			if got := r.RetryStats(); got.TotalRetries != rs.TotalRetries || !maps.Equal(got.ByRetryCount, rs.ByRetryCount) {
				t.Errorf("RetryStats %+v, report %+v", got, rs)
			}
			st := rep.Stats
			evicted := uint64(max(n-limit, 0))
			if st.EventsEnded != n || st.EventsFailed != uint64(failed) || st.EventsEvicted != evicted ||
				st.EventsRetained != min(limit, n) || st.EventsPending != 1 {
				t.Errorf("event stats %+v, want ended %d failed %d evicted %d", st, n, failed, evicted)
			}
			if st.NetworkEnded != n || st.NetworkFailed != uint64(netFailed) || st.NetworkEvicted != evicted ||
				st.NetworkRetained != min(limit, n) || st.BytesSent != sent || st.BytesReceived != received {
				t.Errorf("network stats %+v, want failed %d bytes %d/%d", st, netFailed, sent, received)
			}
			if st := r.Stats(); st.EventsEnded != rep.Stats.EventsEnded || st.BytesSent != rep.Stats.BytesSent {
				t.Errorf("Stats %+v, report's %+v", st, rep.Stats)
			}
			if limit < n {
				// The report keeps the most recent records.
				if last := rep.Events[len(rep.Events)-2]; last.TaskID != fmt.Sprint("t", n-1) {
					t.Errorf("last finished event %q, want t%d", last.TaskID, n-1)
				}
				return
			}
			// Nothing evicted: the summary is the sum of the records.
			var sumRetries, sumWith uint64
			var sumFailed, sumSent, sumRecv int64
			for _, e := range rep.Events {
				sumRetries += uint64(e.RetryCount)
				if e.RetryCount > 0 {
					sumWith++
				}
				if e.Status == telemetry.StatusFailed {
					sumFailed++
				}
			}
			for _, o := range rep.NetworkOperations {
				sumSent, sumRecv = sumSent+o.BytesSent, sumRecv+o.BytesReceived
			}
			if sumRetries != rs.TotalRetries || sumWith != rs.EventsWithRetries || sumFailed != int64(st.EventsFailed) ||
				sumSent != st.BytesSent || sumRecv != st.BytesReceived {
				t.Errorf("sums of records %d %d %d %d %d differ from the summary %+v %+v", sumRetries, sumWith, sumFailed, sumSent, sumRecv, rs, st)
			}
		})
	}
}

// TestQueriesAgreeWithReport checks that the queries return the records
// of the report they select, in the report's order, while other
// goroutines record, and exactly once recording stops.
func TestQueriesAgreeWithReport(t *testing.T) {
	for _, limit := range []int{64, 5000, 100_000} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			r := newRecorder(t, telemetry.WithMaxEvents(limit), telemetry.WithMaxNetworkOps(limit))
			const workers, runs = 4, 1500
			threshold := 5 * time.Millisecond
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range runs {
						id := fmt.Sprintf("w%d-%d", w, i)
						start := r.Now().Add(-20 * time.Millisecond)
						var opts []telemetry.StartOption
						if i%5 == 0 {
							opts = append(opts, telemetry.WithEnqueueTime(start.Add(-time.Duration(i%11)*time.Millisecond)))
						}
						opts = append(opts, telemetry.WithStartTime(start))
						if err := r.StartEvent("e", id, opts...); err != nil {
							t.Error(err)
							return
						}
						var err error
						if i%3 == 0 {
							err = errors.New("boom")
						}
						d := time.Duration(i%10) * time.Millisecond
						if err := r.EndEventAt(id, err, start.Add(d)); err != nil {
							t.Error(err)
							return
						}
						if err := r.Network().StartOperation(id, "h", 80, "", telemetry.WithStartTime(start)); err != nil {
							t.Error(err)
							return
						}
						if err := r.Network().EndOperationAt(id, 1, 2, err, start.Add(d)); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			defer wg.Wait()
			for running := true; running; {
				select {
				case <-done:
					running = false
				default:
				}
				before := r.Report()
				failed := r.FailedEvents()
				slow, err := r.SlowEvents(threshold)
				must(t, err)
				failedOps := r.Network().FailedOperations()
				after := r.Report()
				// The report lists the pending runs after the finished
				// ones: compare with the finished ones.
				b, a := idsOf(before.Events, true), idsOf(after.Events, true)
				checkOrder(t, "FailedEvents", idsOf(failed, false), b, a)
				checkOrder(t, "SlowEvents", idsOf(slow, false), b, a)
				checkOrder(t, "FailedOperations", idsOf(failedOps, false), idsOf(before.NetworkOperations, true), idsOf(after.NetworkOperations, true))
				if t.Failed() {
					return
				}
			}
			// Recording has stopped: each query is exactly the report's
			// records it selects, in the report's order.
			rep := r.Report()
			var fin []telemetry.EventMetrics
			for _, e := range rep.Events {
				if e.Status != telemetry.StatusPending {
					fin = append(fin, e)
				}
			}
			slow, _ := r.SlowEvents(threshold)
			waited, _ := r.WaitedEvents(3 * time.Millisecond)
			for _, q := range []struct {
				name string
				got  []telemetry.EventMetrics
				sel  func(telemetry.EventMetrics) bool
			}{
				{"FailedEvents", r.FailedEvents(), func(e telemetry.EventMetrics) bool { return e.Status == telemetry.StatusFailed }},
				{"SlowEvents", slow, func(e telemetry.EventMetrics) bool { return e.Duration() > threshold }},
				{"WaitedEvents", waited, func(e telemetry.EventMetrics) bool { return e.WaitTime() > 3*time.Millisecond }},
			} {
				want := slices.DeleteFunc(slices.Clone(fin), func(e telemetry.EventMetrics) bool { return !q.sel(e) })
				if len(want) == 0 || len(q.got) != len(want) {
					t.Fatalf("%s: %d records, want %d (not 0)", q.name, len(q.got), len(want))
				}
				for i := range want {
					if q.got[i].TaskID != want[i].TaskID {
						t.Fatalf("%s: record %d is %q, the report's is %q", q.name, i, q.got[i].TaskID, want[i].TaskID)
					}
					if d := eventDiff(q.got[i], want[i]); d != "" {
						t.Errorf("%s: %q: %s", q.name, want[i].TaskID, d)
					}
				}
			}
			slowOps, _ := r.Network().SlowOperations(threshold)
			for _, q := range []struct {
				name string
				got  []telemetry.NetworkMetrics
				sel  func(telemetry.NetworkMetrics) bool
			}{
				{"FailedOperations", r.Network().FailedOperations(), func(o telemetry.NetworkMetrics) bool { return o.Status == telemetry.StatusFailed }},
				{"SlowOperations", slowOps, func(o telemetry.NetworkMetrics) bool { return o.Latency() > threshold }},
			} {
				want := slices.DeleteFunc(slices.Clone(rep.NetworkOperations), func(o telemetry.NetworkMetrics) bool { return !q.sel(o) })
				if len(want) == 0 || len(q.got) != len(want) {
					t.Fatalf("%s: %d records, want %d (not 0)", q.name, len(q.got), len(want))
				}
				for i := range want {
					if d := networkDiff(q.got[i], want[i]); d != "" || q.got[i].TaskID != want[i].TaskID {
						t.Fatalf("%s: record %d: %q, the report's %q: %s", q.name, i, q.got[i].TaskID, want[i].TaskID, d)
					}
				}
			}
			// MetricsJSON is the report.
			out, err := r.MetricsJSON()
			must(t, err)
			var back telemetry.Report
			must(t, json.Unmarshal(out, &back))
			if !slices.Equal(idsOf(back.Events, false), idsOf(rep.Events, false)) || !slices.Equal(idsOf(back.NetworkOperations, false), idsOf(rep.NetworkOperations, false)) {
				t.Errorf("MetricsJSON lists other records than Report")
			}
			for i := range rep.Events {
				if d := eventDiff(back.Events[i], rep.Events[i]); d != "" {
					t.Fatalf("MetricsJSON event %d: %s", i, d)
				}
			}
		})
	}
}

// idsOf returns the task ids of the records ms, in order: of every
// one, or only of those that ended if finished.
func idsOf[M telemetry.EventMetrics | telemetry.NetworkMetrics](ms []M, finished bool) []string {
	s := []string{}
	for _, m := range ms {
		var id string
		var st telemetry.Status
		switch r := any(m).(type) {
		case telemetry.EventMetrics:
			id, st = r.TaskID, r.Status
		case telemetry.NetworkMetrics:
			id, st = r.TaskID, r.Status
		}
		if !finished || st != telemetry.StatusPending {
			s = append(s, id)
		}
	}
	return s
}

// checkOrder checks the answer q of a query taken between two reports'
// lists of finished records: the records of q that either report holds
// are in that report's order.
func checkOrder(t *testing.T, name string, q, before, after []string) {
	t.Helper()
	pos := make(map[string]int, len(after))
	for i, id := range after {
		pos[id] = i
	}
	last := -1
	for _, id := range q {
		i, ok := pos[id]
		if !ok {
			continue // evicted since
		}
		if i < last {
			t.Errorf("%s lists %q after %q; the report lists them the other way", name, id, after[last])
			return
		}
		last = i
	}
	posB := make(map[string]int, len(before))
	for i, id := range before {
		posB[id] = i
	}
	last = -1
	for _, id := range q {
		i, ok := posB[id]
		if !ok {
			continue
		}
		if i < last {
			t.Errorf("%s lists %q after %q; the earlier report lists them the other way", name, id, before[last])
			return
		}
		last = i
	}
}

// TestGeneratedAtIsNotBeforeTheRecords checks that the time of a report is
// not before the times of the records in it, while other goroutines
// record: a report cannot hold a run that ended after it was generated.
func TestGeneratedAtIsNotBeforeTheRecords(t *testing.T) {
	r := newRecorder(t, telemetry.WithMaxEvents(256), telemetry.WithMaxNetworkOps(256))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprint(w, "-", i)
				if err := r.StartEvent("e", id); err != nil {
					t.Error(err)
					return
				}
				if err := r.EndEvent(id, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	defer wg.Wait()
	defer close(stop)
	for range 2000 {
		rep := r.Report()
		for _, e := range rep.Events {
			if e.EndTime.After(rep.GeneratedAt) || e.StartTime.After(rep.GeneratedAt) {
				t.Fatalf("report generated at %v holds run %q that ended at %v (%v later)", rep.GeneratedAt.Round(0), e.TaskID,
					e.EndTime.Round(0), e.EndTime.Round(0).Sub(rep.GeneratedAt.Round(0)))
			}
		}
	}
}

// TestSlowAndWaitedThresholdsAreStrict checks that the slow and waited
// queries return the runs that took (or waited) longer than the
// threshold, not as long, and the error of a negative threshold.
func TestSlowAndWaitedThresholdsAreStrict(t *testing.T) {
	r := newRecorder(t)
	start := r.Now().Add(-time.Hour)
	for i, d := range []time.Duration{time.Second - 1, time.Second, time.Second + 1, 0} {
		id := fmt.Sprint("t", i)
		must(t, r.StartEvent("e", id, telemetry.WithStartTime(start), telemetry.WithEnqueueTime(start.Add(-d))))
		must(t, r.EndEventAt(id, nil, start.Add(d)))
		must(t, r.Network().StartOperation(id, "h", 1, "", telemetry.WithStartTime(start)))
		must(t, r.Network().EndOperationAt(id, 0, 0, nil, start.Add(d)))
	}
	must(t, r.StartEvent("e", "pending", telemetry.WithStartTime(start)))
	slow, err := r.SlowEvents(telemetry.DefaultSlowThreshold)
	must(t, err)
	waited, err := r.WaitedEvents(time.Second)
	must(t, err)
	slowOps, err := r.Network().SlowOperations(time.Second)
	must(t, err)
	if got := idsOf(slow, false); !slices.Equal(got, []string{"t2"}) {
		t.Errorf("SlowEvents(1s) = %v, want [t2]", got)
	}
	if got := idsOf(waited, false); !slices.Equal(got, []string{"t2"}) {
		t.Errorf("WaitedEvents(1s) = %v, want [t2]", got)
	}
	if got := idsOf(slowOps, false); !slices.Equal(got, []string{"t2"}) {
		t.Errorf("SlowOperations(1s) = %v, want [t2]", got)
	}
	slow, err = r.SlowEvents(0)
	must(t, err)
	if got := idsOf(slow, false); !slices.Equal(got, []string{"t0", "t1", "t2"}) {
		t.Errorf("SlowEvents(0) = %v, want [t0 t1 t2] (not the run of 0s, nor the pending one)", got)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"SlowEvents", func() error { _, err := r.SlowEvents(-1); return err }, "telemetry: slow events: negative threshold -1ns"},
		{"WaitedEvents", func() error { _, err := r.WaitedEvents(-time.Second); return err }, "telemetry: waited events: negative threshold -1s"},
		{"SlowOperations", func() error { _, err := r.Network().SlowOperations(-time.Millisecond); return err },
			"telemetry: slow operations: negative threshold -1ms"},
		{"SlowNetworkOps", func() error { _, err := telemetry.SlowNetworkOps(-time.Minute); return err },
			"telemetry: slow operations: negative threshold -1m0s"},
	} {
		err := tc.call()
		if !errors.Is(err, telemetry.ErrNegativeThreshold) || err.Error() != tc.want {
			t.Errorf("%s: got %v, want %q wrapping ErrNegativeThreshold", tc.name, err, tc.want)
		}
	}
}

// TestPendingAgreeWithReport checks that PendingEvents and
// PendingOperations list the pending runs as the report does, after its
// finished ones: by start time, in the same order where starts are equal.
func TestPendingAgreeWithReport(t *testing.T) {
	for _, limit := range []int{100, 100_000} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			r := newRecorder(t, telemetry.WithMaxEvents(limit), telemetry.WithMaxNetworkOps(limit))
			start := r.Now().Add(-time.Hour)
			for i := range 300 {
				id := fmt.Sprint("p", i)
				at := telemetry.WithStartTime(start.Add(time.Duration(i % 3)))
				must(t, r.StartEvent("e", id, at))
				must(t, r.Network().StartOperation(id, "h", 1, "", at))
				if i%7 == 0 {
					must(t, r.RecordRetry(id))
				}
			}
			rep := r.Report()
			pend, n := r.PendingEvents(1000)
			if n != 300 || len(pend) != 300 {
				t.Fatalf("PendingEvents: %d of %d, want 300", len(pend), n)
			}
			if got, want := idsOf(pend, false), idsOf(rep.Events, false); !slices.Equal(got, want) {
				t.Errorf("PendingEvents order differs from the report's:\n%v\n%v", got[:20], want[:20])
			}
			for i := range pend {
				if d := eventDiff(pend[i], rep.Events[i]); d != "" {
					t.Fatalf("PendingEvents %q: %s", pend[i].TaskID, d)
				}
			}
			ops, _ := r.Network().PendingOperations(1000)
			if got, want := idsOf(ops, false), idsOf(rep.NetworkOperations, false); !slices.Equal(got, want) {
				t.Errorf("PendingOperations order differs from the report's:\n%v\n%v", got[:20], want[:20])
			}
			// A limit gives the first ones of that order.
			few, _ := r.PendingEvents(10)
			if got, want := idsOf(few, false), idsOf(rep.Events[:10], false); !slices.Equal(got, want) {
				t.Errorf("PendingEvents(10) = %v, want %v", got, want)
			}
		})
	}
}

// TestJSONLinesContractOptionalFields checks the rules of the record
// contract for the optional fields, on both sides: enqueue_time is an RFC
// 3339 time in years 0000-9999, and trace_id and span_id come together.
func TestJSONLinesContractOptionalFields(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	var half telemetry.SpanContext
	half.TraceID[0] = 1
	for _, m := range []telemetry.EventMetrics{
		{EventName: "e", TaskID: "t", Status: telemetry.StatusPending, StartTime: start, EnqueueTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{EventName: "e", TaskID: "t", Status: telemetry.StatusPending, StartTime: start, Span: half},
	} {
		var buf bytes.Buffer
		p, err := telemetry.NewJSONLinesPublisher(&buf)
		must(t, err)
		err = p.PublishEventMetrics(t.Context(), m)
		var de *telemetry.DroppedError
		if !errors.As(err, &de) || !errors.Is(err, telemetry.ErrInvalidRecord) || buf.Len() != 0 {
			t.Errorf("writing %+v: got %v and %q, want a DroppedError wrapping ErrInvalidRecord and nothing written", m, err, buf.String())
		}
	}
	line := `{"metric_type":"event","event_name":"e","task_id":"t","start_time":"2026-01-02T03:04:05Z","end_time":null,"status":"pending"`
	for doc, want := range map[string]string{
		line + `,"enqueue_time":"soon"}`:                      `line 1: invalid record: enqueue_time "soon" is not an RFC 3339 time`,
		line + `,"enqueue_time":"0000-01-01T00:00:00+01:00"}`: `line 1: invalid record: enqueue_time is in year -1 (UTC), want 0000 to 9999`,
		line + `,"span_id":"00f067aa0ba902b7"}`:               `line 1: invalid record: trace_id and span_id must be given together`,
	} {
		_, _, err := telemetry.ReadJSONLines(strings.NewReader(doc + "\n"))
		if !errors.Is(err, telemetry.ErrInvalidRecord) || err.Error() != "telemetry: read JSON lines: "+want {
			t.Errorf("reading %s: got %v, want %q", doc, err, want)
		}
	}
}

// TestReportPartsAreConsistentWhileRecording checks that each kind of
// record in a report is read at one instant while other goroutines record:
// with nothing evicted, the event runs listed add up to the retry
// statistics and the event counters, and the network operations to the
// network counters.
func TestReportPartsAreConsistentWhileRecording(t *testing.T) {
	r := newRecorder(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprint(w, "-", i)
				var err error
				if i%3 == 0 {
					err = errors.New("x")
				}
				if r.StartEvent("e", id) != nil || i%2 == 0 && r.RecordRetry(id) != nil || r.EndEvent(id, err) != nil ||
					r.Network().StartOperation(id, "h", 1, "") != nil || r.Network().EndOperation(id, int64(i), 1, err) != nil {
					t.Error("recording failed")
					return
				}
			}
		})
	}
	defer wg.Wait()
	defer close(stop)
	for range 100 {
		rep := r.Report()
		var retries, ended, failed, pending uint64
		for _, e := range rep.Events {
			retries += uint64(e.RetryCount)
			switch e.Status {
			case telemetry.StatusPending:
				pending++
			case telemetry.StatusFailed:
				failed++
				ended++
			default:
				ended++
			}
		}
		if retries != rep.RetryStats.TotalRetries || ended != rep.Stats.EventsEnded || failed != rep.Stats.EventsFailed ||
			pending != uint64(rep.Stats.EventsPending) || ended != uint64(rep.Stats.EventsRetained) {
			t.Fatalf("events listed: %d retries, %d ended, %d failed, %d pending; summary: %+v %+v", retries, ended, failed, pending,
				rep.RetryStats, rep.Stats)
		}
		var sent, received int64
		var opsEnded uint64
		for _, o := range rep.NetworkOperations {
			sent, received = sent+o.BytesSent, received+o.BytesReceived
			if o.Status != telemetry.StatusPending {
				opsEnded++
			}
		}
		if sent != rep.Stats.BytesSent || received != rep.Stats.BytesReceived || opsEnded != rep.Stats.NetworkEnded {
			t.Fatalf("operations listed: %d/%d bytes, %d ended; stats %+v", sent, received, opsEnded, rep.Stats)
		}
	}
}

// TestReportTimesFarFromNow checks the report's times of runs given start
// and end times long before 1970 and after 2038, to the nanosecond.
func TestReportTimesFarFromNow(t *testing.T) {
	r := newRecorder(t)
	for i, start := range []time.Time{
		time.Date(1899, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 1, time.FixedZone("", -3600)),
		time.Date(2000, 2, 29, 12, 0, 0, 0, time.UTC),
	} {
		id := fmt.Sprint("t", i)
		must(t, r.StartEvent("e", id, telemetry.WithStartTime(start), telemetry.WithEnqueueTime(start.Add(-time.Nanosecond))))
		must(t, r.EndEventAt(id, nil, start.Add(36*time.Hour+time.Nanosecond)))
	}
	out, err := r.MetricsJSON()
	must(t, err)
	var rep telemetry.Report
	must(t, json.Unmarshal(out, &rep))
	want := []string{
		`"start_time":"1899-12-31T23:59:59.999999999Z","end_time":"1900-01-02T12:00:00.000000000Z"`,
		`"start_time":"1970-01-01T00:59:59.000000001Z","end_time":"1970-01-02T12:59:59.000000002Z"`,
		`"start_time":"2000-02-29T12:00:00.000000000Z","end_time":"2000-03-02T00:00:00.000000001Z"`,
	}
	for i, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("report lacks %s", w)
		}
		m, _ := r.Metrics(fmt.Sprint("t", i))
		if d := eventDiff(rep.Events[i], m); d != "" {
			t.Errorf("t%d: %s", i, d)
		}
	}
}

// TestReportValidForRandomTexts records runs whose texts are random bytes,
// mostly ones that need escaping, and checks that the report is valid JSON
// holding each text as the encoder promises.
func TestReportValidForRandomTexts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", "é", "日", "🚀", "\x00", "\x1f", "\x7f", "\x80", "\xc3", "\xe2\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"\u2028", "\u2029", "\u202e", "\u0085", "\"", "\\", "\n", "\t", "<", "&", "\ufffd", "\uffff", "0123456789abcdef"}
	text := func() string {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return b.String()
	}
	r := newRecorder(t)
	var ids []string
	for i := range 500 {
		id := fmt.Sprint(i, text())
		must(t, r.StartEvent("e"+text(), id, telemetry.WithPipelineID(text())))
		must(t, r.EndEvent(id, errors.New(text())))
		must(t, r.Network().StartOperation(id, "h"+text(), i, text()))
		must(t, r.Network().EndOperation(id, 1, 2, errors.New(text())))
		ids = append(ids, id)
	}
	out, err := r.MetricsJSON()
	must(t, err)
	checkJSONText(t, "MetricsJSON", out)
	var rep telemetry.Report
	must(t, json.Unmarshal(out, &rep))
	for i, id := range ids {
		m, _ := r.Metrics(id)
		n, _ := r.Network().Metrics(id)
		if d := eventDiff(rep.Events[i], m); d != "" {
			t.Fatalf("event %q: %s", id, d)
		}
		if d := networkDiff(rep.NetworkOperations[i], n); d != "" {
			t.Fatalf("operation %q: %s", id, d)
		}
		b, err := json.Marshal(m)
		must(t, err)
		checkJSONText(t, "MarshalJSON", b)
	}
}

// TestTiesAgreeWithReport checks that records that ended at the same
// instant come in one order in a query that selects a few of them, in the
// report and in the JSON report. Each group of ties ends one record at a
// time, with a query in between that moves it into the retained records,
// so that the order they were retained in is that of their ends, and
// their shards (the Recorder retains enough records to have several) are
// mixed.
func TestTiesAgreeWithReport(t *testing.T) {
	r := newRecorder(t, telemetry.WithMaxEvents(10_000))
	end := r.Now()
	var ids []string
	for g := range 7 {
		for k := range 8 {
			id := fmt.Sprintf("tie-%d-%d", g, k)
			ids = append(ids, id)
			must(t, r.StartEvent("e", id, telemetry.WithStartTime(end.Add(-time.Second))))
		}
	}
	for g := range 7 {
		for k := range 8 {
			must(t, r.EndEventAt(ids[8*g+k], errors.New("boom"), end.Add(time.Duration(g))))
			r.FailedEvents() // moves the record into the retained ones
		}
	}
	// Enough other records for the report to sort many: they ended later.
	for i := range 100 {
		id := fmt.Sprint("later-", i)
		must(t, r.StartEvent("e", id, telemetry.WithStartTime(end)))
		must(t, r.EndEventAt(id, nil, end.Add(time.Minute)))
	}
	failed := idsOf(r.FailedEvents(), false)
	if len(failed) != len(ids) {
		t.Fatalf("FailedEvents: %d records, want %d", len(failed), len(ids))
	}
	rep := r.Report()
	if got := idsOf(rep.Events, false)[:len(ids)]; !slices.Equal(got, failed) {
		t.Errorf("the report's order of ties differs from FailedEvents':\n%v\n%v", got, failed)
	}
	out, err := r.MetricsJSON()
	must(t, err)
	var back telemetry.Report
	must(t, json.Unmarshal(out, &back))
	if got := idsOf(back.Events, false)[:len(ids)]; !slices.Equal(got, failed) {
		t.Errorf("the JSON report's order of ties differs from FailedEvents':\n%v\n%v", got, failed)
	}
}
