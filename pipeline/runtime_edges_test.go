package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/oteltrace"
)

// tracedSetup returns a Recorder, an SDK provider and the recorder of its spans.
func tracedSetup(t *testing.T) (*telemetry.Recorder, *sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return newRecorder(t), tp, sr
}

// spansByName returns the ended spans by name; it fails t if a name is
// ended twice.
func spansByName(t *testing.T, sr *tracetest.SpanRecorder) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	m := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range sr.Ended() {
		if _, dup := m[s.Name()]; dup {
			t.Errorf("span %q ended twice", s.Name())
		}
		m[s.Name()] = s
	}
	return m
}

// A traced run whose event in a sequence calls runtime.Goexit never
// returns, but it failed: its span must say so, as the event's does.
func TestTracedRunGoexitRunSpanFailed(t *testing.T) {
	rec, tp, sr := tracedSetup(t)
	exit := pipeline.Func("exit", func(context.Context, any) (any, error) {
		runtime.Goexit()
		return nil, nil
	})
	p := mustNew(t, pipeline.Config{Recorder: rec, TracerProvider: tp}, pipeline.Sequence(appendEvent("a"), exit))
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(context.Background(), "")
	}()
	<-done
	spans := spansByName(t, sr)
	run, ev := spans[pipeline.RunSpanName], spans["exit"]
	if run == nil || ev == nil {
		t.Fatalf("got spans %v, want the run's and exit's ended", spans)
	}
	if ev.Status().Code != codes.Error || !strings.Contains(ev.Status().Description, "runtime.Goexit") {
		t.Errorf("event span status %+v, want Error naming runtime.Goexit", ev.Status())
	}
	if run.Status().Code != codes.Error || !strings.Contains(run.Status().Description, "runtime.Goexit") {
		t.Errorf("run span status %+v, want Error naming runtime.Goexit", run.Status())
	}
	if n := len(sr.Started()) - len(sr.Ended()); n != 0 {
		t.Errorf("%d spans left unended", n)
	}
}

// A hook's panic goes through Run: the run's span still ends, with status
// Error.
func TestTracedRunHookPanicRunSpanFailed(t *testing.T) {
	rec, tp, sr := tracedSetup(t)
	p := mustNew(t, pipeline.Config{Recorder: rec, TracerProvider: tp, Hooks: panicOnEnd{}}, pipeline.Sequence(appendEvent("a")))
	func() {
		defer func() {
			if v := recover(); v != "hook" {
				t.Errorf("recovered %v, want the hook's panic", v)
			}
		}()
		p.Run(context.Background(), "")
	}()
	run := spansByName(t, sr)[pipeline.RunSpanName]
	if run == nil || run.Status().Code != codes.Error || run.Status().Description != "pipeline: the run panicked" {
		t.Fatalf("run span %v, want ended with status Error", run)
	}
}

type panicOnEnd struct{ pipeline.NopHooks }

func (panicOnEnd) EventEnded(pipeline.Task, error) { panic("hook") }

