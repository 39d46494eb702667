package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

func newRecorder(t testing.TB) *telemetry.Recorder {
	t.Helper()
	r, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func mustNew(t testing.TB, cfg pipeline.Config, stages ...pipeline.Stage) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.New(cfg, stages...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// eventsByName returns the event runs of r by event name.
func eventsByName(r *telemetry.Recorder) map[string]telemetry.EventMetrics {
	m := make(map[string]telemetry.EventMetrics)
	for _, e := range r.Report().Events {
		m[e.EventName] = e
	}
	return m
}

// logHooks logs the calls of the hooks, one line each.
type logHooks struct {
	mu    sync.Mutex
	lines []string
	waits []time.Duration
}

func (h *logHooks) log(format string, args ...any) {
	h.mu.Lock()
	h.lines = append(h.lines, fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

func (h *logHooks) EventStarted(t pipeline.Task) { h.log("start %s", t.Event) }
func (h *logHooks) EventRetried(t pipeline.Task, err error, wait time.Duration) {
	h.mu.Lock()
	h.waits = append(h.waits, wait)
	h.mu.Unlock()
	h.log("retry %s after attempt %d: %v", t.Event, t.Attempt, err)
}
func (h *logHooks) EventEnded(t pipeline.Task, err error) {
	h.log("end %s attempt %d: %v", t.Event, t.Attempt, err)
}
func (h *logHooks) RemoteCallStarted(t pipeline.Task, callID, host string, port int, op string) {
	h.log("call %s %s", t.Event, op)
}
func (h *logHooks) RemoteCallEnded(t pipeline.Task, callID string, sent, received int64, err error) {
	h.log("call end %s: %v", t.Event, err)
}

func (h *logHooks) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.lines)
}

// appendEvent returns an event that appends its name to the input string.
func appendEvent(name string) pipeline.Event {
	return pipeline.Func(name, func(ctx context.Context, in any) (any, error) {
		return in.(string) + "," + name, nil
	})
}

func TestRunSequenceOrderAndTelemetry(t *testing.T) {
	r := newRecorder(t)
	h := &logHooks{}
	p := mustNew(t, pipeline.Config{Recorder: r, Hooks: h},
		pipeline.Sequence(appendEvent("a"), appendEvent("b")),
		pipeline.Sequence(appendEvent("c")))
	out, err := p.Run(context.Background(), "in")
	if err != nil {
		t.Fatal(err)
	}
	if out != "in,a,b,c" {
		t.Errorf("got output %q, want %q", out, "in,a,b,c")
	}
	want := []string{"start a", "end a attempt 1: <nil>", "start b", "end b attempt 1: <nil>", "start c", "end c attempt 1: <nil>"}
	if got := h.get(); !slices.Equal(got, want) {
		t.Errorf("got hooks %q, want %q", got, want)
	}

	evs := r.Report().Events
	if len(evs) != 3 {
		t.Fatalf("got %d event runs, want 3", len(evs))
	}
	runID := evs[0].PipelineID
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(runID) {
		t.Errorf("got run id %q, want 16 hex digits", runID)
	}
	for i, e := range evs {
		name := string(rune('a' + i))
		wantID := fmt.Sprintf("%s/%s/%d", runID, name, i+1)
		if e.EventName != name || e.TaskID != wantID || e.Status != telemetry.StatusCompleted ||
			e.ProcessID != os.Getpid() || e.PipelineID != runID || e.RetryCount != 0 {
			t.Errorf("got %+v, want completed %s, task %s, pid %d", e, name, wantID, os.Getpid())
		}
	}

	// A second run has a run id of its own.
	if _, err := p.Run(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if evs := r.Report().Events; evs[3].PipelineID == runID {
		t.Errorf("two runs got the same run id %q", runID)
	}
}

func TestRunParallelStage(t *testing.T) { synctest.Test(t, testRunParallelStage) }

func testRunParallelStage(t *testing.T) {
	r := newRecorder(t)
	const n = 3
	var started sync.WaitGroup
	started.Add(n)
	allStarted := make(chan struct{})
	go func() { started.Wait(); close(allStarted) }()
	var events []pipeline.Event
	for i := range n {
		events = append(events, pipeline.Func(fmt.Sprintf("p%d", i), func(ctx context.Context, in any) (any, error) {
			started.Done()
			select { // returns only once every event has started: they run at once
			case <-allStarted:
			case <-time.After(5 * time.Second): // fake time: fires only if the events deadlock
				return nil, errors.New("the events did not run at once")
			}
			return fmt.Sprintf("%s-%d", in, i), nil
		}))
	}
	p := mustNew(t, pipeline.Config{Recorder: r}, pipeline.Parallel(events...), pipeline.Sequence(
		pipeline.Func("join", func(ctx context.Context, in any) (any, error) { return fmt.Sprint(in), nil })))
	out, err := p.Run(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if out != "[x-0 x-1 x-2]" {
		t.Errorf("got %q, want the outputs in the order of the events", out)
	}
	got := eventsByName(r)
	for i := range n {
		e := got[fmt.Sprintf("p%d", i)]
		if e.Status != telemetry.StatusCompleted || !strings.HasSuffix(e.TaskID, fmt.Sprintf("/p%d/%d", i, i+1)) {
			t.Errorf("got %+v, want completed with task number %d", e, i+1)
		}
	}
	if e := got["join"]; !strings.HasSuffix(e.TaskID, "/join/4") {
		t.Errorf("got task id %q, want number 4", e.TaskID)
	}
}

func TestParallelStageRunsEveryEventAndJoinsErrors(t *testing.T) {
	synctest.Test(t, testParallelStageRunsEveryEventAndJoinsErrors)
}

func testParallelStageRunsEveryEventAndJoinsErrors(t *testing.T) {
	r := newRecorder(t)
	errA, errC := errors.New("a broke"), errors.New("c broke")
	fail := func(name string, err error) pipeline.Event {
		return pipeline.Func(name, func(context.Context, any) (any, error) { return nil, err })
	}
	slowOK := pipeline.Func("b", func(ctx context.Context, in any) (any, error) {
		time.Sleep(20 * time.Millisecond) // fake time: b ends after a and c failed
		return "ok", ctx.Err()
	})
	p := mustNew(t, pipeline.Config{Recorder: r}, pipeline.Parallel(fail("a", errA), slowOK, fail("c", errC)), pipeline.Sequence(appendEvent("never")))
	start := time.Now()
	_, err := p.Run(context.Background(), "")
	if got := time.Since(start); got != 20*time.Millisecond {
		t.Errorf("the stage ended after %v, want 20ms: when the slow event ended", got)
	}
	if !errors.Is(err, errA) || !errors.Is(err, errC) {
		t.Fatalf("got %v, want both errors", err)
	}
	var ee *pipeline.EventError
	if !errors.As(err, &ee) || ee.Event != "a" || ee.Attempts != 1 {
		t.Errorf("got %#v, want the EventError of a first", ee)
	}
	got := eventsByName(r)
	if got["a"].Status != telemetry.StatusFailed || got["a"].Error != "a broke" ||
		got["b"].Status != telemetry.StatusCompleted || got["c"].Status != telemetry.StatusFailed {
		t.Errorf("got %+v, want a and c failed, b completed", got)
	}
	if _, ok := got["never"]; ok {
		t.Error("the stage after a failed one ran")
	}
}

// attemptLog records when each attempt of an event starts, in the fake
// time of a synctest bubble.
type attemptLog struct {
	mu    sync.Mutex
	times []time.Time
}

func (l *attemptLog) add() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.times = append(l.times, time.Now())
	return len(l.times)
}

// gaps returns the time between consecutive attempts.
func (l *attemptLog) gaps() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var d []time.Duration
	for i := 1; i < len(l.times); i++ {
		d = append(d, l.times[i].Sub(l.times[i-1]))
	}
	return d
}

func TestRunRetries(t *testing.T) {
	errFlaky := errors.New("flaky")
	tests := []struct {
		name         string
		policy       *telemetry.RetryPolicy // nil: no WithRetry
		retryable    func(error) bool
		failures     int   // attempts that fail before one succeeds
		err          error // the error of the failing attempts
		wantAttempts int
		wantStatus   telemetry.Status
		wantBackoffs []time.Duration // the un-jittered waits: each wait is in [d/2, d]
	}{
		{name: "succeeds on the third attempt", policy: &telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Second},
			failures: 2, err: errFlaky, wantAttempts: 3, wantStatus: telemetry.StatusCompleted, wantBackoffs: []time.Duration{time.Second, 2 * time.Second}},
		{name: "gives up after max attempts", policy: &telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Second, MaxBackoff: time.Second},
			failures: 5, err: errFlaky, wantAttempts: 3, wantStatus: telemetry.StatusFailed, wantBackoffs: []time.Duration{time.Second, time.Second}},
		{name: "defaults of telemetry.DefaultRetryPolicy", policy: &telemetry.RetryPolicy{MaxAttempts: 4},
			failures: 5, err: errFlaky, wantAttempts: 4, wantStatus: telemetry.StatusFailed,
			wantBackoffs: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}},
		{name: "nil policy: single attempt", failures: 1, err: errFlaky, wantAttempts: 1, wantStatus: telemetry.StatusFailed},
		{name: "permanent error is not retried", policy: &telemetry.RetryPolicy{MaxAttempts: 5},
			failures: 1, err: telemetry.Permanent(errFlaky), wantAttempts: 1, wantStatus: telemetry.StatusFailed},
		{name: "custom retryable", policy: &telemetry.RetryPolicy{MaxAttempts: 5},
			retryable: func(err error) bool { return !errors.Is(err, errFlaky) },
			failures:  1, err: errFlaky, wantAttempts: 1, wantStatus: telemetry.StatusFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRecorder(t)
				h := &logHooks{}
				var log attemptLog
				ev := pipeline.Func("flaky", func(ctx context.Context, in any) (any, error) {
					attempts := log.add()
					if task, _ := pipeline.TaskFrom(ctx); task.Attempt != attempts {
						t.Errorf("got attempt %d in the task, want %d", task.Attempt, attempts)
					}
					if attempts <= tc.failures {
						return nil, tc.err
					}
					return "done", nil
				})
				if tc.policy != nil {
					ev = pipeline.WithRetry(ev, *tc.policy)
				}
				p := mustNew(t, pipeline.Config{Recorder: r, Hooks: h, Retryable: tc.retryable}, pipeline.Sequence(ev))
				_, err := p.Run(context.Background(), nil)
				if attempts := len(log.times); attempts != tc.wantAttempts {
					t.Errorf("got %d attempts, want %d", attempts, tc.wantAttempts)
				}
				if (err == nil) != (tc.wantStatus == telemetry.StatusCompleted) {
					t.Errorf("got error %v, want status %s", err, tc.wantStatus)
				}
				var ee *pipeline.EventError
				if err != nil && (!errors.As(err, &ee) || ee.Attempts != tc.wantAttempts || !errors.Is(err, errFlaky)) {
					t.Errorf("got %v, want an EventError of %d attempts wrapping the error", err, tc.wantAttempts)
				}
				m := eventsByName(r)["flaky"]
				if m.Status != tc.wantStatus || m.RetryCount != tc.wantAttempts-1 {
					t.Errorf("got %s with %d retries, want %s with %d", m.Status, m.RetryCount, tc.wantStatus, tc.wantAttempts-1)
				}
				// The pipeline waits exactly what it tells the hooks, and
				// each wait is the backoff less a jitter of up to half.
				if gaps := log.gaps(); !slices.Equal(gaps, h.waits) {
					t.Errorf("waited %v between attempts, told the hooks %v", gaps, h.waits)
				}
				if len(h.waits) != len(tc.wantBackoffs) {
					t.Fatalf("got waits %v, want %d of them", h.waits, len(tc.wantBackoffs))
				}
				for i, d := range tc.wantBackoffs {
					if w := h.waits[i]; w < d/2 || w > d {
						t.Errorf("wait %d: got %v, want within [%v, %v]", i+1, w, d/2, d)
					}
				}
				if rs := r.RetryStats(); rs.TotalRetries != uint64(tc.wantAttempts-1) {
					t.Errorf("got %d total retries, want %d", rs.TotalRetries, tc.wantAttempts-1)
				}
			})
		})
	}
}

