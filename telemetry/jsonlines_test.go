package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

var errDiskFull = errors.New("disk full")

// script decides the outcome of each Write: for the n-th Write (0 for the
// first), if n < len(accept) and accept[n] >= 0, it takes at most accept[n]
// bytes and then fails with errDiskFull. If failOnceAt > 0, the first Write
// that would take the writer past failOnceAt bytes takes only what fits
// and fails. Otherwise a Write takes everything.
type script struct {
	accept     []int
	failOnceAt int
	writes     int
}

func (s *script) next(p []byte, size int) (int, error) {
	n := s.writes
	s.writes++
	if n < len(s.accept) && s.accept[n] >= 0 {
		return min(s.accept[n], len(p)), errDiskFull
	}
	if s.failOnceAt > 0 && size+len(p) > s.failOnceAt {
		n := max(s.failOnceAt-size, 0)
		s.failOnceAt = 0
		return n, errDiskFull
	}
	return len(p), nil
}

// flakyWriter is an append-only writer that fails as its script says.
type flakyWriter struct {
	script
	data []byte
}

func (w *flakyWriter) Write(p []byte) (int, error) {
	n, err := w.next(p, len(w.data))
	w.data = append(w.data, p[:n]...)
	return n, err
}

// memFile is an in-memory file with Seek and Truncate that fails as its
// script says. If seekErr or truncateErr is set, every Seek or Truncate
// fails with it, as on a pipe or a file that cannot be cut.
type memFile struct {
	script
	data        []byte
	off         int
	seekErr     error
	truncateErr error
}

func (f *memFile) Write(p []byte) (int, error) {
	n, err := f.next(p, len(f.data))
	if end := f.off + n; end > len(f.data) {
		f.data = append(f.data, make([]byte, end-len(f.data))...)
	}
	copy(f.data[f.off:], p[:n])
	f.off += n
	return n, err
}

func (f *memFile) Seek(offset int64, whence int) (int64, error) {
	if f.seekErr != nil {
		return 0, f.seekErr
	}
	switch whence {
	case io.SeekCurrent:
		offset += int64(f.off)
	case io.SeekEnd:
		offset += int64(len(f.data))
	}
	f.off = int(offset)
	return offset, nil
}

func (f *memFile) Truncate(size int64) error {
	if f.truncateErr != nil {
		return f.truncateErr
	}
	f.data = f.data[:size]
	return nil
}

// osFile is a real file whose Writes fail as its script says; it has the
// Seek and Truncate methods of *os.File.
type osFile struct {
	script
	*os.File
}

func (f *osFile) Write(p []byte) (int, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	n, err := f.next(p, int(st.Size()))
	if _, werr := f.File.Write(p[:n]); werr != nil {
		return 0, werr
	}
	return n, err
}

func (f *osFile) contents(t *testing.T) []byte {
	b, err := os.ReadFile(f.Name())
	must(t, err)
	return b
}

// events returns records whose task ids are prefix0, prefix1...
func events(prefix string, n int) []telemetry.EventMetrics {
	evs := make([]telemetry.EventMetrics, n)
	for i := range evs {
		evs[i] = telemetry.EventMetrics{EventName: "load", TaskID: prefix + strconv.Itoa(i), StartTime: t0,
			EndTime: t1, Status: telemetry.StatusCompleted, RetryCount: i}
	}
	return evs
}

