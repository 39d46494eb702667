package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestJSONLinesPartialWriteCountsDelivered: a Write to an append-only
// writer that fails in the 4th line of a batch of 10, and every later
// Write too, leaves 3 records whole in the file. The publisher does not
// write them again, so it reports them delivered with a PartialError, and
// a Recorder that gives up on the batch counts them published, not
// dropped, as the Publisher contract says.
func TestJSONLinesPartialWriteCountsDelivered(t *testing.T) {
	a := events("a", 10)
	lineLen := len(lines(t, a[0]))

	t.Run("direct", func(t *testing.T) {
		w := &flakyWriter{script: script{accept: []int{3*lineLen + 20, 0, lineLen + 5}}}
		p, err := telemetry.NewJSONLinesPublisher(w)
		must(t, err)
		batch := &telemetry.Batch{Events: a}
		for i, want := range []int{3, 3, 4} {
			err := p.PublishBatch(context.Background(), batch)
			var pe *telemetry.PartialError
			if !errors.As(err, &pe) || pe.Delivered != want || !errors.Is(err, errDiskFull) {
				t.Fatalf("attempt %d: got %v, want a PartialError of %d delivered wrapping %v", i+1, err, want, errDiskFull)
			}
		}
		must(t, p.PublishBatch(context.Background(), batch))
		if got, want := string(w.data), lines(t, a...); got != want {
			t.Errorf("got file\n%s\nwant\n%s", got, want)
		}
		// A single record is written whole or not at all: no PartialError.
		w.accept = append(w.accept[:0:0], make([]int, w.writes)...)
		for i := range w.accept {
			w.accept[i] = -1
		}
		w.accept = append(w.accept, 10)
		err = p.PublishEventMetrics(context.Background(), events("c", 1)[0])
		var pe *telemetry.PartialError
		if !errors.Is(err, errDiskFull) || errors.As(err, &pe) {
			t.Errorf("one record cut: got %v, want %v and no PartialError", err, errDiskFull)
		}
	})

	t.Run("recorder", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			accept := make([]int, 100)
			accept[0] = 3*lineLen + 20
			w := &flakyWriter{script: script{accept: accept}}
			p, err := telemetry.NewJSONLinesPublisher(w)
			must(t, err)
			r := newRecorder(t, telemetry.WithPublishers(p), telemetry.WithLogger(quiet),
				telemetry.WithMaxBatchSize(10), telemetry.WithRetry(telemetry.RetryPolicy{MaxAttempts: 3}))
			for i := range 10 {
				runEvent(t, r, "load", "t"+string(rune('0'+i)), 0, nil)
			}
			_ = r.Flush(context.Background()) // reports the drops
			evs, _, err := telemetry.ReadJSONLines(bytes.NewReader(w.data))
			if err != nil && !errors.Is(err, telemetry.ErrTornLine) {
				t.Fatal(err)
			}
			st := r.PublisherStats()[0]
			if len(evs) != 3 || st.Published != 3 || st.Dropped() != 7 {
				t.Errorf("%d records in the file; got %d published, %d dropped; want 3, 3, 7", len(evs), st.Published, st.Dropped())
			}
		})
	})
}

// blockingWriter is a writer whose Write waits until release is closed.
type blockingWriter struct {
	release chan struct{}
	data    bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.data.Write(p)
}

// TestJSONLinesWaitHonoursContext: while one call is stuck in a Write
// that blocks, another call, and Flush, waiting their turn return with
// their context's error when it ends, as the Publisher contract asks,
// instead of waiting for the Write.
func TestJSONLinesWaitHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &blockingWriter{release: make(chan struct{})}
		p, err := telemetry.NewJSONLinesPublisher(w)
		must(t, err)
		first := make(chan error)
		go func() { first <- p.PublishEventMetrics(context.Background(), events("a", 1)[0]) }()
		synctest.Wait() // the first call is in its Write

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := p.PublishEventMetrics(ctx, events("b", 1)[0]); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("publish: got %v, want %v", err, context.DeadlineExceeded)
		}
		if err := p.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("flush: got %v, want %v", err, context.DeadlineExceeded)
		}
		close(w.release)
		must(t, <-first)
		if got, want := w.data.String(), lines(t, events("a", 1)...); got != want {
			t.Errorf("got file\n%s\nwant\n%s", got, want)
		}
	})
}