// TestRetryWaitsDoubleUpToMaxBackoff checks hours of backoff, in fake
// time: waits double from InitialBackoff up to MaxBackoff.
func TestRetryWaitsDoubleUpToMaxBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log attemptLog
		h := &logHooks{}
		ev := pipeline.Func("e", func(context.Context, any) (any, error) {
			log.add()
			return nil, errors.New("down")
		})
		p := mustNew(t, pipeline.Config{NoTelemetry: true, Hooks: h,
			Retry: &telemetry.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Hour, MaxBackoff: 5 * time.Hour, MaxElapsed: 100 * time.Hour}},
			pipeline.Sequence(ev))
		start := time.Now()
		if _, err := p.Run(context.Background(), nil); err == nil {
			t.Fatal("got no error")
		}
		if got, want := time.Since(start), log.times[4].Sub(start); got != want {
			t.Errorf("the run ended %v after the start, want %v: right after the last attempt", got, want)
		}
		gaps := log.gaps()
		if !slices.Equal(gaps, h.waits) {
			t.Errorf("waited %v, told the hooks %v", gaps, h.waits)
		}
		for i, d := range []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour, 5 * time.Hour} {
			if i >= len(gaps) || gaps[i] < d/2 || gaps[i] > d {
				t.Errorf("wait %d: got %v, want within [%v, %v]", i+1, gaps, d/2, d)
			}
		}
	})
}