// lines returns the JSON lines of evs.
func lines(t testing.TB, evs ...telemetry.EventMetrics) string {
	var b strings.Builder
	for _, m := range evs {
		js, err := json.Marshal(m)
		must(t, err)
		b.Write(js)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestJSONLinesPublisherFailedWrite(t *testing.T) {
	a, b := events("a", 10), events("b", 2)
	lineLen := len(lines(t, a[0])) // every line of a has the same length
	if len(lines(t, a...)) != 10*lineLen {
		t.Fatal("lines of the test batch differ in length")
	}
	tests := []struct {
		name   string
		accept []int // bytes each Write takes before failing (-1: all, no error)
		// Calls in turn: "a" and "b" publish that batch until it succeeds,
		// "a once" publishes a once, "flush" calls Flush.
		calls []string
		// The file afterwards, as records of a and b.
		wantPlain     []telemetry.EventMetrics // with an append-only writer
		wantTruncated []telemetry.EventMetrics // with a writer that can be cut back
	}{
		{name: "fails in the middle of a line", accept: []int{3*lineLen + 20},
			calls: []string{"a"}, wantPlain: a, wantTruncated: a},
		{name: "fails at the end of a line", accept: []int{3 * lineLen},
			calls: []string{"a"}, wantPlain: a, wantTruncated: a},
		{name: "fails before any byte", accept: []int{0},
			calls: []string{"a"}, wantPlain: a, wantTruncated: a},
		{name: "fails after every byte", accept: []int{10 * lineLen},
			calls: []string{"a"}, wantPlain: a, wantTruncated: a},
		{name: "the retry fails too", accept: []int{3*lineLen + 20, lineLen, 2*lineLen + 7},
			calls: []string{"a"}, wantPlain: a, wantTruncated: a},
		{name: "another batch after a failure in a line", accept: []int{3*lineLen + 20},
			calls: []string{"a once", "b"}, wantPlain: slices.Concat(a[:4], b), wantTruncated: b},
		{name: "another batch after a failure at the end of a line", accept: []int{3 * lineLen},
			calls: []string{"a once", "b"}, wantPlain: slices.Concat(a[:3], b), wantTruncated: b},
		{name: "completing the cut line fails", accept: []int{3*lineLen + 20, 5},
			calls: []string{"a once", "b"}, wantPlain: slices.Concat(a[:4], b), wantTruncated: b},
		{name: "flush after a failure", accept: []int{3*lineLen + 20},
			calls: []string{"a once", "flush"}, wantPlain: a[:4], wantTruncated: nil},
		{name: "flush between a failure and its retry", accept: []int{3*lineLen + 20},
			calls: []string{"a once", "flush", "a"}, wantPlain: a, wantTruncated: a},
		{name: "flush, retry, another batch", accept: []int{3*lineLen + 20},
			calls: []string{"a once", "flush", "flush", "a", "b"}, wantPlain: slices.Concat(a, b), wantTruncated: slices.Concat(a, b)},
	}
	writers := []struct {
		name      string
		truncates bool
		open      func(t *testing.T, accept []int) (io.Writer, func() []byte)
	}{
		{"append-only writer", false, func(t *testing.T, accept []int) (io.Writer, func() []byte) {
			w := &flakyWriter{script: script{accept: accept}}
			return w, func() []byte { return w.data }
		}},
		{"in-memory file", true, func(t *testing.T, accept []int) (io.Writer, func() []byte) {
			f := &memFile{script: script{accept: accept}}
			return f, func() []byte { return f.data }
		}},
		// A file that cannot be cut back is written as an append-only one.
		{"file that cannot seek", false, func(t *testing.T, accept []int) (io.Writer, func() []byte) {
			f := &memFile{script: script{accept: accept}, seekErr: errors.New("illegal seek")}
			return f, func() []byte { return f.data }
		}},
		{"file that cannot be truncated", false, func(t *testing.T, accept []int) (io.Writer, func() []byte) {
			f := &memFile{script: script{accept: accept}, truncateErr: errors.New("operation not permitted")}
			return f, func() []byte { return f.data }
		}},
		{"os file", true, func(t *testing.T, accept []int) (io.Writer, func() []byte) {
			file, err := os.Create(filepath.Join(t.TempDir(), "telemetry.jsonl"))
			must(t, err)
			t.Cleanup(func() { file.Close() })
			f := &osFile{script: script{accept: accept}, File: file}
			return f, func() []byte { return f.contents(t) }
		}},
	}
	for _, w := range writers {
		for _, tc := range tests {
			t.Run(w.name+"/"+tc.name, func(t *testing.T) {
				writer, contents := w.open(t, tc.accept)
				p, err := telemetry.NewJSONLinesPublisher(writer)
				must(t, err)
				for _, call := range tc.calls {
					batch := &telemetry.Batch{Events: a}
					switch call {
					case "flush":
						must(t, p.Flush(context.Background()))
						continue
					case "a once":
						if err := p.PublishBatch(context.Background(), batch); !errors.Is(err, errDiskFull) {
							t.Fatalf("%s: got %v, want %v", call, err, errDiskFull)
						}
						continue
					case "b":
						batch = &telemetry.Batch{Events: b}
					}
					for attempt := 1; ; attempt++ {
						err := p.PublishBatch(context.Background(), batch)
						if err == nil {
							break
						}
						if !errors.Is(err, errDiskFull) || attempt > len(tc.accept) {
							t.Fatalf("batch %s, attempt %d: got %v, want %v", call, attempt, err, errDiskFull)
						}
					}
				}
				want := tc.wantPlain
				if w.truncates {
					want = tc.wantTruncated
				}
				if got, want := string(contents()), lines(t, want...); got != want {
					t.Errorf("got file\n%s\nwant\n%s", got, want)
				}
			})
		}
	}
}

// TestRecorderRetriesFailedWriteOnce is the case: a write that fails
// part-way through a batch made the batch be written again, so 10 records
// became 15 lines. The Recorder retries with its default policy, in fake
// time.
func TestRecorderRetriesFailedWriteOnce(t *testing.T) {
	lineLen := len(lines(t, events("t", 1)...))
	for _, truncates := range []bool{false, true} {
		t.Run(fmt.Sprintf("truncates=%v", truncates), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Whatever the batches, the write that crosses 5.5 lines fails.
				sc := script{failOnceAt: 5*lineLen + lineLen/2}
				fw, mf := &flakyWriter{script: sc}, &memFile{script: sc}
				var w io.Writer = fw
				if truncates {
					w = mf
				}
				p, err := telemetry.NewJSONLinesPublisher(w)
				must(t, err)
				r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithLogger(quiet))
				for i := range 10 {
					runEvent(t, r, "load", "t"+strconv.Itoa(i), 0, nil)
				}
				flush(t, r)
				data := fw.data
				if truncates {
					data = mf.data
				}
				evs, _, err := telemetry.ReadJSONLines(bytes.NewReader(data))
				must(t, err)
				var ids []string
				for _, m := range evs {
					ids = append(ids, m.TaskID)
				}
				slices.Sort(ids)
				want := []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"}
				if !slices.Equal(ids, want) {
					t.Errorf("got the records %v in the file, want each of %v once", ids, want)
				}
				st := r.PublisherStats()[0]
				if st.Published != 10 || st.Dropped() != 0 || st.FailedAttempts != 1 {
					t.Errorf("got %d published, %d dropped, %d failed attempts; want 10, 0, 1", st.Published, st.Dropped(), st.FailedAttempts)
				}
			})
		})
	}
}