// In a traced run, every event's span has its record's times, status,
// error text and retries; its parent is the run's span.
func TestTracedRunSpansMatchRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec, tp, sr := tracedSetup(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		n := 0
		flaky := pipeline.WithRetry(pipeline.Func("flaky", func(context.Context, any) (any, error) {
			if n++; n < 3 {
				return nil, errors.New("flake " + strings.Repeat("x", n))
			}
			return "ok", nil
		}), telemetry.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Second, MaxBackoff: time.Second})
		nilnil := pipeline.Func("nilnil", func(context.Context, any) (any, error) { return nil, nil })
		boom := pipeline.WithRetry(pipeline.Func("boom", func(context.Context, any) (any, error) { panic("kaput") }),
			telemetry.RetryPolicy{MaxAttempts: 3})
		waiting := pipeline.WithRetry(pipeline.Func("waiting", func(context.Context, any) (any, error) {
			return nil, errors.New("down")
		}), telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Hour, MaxBackoff: time.Hour})
		h := &logHooks{}
		p := mustNew(t, pipeline.Config{Recorder: rec, TracerProvider: tp, Hooks: pipeline.JoinHooks(h, cancelOnRetryOf{"waiting", cancel})},
			pipeline.Sequence(flaky, nilnil),
			pipeline.Parallel(boom, waiting))
		out, err := p.Run(ctx, "in")
		if out != nil || err == nil {
			t.Fatalf("got %v, %v; want an error", out, err)
		}
		var pe *pipeline.PanicError
		if !errors.As(err, &pe) || pe.Value != "kaput" || !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want the panic and context.Canceled", err)
		}
		if e := p.Telemetry().Err(); e != nil {
			t.Fatalf("recording error: %v", e)
		}
		spans := spansByName(t, sr)
		runSpan := spans[pipeline.RunSpanName]
		if runSpan == nil || runSpan.Status().Code != codes.Error || runSpan.Status().Description != rec.ErrorText(err) {
			t.Fatalf("run span %v, want status Error %q", runSpan, rec.ErrorText(err))
		}
		report := rec.Report()
		if len(report.Events) != 4 {
			t.Fatalf("got %d records, want 4", len(report.Events))
		}
		for _, m := range report.Events {
			s := spans[m.EventName]
			if s == nil {
				t.Errorf("%s: no span", m.EventName)
				continue
			}
			if !s.StartTime().Equal(m.StartTime) || !s.EndTime().Equal(m.EndTime) {
				t.Errorf("%s: span %v..%v, record %v..%v", m.EventName, s.StartTime(), s.EndTime(), m.StartTime, m.EndTime)
			}
			if s.Parent().SpanID() != runSpan.SpanContext().SpanID() {
				t.Errorf("%s: parent %v, want the run span", m.EventName, s.Parent().SpanID())
			}
			if m.Span.SpanID != s.SpanContext().SpanID() || m.Span.TraceID != s.SpanContext().TraceID() {
				t.Errorf("%s: record's span %v, span %v", m.EventName, m.Span, s.SpanContext())
			}
			wantCode := codes.Unset
			if m.Status == telemetry.StatusFailed {
				wantCode = codes.Error
			}
			if s.Status().Code != wantCode || s.Status().Description != m.Error {
				t.Errorf("%s: span status %+v, record %v %q", m.EventName, s.Status(), m.Status, m.Error)
			}
			if len(s.Events()) != m.RetryCount {
				t.Errorf("%s: %d span events, record %d retries", m.EventName, len(s.Events()), m.RetryCount)
			}
			for i, e := range s.Events() {
				a := attrsOf(e)
				if e.Name != oteltrace.RetryEventName || a[string(oteltrace.RetryAttemptKey)] != itoa(i+1) {
					t.Errorf("%s: span event %d %q %v", m.EventName, i, e.Name, a)
				}
			}
			a := map[string]string{}
			for _, kv := range s.Attributes() {
				a[string(kv.Key)] = kv.Value.String()
			}
			if a[string(oteltrace.TaskIDKey)] != m.TaskID || a[string(oteltrace.PipelineRunIDKey)] != m.PipelineID {
				t.Errorf("%s: attributes %v", m.EventName, a)
			}
			if m.RetryCount > 0 && a[string(oteltrace.RetryCountKey)] != itoa(m.RetryCount) {
				t.Errorf("%s: retry_count %q, want %d", m.EventName, a[string(oteltrace.RetryCountKey)], m.RetryCount)
			}
		}
		got := eventsByName(rec)
		for name, want := range map[string]struct {
			status  telemetry.Status
			retries int
		}{
			"flaky": {telemetry.StatusCompleted, 2}, "nilnil": {telemetry.StatusCompleted, 0},
			"boom": {telemetry.StatusFailed, 0}, "waiting": {telemetry.StatusFailed, 1},
		} {
			if m := got[name]; m.Status != want.status || m.RetryCount != want.retries {
				t.Errorf("%s: got %v with %d retries, want %v with %d", name, m.Status, m.RetryCount, want.status, want.retries)
			}
		}
		if n := len(sr.Started()) - len(sr.Ended()); n != 0 {
			t.Errorf("%d spans left unended", n)
		}
		// Hooks: each task started once, ended once, retried in between.
		lines := h.get()
		for _, name := range []string{"flaky", "nilnil", "boom", "waiting"} {
			var mine []string
			for _, l := range lines {
				if strings.Fields(l)[1] == name {
					mine = append(mine, strings.Fields(l)[0])
				}
			}
			if len(mine) < 2 || mine[0] != "start" || mine[len(mine)-1] != "end" ||
				slices.Contains(mine[1:len(mine)-1], "start") || slices.Contains(mine[1:len(mine)-1], "end") {
				t.Errorf("%s: hooks %v, want start, retries, end", name, mine)
			}
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

func attrsOf(e sdktrace.Event) map[string]string {
	m := map[string]string{}
	for _, kv := range e.Attributes {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// cancelOnRetryOf cancels when event retries.
type cancelOnRetryOf struct {
	event  string
	cancel context.CancelFunc
}

func (c cancelOnRetryOf) EventStarted(pipeline.Task) {}
func (c cancelOnRetryOf) EventRetried(t pipeline.Task, _ error, _ time.Duration) {
	if t.Event == c.event {
		c.cancel()
	}
}
func (c cancelOnRetryOf) EventEnded(pipeline.Task, error)                              {}
func (c cancelOnRetryOf) RemoteCallStarted(pipeline.Task, string, string, int, string) {}
func (c cancelOnRetryOf) RemoteCallEnded(pipeline.Task, string, int64, int64, error)   {}

// A pipeline run nested in an event of a run of the same pipeline: task
// ids differ, the inner run's span is a child of the outer event's span.
func TestNestedRunOfSamePipeline(t *testing.T) {
	rec, tp, sr := tracedSetup(t)
	var p *pipeline.Pipeline
	var mu sync.Mutex
	var ids []string
	depth := 0
	ev := pipeline.Func("nest", func(ctx context.Context, in any) (any, error) {
		task, _ := pipeline.TaskFrom(ctx)
		mu.Lock()
		ids = append(ids, task.ID)
		mu.Unlock()
		if depth++; depth < 3 {
			if _, err := p.Run(ctx, in); err != nil {
				return nil, err
			}
		}
		if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
			return nil, errors.New("no span")
		}
		return in, nil
	})
	p = mustNew(t, pipeline.Config{Recorder: rec, TracerProvider: tp}, pipeline.Sequence(ev))
	if _, err := p.Run(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || ids[0] == ids[1] || ids[1] == ids[2] {
		t.Errorf("task ids %v, want 3 different", ids)
	}
	ended := sr.Ended()
	if len(ended) != 6 {
		t.Fatalf("got %d spans, want 6", len(ended))
	}
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range ended {
		byID[s.SpanContext().SpanID()] = s
	}
	for _, s := range ended {
		parent, ok := byID[s.Parent().SpanID()]
		switch {
		case s.Name() == "nest" && (!ok || parent.Name() != pipeline.RunSpanName):
			t.Errorf("event span's parent %v", parent)
		case s.Name() == pipeline.RunSpanName && ok && parent.Name() != "nest":
			t.Errorf("run span's parent %v", parent.Name())
		}
	}
	for _, id := range ids {
		m, ok := rec.Metrics(id)
		if !ok || m.Status != telemetry.StatusCompleted {
			t.Errorf("%s: %+v", id, m)
		}
	}
}

// When the Recorder refuses starts (too many pending runs), no span is
// left unended, each event's span ends once, and the refusals are counted:
// the start and the end of each refused run.
func TestTracedRunRecorderRefuses(t *testing.T) {
	for _, traced := range []bool{true, false} {
		t.Run(map[bool]string{true: "traced", false: "untraced"}[traced], func(t *testing.T) {
			rec, err := telemetry.NewRecorder(telemetry.WithMaxPending(1), telemetry.WithMaxEvents(100)) // one shard
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rec.Close(context.Background()) })
			sr := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			cfg := pipeline.Config{Recorder: rec}
			if traced {
				cfg.TracerProvider = tp
			}
			var wg sync.WaitGroup
			wg.Add(3)
			ev := func(name string) pipeline.Event {
				return pipeline.Func(name, func(ctx context.Context, in any) (any, error) {
					wg.Done()
					wg.Wait() // all three run at once
					return name, nil
				})
			}
			h := &logHooks{}
			cfg.Hooks = h
			p := mustNew(t, cfg, pipeline.Parallel(ev("a"), ev("b"), ev("c")))
			out, err := p.Run(context.Background(), nil)
			if err != nil || !slices.Equal(out.([]any), []any{"a", "b", "c"}) {
				t.Fatalf("got %v, %v", out, err)
			}
			if n := p.Telemetry().Failures(); n != 4 || !errors.Is(p.Telemetry().Err(), telemetry.ErrTooManyPending) {
				t.Errorf("got %d failures (first %v), want 4 (2 starts, 2 ends), ErrTooManyPending", n, p.Telemetry().Err())
			}
			if n := len(rec.Report().Events); n != 1 {
				t.Errorf("got %d records, want 1", n)
			}
			if n := len(sr.Started()) - len(sr.Ended()); n != 0 {
				t.Errorf("%d spans left unended", n)
			}
			if traced {
				spans := spansByName(t, sr)
				if len(spans) != 4 {
					t.Errorf("got spans %v, want the run's and 3 events'", spans)
				}
			}
			if n := len(h.get()); n != 6 {
				t.Errorf("got hooks %q, want 3 starts and 3 ends", h.get())
			}
		})
	}
}

// Many traced runs of one Pipeline at once: task ids unique, every span
// ended once, under the race detector.
func TestTracedRunsConcurrent(t *testing.T) {
	rec, tp, sr := tracedSetup(t)
	retry := telemetry.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Microsecond, MaxBackoff: time.Microsecond}
	var mu sync.Mutex
	seen := map[string]int{}
	ev := func(name string, fail bool) pipeline.Event {
		return pipeline.WithRetry(pipeline.Func(name, func(ctx context.Context, in any) (any, error) {
			task, _ := pipeline.TaskFrom(ctx)
			mu.Lock()
			seen[task.ID]++
			mu.Unlock()
			if fail && task.Attempt == 1 {
				return nil, errors.New("again")
			}
			return in, nil
		}), retry)
	}
	p := mustNew(t, pipeline.Config{Recorder: rec, TracerProvider: tp},
		pipeline.Sequence(ev("a", true)), pipeline.Parallel(ev("b", false), ev("c", true)))
	const runs = 20
	var wg sync.WaitGroup
	for range runs {
		wg.Go(func() {
			if _, err := p.Run(context.Background(), 1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(seen) != 3*runs {
		t.Errorf("got %d task ids, want %d", len(seen), 3*runs)
	}
	if n := len(sr.Ended()); n != 4*runs || len(sr.Started()) != n {
		t.Errorf("got %d spans ended of %d, want %d", n, len(sr.Started()), 4*runs)
	}
	for _, m := range rec.Report().Events {
		want := map[string]int{"a": 1, "b": 0, "c": 1}[m.EventName]
		if m.Status != telemetry.StatusCompleted || m.RetryCount != want || seen[m.TaskID] != want+1 {
			t.Errorf("%s: %v, %d retries, %d attempts", m.TaskID, m.Status, m.RetryCount, seen[m.TaskID])
		}
	}
}

// hookExit is a user hook that ends its goroutine (as t.FailNow does) or
// panics when the event named event is started or retried.
type hookExit struct {
	pipeline.NopHooks
	event string
	on    string // "start" or "retry"
	panic bool
}

func (h hookExit) act(event, on string) {
	if event != h.event || on != h.on {
		return
	}
	if h.panic {
		panic("hook")
	}
	runtime.Goexit()
}

func (h hookExit) EventStarted(t pipeline.Task)                           { h.act(t.Event, "start") }
func (h hookExit) EventRetried(t pipeline.Task, _ error, _ time.Duration) { h.act(t.Event, "retry") }

// A user hook that panics or calls runtime.Goexit leaves no record
// pending and no span unended: the task ends, failed; in a parallel
// stage, which goes on, the stage fails with its EventError.
func TestHookExitEndsTask(t *testing.T) {
	flaky := pipeline.WithRetry(pipeline.Func("flaky", func(context.Context, any) (any, error) { return nil, errors.New("flake") }),
		telemetry.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond})
	for _, traced := range []bool{false, true} {
		for _, parallel := range []bool{false, true} {
			for _, h := range []hookExit{{event: "flaky", on: "start"}, {event: "flaky", on: "retry"}, {event: "flaky", on: "start", panic: true}} {
				if parallel && h.panic {
					continue // a panic on a goroutine of its own ends the program
				}
				name := fmt.Sprintf("traced=%v/parallel=%v/%s/panic=%v", traced, parallel, h.on, h.panic)
				t.Run(name, func(t *testing.T) {
					rec, tp, sr := tracedSetup(t)
					cfg := pipeline.Config{Recorder: rec, Hooks: h}
					if traced {
						cfg.TracerProvider = tp
					}
					stage := pipeline.Sequence(appendEvent("a"), flaky)
					if parallel {
						stage = pipeline.Parallel(appendEvent("a"), flaky)
					}
					p := mustNew(t, cfg, stage)
					var err error
					returned := make(chan bool)
					go func() {
						ok := false
						defer func() {
							recover()
							returned <- ok
						}()
						_, err = p.Run(context.Background(), "")
						ok = true
					}()
					if ok := <-returned; ok != parallel {
						t.Fatalf("Run returned: %v, want %v", ok, parallel)
					}
					var ee *pipeline.EventError
					if parallel && (!errors.As(err, &ee) || ee.Event != "flaky") {
						t.Errorf("got %v, want the EventError of flaky", err)
					}
					m := eventsByName(rec)["flaky"]
					if m.Status != telemetry.StatusFailed || !strings.Contains(m.Error, "hook") {
						t.Errorf("record of flaky: %+v, want failed, saying a hook ended it", m)
					}
					if n := len(sr.Started()) - len(sr.Ended()); n != 0 {
						t.Errorf("%d spans left unended", n)
					}
				})
			}
		}
	}
}

// New returns every problem at once: a Tracer of another Recorder too.
func TestNewJoinsTracerMismatch(t *testing.T) {
	rec, tp, _ := tracedSetup(t)
	tr, err := oteltrace.New(newRecorder(t), oteltrace.Config{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(pipeline.Config{Recorder: rec, Tracer: tr}, pipeline.Sequence(nil))
	if p != nil || !errors.Is(err, pipeline.ErrNilEvent) || !strings.Contains(fmt.Sprint(err), "another Recorder") {
		t.Fatalf("got %v, %v; want both the nil event and the Tracer's Recorder", p, err)
	}
}