// TestRetryHonoursRetryAfterMark checks, in fake time, that an event
// error marked with telemetry.RetryAfter sets the wait before its retry,
// as a worker's Retry-After does, capped at MaxBackoff.
func TestRetryHonoursRetryAfterMark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log attemptLog
		h := &logHooks{}
		waits := []time.Duration{3 * time.Second, time.Minute}
		ev := pipeline.Func("e", func(context.Context, any) (any, error) {
			log.add()
			if len(waits) == 0 {
				return "ok", nil
			}
			d := waits[0]
			waits = waits[1:]
			return nil, telemetry.RetryAfter(errors.New("busy"), d)
		})
		p := mustNew(t, pipeline.Config{NoTelemetry: true, Hooks: h,
			Retry: &telemetry.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Second}},
			pipeline.Sequence(ev))
		if out, err := p.Run(context.Background(), nil); err != nil || out != "ok" {
			t.Fatalf("got %v, %v", out, err)
		}
		want := []time.Duration{3 * time.Second, 5 * time.Second}
		if gaps := log.gaps(); !slices.Equal(gaps, want) || !slices.Equal(h.waits, want) {
			t.Errorf("waited %v, told the hooks %v; want %v", gaps, h.waits, want)
		}
	})
}

// TestRetryLastAttemptAtMaxElapsed checks the promise of MaxElapsed: a
// wait that would end after it is shortened, for a last attempt exactly at
// MaxElapsed after the first one started. The waits are 5s to 10s (10s
// less the jitter), so that one of them always reaches past 12s.
func TestRetryLastAttemptAtMaxElapsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log attemptLog
		h := &logHooks{}
		ev := pipeline.WithRetry(pipeline.Func("e", func(context.Context, any) (any, error) {
			log.add()
			return nil, errors.New("down")
		}), telemetry.RetryPolicy{InitialBackoff: 10 * time.Second, MaxBackoff: 10 * time.Second, MaxElapsed: 12 * time.Second})
		p := mustNew(t, pipeline.Config{NoTelemetry: true, Hooks: h}, pipeline.Sequence(ev))
		start := time.Now()
		_, err := p.Run(context.Background(), nil)
		var ee *pipeline.EventError
		if !errors.As(err, &ee) || ee.Attempts != len(log.times) {
			t.Fatalf("got %v, want an EventError of %d attempts", err, len(log.times))
		}
		last := log.times[len(log.times)-1]
		if got := last.Sub(start); got != 12*time.Second {
			t.Errorf("the last attempt started %v after the first, want exactly 12s (gaps %v)", got, log.gaps())
		}
		if got := time.Since(start); got != 12*time.Second {
			t.Errorf("the run ended after %v, want 12s: right after the last attempt", got)
		}
		if !slices.Equal(log.gaps(), h.waits) {
			t.Errorf("got gaps %v, told the hooks %v", log.gaps(), h.waits)
		}
		if n := len(log.times); n < 2 || n > 4 { // waits of at least 5s from 0 to 12s
			t.Errorf("got %d attempts, want 2 to 4", n)
		}
	})
}