// goodDoc is a valid event document for the reader tests.
const goodDoc = `{"metric_type":"event","event_name":"e","task_id":"t","start_time":"2026-01-01T00:00:00Z","end_time":null,"status":"pending"}`

func TestReadJSONLinesTornLastLine(t *testing.T) {
	full := lines(t, events("a", 4)...)
	last := strings.LastIndexByte(full[:len(full)-1], '\n') + 1 // start of the 4th line
	tests := []struct {
		name      string
		input     string
		wantIDs   []string
		wantLine  int   // of the LineError, 0 for none
		wantIs    error // what the LineError wraps
		wantTorn  bool
		wantError string
	}{
		{name: "whole file", input: full, wantIDs: []string{"a0", "a1", "a2", "a3"}},
		{name: "last newline missing", input: full[:len(full)-1], wantIDs: []string{"a0", "a1", "a2", "a3"}},
		{name: "cut after the brace", input: full[:last+1], wantIDs: []string{"a0", "a1", "a2"}, wantLine: 4, wantIs: telemetry.ErrTornLine,
			wantError: "telemetry: read JSON lines: line 4: torn last line: 1 bytes with no newline after them are not a complete record; ignored"},
		{name: "cut in a string", input: full[:last+30], wantIDs: []string{"a0", "a1", "a2"}, wantLine: 4, wantIs: telemetry.ErrTornLine},
		{name: "cut before the closing brace", input: full[:len(full)-2], wantIDs: []string{"a0", "a1", "a2"}, wantLine: 4, wantIs: telemetry.ErrTornLine},
		{name: "cut line in the middle", input: full[:last+30] + "\n" + full[last:], wantIDs: []string{"a0", "a1", "a2"}, wantLine: 4,
			wantIs: telemetry.ErrInvalidRecord, wantError: "telemetry: read JSON lines: line 4: invalid record: not a JSON document: unexpected end of JSON input"},
		{name: "cut line followed by a record", input: full[:last+30] + full[last:], wantIDs: []string{"a0", "a1", "a2"}, wantLine: 4,
			wantIs: telemetry.ErrInvalidRecord},
		{name: "last line not JSON", input: full + "hello", wantIDs: []string{"a0", "a1", "a2", "a3"}, wantLine: 5, wantIs: telemetry.ErrInvalidRecord},
		{name: "last line invalid record", input: full + strings.Replace(goodDoc, "pending", "gone", 1), wantIDs: []string{"a0", "a1", "a2", "a3"},
			wantLine: 5, wantIs: telemetry.ErrInvalidRecord},
		{name: "blank lines after the torn line's start", input: "\n" + full[:last+1] + " ", wantIDs: []string{"a0", "a1", "a2"}, wantLine: 5,
			wantIs: telemetry.ErrTornLine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, _, err := telemetry.ReadJSONLines(strings.NewReader(tc.input))
			var ids []string
			for _, m := range evs {
				ids = append(ids, m.TaskID)
			}
			if !slices.Equal(ids, tc.wantIDs) {
				t.Errorf("got records %v, want %v", ids, tc.wantIDs)
			}
			var le *telemetry.LineError
			switch {
			case tc.wantLine == 0 && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.wantLine == 0:
			case !errors.As(err, &le) || le.Line != tc.wantLine || !errors.Is(err, tc.wantIs):
				t.Errorf("got %v, want a LineError for line %d wrapping %v", err, tc.wantLine, tc.wantIs)
			case tc.wantIs == telemetry.ErrInvalidRecord && errors.Is(err, telemetry.ErrTornLine):
				t.Errorf("got %v, want no ErrTornLine", err)
			case tc.wantError != "" && err.Error() != tc.wantError:
				t.Errorf("got message %q, want %q", err, tc.wantError)
			}
		})
	}
}

