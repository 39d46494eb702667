package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
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

func TestRunParallelStage(t *testing.T) {
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
			case <-time.After(5 * time.Second):
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
	r := newRecorder(t)
	errA, errC := errors.New("a broke"), errors.New("c broke")
	fail := func(name string, err error) pipeline.Event {
		return pipeline.Func(name, func(context.Context, any) (any, error) { return nil, err })
	}
	slowOK := pipeline.Func("b", func(ctx context.Context, in any) (any, error) {
		time.Sleep(20 * time.Millisecond)
		return "ok", ctx.Err()
	})
	p := mustNew(t, pipeline.Config{Recorder: r}, pipeline.Parallel(fail("a", errA), slowOK, fail("c", errC)), pipeline.Sequence(appendEvent("never")))
	_, err := p.Run(context.Background(), "")
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

func TestRunRetries(t *testing.T) {
	errFlaky := errors.New("flaky")
	tests := []struct {
		name         string
		policy       pipeline.RetryPolicy
		failures     int   // attempts that fail before one succeeds
		err          error // the error of the failing attempts
		wantAttempts int
		wantStatus   telemetry.Status
		wantWaits    []time.Duration
	}{
		{name: "succeeds on the third attempt", policy: pipeline.RetryPolicy{MaxAttempts: 3, BackoffFactor: time.Millisecond},
			failures: 2, err: errFlaky, wantAttempts: 3, wantStatus: telemetry.StatusCompleted, wantWaits: []time.Duration{time.Millisecond, 2 * time.Millisecond}},
		{name: "gives up after max attempts", policy: pipeline.RetryPolicy{MaxAttempts: 3, BackoffFactor: time.Millisecond, MaxBackoff: time.Millisecond},
			failures: 5, err: errFlaky, wantAttempts: 3, wantStatus: telemetry.StatusFailed, wantWaits: []time.Duration{time.Millisecond, time.Millisecond}},
		{name: "zero policy: single attempt", failures: 1, err: errFlaky, wantAttempts: 1, wantStatus: telemetry.StatusFailed},
		{name: "permanent error is not retried", policy: pipeline.RetryPolicy{MaxAttempts: 5, BackoffFactor: time.Millisecond},
			failures: 1, err: pipeline.Permanent(errFlaky), wantAttempts: 1, wantStatus: telemetry.StatusFailed},
		{name: "custom retryable", policy: pipeline.RetryPolicy{MaxAttempts: 5, BackoffFactor: time.Millisecond,
			Retryable: func(err error) bool { return !errors.Is(err, errFlaky) }},
			failures: 1, err: errFlaky, wantAttempts: 1, wantStatus: telemetry.StatusFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(t)
			h := &logHooks{}
			attempts := 0
			ev := pipeline.Func("flaky", func(ctx context.Context, in any) (any, error) {
				attempts++
				if task, _ := pipeline.TaskFrom(ctx); task.Attempt != attempts {
					t.Errorf("got attempt %d in the task, want %d", task.Attempt, attempts)
				}
				if attempts <= tc.failures {
					return nil, tc.err
				}
				return "done", nil
			})
			p := mustNew(t, pipeline.Config{Recorder: r, Hooks: h}, pipeline.Sequence(pipeline.WithRetry(ev, tc.policy)))
			_, err := p.Run(context.Background(), nil)
			if attempts != tc.wantAttempts {
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
			if !slices.Equal(h.waits, tc.wantWaits) {
				t.Errorf("got waits %v, want %v", h.waits, tc.wantWaits)
			}
			if rs := r.RetryStats(); rs.TotalRetries != uint64(tc.wantAttempts-1) {
				t.Errorf("got %d total retries, want %d", rs.TotalRetries, tc.wantAttempts-1)
			}
		})
	}
}

func TestRetryPolicyBackoff(t *testing.T) {
	tests := []struct {
		name   string
		policy pipeline.RetryPolicy
		want   []time.Duration // waits before retries 1, 2, ...
	}{
		{name: "defaults", want: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}},
		{name: "doubling", policy: pipeline.RetryPolicy{BackoffFactor: 10 * time.Millisecond}, want: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond}},
		{name: "capped", policy: pipeline.RetryPolicy{BackoffFactor: time.Second, MaxBackoff: 3 * time.Second}, want: []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}},
		{name: "no overflow", policy: pipeline.RetryPolicy{BackoffFactor: time.Hour, MaxBackoff: 1 << 62}, want: []time.Duration{time.Hour, 2 * time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i, want := range tc.want {
				if got := tc.policy.Backoff(i + 1); got != want {
					t.Errorf("retry %d: got %v, want %v", i+1, got, want)
				}
			}
		})
	}
	if got := (pipeline.RetryPolicy{BackoffFactor: time.Second}).Backoff(1000); got != 10*time.Second {
		t.Errorf("retry 1000: got %v, want the default cap 10s", got)
	}
}

func TestRunCancelledWhileWaitingToRetry(t *testing.T) {
	r := newRecorder(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errDown := errors.New("down")
	ev := pipeline.WithRetry(pipeline.Func("e", func(context.Context, any) (any, error) {
		return nil, errDown
	}), pipeline.RetryPolicy{MaxAttempts: 3, BackoffFactor: time.Hour})
	// Cancel when the pipeline is about to wait the 1h backoff.
	p := mustNew(t, pipeline.Config{Recorder: r, Hooks: cancelOnRetry{cancel: cancel}}, pipeline.Sequence(ev, appendEvent("next")))
	start := time.Now()
	_, err := p.Run(ctx, "")
	if time.Since(start) > 5*time.Second {
		t.Fatal("the wait did not end with the context")
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

type cancelOnRetry struct {
	pipeline.NopHooks
	cancel context.CancelFunc
}

func (c cancelOnRetry) EventRetried(pipeline.Task, error, time.Duration) { c.cancel() }

func TestRunHonoursDeadline(t *testing.T) {
	r := newRecorder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	attempts := 0
	ev := pipeline.WithRetry(pipeline.Func("slow", func(ctx context.Context, in any) (any, error) {
		attempts++
		<-ctx.Done()
		return nil, ctx.Err()
	}), pipeline.DefaultRetryPolicy)
	p := mustNew(t, pipeline.Config{Recorder: r}, pipeline.Sequence(ev))
	_, err := p.Run(ctx, nil)
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
	}), pipeline.RetryPolicy{MaxAttempts: 3, BackoffFactor: time.Millisecond})
	_, err := mustNew(t, pipeline.Config{Recorder: r}, pipeline.Sequence(ev)).Run(context.Background(), nil)
	var pe *pipeline.PanicError
	if !errors.As(err, &pe) || pe.Value != "nil map" || len(pe.Stack) == 0 || attempts != 1 {
		t.Fatalf("got %v after %d attempts, want a PanicError with a stack, not retried", err, attempts)
	}
	if e := eventsByName(r)["boom"]; e.Status != telemetry.StatusFailed || e.Error != `pipeline: event "boom" panicked: nil map` {
		t.Errorf("got %+v", e)
	}
}

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
		{name: "bad policies and pid", cfg: pipeline.Config{ProcessID: -1, Retry: pipeline.RetryPolicy{MaxAttempts: -1}},
			stages: []pipeline.Stage{pipeline.Sequence(pipeline.WithRetry(ok, pipeline.RetryPolicy{BackoffFactor: -1}))},
			text:   "max attempts must not be negative"},
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