func TestRunCancelledWhileWaitingToRetry(t *testing.T) {
	synctest.Test(t, testRunCancelledWhileWaitingToRetry)
}

func testRunCancelledWhileWaitingToRetry(t *testing.T) {
	r := newRecorder(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errDown := errors.New("down")
	ev := pipeline.WithRetry(pipeline.Func("e", func(context.Context, any) (any, error) {
		return nil, errDown
	}), telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Hour, MaxBackoff: time.Hour})
	// Cancel when the pipeline is about to wait the backoff of an hour.
	p := mustNew(t, pipeline.Config{Recorder: r, Hooks: cancelOnRetry{cancel: cancel}}, pipeline.Sequence(ev, appendEvent("next")))
	start := time.Now()
	_, err := p.Run(ctx, "")
	if got := time.Since(start); got != 0 {
		t.Errorf("the run ended %v after the cancellation, want at once (fake time 0)", got)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errDown) {
		t.Errorf("got %v, want both context.Canceled and the attempt's error", err)
	}
	got := eventsByName(r)
	if e := got["e"]; e.Status != telemetry.StatusFailed || e.RetryCount != 1 || !strings.Contains(e.Error, "context canceled") {
		t.Errorf("got %+v, want failed with 1 retry and context canceled", e)
	}
	if _, ok := got["next"]; ok {
		t.Error("an event started after the cancellation")
	}
}