// TestReadJSONLinesFieldNamesExact: encoding/json matches field names
// without regard to case and keeps the last of repeated ones, so a line
// could carry two values of a field, one for this reader and another for
// any other (jq, a log shipper): each record field must appear once, with
// its exact name. Other names, repeated or not, are ignored.
func TestReadJSONLinesFieldNamesExact(t *testing.T) {
	const rest = `"event_name":"e","task_id":"t","start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z","error":null`
	for _, tc := range []struct{ doc, want string }{
		{`{"metric_type":"event",` + rest + `,"status":"completed","status":"failed"}`, `"status" appears twice`},
		{`{"metric_type":"event",` + rest + `,"status":"completed","st\u0061tus":"failed"}`, `"status" appears twice`},
		{`{"metric_type":"event",` + rest + `,"status":"completed","Status":"failed"}`, `"Status" is not a field`},
		{`{"metric_type":"event",` + rest + `,"STATUS":"failed"}`, `"STATUS" is not a field`},
		{`{"metric_type":"event",` + rest + `,"status":"completed","ſtatus":"failed"}`, `"ſtatus" is not a field`},
		{`{"METRIC_TYPE":"event",` + rest + `,"status":"completed"}`, `"METRIC_TYPE" is not a field`},
		{`{"metric_type":"event",` + rest + `,"status":"completed","x":1,"x":2,"y":{"status":1,"status":2},"z":[{"status":1}]}`, ``},
		{`{"metric_type":"event",` + rest + `,"status":"completed","duration_seconds":1,"duration_seconds":2}`, ``},
	} {
		_, _, err := telemetry.ReadJSONLines(strings.NewReader(tc.doc + "\n"))
		var m telemetry.EventMetrics
		uerr := json.Unmarshal([]byte(tc.doc), &m)
		for _, err := range []error{err, uerr} {
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%s: got %v, want no error", tc.doc, err)
			case tc.want != "" && (!errors.Is(err, telemetry.ErrInvalidRecord) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("%s: got %v, want an invalid record error with %q", tc.doc, err, tc.want)
			}
		}
	}
}

// TestReadJSONLinesTimesAreRFC3339: time.Parse with time.RFC3339Nano also
// takes a comma before the fraction and offsets of hour 24 or minute 60,
// none of which RFC 3339 allows; the reader refuses them in each time field,
// and takes the RFC 3339 forms around them.
func TestReadJSONLinesTimesAreRFC3339(t *testing.T) {
	doc := func(field, value string) string {
		times := map[string]string{"start_time": "2026-01-01T00:00:00Z", "end_time": "2026-01-01T00:00:01Z", "enqueue_time": "2026-01-01T00:00:00Z"}
		times[field] = value
		return `{"metric_type":"event","event_name":"e","task_id":"t","status":"completed","start_time":"` + times["start_time"] +
			`","end_time":"` + times["end_time"] + `","enqueue_time":"` + times["enqueue_time"] + `"}`
	}
	for _, field := range []string{"start_time", "end_time", "enqueue_time"} {
		for _, bad := range []string{"2026-01-01T00:00:00,5Z", "2025-12-31T00:00:00+24:00", "2026-01-01T00:00:00+00:60", "2025-12-31T00:00:00-23:60"} {
			_, _, err := telemetry.ReadJSONLines(strings.NewReader(doc(field, bad) + "\n"))
			if !errors.Is(err, telemetry.ErrInvalidRecord) || !strings.Contains(err.Error(), field+` "`+bad+`" is not an RFC 3339 time`) {
				t.Errorf("%s %s: got %v, want an invalid record error naming it", field, bad, err)
			}
		}
		for _, good := range []string{"2026-01-01T00:00:00.5Z", "2026-01-01T00:00:00.000000001+00:00", "2026-01-01T09:59:00+09:59", "2025-12-31T00:00:00-23:59"} {
			if field == "end_time" {
				good = strings.Replace(good, "2025-12-31", "2026-01-01", 1) // not before the start
			}
			if _, _, err := telemetry.ReadJSONLines(strings.NewReader(doc(field, good) + "\n")); err != nil {
				t.Errorf("%s %s: %v", field, good, err)
			}
		}
	}
}