// contractCase is a record that breaks the record contract, as the
// writer gets it and as a line the reader gets.
type contractCase struct {
	name  string
	event *telemetry.EventMetrics   // for the writer
	net   *telemetry.NetworkMetrics // for the writer, if event is nil
	doc   string                    // for the reader: a line, or "" if no JSON text can say it
	why   string                    // what both say, after "invalid record: "
}

func contractCases() []contractCase {
	ev := func(f func(m *telemetry.EventMetrics)) *telemetry.EventMetrics {
		m := telemetry.EventMetrics{EventName: "e", TaskID: "t", StartTime: t0, EndTime: t1, Status: telemetry.StatusCompleted}
		f(&m)
		return &m
	}
	nw := func(f func(m *telemetry.NetworkMetrics)) *telemetry.NetworkMetrics {
		m := telemetry.NetworkMetrics{TaskID: "t", Operation: "remote_call", Host: "h", Port: 80, StartTime: t0, EndTime: t1,
			Status: telemetry.StatusCompleted}
		f(&m)
		return &m
	}
	const evDoc = `{"metric_type":"event","event_name":"e","task_id":"t","start_time":%s,"end_time":%s,"status":%s,"retry_count":%s,"process_id":%s}`
	const nwDoc = `{"metric_type":"network","task_id":"t","host":"h","port":%s,"start_time":"2026-01-01T00:00:00Z","end_time":null,"status":"pending","bytes_sent":%s,"bytes_received":%s}`
	evd := func(start, end, status, retries, pid string) string {
		return fmt.Sprintf(evDoc, start, end, status, retries, pid)
	}
	const s, e = `"2026-01-01T00:00:00Z"`, `"2026-01-01T00:00:01Z"`
	y10000 := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	yMinus1 := time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC)
	return []contractCase{
		{name: "negative retry count", event: ev(func(m *telemetry.EventMetrics) { m.RetryCount = -2 }),
			doc: evd(s, e, `"failed"`, "-2", "null"), why: "retry_count is -2, want 0 to 2147483647"},
		{name: "retry count over 32 bits", event: ev(func(m *telemetry.EventMetrics) { m.RetryCount = 1 << 31 }),
			doc: evd(s, e, `"failed"`, "2147483648", "null"), why: "retry_count is 2147483648, want 0 to 2147483647"},
		{name: "negative process id", event: ev(func(m *telemetry.EventMetrics) { m.ProcessID = -1 }),
			doc: evd(s, e, `"completed"`, "0", "-1"), why: "process_id is -1, want 0 to 2147483647"},
		{name: "unknown status", event: ev(func(m *telemetry.EventMetrics) { m.Status = "done" }),
			doc: evd(s, e, `"done"`, "0", "null"), why: `status is "done", want "pending", "completed" or "failed"`},
		{name: "no status", event: ev(func(m *telemetry.EventMetrics) { m.Status = "" }),
			doc: `{"metric_type":"event","start_time":"2026-01-01T00:00:00Z"}`, why: `status is "", want "pending", "completed" or "failed"`},
		{name: "start after year 9999", event: ev(func(m *telemetry.EventMetrics) { m.StartTime, m.EndTime = y10000, y10000 }),
			why: "start_time is in year 10000 (UTC), want 0000 to 9999"},
		{name: "start before year 0", event: ev(func(m *telemetry.EventMetrics) { m.StartTime = yMinus1 }),
			doc: evd(`"0000-01-01T00:30:00+01:00"`, "null", `"pending"`, "0", "null"), why: "start_time is in year -1 (UTC), want 0000 to 9999"},
		{name: "end after year 9999", event: ev(func(m *telemetry.EventMetrics) { m.EndTime = y10000 }),
			doc: evd(s, `"9999-12-31T23:30:00-01:00"`, `"completed"`, "0", "null"), why: "end_time is in year 10000 (UTC), want 0000 to 9999"},
		{name: "end before start", event: ev(func(m *telemetry.EventMetrics) { m.EndTime = t0.Add(-time.Nanosecond) }),
			doc: evd(e, s, `"completed"`, "0", "null"), why: "end_time is before start_time"},
		{name: "negative bytes sent", net: nw(func(m *telemetry.NetworkMetrics) { m.BytesSent = -2 }),
			doc: fmt.Sprintf(nwDoc, "80", "-2", "0"), why: "bytes_sent is -2, want 0 or more"},
		{name: "negative bytes received", net: nw(func(m *telemetry.NetworkMetrics) { m.BytesReceived = -1 }),
			doc: fmt.Sprintf(nwDoc, "80", "0", "-1"), why: "bytes_received is -1, want 0 or more"},
		{name: "port out of range", net: nw(func(m *telemetry.NetworkMetrics) { m.Port = 65536 }),
			doc: fmt.Sprintf(nwDoc, "65536", "0", "0"), why: "port is 65536, want 0 to 65535"},
		{name: "network status", net: nw(func(m *telemetry.NetworkMetrics) { m.Status = "lost" }),
			doc: `{"metric_type":"network","start_time":"2026-01-01T00:00:00Z","status":"lost"}`, why: `status is "lost", want "pending", "completed" or "failed"`},
	}
}