// TestRunWhenContextEndsDuringEvent checks what Run's doc says of an event
// that is running when ctx ends: it runs to its end, its result stands
// and it is not retried; Run wraps ctx.Err() only when it stops before an
// event.
func TestRunWhenContextEndsDuringEvent(t *testing.T) {
	errOwn := errors.New("disk full") // does not wrap ctx.Err()
	retry := telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}
	// cancelling returns an event that cancels the run's context, then
	// returns out and err.
	type cancelling func(cancel context.CancelFunc) pipeline.Event
	event := func(name string, out any, err error) cancelling {
		return func(cancel context.CancelFunc) pipeline.Event {
			return pipeline.WithRetry(pipeline.Func(name, func(context.Context, any) (any, error) {
				cancel()
				return out, err
			}), retry)
		}
	}
	tests := []struct {
		name       string
		stages     func(cancel context.CancelFunc) []pipeline.Stage
		wantOut    any
		wantErr    error // nil: Run succeeds
		wantCtxErr bool  // the error wraps context.Canceled
		wantRan    []string
	}{
		{
			name: "last event succeeds",
			stages: func(c context.CancelFunc) []pipeline.Stage {
				return []pipeline.Stage{pipeline.Sequence(appendEvent("a"), event("last", "done", nil)(c))}
			},
			wantOut: "done", wantRan: []string{"a", "last"},
		},
		{
			name: "last parallel stage succeeds",
			stages: func(c context.CancelFunc) []pipeline.Stage {
				return []pipeline.Stage{pipeline.Parallel(event("p1", 1, nil)(c), event("p2", 2, nil)(c))}
			},
			wantOut: []any{1, 2}, wantRan: []string{"p1", "p2"},
		},
		{
			name: "event fails with its own error",
			stages: func(c context.CancelFunc) []pipeline.Stage {
				return []pipeline.Stage{pipeline.Sequence(event("e", nil, errOwn)(c), appendEvent("next"))}
			},
			wantErr: errOwn, wantRan: []string{"e"},
		},
		{
			name: "event fails with ctx.Err()",
			stages: func(c context.CancelFunc) []pipeline.Stage {
				return []pipeline.Stage{pipeline.Sequence(event("e", nil, context.Canceled)(c))}
			},
			wantErr: context.Canceled, wantCtxErr: true, wantRan: []string{"e"},
		},
		{
			name: "event succeeds, the next does not start",
			stages: func(c context.CancelFunc) []pipeline.Stage {
				return []pipeline.Stage{pipeline.Sequence(event("e", "x", nil)(c), appendEvent("next"))}
			},
			wantCtxErr: true, wantRan: []string{"e"},
		},
		{
			name: "stage succeeds, the next does not start",
			stages: func(c context.CancelFunc) []pipeline.Stage {
				return []pipeline.Stage{pipeline.Sequence(event("e", "x", nil)(c)), pipeline.Sequence(appendEvent("next"))}
			},
			wantCtxErr: true, wantRan: []string{"e"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out, err := mustNew(t, pipeline.Config{Recorder: r}, tc.stages(cancel)...).Run(ctx, "")
			failed := tc.wantErr != nil || tc.wantCtxErr
			if (err != nil) != failed || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || errors.Is(err, context.Canceled) != tc.wantCtxErr {
				t.Errorf("got error %v, want %v (wrapping context.Canceled: %v)", err, tc.wantErr, tc.wantCtxErr)
			}
			if !failed && !reflect.DeepEqual(out, tc.wantOut) {
				t.Errorf("got output %#v, want %#v", out, tc.wantOut)
			}
			got := eventsByName(r)
			if len(got) != len(tc.wantRan) {
				t.Errorf("got %d events run, want %v", len(got), tc.wantRan)
			}
			for _, name := range tc.wantRan {
				if e, ok := got[name]; !ok || e.RetryCount != 0 {
					t.Errorf("event %s: got %+v, want one run without retries", name, e)
				}
			}
		})
	}
}