// TestReadJSONLinesWhitespaceIsJSON: only JSON's whitespace (space, tab,
// CR, LF) around a document or on a blank line is skipped; bytes.TrimSpace
// also dropped Unicode spaces (U+00A0, U+0085, U+3000) and \v and \f, so
// a line of them was skipped as blank and a document behind them read.
func TestReadJSONLinesWhitespaceIsJSON(t *testing.T) {
	if _, _, err := telemetry.ReadJSONLines(strings.NewReader(" \t" + goodDoc + " \r\n \t\r\n\n")); err != nil {
		t.Fatalf("JSON whitespace: %v", err)
	}
	for _, space := range []string{"\u00a0", "\u0085", "\u3000", "\v", "\f"} {
		for _, line := range []string{space, space + goodDoc, goodDoc + space} {
			_, _, err := telemetry.ReadJSONLines(strings.NewReader(goodDoc + "\n" + line + "\n"))
			var le *telemetry.LineError
			if !errors.As(err, &le) || le.Line != 2 || !errors.Is(err, telemetry.ErrInvalidRecord) {
				t.Errorf("line %q: got %v, want an invalid record error for line 2", line, err)
			}
		}
	}
}

// exclusiveWriter fails the test if two Writes overlap or a Write does not
// hold whole lines.
type exclusiveWriter struct {
	t      *testing.T
	inside atomic.Bool
	data   []byte
}

func (w *exclusiveWriter) Write(p []byte) (int, error) {
	if !w.inside.CompareAndSwap(false, true) {
		w.t.Error("two Writes at once")
	}
	defer w.inside.Store(false)
	if len(p) == 0 || p[len(p)-1] != '\n' {
		w.t.Errorf("a Write of %q does not end a line", p)
	}
	w.data = append(w.data, p...)
	return len(p), nil
}

// TestJSONLinesConcurrentPublishing publishes from 8 goroutines at once,
// records, batches and flushes: the Writes never overlap, and the file
// holds every record once, each on a line of its own.
func TestJSONLinesConcurrentPublishing(t *testing.T) {
	w := &exclusiveWriter{t: t}
	p, err := telemetry.NewJSONLinesPublisher(w)
	must(t, err)
	var wg sync.WaitGroup
	want := map[string]bool{}
	for g := range 8 {
		evs := events("g"+strconv.Itoa(g)+"-", 60)
		for _, m := range evs {
			want[m.TaskID] = true
		}
		wg.Go(func() {
			ctx := context.Background()
			for i := 0; i < len(evs); i += 3 {
				err := errors.Join(p.PublishEventMetrics(ctx, evs[i]),
					p.PublishBatch(ctx, &telemetry.Batch{Events: evs[i+1 : i+3]}), p.Flush(ctx))
				if err != nil {
					t.Error(err) // not Fatal: another goroutine
					return
				}
			}
		})
	}
	wg.Wait()
	got, _, err := telemetry.ReadJSONLines(bytes.NewReader(w.data))
	must(t, err)
	seen := map[string]bool{}
	for _, m := range got {
		if seen[m.TaskID] || !want[m.TaskID] {
			t.Errorf("record %q: written twice, or not published", m.TaskID)
		}
		seen[m.TaskID] = true
	}
	if len(seen) != len(want) {
		t.Errorf("got %d records, want %d", len(seen), len(want))
	}
}