func TestJSONLinesContract(t *testing.T) {
	for _, tc := range contractCases() {
		t.Run(tc.name, func(t *testing.T) {
			// The writer refuses the record, and writes nothing.
			var buf bytes.Buffer
			p, err := telemetry.NewJSONLinesPublisher(&buf)
			must(t, err)
			kind := "event"
			if tc.event != nil {
				err = p.PublishEventMetrics(context.Background(), *tc.event)
			} else {
				kind = "network"
				err = p.PublishNetworkMetrics(context.Background(), *tc.net)
			}
			want := `telemetry: 1 record(s) dropped: invalid record: ` + kind + ` task "t": ` + tc.why
			var de *telemetry.DroppedError
			if !errors.As(err, &de) || de.Dropped != 1 || !errors.Is(err, telemetry.ErrInvalidRecord) || err.Error() != want {
				t.Errorf("writer: got %v, want a DroppedError %q", err, want)
			}
			if buf.Len() != 0 {
				t.Errorf("writer wrote %q, want nothing", buf.String())
			}
			if tc.doc == "" {
				return
			}
			// The reader refuses the line, naming it.
			evs, nets, err := telemetry.ReadJSONLines(strings.NewReader(goodDoc + "\n" + tc.doc + "\n" + goodDoc + "\n"))
			want = "telemetry: read JSON lines: line 2: invalid record: " + tc.why
			var le *telemetry.LineError
			if !errors.As(err, &le) || le.Line != 2 || !errors.Is(err, telemetry.ErrInvalidRecord) || err.Error() != want {
				t.Errorf("reader: got %v, want %q", err, want)
			}
			if len(evs) != 1 || len(nets) != 0 {
				t.Errorf("reader: got %d events, %d network records; want the 1 event before the bad line", len(evs), len(nets))
			}
			// And so does UnmarshalJSON.
			var m telemetry.EventMetrics
			var n telemetry.NetworkMetrics
			if kind == "event" {
				err = json.Unmarshal([]byte(tc.doc), &m)
			} else {
				err = json.Unmarshal([]byte(tc.doc), &n)
			}
			if !errors.Is(err, telemetry.ErrInvalidRecord) || !strings.HasSuffix(err.Error(), "record: invalid record: "+tc.why) {
				t.Errorf("UnmarshalJSON: got %v, want ErrInvalidRecord: %s", err, tc.why)
			}
		})
	}
}