type cancelOnRetry struct {
	pipeline.NopHooks
	cancel context.CancelFunc
}

func (c cancelOnRetry) EventRetried(pipeline.Task, error, time.Duration) { c.cancel() }

func TestRunHonoursDeadline(t *testing.T) { synctest.Test(t, testRunHonoursDeadline) }

func testRunHonoursDeadline(t *testing.T) {
	r := newRecorder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	attempts := 0
	ev := pipeline.WithRetry(pipeline.Func("slow", func(ctx context.Context, in any) (any, error) {
		attempts++
		<-ctx.Done()
		return nil, ctx.Err()
	}), telemetry.DefaultRetryPolicy)
	p := mustNew(t, pipeline.Config{Recorder: r}, pipeline.Sequence(ev))
	start := time.Now()
	_, err := p.Run(ctx, nil)
	if got := time.Since(start); got != 30*time.Millisecond {
		t.Errorf("the run ended after %v, want 30ms: at the deadline", got)
	}
	if !errors.Is(err, context.DeadlineExceeded) || attempts != 1 {
		t.Errorf("got %v after %d attempts, want DeadlineExceeded after 1", err, attempts)
	}
	if e := eventsByName(r)["slow"]; e.Status != telemetry.StatusFailed || e.Error != "context deadline exceeded" {
		t.Errorf("got %+v, want failed with context deadline exceeded", e)
	}

	// A run whose context has already ended starts nothing.
	_, err = p.Run(ctx, nil)
	if !errors.Is(err, context.DeadlineExceeded) || attempts != 1 {
		t.Errorf("got %v, %d attempts; want DeadlineExceeded and no new attempt", err, attempts)
	}
}

func TestRunRecoversPanics(t *testing.T) {
	r := newRecorder(t)
	attempts := 0
	ev := pipeline.WithRetry(pipeline.Func("boom", func(context.Context, any) (any, error) {
		attempts++
		panic("nil map")
	}), telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond})
	_, err := mustNew(t, pipeline.Config{Recorder: r}, pipeline.Sequence(ev)).Run(context.Background(), nil)
	var pe *pipeline.PanicError
	if !errors.As(err, &pe) || pe.Value != "nil map" || len(pe.Stack) == 0 || attempts != 1 {
		t.Fatalf("got %v after %d attempts, want a PanicError with a stack, not retried", err, attempts)
	}
	if e := eventsByName(r)["boom"]; e.Status != telemetry.StatusFailed || e.Error != `pipeline: event "boom" panicked: nil map` {
		t.Errorf("got %+v", e)
	}
}

