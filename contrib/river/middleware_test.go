package river_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	epriver "github.com/eventpipeline/eventpipeline/contrib/river"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
)

// The job kinds of the tests, each with its own args type, as River wants.
type (
	okArgs      struct{}
	failArgs    struct{}
	flakyArgs   struct{}
	slowArgs    struct{}
	delayedArgs struct{}
	snoozeArgs  struct{}
)

func (okArgs) Kind() string      { return "ok" }
func (failArgs) Kind() string    { return "fail" }
func (flakyArgs) Kind() string   { return "flaky" }
func (slowArgs) Kind() string    { return "slow" }
func (delayedArgs) Kind() string { return "delayed" }
func (snoozeArgs) Kind() string  { return "snooze" }

// testWorkers returns the workers of the test kinds.
func testWorkers() *river.Workers {
	w := river.NewWorkers()
	river.AddWorker(w, river.WorkFunc(func(context.Context, *river.Job[okArgs]) error { return nil }))
	river.AddWorker(w, river.WorkFunc(func(context.Context, *river.Job[delayedArgs]) error { return nil }))
	river.AddWorker(w, river.WorkFunc(func(context.Context, *river.Job[failArgs]) error { return errors.New("boom") }))
	river.AddWorker(w, river.WorkFunc(func(_ context.Context, job *river.Job[flakyArgs]) error {
		if job.Attempt < 3 {
			return fmt.Errorf("attempt %d failed", job.Attempt)
		}
		return nil
	}))
	river.AddWorker(w, river.WorkFunc(func(ctx context.Context, _ *river.Job[slowArgs]) error {
		select {
		case <-time.After(300 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}))
	var snoozed atomic.Bool
	river.AddWorker(w, river.WorkFunc(func(context.Context, *river.Job[snoozeArgs]) error {
		if snoozed.CompareAndSwap(false, true) {
			return river.JobSnooze(100 * time.Millisecond)
		}
		return nil
	}))
	return w
}

// TestJobAttempts inserts jobs with known outcomes (succeed, fail, fail
// twice then succeed, slow, snoozed, scheduled, and some inserted before
// any worker runs so that they wait) into a real PostgreSQL, worked by a
// real River client whose Middleware records into a Recorder with a
// Prometheus publisher and an OpenTelemetry TracerProvider; then checks
// the records against River's own rows, the queries, the JSON report, the
// metrics and the spans.
func TestJobAttempts(t *testing.T) {
	pool := startDatabase(t)
	reg := prom.NewRegistry()
	pub, err := prometheus.NewPublisher(prometheus.Config{Registry: reg, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(t, telemetry.WithPublishers(pub))
	tp, exp := newTracing(t)
	mw := epriver.NewMiddleware(epriver.Config{Recorder: rec, TracerProvider: tp, Propagator: propagation.TraceContext{}})
	ctx := context.Background()

	// Jobs inserted while no worker runs wait at least delay.
	inserter := newClient(t, pool, nil, mw)
	const delay = time.Second
	var delayed []int64
	for range 3 {
		res, err := inserter.Insert(ctx, delayedArgs{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		delayed = append(delayed, res.Job.ID)
	}
	time.Sleep(delay)

	client := newClient(t, pool, testWorkers(), mw)
	start(t, client)
	insert := func(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) int64 {
		t.Helper()
		res, err := client.Insert(ctx, args, opts)
		if err != nil {
			t.Fatalf("insert %s: %v", args.Kind(), err)
		}
		return res.Job.ID
	}
	ok := insert(ctx, okArgs{}, nil)
	fail := insert(ctx, failArgs{}, &river.InsertOpts{MaxAttempts: 1})
	flaky := insert(ctx, flakyArgs{}, &river.InsertOpts{MaxAttempts: 5})
	slow := insert(ctx, slowArgs{}, nil)
	snooze := insert(ctx, snoozeArgs{}, nil)
	scheduled := insert(ctx, okArgs{}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Second)})
	inPipeline := insert(pipeline.ContextWithTask(ctx, pipeline.Task{ID: "r1/load/1", Event: "load", RunID: "r1", Attempt: 1}), okArgs{}, nil)

	want := map[int64]int{ok: 1, fail: 1, flaky: 3, slow: 1, snooze: 2, scheduled: 1, inPipeline: 1}
	for _, id := range delayed {
		want[id] = 1
	}
	waitRuns(t, rec, want)
	row := func(id int64) *rivertype.JobRow {
		t.Helper()
		var r *rivertype.JobRow
		testutil.Eventually(t, pollTimeout, func() error { // River finalizes the row just after the attempt
			var err error
			if r, err = client.JobGet(ctx, id); err != nil {
				return err
			}
			if r.FinalizedAt == nil && r.State != rivertype.JobStateAvailable && r.State != rivertype.JobStateScheduled {
				return fmt.Errorf("job %d is %s", id, r.State)
			}
			return nil
		})
		return r
	}

	t.Run("records", func(t *testing.T) {
		tests := []struct {
			id      int64
			kind    string
			status  []telemetry.Status
			retries []int
		}{
			{ok, "ok", []telemetry.Status{telemetry.StatusCompleted}, []int{0}},
			{fail, "fail", []telemetry.Status{telemetry.StatusFailed}, []int{0}},
			{flaky, "flaky", []telemetry.Status{telemetry.StatusFailed, telemetry.StatusFailed, telemetry.StatusCompleted}, []int{0, 1, 2}},
			{slow, "slow", []telemetry.Status{telemetry.StatusCompleted}, []int{0}},
			{snooze, "snooze", []telemetry.Status{telemetry.StatusCompleted, telemetry.StatusCompleted}, []int{0, 0}},
			{delayed[0], "delayed", []telemetry.Status{telemetry.StatusCompleted}, []int{0}},
		}
		for _, tc := range tests {
			var status []telemetry.Status
			var retries []int
			for _, m := range runsOf(rec, tc.id) {
				status, retries = append(status, m.Status), append(retries, m.RetryCount)
				if m.EventName != tc.kind || m.ProcessID != os.Getpid() || m.EnqueueTime.IsZero() || m.WaitTime() < 0 {
					t.Errorf("job %d: got event %q, process %d, enqueue time %v, wait %v; want %q, %d, a wait",
						tc.id, m.EventName, m.ProcessID, m.EnqueueTime, m.WaitTime(), tc.kind, os.Getpid())
				}
			}
			if !slices.Equal(status, tc.status) || !slices.Equal(retries, tc.retries) {
				t.Errorf("job %d: got runs %v with retry counts %v, want %v with %v", tc.id, status, retries, tc.status, tc.retries)
			}
		}
		runs := runsOf(rec, fail)
		if len(runs) != 1 || runs[0].Error != "boom" {
			t.Errorf("failed job: runs %+v, want one with the error boom", runs)
		}
		// The last attempt's wait is River's: attempted_at - scheduled_at.
		for _, id := range append([]int64{ok, flaky, scheduled}, delayed...) {
			r := row(id)
			runs := runsOf(rec, id)
			last := runs[len(runs)-1]
			if want := r.AttemptedAt.Sub(r.ScheduledAt); last.WaitTime() != want {
				t.Errorf("job %d: wait %v, want River's %v (attempted %v, scheduled %v)", id, last.WaitTime(), want, r.AttemptedAt, r.ScheduledAt)
			}
		}
		if runs := runsOf(rec, inPipeline); len(runs) != 1 || runs[0].PipelineID != "r1" {
			t.Errorf("job inserted in a pipeline run: %+v, want pipeline id r1", runs)
		}
		if runs := runsOf(rec, ok); runs[0].PipelineID != "" {
			t.Errorf("job inserted outside a pipeline: pipeline id %q, want none", runs[0].PipelineID)
		}
		if n := mw.Failures(); n != 0 {
			t.Errorf("middleware: %d recording failures (%v), want 0", n, mw.Err())
		}
	})

	t.Run("queries", func(t *testing.T) {
		var failed []string
		for _, m := range rec.FailedEvents() {
			failed = append(failed, m.TaskID+"/"+strconv.Itoa(m.RetryCount))
		}
		slices.Sort(failed)
		wantFailed := []string{strconv.FormatInt(fail, 10) + "/0", strconv.FormatInt(flaky, 10) + "/0", strconv.FormatInt(flaky, 10) + "/1"}
		slices.Sort(wantFailed)
		if !slices.Equal(failed, wantFailed) {
			t.Errorf("FailedEvents: got %v, want %v", failed, wantFailed)
		}
		slowRuns, err := rec.SlowEvents(250 * time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(slowRuns, func(m telemetry.EventMetrics) bool { return m.TaskID == strconv.FormatInt(slow, 10) }) {
			t.Error("SlowEvents(250ms) misses the slow job")
		}
		waited, err := rec.WaitedEvents(delay)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range delayed {
			if !slices.ContainsFunc(waited, func(m telemetry.EventMetrics) bool { return m.TaskID == strconv.FormatInt(id, 10) }) {
				t.Errorf("WaitedEvents(%v) misses job %d, inserted %v before the worker started", delay, id, delay)
			}
		}
		if rs := rec.RetryStats(); rs.ByRetryCount[1] != 1 || rs.ByRetryCount[2] != 1 || rs.EventsWithRetries != 2 {
			t.Errorf("retry stats %+v, want one run at 1 and one at 2", rs)
		}
	})

	t.Run("report", func(t *testing.T) {
		js, err := rec.MetricsJSON()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Events []map[string]any `json:"events"`
		}
		if err := json.Unmarshal(js, &doc); err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, e := range doc.Events {
			if e["task_id"] != strconv.FormatInt(delayed[0], 10) {
				continue
			}
			found++
			if w, _ := e["wait_seconds"].(float64); w < delay.Seconds() {
				t.Errorf("delayed job: wait_seconds %v, want at least %v", e["wait_seconds"], delay.Seconds())
			}
			for _, key := range []string{"enqueue_time", "trace_id", "span_id", "trace_sampled"} {
				if _, ok := e[key]; !ok {
					t.Errorf("delayed job: no %s in %v", key, e)
				}
			}
		}
		if found != 1 {
			t.Errorf("report: %d runs of the first delayed job, want 1", found)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		counts, sums := map[string]uint64{}, map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != prometheus.MetricEventWait {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "event_name" {
						counts[l.GetValue()] = m.GetHistogram().GetSampleCount()
						sums[l.GetValue()] = m.GetHistogram().GetSampleSum()
					}
				}
			}
		}
		// Every attempt has a wait with River, retries included.
		wantCounts := map[string]uint64{"delayed": 3, "ok": 3, "fail": 1, "flaky": 3, "slow": 1, "snooze": 2}
		for name, n := range wantCounts {
			if counts[name] != n {
				t.Errorf("event_wait_seconds_count{event_name=%q}: got %d, want %d (all: %v)", name, counts[name], n, counts)
			}
		}
		if sums["delayed"] < 3*delay.Seconds() {
			t.Errorf("event_wait_seconds_sum{event_name=\"delayed\"}: got %v, want at least %v", sums["delayed"], 3*delay.Seconds())
		}
	})

	t.Run("spans", func(t *testing.T) {
		for _, tc := range []struct {
			id   int64
			kind string
		}{{ok, "ok"}, {fail, "fail"}, {flaky, "flaky"}} {
			runs := runsOf(rec, tc.id)
			var process tracetest.SpanStubs
			for _, s := range exp.GetSpans() {
				if s.Name == "process "+tc.kind && hasAttr(s.Attributes, "messaging.message.id", strconv.FormatInt(tc.id, 10)) {
					process = append(process, s)
				}
			}
			if len(process) != len(runs) {
				t.Fatalf("job %d: %d process spans for %d runs", tc.id, len(process), len(runs))
			}
			for i, m := range runs {
				j := slices.IndexFunc(process, func(s tracetest.SpanStub) bool { return [8]byte(s.SpanContext.SpanID()) == m.Span.SpanID })
				if j < 0 {
					t.Errorf("job %d run %d: span id %x is not one of its process spans", tc.id, i+1, m.Span.SpanID)
					continue
				}
				s := process[j]
				if s.SpanKind != trace.SpanKindConsumer || !s.Parent.IsValid() || (s.Status.Code == codes.Error) != (m.Status == telemetry.StatusFailed) {
					t.Errorf("job %d run %d: span kind %v, parent %v, status %v", tc.id, i+1, s.SpanKind, s.Parent, s.Status)
				}
				var parent *tracetest.SpanStub
				for _, p := range exp.GetSpans() {
					if p.SpanContext.SpanID() == s.Parent.SpanID() {
						parent = &p
					}
				}
				if parent == nil || parent.Name != "send "+tc.kind || parent.SpanKind != trace.SpanKindProducer {
					t.Errorf("job %d run %d: parent %v, want the producer span of its insert", tc.id, i+1, parent)
				}
			}
		}
	})
}

// hasAttr reports whether attrs hold key with the value value.
func hasAttr(attrs []attribute.KeyValue, key, value string) bool {
	for _, a := range attrs {
		if string(a.Key) == key && a.Value.String() == value {
			return true
		}
	}
	return false
}

// TestInsertKeepsMetadata checks that the Middleware adds its object to a
// job's own metadata without losing it, and leaves alone jobs inserted
// without trace context or pipeline.
func TestInsertKeepsMetadata(t *testing.T) {
	pool := startDatabase(t)
	rec := newRecorder(t)
	mw := epriver.NewMiddleware(epriver.Config{Recorder: rec, Propagator: propagation.TraceContext{}})
	client := newClient(t, pool, nil, mw)
	ctx := context.Background()
	caller := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{8}, TraceFlags: trace.FlagsSampled})
	res, err := client.Insert(trace.ContextWithSpanContext(ctx, caller), okArgs{}, &river.InsertOpts{Metadata: []byte(`{"tenant":"acme"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	if err := json.Unmarshal(res.Job.Metadata, &md); err != nil {
		t.Fatal(err)
	}
	ep, _ := md[epriver.MetadataKey].(map[string]any)
	if md["tenant"] != "acme" || ep["traceparent"] != "00-"+caller.TraceID().String()+"-"+caller.SpanID().String()+"-01" {
		t.Errorf("metadata %v: want tenant kept and the caller's traceparent", md)
	}
	res, err = client.Insert(ctx, okArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := jsonObject(t, res.Job.Metadata)[epriver.MetadataKey]; ok {
		t.Errorf("metadata %s: an untraced insert outside a pipeline got the Middleware's object", res.Job.Metadata)
	}
}

func jsonObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWorkerPanicRecorded checks that a worker's panic is recorded as a
// failed attempt before River recovers it.
func TestWorkerPanicRecorded(t *testing.T) {
	pool := startDatabase(t)
	rec := newRecorder(t)
	mw := epriver.NewMiddleware(epriver.Config{Recorder: rec, EventName: func(q, kind string) string { return q + ":" + kind }})
	w := river.NewWorkers()
	river.AddWorker(w, river.WorkFunc(func(context.Context, *river.Job[okArgs]) error { panic("out of cheese") }))
	client := newClient(t, pool, w, mw)
	start(t, client)
	res, err := client.Insert(context.Background(), okArgs{}, &river.InsertOpts{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitRuns(t, rec, map[int64]int{res.Job.ID: 1})
	m := runsOf(rec, res.Job.ID)[0]
	if m.Status != telemetry.StatusFailed || m.Error != "river: job worker panicked: out of cheese" || m.EventName != "default:ok" {
		t.Errorf("got %s %q of %q, want a failed run of default:ok with the panic", m.Status, m.Error, m.EventName)
	}
}

// TestSpanErrorTextCut checks that spans never carry an 11,000-byte error
// text whole: the span of an attempt that failed with one carries the
// text its record keeps, cut at the Recorder's WithMaxErrorLength (here
// 3000 bytes), and the span of a failed insert, which has no record, the
// text the Recorder would keep (Recorder.ErrorText); in the status and the
// exception event alike.
func TestSpanErrorTextCut(t *testing.T) {
	long := errors.New(strings.Repeat("0123456789", 1100))
	rec := newRecorder(t, telemetry.WithMaxErrorLength(3000))
	tp, exp := newTracing(t)
	mw := epriver.NewMiddleware(epriver.Config{Recorder: rec, TracerProvider: tp})
	job := benchJob(7)
	if err := mw.Work(context.Background(), job, func(context.Context) error { return long }); err != long {
		t.Fatalf("got %v, want the worker's error", err)
	}
	_, err := mw.InsertMany(context.Background(), []*rivertype.JobInsertParams{{Kind: "image_resize", Queue: "default", Metadata: []byte(`{}`)}},
		func(context.Context) ([]*rivertype.JobInsertResult, error) { return nil, long })
	if err != long {
		t.Fatalf("got %v, want the insert's error", err)
	}
	m, _ := rec.Metrics("7")
	if m.Status != telemetry.StatusFailed || len(m.Error) != 3000 {
		t.Fatalf("got a %s run with %d bytes of error, want a failed one with 3000", m.Status, len(m.Error))
	}
	for _, want := range []struct{ span, text string }{
		{"process image_resize", m.Error},
		{"send image_resize", m.Error}, // no record, but the Recorder's cut: the same text
	} {
		var s *tracetest.SpanStub
		for _, got := range exp.GetSpans() {
			if got.Name == want.span {
				s = &got
			}
		}
		if s == nil {
			t.Errorf("no span %q", want.span)
			continue
		}
		if s.Status.Code != codes.Error || s.Status.Description != want.text {
			t.Errorf("span %q: got status %v with %d bytes, want Error with %d bytes ending %q",
				s.Name, s.Status.Code, len(s.Status.Description), len(want.text), want.text[len(want.text)-30:])
		}
		var msg string
		for _, ev := range s.Events {
			for _, a := range ev.Attributes {
				if ev.Name == "exception" && a.Key == "exception.message" {
					msg = a.Value.AsString()
				}
			}
		}
		if msg != want.text {
			t.Errorf("span %q: got exception.message of %d bytes, want %d", s.Name, len(msg), len(want.text))
		}
	}
}

// TestWorkerGoexitRecordedFailed checks that a worker that calls
// runtime.Goexit ends its attempt as failed, not as completed: River never
// sees such an attempt end (the job stays running until its rescuer
// fails it), so it did not complete.
func TestWorkerGoexitRecordedFailed(t *testing.T) {
	rec := newRecorder(t)
	mw := epriver.NewMiddleware(epriver.Config{Recorder: rec})
	done := make(chan struct{})
	go func() {
		defer close(done)
		mw.Work(context.Background(), benchJob(9), func(context.Context) error {
			runtime.Goexit()
			return nil
		})
	}()
	<-done
	m, ok := rec.Metrics("9")
	if !ok || m.Status != telemetry.StatusFailed || m.Error != "river: job worker called runtime.Goexit" {
		t.Errorf("got %+v, %v; want a failed run with the Goexit error", m, ok)
	}
	if mw.Failures() != 0 {
		t.Errorf("got %d refused recordings, want 0: %v", mw.Failures(), mw.Err())
	}
}

// TestNilInputs checks that the Middleware's methods, given a nil job or
// nil insert params (never from River, but they are exported), pass them
// on unrecorded instead of panicking.
func TestNilInputs(t *testing.T) {
	rec := newRecorder(t)
	mw := epriver.NewMiddleware(epriver.Config{Recorder: rec, Propagator: propagation.TraceContext{}})
	called := false
	if err := mw.Work(context.Background(), nil, func(context.Context) error { called = true; return nil }); err != nil || !called {
		t.Errorf("Work of a nil job: got %v, called %v; want nil and the worker called", err, called)
	}
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled}))
	p := &rivertype.JobInsertParams{Kind: "ok", Queue: "default", Metadata: []byte(`{}`)}
	if _, err := mw.InsertMany(ctx, []*rivertype.JobInsertParams{nil, p}, func(context.Context) ([]*rivertype.JobInsertResult, error) {
		return nil, nil
	}); err != nil {
		t.Errorf("InsertMany with a nil param: %v", err)
	}
	if !strings.Contains(string(p.Metadata), "traceparent") {
		t.Errorf("the param after the nil one got metadata %s, want the trace context", p.Metadata)
	}
	if n := len(rec.Report().Events); n != 0 || mw.Failures() != 0 {
		t.Errorf("got %d records and %d refused recordings, want none", n, mw.Failures())
	}
}

// TestOverlappingAttempt checks that an attempt of a job that starts while
// an earlier attempt of it still runs in this process (River's rescuer
// makes a job stuck past RescueStuckJobsAfter available again, and a
// worker that ignores its context may still be running it) is recorded
// under the job id with "#" and its attempt, beside the earlier one, and
// that the Middleware refuses nothing; and, when a run of other code is
// pending in the same Recorder under that id ("7#2"), under "7#2#2",
// leaving the other run alone.
func TestOverlappingAttempt(t *testing.T) {
	for _, tc := range []struct {
		name, other, want string // other: a pending run's id, if any
	}{
		{"overlap", "", "7#2"},
		{"overlap and collision", "7#2", "7#2#2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t)
			if tc.other != "" {
				if err := rec.StartEvent("other", tc.other); err != nil {
					t.Fatal(err)
				}
			}
			mw := epriver.NewMiddleware(epriver.Config{Recorder: rec})
			first, second := benchJob(7), benchJob(7)
			second.Attempt = 2
			firstStarted, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
			go func() {
				done <- mw.Work(context.Background(), first, func(context.Context) error {
					close(firstStarted)
					<-release
					return errors.New("stuck")
				})
			}()
			<-firstStarted
			if err := mw.Work(context.Background(), second, func(context.Context) error { return nil }); err != nil {
				t.Fatal(err)
			}
			close(release)
			<-done
			m1, ok1 := rec.Metrics("7")
			m2, ok2 := rec.Metrics(tc.want)
			if !ok1 || m1.Status != telemetry.StatusFailed || m1.RetryCount != 0 {
				t.Errorf("first attempt: got %+v, %v; want a failed run with 0 retries", m1, ok1)
			}
			if !ok2 || m2.Status != telemetry.StatusCompleted || m2.RetryCount != 1 || m2.EventName != m1.EventName {
				t.Errorf("second attempt under %q: got %+v, %v; want a completed run of %q with 1 retry", tc.want, m2, ok2, m1.EventName)
			}
			if tc.other != "" {
				if m, ok := rec.Metrics(tc.other); !ok || m.Status != telemetry.StatusPending || m.EventName != "other" {
					t.Errorf("the other run: got %+v, %v; want it pending, as it was", m, ok)
				}
			}
			if mw.Failures() != 0 {
				t.Errorf("got %d refused recordings, want 0: %v", mw.Failures(), mw.Err())
			}
		})
	}
}

// TestEventNamePanicsLeavesNoSpan checks that a Config.EventName that
// panics starts no span that nothing would end: the panic goes on to
// River, nothing is recorded, and every span started has ended.
func TestEventNamePanicsLeavesNoSpan(t *testing.T) {
	rec := newRecorder(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	mw := epriver.NewMiddleware(epriver.Config{Recorder: rec, TracerProvider: tp,
		EventName: func(string, string) string { panic("bad name") }})
	func() {
		defer func() {
			if v := recover(); v != "bad name" {
				t.Errorf("recovered %v, want the EventName's panic", v)
			}
		}()
		mw.Work(context.Background(), benchJob(11), func(context.Context) error { return nil })
	}()
	if started, ended := len(spans.Started()), len(spans.Ended()); started != ended {
		t.Errorf("%d spans started, %d ended: a span is left open", started, ended)
	}
	if n := len(rec.Report().Events); n != 0 {
		t.Errorf("got %d records, want none", n)
	}
}