func TestJSONLinesLineLimit(t *testing.T) {
	base := telemetry.EventMetrics{TaskID: "t", StartTime: t0, EndTime: t1, Status: telemetry.StatusCompleted}
	empty := len(lines(t, base)) - 1
	withName := func(n int) telemetry.EventMetrics {
		m := base
		m.EventName = strings.Repeat("x", n)
		return m
	}
	atLimit := withName(telemetry.MaxJSONLineSize - empty)
	overLimit := withName(telemetry.MaxJSONLineSize - empty + 1)
	escapedOver := withName(0)
	escapedOver.EventName = strings.Repeat("\x01", (telemetry.MaxJSONLineSize-empty)/6+1) // each byte becomes \u0001

	var buf bytes.Buffer
	p, err := telemetry.NewJSONLinesPublisher(&buf)
	must(t, err)
	err = p.PublishBatch(context.Background(), &telemetry.Batch{Events: []telemetry.EventMetrics{overLimit, atLimit, escapedOver}})
	want := `telemetry: 2 record(s) dropped: invalid record: event task "t": its line would be longer than 1048576 bytes (MaxJSONLineSize) (and 1 more)`
	var de *telemetry.DroppedError
	if !errors.As(err, &de) || de.Dropped != 2 || err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if got := buf.Len(); got != telemetry.MaxJSONLineSize+1 {
		t.Fatalf("wrote %d bytes, want the one line at the limit: %d", got, telemetry.MaxJSONLineSize+1)
	}
	evs, _, err := telemetry.ReadJSONLines(bytes.NewReader(buf.Bytes()))
	must(t, err)
	if len(evs) != 1 || evs[0].EventName != atLimit.EventName {
		t.Errorf("read back %d records, want the one at the limit", len(evs))
	}

	// The reader refuses a line one byte longer, and names it.
	over := lines(t, base) + strings.Replace(buf.String(), `"event_name":"`, `"event_name":"x`, 1)
	_, _, err = telemetry.ReadJSONLines(strings.NewReader(over))
	var le *telemetry.LineError
	if !errors.As(err, &le) || le.Line != 2 || !errors.Is(err, telemetry.ErrInvalidRecord) ||
		err.Error() != "telemetry: read JSON lines: line 2: invalid record: line is longer than 1048576 bytes (MaxJSONLineSize)" {
		t.Errorf("got %v, want line 2 longer than the limit", err)
	}
}