// nameFromField is an event of the user's own whose Name reads a field:
// a nil *nameFromField panics in Name.
type nameFromField struct{ name string }

func (e *nameFromField) Name() string                                   { return e.name }
func (e *nameFromField) Process(_ context.Context, in any) (any, error) { return in, nil }

func TestNewRejectsBadPipelines(t *testing.T) {
	ok := appendEvent("ok")
	tests := []struct {
		name   string
		cfg    pipeline.Config
		stages []pipeline.Stage
		want   []error
		text   string
	}{
		{name: "no stages", want: []error{pipeline.ErrNoStages}},
		{name: "empty stage", stages: []pipeline.Stage{pipeline.Sequence(ok), pipeline.Parallel()}, want: []error{pipeline.ErrEmptyStage}, text: "stage 2"},
		{name: "nil and unnamed events", stages: []pipeline.Stage{pipeline.Sequence(ok, nil, pipeline.Func("", nil))},
			want: []error{pipeline.ErrNilEvent, pipeline.ErrEmptyEventName}, text: "stage 1, event 3"},
		{name: "nil remote event and retried nil event", // a Remote that failed, its error ignored
			stages: []pipeline.Stage{pipeline.Sequence(ok, (*pipeline.RemoteEvent)(nil), pipeline.WithRetry(nil, telemetry.RetryPolicy{}))},
			want:   []error{pipeline.ErrNilEvent}, text: "pipeline: stage 1, event 2: nil event\npipeline: stage 1, event 3: nil event"},
		{name: "typed nil events of your own", // a nil pointer whose Name would panic
			stages: []pipeline.Stage{pipeline.Sequence(ok, (*nameFromField)(nil), pipeline.WithRetry((*nameFromField)(nil), telemetry.RetryPolicy{}))},
			want:   []error{pipeline.ErrNilEvent}, text: "pipeline: stage 1, event 2: nil event\npipeline: stage 1, event 3: nil event"},
		{name: "bad config policy and pid", cfg: pipeline.Config{ProcessID: -1, Retry: &telemetry.RetryPolicy{MaxAttempts: -1, MaxElapsed: -1}},
			stages: []pipeline.Stage{pipeline.Sequence(ok)},
			text:   "pipeline: config: retry policy: max attempts must not be negative, got -1\npipeline: config: retry policy: max elapsed must not be negative"},
		{name: "bad event policy", stages: []pipeline.Stage{pipeline.Sequence(pipeline.WithRetry(ok, telemetry.RetryPolicy{InitialBackoff: -1, MaxBackoff: -2}))},
			text: "pipeline: stage 1, event \"ok\": retry policy: initial backoff must not be negative, got -1ns\npipeline: stage 1, event \"ok\": retry policy: max backoff must not be negative, got -2ns"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.NoTelemetry = true
			p, err := pipeline.New(tc.cfg, tc.stages...)
			if err == nil || p != nil {
				t.Fatalf("got %v, %v; want an error", p, err)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("got %v, want it to wrap %v", err, w)
				}
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("got %q, want it to contain %q", err, tc.text)
			}
		})
	}
}

