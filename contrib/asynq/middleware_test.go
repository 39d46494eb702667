package asynq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	prom "github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	epasynq "github.com/eventpipeline/eventpipeline/contrib/asynq"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
)

// TestTaskRuns enqueues tasks with known outcomes (succeed, fail, fail
// twice then succeed, slow, scheduled, and some enqueued before any worker
// runs so that they wait) through the Client to a real asynq server on a
// real Redis, whose Middleware records into a Recorder with a Prometheus
// publisher and an OpenTelemetry TracerProvider; then checks the records,
// the queries, the JSON report, the metrics and the spans.
func TestTaskRuns(t *testing.T) {
	redis := testutil.StartRedis(t)
	reg := prom.NewRegistry()
	pub, err := prometheus.NewPublisher(prometheus.Config{Registry: reg, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(t, telemetry.WithPublishers(pub))
	tp, exp := newTracing(t)
	cfg := epasynq.Config{Recorder: rec, TracerProvider: tp, Propagator: propagation.TraceContext{}}
	client, err := epasynq.NewClient(asynq.RedisClientOpt{Addr: redis.Addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	enqueue := func(ctx context.Context, typ string, opts ...asynq.Option) string {
		t.Helper()
		info, err := client.Enqueue(ctx, asynq.NewTask(typ, []byte(`{"n":1}`)), opts...)
		if err != nil {
			t.Fatalf("enqueue %s: %v", typ, err)
		}
		return info.ID
	}

	// Tasks enqueued while no worker runs wait at least delay.
	const delay = time.Second
	var delayed []string
	for range 3 {
		delayed = append(delayed, enqueue(ctx, "delayed"))
	}
	time.Sleep(delay)

	mw := epasynq.NewMiddleware(cfg)
	mux := asynq.NewServeMux()
	mux.Use(mw.Wrap)
	succeed := func(context.Context, *asynq.Task) error { return nil }
	mux.HandleFunc("delayed", succeed)
	mux.HandleFunc("ok", succeed)
	mux.HandleFunc("fail", func(context.Context, *asynq.Task) error { return errors.New("boom") })
	mux.HandleFunc("flaky", func(ctx context.Context, _ *asynq.Task) error {
		if n, _ := asynq.GetRetryCount(ctx); n < 2 {
			return fmt.Errorf("attempt %d failed", n+1)
		}
		return nil
	})
	mux.HandleFunc("slow", func(ctx context.Context, _ *asynq.Task) error {
		select {
		case <-time.After(300 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	startServer(t, redis.Addr, mux)

	ok := enqueue(ctx, "ok")
	fail := enqueue(ctx, "fail", asynq.MaxRetry(0))
	flaky := enqueue(ctx, "flaky", asynq.MaxRetry(5))
	slow := enqueue(ctx, "slow")
	// asynq keeps scheduled times to the second: schedule on a second.
	at := time.Now().Truncate(time.Second).Add(2 * time.Second)
	scheduled := enqueue(ctx, "ok", asynq.ProcessAt(at))
	// A task enqueued by an event of a pipeline run carries the run's id.
	inPipeline := enqueue(pipeline.ContextWithTask(ctx, pipeline.Task{ID: "r1/load/1", Event: "load", RunID: "r1", Attempt: 1}), "ok")

	want := map[string]int{ok: 1, fail: 1, flaky: 3, slow: 1, scheduled: 1, inPipeline: 1}
	for _, id := range delayed {
		want[id] = 1
	}
	waitRuns(t, rec, want)

	t.Run("records", func(t *testing.T) {
		tests := []struct {
			id, event string
			status    []telemetry.Status
			retries   []int
		}{
			{ok, "ok", []telemetry.Status{telemetry.StatusCompleted}, []int{0}},
			{fail, "fail", []telemetry.Status{telemetry.StatusFailed}, []int{0}},
			{flaky, "flaky", []telemetry.Status{telemetry.StatusFailed, telemetry.StatusFailed, telemetry.StatusCompleted}, []int{0, 1, 2}},
			{slow, "slow", []telemetry.Status{telemetry.StatusCompleted}, []int{0}},
			{delayed[0], "delayed", []telemetry.Status{telemetry.StatusCompleted}, []int{0}},
		}
		for _, tc := range tests {
			runs := runsOf(rec, tc.id)
			var status []telemetry.Status
			var retries []int
			for _, m := range runs {
				status, retries = append(status, m.Status), append(retries, m.RetryCount)
				if m.EventName != tc.event || m.ProcessID != os.Getpid() {
					t.Errorf("task %s: got event %q, process %d; want %q, %d", tc.id, m.EventName, m.ProcessID, tc.event, os.Getpid())
				}
				if (m.RetryCount == 0) == m.EnqueueTime.IsZero() {
					t.Errorf("task %s attempt %d: enqueue time %v; want one on the first attempt only", tc.id, m.RetryCount+1, m.EnqueueTime)
				}
			}
			if !slices.Equal(status, tc.status) || !slices.Equal(retries, tc.retries) {
				t.Errorf("task %s: got runs %v with retry counts %v, want %v with %v", tc.id, status, retries, tc.status, tc.retries)
			}
		}
		if m, _ := rec.Metrics(fail); m.Error != "boom" {
			t.Errorf("failed run: error %q, want boom", m.Error)
		}
		if m, _ := rec.Metrics(inPipeline); m.PipelineID != "r1" {
			t.Errorf("task enqueued in a pipeline run: pipeline id %q, want r1", m.PipelineID)
		}
		if m, _ := rec.Metrics(ok); m.PipelineID != "" {
			t.Errorf("task enqueued outside a pipeline: pipeline id %q, want none", m.PipelineID)
		}
		// A scheduled task's wait starts when it became ready, not at the enqueue.
		m, _ := rec.Metrics(scheduled)
		if !m.EnqueueTime.Equal(at) || m.StartTime.Before(at) {
			t.Errorf("scheduled task: enqueue time %v, start %v; want %v, and a start after it", m.EnqueueTime, m.StartTime, at)
		}
		if n := mw.Failures(); n != 0 {
			t.Errorf("middleware: %d recording failures (%v), want 0", n, mw.Err())
		}
	})

	t.Run("queries", func(t *testing.T) {
		var failed []string
		for _, m := range rec.FailedEvents() {
			failed = append(failed, fmt.Sprintf("%s/%d", m.TaskID, m.RetryCount))
		}
		slices.Sort(failed)
		wantFailed := []string{fail + "/0", flaky + "/0", flaky + "/1"}
		slices.Sort(wantFailed)
		if !slices.Equal(failed, wantFailed) {
			t.Errorf("FailedEvents: got %v, want %v", failed, wantFailed)
		}
		slowRuns, err := rec.SlowEvents(250 * time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(slowRuns, func(m telemetry.EventMetrics) bool { return m.TaskID == slow }) {
			t.Errorf("SlowEvents(250ms) misses the slow task")
		}
		waited, err := rec.WaitedEvents(delay)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range delayed {
			i := slices.IndexFunc(waited, func(m telemetry.EventMetrics) bool { return m.TaskID == id })
			if i < 0 {
				t.Errorf("WaitedEvents(%v) misses task %s, enqueued %v before the worker started", delay, id, delay)
				continue
			}
			if w := waited[i].WaitTime(); w < delay {
				t.Errorf("task %s: wait %v, want at least %v", id, w, delay)
			}
		}
		rs := rec.RetryStats()
		if rs.ByRetryCount[1] != 1 || rs.ByRetryCount[2] != 1 || rs.EventsWithRetries != 2 {
			t.Errorf("retry stats %+v, want one run at 1 and one at 2", rs)
		}
		if s := rec.Stats(); s.EventsWaitClamped != 0 {
			t.Errorf("EventsWaitClamped %d, want 0 (one clock)", s.EventsWaitClamped)
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
		var first, retry, waitedRun map[string]any
		for _, e := range doc.Events {
			switch {
			case e["task_id"] == flaky && e["retry_count"] == 0.0:
				first = e
			case e["task_id"] == flaky && e["retry_count"] == 1.0:
				retry = e
			case e["task_id"] == delayed[0]:
				waitedRun = e
			}
		}
		if first == nil || retry == nil || waitedRun == nil {
			t.Fatalf("report misses runs: %s", js)
		}
		if _, ok := first["enqueue_time"].(string); !ok {
			t.Errorf("first attempt: no enqueue_time in %v", first)
		}
		if _, ok := retry["enqueue_time"]; ok {
			t.Errorf("retry: enqueue_time in %v, want none (its wait is not known)", retry)
		}
		if w, _ := waitedRun["wait_seconds"].(float64); w < delay.Seconds() {
			t.Errorf("delayed task: wait_seconds %v, want at least %v", waitedRun["wait_seconds"], delay.Seconds())
		}
		for _, key := range []string{"trace_id", "span_id", "trace_sampled"} {
			if _, ok := waitedRun[key]; !ok {
				t.Errorf("traced run: no %s in %v", key, waitedRun)
			}
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
		wantCounts := map[string]uint64{"delayed": 3, "ok": 3, "fail": 1, "flaky": 1, "slow": 1}
		for name, n := range wantCounts {
			if counts[name] != n {
				t.Errorf("event_wait_seconds_count{event_name=%q}: got %d, want %d (all counts: %v)", name, counts[name], n, counts)
			}
		}
		if sums["delayed"] < 3*delay.Seconds() {
			t.Errorf("event_wait_seconds_sum{event_name=\"delayed\"}: got %v, want at least %v", sums["delayed"], 3*delay.Seconds())
		}
	})

	t.Run("enqueues", func(t *testing.T) {
		ops := map[string]telemetry.NetworkMetrics{}
		for _, op := range rec.Report().NetworkOperations {
			ops[op.TaskID] = op
		}
		for _, id := range append([]string{ok, fail, flaky, slow, scheduled, inPipeline}, delayed...) {
			op, found := ops[id]
			if !found {
				t.Errorf("no network operation for the enqueue of %s", id)
				continue
			}
			if op.Operation != epasynq.DefaultEnqueueOperation || op.Host != "127.0.0.1" || op.Port != redis.Port ||
				op.Status != telemetry.StatusCompleted || op.BytesSent <= int64(len(`{"n":1}`)) || op.BytesReceived != 0 {
				t.Errorf("enqueue of %s: got %+v", id, op)
			}
		}
		if n := client.Failures(); n != 0 {
			t.Errorf("client: %d recording failures (%v), want 0", n, client.Err())
		}
	})

	t.Run("spans", func(t *testing.T) {
		check := func(id, typ string) {
			t.Helper()
			runs := runsOf(rec, id)
			op, _ := func() (telemetry.NetworkMetrics, bool) {
				for _, op := range rec.Report().NetworkOperations {
					if op.TaskID == id {
						return op, true
					}
				}
				return telemetry.NetworkMetrics{}, false
			}()
			var send trace.SpanContext
			for _, s := range spansNamed(exp, "send "+typ) {
				if hasAttr(s.Attributes, "messaging.message.id", id) {
					send = s.SpanContext
					if s.SpanKind != trace.SpanKindProducer {
						t.Errorf("%s: send span kind %v, want producer", id, s.SpanKind)
					}
				}
			}
			if !send.IsValid() {
				t.Fatalf("%s: no send span", id)
			}
			if op.Span.SpanID != [8]byte(send.SpanID()) || op.Span.TraceID != [16]byte(send.TraceID()) {
				t.Errorf("%s: enqueue record span %x/%x, want the send span %s/%s", id, op.Span.TraceID, op.Span.SpanID, send.TraceID(), send.SpanID())
			}
			var process tracetest.SpanStubs
			for _, s := range spansNamed(exp, "process "+typ) {
				if !hasAttr(s.Attributes, "messaging.message.id", id) {
					continue
				}
				process = append(process, s)
				if s.Parent.SpanID() != send.SpanID() || s.SpanContext.TraceID() != send.TraceID() || s.SpanKind != trace.SpanKindConsumer {
					t.Errorf("%s: process span parent %s in trace %s, kind %v; want a consumer child of the send span %s", id, s.Parent.SpanID(), s.SpanContext.TraceID(), s.SpanKind, send.SpanID())
				}
				if !hasAttr(s.Attributes, "messaging.destination.name", "default") || !hasAttr(s.Attributes, "messaging.system", "asynq") {
					t.Errorf("%s: process span attributes %v", id, s.Attributes)
				}
			}
			if len(process) != len(runs) {
				t.Fatalf("%s: %d process spans for %d runs", id, len(process), len(runs))
			}
			for i, m := range runs {
				j := slices.IndexFunc(process, func(s tracetest.SpanStub) bool { return [8]byte(s.SpanContext.SpanID()) == m.Span.SpanID })
				if j < 0 {
					t.Errorf("%s run %d: span id %x is not one of its process spans", id, i+1, m.Span.SpanID)
					continue
				}
				if failed := process[j].Status.Code == codes.Error; failed != (m.Status == telemetry.StatusFailed) {
					t.Errorf("%s run %d (%s): span status %v", id, i+1, m.Status, process[j].Status)
				}
			}
		}
		check(ok, "ok")
		check(fail, "fail")
		check(flaky, "flaky")
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

// TestMiddlewareUnwinding calls a Middleware of the default
// configuration, whose tasks take its shortest path, with the context and
// task of a real asynq task run and handlers that do not return: a panic
// is recorded as a failed run and goes on to the caller with its value;
// runtime.Goexit ends the run as failed rather than leaving it pending
// or calling it completed: asynq never gets the handler's result, and
// fails the attempt when its context ends.
func TestMiddlewareUnwinding(t *testing.T) {
	caps := captureTasks(t, 1)
	ctx, task := caps[0].ctx, caps[0].task
	id := task.ResultWriter().TaskID()

	t.Run("panic", func(t *testing.T) {
		rec := newRecorder(t)
		h := epasynq.NewMiddleware(epasynq.Config{Recorder: rec}).Wrap(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
			panic("out of cheese")
		}))
		var got any
		func() {
			defer func() { got = recover() }()
			h.ProcessTask(ctx, task)
		}()
		if got != "out of cheese" {
			t.Errorf("the caller recovered %v, want the handler's panic value", got)
		}
		m, ok := rec.Metrics(id)
		if !ok || m.Status != telemetry.StatusFailed || m.Error != "asynq: task handler panicked: out of cheese" || m.EventName != "bench" || m.EnqueueTime.IsZero() {
			t.Errorf("got %+v, %v; want a failed run of bench with the panic and an enqueue time", m, ok)
		}
	})
	t.Run("goexit", func(t *testing.T) {
		rec := newRecorder(t)
		h := epasynq.NewMiddleware(epasynq.Config{Recorder: rec}).Wrap(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
			runtime.Goexit()
			return nil
		}))
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ProcessTask(ctx, task)
		}()
		<-done
		if m, ok := rec.Metrics(id); !ok || m.Status != telemetry.StatusFailed || m.Error != "asynq: task handler called runtime.Goexit" {
			t.Errorf("got %+v, %v; want a failed run with the Goexit error", m, ok)
		}
	})
}

// TestSpanErrorTextCut checks that the span of a run that failed with an
// 11,000-byte error carries the error text its record keeps, cut at the
// Recorder's WithMaxErrorLength (here 3000 bytes), in its status and its
// exception event, not the whole text.
func TestSpanErrorTextCut(t *testing.T) {
	caps := captureTasks(t, 1)
	ctx, task := caps[0].ctx, caps[0].task
	id := task.ResultWriter().TaskID()
	long := errors.New(strings.Repeat("0123456789", 1100))
	rec := newRecorder(t, telemetry.WithMaxErrorLength(3000))
	tp, exp := newTracing(t)
	h := epasynq.NewMiddleware(epasynq.Config{Recorder: rec, TracerProvider: tp}).Wrap(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		return long
	}))
	if err := h.ProcessTask(ctx, task); err != long {
		t.Fatalf("got %v, want the handler's error", err)
	}
	m, _ := rec.Metrics(id)
	if m.Status != telemetry.StatusFailed || len(m.Error) != 3000 {
		t.Fatalf("got a %s run with %d bytes of error, want a failed one with 3000", m.Status, len(m.Error))
	}
	spans := spansNamed(exp, "process bench")
	if len(spans) != 1 {
		t.Fatalf("got %d process spans, want 1", len(spans))
	}
	checkSpanError(t, spans[0], m.Error)
}

// checkSpanError checks that span s has status Error and an exception
// event, both with the text want.
func checkSpanError(t *testing.T, s tracetest.SpanStub, want string) {
	t.Helper()
	if s.Status.Code != codes.Error || s.Status.Description != want {
		t.Errorf("span %q: got status %v with %d bytes, want Error with the record's %d bytes ending %q",
			s.Name, s.Status.Code, len(s.Status.Description), len(want), want[max(0, len(want)-30):])
	}
	var msg string
	for _, ev := range s.Events {
		if ev.Name == "exception" {
			for _, a := range ev.Attributes {
				if a.Key == "exception.message" {
					msg = a.Value.AsString()
				}
			}
		}
	}
	if msg != want {
		t.Errorf("span %q: got exception.message of %d bytes, want the record's %d bytes", s.Name, len(msg), len(want))
	}
}

// TestHandlerReturnsAfterDeadline runs, on a real asynq server, a
// handler that ignores its context: it returns nil only after asynq has
// failed its attempt at the task's deadline (and, with no retry left,
// archived the task). asynq counts the attempt as failed with the
// context's error, so the run is recorded as failed with it too, not as
// completed.
func TestHandlerReturnsAfterDeadline(t *testing.T) {
	redis := testutil.StartRedis(t)
	opt := asynq.RedisClientOpt{Addr: redis.Addr}
	rec := newRecorder(t)
	mw := epasynq.NewMiddleware(epasynq.Config{Recorder: rec})
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	mux := asynq.NewServeMux()
	mux.Use(mw.Wrap)
	mux.HandleFunc("stubborn", func(ctx context.Context, _ *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		<-ctx.Done()
		// Return only once asynq has failed the attempt.
		for end := time.Now().Add(pollTimeout); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if info, err := insp.GetTaskInfo("default", id); err == nil && info.State == asynq.TaskStateArchived {
				return nil
			}
		}
		return errors.New("asynq did not archive the task")
	})
	startServer(t, redis.Addr, mux)
	client, err := epasynq.NewClient(opt, epasynq.Config{Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	info, err := client.Enqueue(context.Background(), asynq.NewTask("stubborn", nil), asynq.MaxRetry(0), asynq.Timeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	waitRuns(t, rec, map[string]int{info.ID: 1})
	got, err := insp.GetTaskInfo("default", info.ID)
	if err != nil || got.LastErr != context.DeadlineExceeded.Error() {
		t.Fatalf("asynq's task: %+v, %v; want one archived with %q", got, err, context.DeadlineExceeded)
	}
	m := runsOf(rec, info.ID)[0]
	if m.Status != telemetry.StatusFailed || !strings.Contains(m.Error, context.DeadlineExceeded.Error()) {
		t.Errorf("got a %s run with error %q, want a failed one with %q, as asynq's", m.Status, m.Error, context.DeadlineExceeded)
	}
	if mw.Failures() != 0 {
		t.Errorf("got %d refused recordings, want 0: %v", mw.Failures(), mw.Err())
	}
}

// TestNilTask checks that the handler of the Middleware, given a nil task
// with the context of a real asynq task run (never so from asynq, but the
// handler is exported), passes it on unrecorded instead of panicking.
func TestNilTask(t *testing.T) {
	caps := captureTasks(t, 1)
	rec := newRecorder(t)
	for _, cfg := range []epasynq.Config{{Recorder: rec}, {Recorder: rec, EventName: func(q, typ string) string { return q + ":" + typ }}} {
		mw := epasynq.NewMiddleware(cfg)
		called := false
		h := mw.Wrap(asynq.HandlerFunc(func(_ context.Context, task *asynq.Task) error {
			called = task == nil
			return nil
		}))
		if err := h.ProcessTask(caps[0].ctx, nil); err != nil || !called {
			t.Errorf("got %v, called with nil %v; want nil and the handler called with the nil task", err, called)
		}
		if mw.Failures() != 0 {
			t.Errorf("got %d refused recordings, want 0: %v", mw.Failures(), mw.Err())
		}
	}
	if n := len(rec.Report().Events); n != 0 {
		t.Errorf("got %d records, want none", n)
	}
}

// TestOverlappingDelivery runs a task whose first attempt ignores its
// context and runs on after asynq has failed it, until asynq has retried
// the task in the same process and the retry has finished: both runs are
// recorded, the retry under the task id with "#2" (its attempt), and the
// Middleware refuses nothing. With a collision, a task of the user's own
// whose id, chosen with asynq.TaskID, is the one the retry would take
// ("coll#2") is still running when the retry starts: the retry is then
// recorded under "coll#2#2".
func TestOverlappingDelivery(t *testing.T) {
	for _, collide := range []bool{false, true} {
		t.Run(map[bool]string{false: "overlap", true: "overlap and collision"}[collide], func(t *testing.T) {
			redis := testutil.StartRedis(t)
			opt := asynq.RedisClientOpt{Addr: redis.Addr}
			rec := newRecorder(t)
			mw := epasynq.NewMiddleware(epasynq.Config{Recorder: rec})
			blocking, retryDone := make(chan struct{}), make(chan struct{})
			mux := asynq.NewServeMux()
			mux.Use(mw.Wrap)
			mux.HandleFunc("blocker", func(context.Context, *asynq.Task) error {
				close(blocking)
				<-retryDone
				return nil
			})
			mux.HandleFunc("stubborn", func(ctx context.Context, _ *asynq.Task) error {
				if n, _ := asynq.GetRetryCount(ctx); n > 0 {
					close(retryDone)
					return nil
				}
				// The first attempt: runs on, past its deadline, until
				// the retry has run.
				select {
				case <-retryDone:
				case <-time.After(pollTimeout):
				}
				return errors.New("first attempt, too late")
			})
			startServer(t, redis.Addr, mux)
			client, err := epasynq.NewClient(opt, epasynq.Config{Recorder: rec})
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			opts := []asynq.Option{asynq.MaxRetry(1), asynq.Timeout(time.Second)}
			if collide {
				if _, err := client.Enqueue(context.Background(), asynq.NewTask("blocker", nil), asynq.TaskID("coll#2")); err != nil {
					t.Fatal(err)
				}
				select {
				case <-blocking:
				case <-time.After(pollTimeout):
					t.Fatal("the task coll#2 did not start")
				}
				opts = append(opts, asynq.TaskID("coll"))
			}
			info, err := client.Enqueue(context.Background(), asynq.NewTask("stubborn", nil), opts...)
			if err != nil {
				t.Fatal(err)
			}
			retryID := info.ID + "#2"
			want := map[string]int{info.ID: 1, retryID: 1}
			if collide {
				retryID = "coll#2#2"
				want = map[string]int{"coll": 1, "coll#2": 1, retryID: 1}
			}
			waitRuns(t, rec, want)
			first, retry := runsOf(rec, info.ID)[0], runsOf(rec, retryID)[0]
			if first.Status != telemetry.StatusFailed || first.RetryCount != 0 {
				t.Errorf("first attempt: got a %s run with %d retries, want a failed one with 0", first.Status, first.RetryCount)
			}
			if retry.Status != telemetry.StatusCompleted || retry.RetryCount != 1 || retry.EventName != first.EventName {
				t.Errorf("retry: got a %s run of %q with %d retries, want a completed run of %q with 1", retry.Status, retry.EventName, retry.RetryCount, first.EventName)
			}
			if collide {
				if user := runsOf(rec, "coll#2")[0]; user.Status != telemetry.StatusCompleted || user.RetryCount != 0 || user.EventName == first.EventName {
					t.Errorf("task coll#2: got a %s run of %q with %d retries, want a completed run of the blocker with 0", user.Status, user.EventName, user.RetryCount)
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
// asynq, nothing is recorded, and every span started has ended.
func TestEventNamePanicsLeavesNoSpan(t *testing.T) {
	caps := captureTasks(t, 1)
	rec := newRecorder(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	mw := epasynq.NewMiddleware(epasynq.Config{Recorder: rec, TracerProvider: tp,
		EventName: func(string, string) string { panic("bad name") }})
	h := mw.Wrap(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil }))
	func() {
		defer func() {
			if v := recover(); v != "bad name" {
				t.Errorf("recovered %v, want the EventName's panic", v)
			}
		}()
		h.ProcessTask(caps[0].ctx, caps[0].task)
	}()
	if started, ended := len(spans.Started()), len(spans.Ended()); started != ended {
		t.Errorf("%d spans started, %d ended: a span is left open", started, ended)
	}
	if n := len(rec.Report().Events); n != 0 {
		t.Errorf("got %d records, want none", n)
	}
}