// FuzzJSONLinesRoundTrip checks the record contract from the writer's side:
// the writer either refuses a record that breaks it, writing nothing, or
// writes one line that the reader reads back equal (strings made valid
// UTF-8).
func FuzzJSONLinesRoundTrip(f *testing.F) {
	f.Add("load", "task-1", "", "", uint8(1), 0, 0, int64(1_700_000_000), int64(5), int64(1500), uint32(0))
	f.Add("é\u2028\"\\\x00", "\xff\xfe", "err\nline", "p", uint8(2), 3, 4242, int64(-62135596800), int64(0), int64(-1), uint32(7))
	f.Add("e", "t", "", "", uint8(0), -1, -1, int64(253402300799), int64(999_999_999), int64(1), uint32(1<<20))
	f.Add("e", "t", "", "", uint8(3), 1<<31, 1<<31, int64(-62167219200), int64(0), int64(0), uint32(0))
	f.Fuzz(func(t *testing.T, name, id, errText, pipeline string, status uint8, retries, pid int,
		startSec, startNsec, durNanos int64, pad uint32) {
		statuses := []telemetry.Status{telemetry.StatusPending, telemetry.StatusCompleted, telemetry.StatusFailed, "bogus"}
		m := telemetry.EventMetrics{EventName: name + strings.Repeat("x", int(pad%(1<<21))), TaskID: id,
			StartTime: time.Unix(startSec, startNsec), Status: statuses[int(status)%len(statuses)], Error: errText,
			RetryCount: retries, ProcessID: pid, PipelineID: pipeline}
		if durNanos != 0 {
			m.EndTime = m.StartTime.Add(time.Duration(durNanos))
		}
		// The oracle: the contract, written out.
		js, _ := json.Marshal(m)
		inYears := func(t time.Time) bool { return t.UTC().Year() >= 0 && t.UTC().Year() <= 9999 }
		keeps := m.Status != "bogus" && retries >= 0 && retries < 1<<31 && pid >= 0 && pid < 1<<31 && inYears(m.StartTime) &&
			(m.EndTime.IsZero() || inYears(m.EndTime) && !m.EndTime.Before(m.StartTime)) && len(js) <= telemetry.MaxJSONLineSize

		var buf bytes.Buffer
		p, err := telemetry.NewJSONLinesPublisher(&buf)
		must(t, err)
		err = p.PublishEventMetrics(context.Background(), m)
		if !keeps {
			if !errors.Is(err, telemetry.ErrInvalidRecord) || buf.Len() != 0 {
				t.Fatalf("record breaking the contract: got %v and %d bytes, want ErrInvalidRecord and nothing", err, buf.Len())
			}
			return
		}
		if err != nil {
			t.Fatalf("valid record refused: %v", err)
		}
		evs, nets, err := telemetry.ReadJSONLines(&buf)
		if err != nil || len(evs) != 1 || len(nets) != 0 {
			t.Fatalf("reading back: %d events, %d network, %v", len(evs), len(nets), err)
		}
		got, want := evs[0], m
		want.EventName, want.TaskID, want.Error, want.PipelineID = valid(want.EventName), valid(id), valid(errText), valid(pipeline)
		if got.EventName != want.EventName || got.TaskID != want.TaskID || got.Error != want.Error || got.PipelineID != want.PipelineID ||
			got.RetryCount != want.RetryCount || got.ProcessID != want.ProcessID || got.Status != want.Status ||
			!got.StartTime.Equal(want.StartTime) || !got.EndTime.Equal(want.EndTime) || got.Duration() != want.Duration() {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
		}
	})
}