func TestNilRecorderRecordsIntoDefault(t *testing.T) {
	prev := telemetry.Default()
	t.Cleanup(func() { telemetry.SetDefault(prev) })
	r := newRecorder(t)
	telemetry.SetDefault(r)

	p := mustNew(t, pipeline.Config{}, pipeline.Sequence(appendEvent("a")))
	if p.Telemetry().Recorder() != r {
		t.Error("the pipeline does not record into the default Recorder")
	}
	if _, err := p.Run(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if e := eventsByName(telemetry.Default())["a"]; e.Status != telemetry.StatusCompleted {
		t.Errorf("got %+v in the default Recorder, want a completed run of a", e)
	}
}

func TestNoTelemetryCallsOnlyHooks(t *testing.T) {
	h := &logHooks{}
	p := mustNew(t, pipeline.Config{NoTelemetry: true, Hooks: h}, pipeline.Sequence(appendEvent("a")))
	if p.Telemetry() != nil {
		t.Error("got telemetry hooks with NoTelemetry")
	}
	if _, err := p.Run(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if got := h.get(); len(got) != 2 {
		t.Errorf("got hooks %q, want start and end", got)
	}
}

func TestTelemetryHooksCountRecorderErrors(t *testing.T) {
	r := newRecorder(t)
	r.Close(context.Background())
	p := mustNew(t, pipeline.Config{Recorder: r}, pipeline.Sequence(appendEvent("a")))
	if _, err := p.Run(context.Background(), ""); err != nil {
		t.Fatalf("a closed Recorder failed the run: %v", err)
	}
	if h := p.Telemetry(); h.Failures() != 2 || !errors.Is(h.Err(), telemetry.ErrClosed) {
		t.Errorf("got %d failures, first %v; want 2 and ErrClosed", h.Failures(), h.Err())
	}
}

// TestRunConcurrentSafe runs one pipeline from many goroutines at once.
func TestRunConcurrentSafe(t *testing.T) {
	r := newRecorder(t)
	p := mustNew(t, pipeline.Config{Recorder: r}, pipeline.Parallel(appendEvent("a"), appendEvent("b")), pipeline.Sequence(
		pipeline.Func("c", func(context.Context, any) (any, error) { return nil, nil })))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := p.Run(context.Background(), ""); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if s := r.Stats(); s.EventsEnded != 8*20*3 || s.EventsFailed != 0 {
		t.Errorf("got %d ended, %d failed; want %d and 0", s.EventsEnded, s.EventsFailed, 8*20*3)
	}
	if h := p.Telemetry(); h.Failures() != 0 {
		t.Errorf("got %d recording failures (duplicate task ids?): %v", h.Failures(), h.Err())
	}
}

// TestRunEventGoexit runs events that call runtime.Goexit (as t.FailNow
// does), in a parallel stage and in a sequence, and checks that each run
// still ends, failed, in the telemetry, the hooks and (in a parallel
// stage, whose run goes on) the stage's error, rather than leaving a
// pending record and a stage that succeeds with a nil output.
func TestRunEventGoexit(t *testing.T) {
	exit := pipeline.Func("exit", func(context.Context, any) (any, error) {
		runtime.Goexit()
		return nil, nil
	})
	t.Run("parallel", func(t *testing.T) {
		r, h := newRecorder(t), &logHooks{}
		p := mustNew(t, pipeline.Config{Recorder: r, Hooks: h}, pipeline.Parallel(appendEvent("a"), exit))
		out, err := p.Run(context.Background(), "")
		var ee *pipeline.EventError
		if !errors.As(err, &ee) || ee.Event != "exit" || !strings.Contains(err.Error(), "runtime.Goexit") {
			t.Errorf("got %v, %v; want the EventError of exit, saying it called runtime.Goexit", out, err)
		}
		if e := eventsByName(r)["exit"]; e.Status != telemetry.StatusFailed {
			t.Errorf("record of exit: got %+v, want a failed one", e)
		}
		if got := h.get(); !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "end exit attempt 1: ") }) {
			t.Errorf("hooks: got %q, want the end of exit", got)
		}
	})
	t.Run("sequence", func(t *testing.T) {
		r, h := newRecorder(t), &logHooks{}
		p := mustNew(t, pipeline.Config{Recorder: r, Hooks: h}, pipeline.Sequence(appendEvent("a"), exit))
		done := make(chan bool)
		go func() {
			returned := false
			defer func() { done <- returned }()
			p.Run(context.Background(), "")
			returned = true
		}()
		if <-done {
			t.Fatal("Run returned, want its goroutine ended by the event")
		}
		if e := eventsByName(r)["exit"]; e.Status != telemetry.StatusFailed {
			t.Errorf("record of exit: got %+v, want a failed one", e)
		}
		if got := h.get(); !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "end exit attempt 1: ") }) {
			t.Errorf("hooks: got %q, want the end of exit", got)
		}
	})
}