// TestJSONLinesStatusMatchesEndTime: a finished run (completed or failed)
// has an end time and a pending one has none. A document without the
// end time of a finished run (end_time null or missing) was read as a
// run of duration 0, and one with the end time of a pending run as a
// pending run with a duration; the writer wrote both. Now both sides
// refuse them.
func TestJSONLinesStatusMatchesEndTime(t *testing.T) {
	const start = `"metric_type":"event","event_name":"e","task_id":"t","start_time":"2026-01-01T00:00:00Z"`
	for _, tc := range []struct{ doc, want string }{
		{`{` + start + `,"status":"completed","end_time":null}`, `status is "completed" but end_time is null`},
		{`{` + start + `,"status":"failed"}`, `status is "failed" but end_time is null`},
		{`{` + start + `,"status":"pending","end_time":"2026-01-01T00:00:01Z"}`, `status is "pending" but end_time is not null`},
		{`{"metric_type":"network","task_id":"t","start_time":"2026-01-01T00:00:00Z","status":"completed"}`, `status is "completed" but end_time is null`},
	} {
		_, _, err := telemetry.ReadJSONLines(strings.NewReader(tc.doc + "\n"))
		if !errors.Is(err, telemetry.ErrInvalidRecord) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("read %s: got %v, want an invalid record error with %q", tc.doc, err, tc.want)
		}
	}
	var buf bytes.Buffer
	p, err := telemetry.NewJSONLinesPublisher(&buf)
	must(t, err)
	start0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, m := range []telemetry.EventMetrics{
		{TaskID: "a", StartTime: start0, Status: telemetry.StatusCompleted},
		{TaskID: "b", StartTime: start0, EndTime: start0, Status: telemetry.StatusPending},
	} {
		if err := p.PublishEventMetrics(context.Background(), m); !errors.Is(err, telemetry.ErrInvalidRecord) {
			t.Errorf("publish %+v: got %v, want %v", m, err, telemetry.ErrInvalidRecord)
		}
	}
	if err := p.PublishNetworkMetrics(context.Background(), telemetry.NetworkMetrics{TaskID: "c", StartTime: start0, Status: telemetry.StatusFailed}); !errors.Is(err, telemetry.ErrInvalidRecord) {
		t.Errorf("publish a failed network operation without an end: got %v, want %v", err, telemetry.ErrInvalidRecord)
	}
	if buf.Len() != 0 {
		t.Errorf("the publisher wrote %q", buf.String())
	}
}

// TestJSONLinesContextInterruptsBlockedWrite: a Write to a pipe that
// nobody reads blocks; when the call's context ends, the publisher ends
// the Write through the pipe's write deadline and returns, as the
// Publisher contract asks, and a later call writes again.
func TestJSONLinesContextInterruptsBlockedWrite(t *testing.T) {
	r, w, err := os.Pipe()
	must(t, err)
	defer r.Close()
	defer w.Close()
	p, err := telemetry.NewJSONLinesPublisher(w)
	must(t, err)
	big := events(strings.Repeat("x", 1000), 200) // 200 KiB: more than a pipe holds
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.PublishBatch(ctx, &telemetry.Batch{Events: big}) }()
	var one [1]byte
	if _, err := io.ReadFull(r, one[:]); err != nil { // the Write has begun
		t.Fatal(err)
	}
	cancel()
	err = <-done
	var pe *telemetry.PartialError
	if !errors.Is(err, context.Canceled) || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &pe) {
		t.Fatalf("got %v, want a PartialError wrapping %v and %v", err, context.Canceled, os.ErrDeadlineExceeded)
	}
	// The deadline is cleared: the retry writes the rest while we read.
	var rest bytes.Buffer
	read := make(chan error, 1)
	go func() { _, err := io.Copy(&rest, r); read <- err }()
	must(t, p.PublishBatch(context.Background(), &telemetry.Batch{Events: big}))
	w.Close()
	must(t, <-read)
	evs, _, err := telemetry.ReadJSONLines(io.MultiReader(bytes.NewReader(one[:]), &rest))
	must(t, err)
	if len(evs) != len(big) {
		t.Errorf("read %d records back, want %d", len(evs), len(big))
	}
}