// FuzzNetworkJSONLinesRoundTrip is FuzzJSONLinesRoundTrip for network
// records.
func FuzzNetworkJSONLinesRoundTrip(f *testing.F) {
	f.Add("remote_call", "t", "h", "", 80, uint8(1), int64(1_700_000_000), int64(1500), int64(10), int64(20))
	f.Add("", "\xff", "", "boom", -1, uint8(2), int64(0), int64(-5), int64(-2), int64(0))
	f.Add("op", "t", "h", "", 65536, uint8(0), int64(253402300800), int64(0), int64(0), int64(-1))
	f.Fuzz(func(t *testing.T, op, id, host, errText string, port int, status uint8, startSec, durNanos, sent, received int64) {
		statuses := []telemetry.Status{telemetry.StatusPending, telemetry.StatusCompleted, telemetry.StatusFailed, "bogus"}
		m := telemetry.NetworkMetrics{TaskID: id, Operation: op, Host: host, Port: port, StartTime: time.Unix(startSec, 0),
			Status: statuses[int(status)%len(statuses)], BytesSent: sent, BytesReceived: received, Error: errText}
		if durNanos != 0 {
			m.EndTime = m.StartTime.Add(time.Duration(durNanos))
		}
		inYears := func(t time.Time) bool { return t.UTC().Year() >= 0 && t.UTC().Year() <= 9999 }
		keeps := m.Status != "bogus" && port >= 0 && port <= 65535 && sent >= 0 && received >= 0 && inYears(m.StartTime) &&
			(m.EndTime.IsZero() || inYears(m.EndTime) && !m.EndTime.Before(m.StartTime))

		var buf bytes.Buffer
		p, err := telemetry.NewJSONLinesPublisher(&buf)
		must(t, err)
		err = p.PublishBatch(context.Background(), &telemetry.Batch{Network: []telemetry.NetworkMetrics{m}})
		if !keeps {
			if !errors.Is(err, telemetry.ErrInvalidRecord) || buf.Len() != 0 {
				t.Fatalf("record breaking the contract: got %v and %d bytes, want ErrInvalidRecord and nothing", err, buf.Len())
			}
			return
		}
		if err != nil {
			t.Fatalf("valid record refused: %v", err)
		}
		evs, nets, err := telemetry.ReadJSONLines(&buf)
		if err != nil || len(evs) != 0 || len(nets) != 1 {
			t.Fatalf("reading back: %d events, %d network, %v", len(evs), len(nets), err)
		}
		got, want := nets[0], m
		want.TaskID, want.Operation, want.Host, want.Error = valid(id), valid(op), valid(host), valid(errText)
		if got.TaskID != want.TaskID || got.Operation != want.Operation || got.Host != want.Host || got.Error != want.Error ||
			got.Port != want.Port || got.BytesSent != want.BytesSent || got.BytesReceived != want.BytesReceived ||
			got.Status != want.Status || !got.StartTime.Equal(want.StartTime) || !got.EndTime.Equal(want.EndTime) ||
			got.Latency() != want.Latency() {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
		}
	})
}

func TestJSONLinesLineLimitBeforeEncoding(t *testing.T) {
	long := telemetry.EventMetrics{EventName: strings.Repeat("x", telemetry.MaxJSONLineSize+1), TaskID: "t",
		StartTime: t0, EndTime: t1, Status: telemetry.StatusCompleted}
	var buf bytes.Buffer
	p, err := telemetry.NewJSONLinesPublisher(&buf)
	must(t, err)
	err = p.PublishEventMetrics(context.Background(), long)
	var de *telemetry.DroppedError
	if !errors.As(err, &de) || de.Dropped != 1 || !strings.Contains(err.Error(), "its line would be longer than") || buf.Len() != 0 {
		t.Errorf("got %v and %d bytes written, want the record dropped for its length and nothing written", err, buf.Len())
	}
}

func TestJSONLinesNetworkLineLimit(t *testing.T) {
	base := telemetry.NetworkMetrics{TaskID: "n", Operation: "op", Host: "h", Port: 80, StartTime: t0, EndTime: t1, Status: telemetry.StatusCompleted}
	long := base
	long.Host = strings.Repeat("h", telemetry.MaxJSONLineSize+1) // too long before escaping
	escaped := base
	escaped.Error = strings.Repeat("\x01", telemetry.MaxJSONLineSize/6+1) // too long once each byte is \u0001

	var buf bytes.Buffer
	p, err := telemetry.NewJSONLinesPublisher(&buf)
	must(t, err)
	err = p.PublishBatch(context.Background(), &telemetry.Batch{Network: []telemetry.NetworkMetrics{long, base, escaped}})
	want := `telemetry: 2 record(s) dropped: invalid record: network task "n": its line would be longer than 1048576 bytes (MaxJSONLineSize) (and 1 more)`
	var de *telemetry.DroppedError
	if !errors.As(err, &de) || de.Dropped != 2 || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	evs, nets, err := telemetry.ReadJSONLines(&buf)
	must(t, err)
	if len(evs) != 0 || len(nets) != 1 || nets[0].Host != "h" {
		t.Errorf("read back %d events and %d operations %+v, want only the one that fits", len(evs), len(nets), nets)
	}
}

func TestJSONLinesFlushHonoursContext(t *testing.T) {
	var buf bytes.Buffer
	p, err := telemetry.NewJSONLinesPublisher(&buf)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush with an ended ctx: got %v, want context.Canceled", err)
	}
}
