package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/internal/retry"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/oteltrace"
)

// ScopeName is the instrumentation scope of the spans of pipeline runs.
const ScopeName = "github.com/eventpipeline/eventpipeline/pipeline"

// RunSpanName is the name of the span of a pipeline run, when traced
// ([Config.TracerProvider]).
const RunSpanName = "pipeline.run"

// Errors returned by [New] for a pipeline that cannot run, wrapped with the
// position of the offending stage or event.
var (
	// ErrNoStages is returned when a pipeline is given no stage.
	ErrNoStages = errors.New("pipeline: no stages")
	// ErrEmptyStage is returned for a stage without events.
	ErrEmptyStage = errors.New("pipeline: stage has no events")
	// ErrNilEvent is returned for a nil Event, a nil pointer as an Event
	// (such as the nil *RemoteEvent that Remote returns with an error, or
	// a nil pointer to an event type of your own) or WithRetry of either.
	ErrNilEvent = errors.New("pipeline: nil event")
	// ErrEmptyEventName is returned for an Event whose Name is empty.
	ErrEmptyEventName = errors.New("pipeline: empty event name")
)

// errGoexit is the error of an attempt whose Process called runtime.Goexit.
var errGoexit = errors.New("pipeline: the event called runtime.Goexit")

// errHookExit is the error of a task whose goroutine a hook ended, by a
// panic or runtime.Goexit.
var errHookExit = errors.New("pipeline: a hook panicked or called runtime.Goexit")

// errRunPanicked is the status of the span of a run through which a panic
// went (a hook's: a panic of an event fails its attempt).
var errRunPanicked = errors.New("pipeline: the run panicked")

// A Stage is a step of a pipeline: events run one after the other
// ([Sequence]) or all at once ([Parallel]).
type Stage struct {
	events   []Event
	parallel bool
}

// Sequence returns a stage that runs events one after the other, each
// getting the output of the one before (the first gets the stage's input).
// Its output is that of the last event. It stops at the first event that
// fails, and fails with its [*EventError]; the events after it do not run.
func Sequence(events ...Event) Stage { return Stage{events: events} }

// Parallel returns a stage that runs events at once, each on the stage's
// input, which they share and must not modify. Its output is a []any of
// their outputs, in the order of events. Every event runs to its end, even
// when another fails (only the cancellation of the run's context stops
// them); if any failed, the stage fails with their [*EventError]s joined
// with [errors.Join], in the order of events.
func Parallel(events ...Event) Stage { return Stage{events: events, parallel: true} }

// Config configures a [Pipeline]. The zero Config records into the default
// telemetry Recorder and makes a single attempt of each event.
type Config struct {
	// Recorder receives the telemetry of every run: each task as an event
	// run, each remote call as a network operation (see TelemetryHooks).
	// Nil means telemetry.Default(), so that after
	// telemetry.MonitorEvents(...) every pipeline is recorded with no more
	// code; set NoTelemetry to record nothing.
	Recorder *telemetry.Recorder
	// NoTelemetry, if true, turns telemetry off: Recorder is ignored and
	// only Hooks are called.
	NoTelemetry bool
	// Hooks, if not nil, are called for every task and remote call, after
	// the telemetry hooks. Combine several with JoinHooks.
	Hooks Hooks
	// Retry, if not nil, is the retry policy of every event not wrapped
	// with WithRetry: the one policy type of the module, with the same
	// meaning as for telemetry delivery. MaxAttempts counts attempts, the
	// first included (zero: no limit but MaxElapsed). The wait before
	// retry n is InitialBackoff doubled n-1 times, capped at MaxBackoff,
	// less a random jitter of up to half of it; a worker's Retry-After
	// (see RemoteError.RetryAfter), or the wait an event's error asks for
	// with telemetry.RetryAfter, replaces it, still capped at MaxBackoff. MaxElapsed bounds the time from the start of the first
	// attempt: a wait that would end later is shortened to end at that
	// time, for a last attempt. Zero InitialBackoff, MaxBackoff and
	// MaxElapsed take the values of telemetry.DefaultRetryPolicy (100ms,
	// 5s, one minute). Nil means a single attempt, no retry.
	Retry *telemetry.RetryPolicy
	// Retryable reports whether an attempt that failed with err may be
	// retried, for every event. Nil means DefaultRetryable.
	Retryable func(err error) bool
	// ProcessID is recorded as the process id of every task. Zero means
	// os.Getpid().
	ProcessID int
	// TracerProvider, if not nil, traces every run: the run is a span
	// named [RunSpanName] (a child of the span in Run's ctx, if any, else a
	// root span), each event run a child span recorded through a
	// telemetry/oteltrace Tracer (retries as span events), and each remote
	// call a client span under its event whose context travels to the
	// worker. It needs telemetry (ignored with NoTelemetry, which makes no
	// spans). nil means no spans.
	TracerProvider trace.TracerProvider
	// Tracer, if not nil, traces as TracerProvider does, with this
	// Tracer and its provider; its Recorder is the pipeline's (Recorder
	// must be nil or the same). It lets pipelines share one Tracer
	// (oteltrace.New), which keeps no state per run; with a TracerProvider
	// alone, New makes one. With Propagator set too, New uses a Tracer
	// like it that injects with Propagator. nil means TracerProvider
	// decides.
	Tracer *oteltrace.Tracer
	// Propagator injects the trace context (and baggage) into the requests
	// of remote events. nil means the Tracer's, else
	// otel.GetTextMapPropagator(), looked up by New.
	Propagator propagation.TextMapPropagator
}

// A Pipeline runs events in stages and reports every task and remote call
// to its hooks. Create one with [New]; it is safe for concurrent use, and
// may run many times, each run with a run id of its own.
type Pipeline struct {
	stages []stage
	hooks  Hooks // never nil; without the telemetry hooks when traced
	user   Hooks // Config.Hooks; nil without, so that no call is made
	tel    *TelemetryHooks
	pid    int
	tracer *oteltrace.Tracer // nil unless Config.TracerProvider
	runs   trace.Tracer      // makes the runs' spans; nil unless traced
	prop   propagation.TextMapPropagator
}

type stage struct {
	steps    []step
	parallel bool
}

type step struct {
	ev     Event // unwrapped from WithRetry
	name   string
	policy policy
}

// New returns a new Pipeline running stages in order, configured by cfg.
// It checks every stage and event and returns all the problems joined in
// one error: [ErrNoStages], [ErrEmptyStage], [ErrNilEvent],
// [ErrEmptyEventName], an invalid retry policy or process id, or a
// [Config.Tracer] of another Recorder than [Config.Recorder].
func New(cfg Config, stages ...Stage) (*Pipeline, error) {
	var errs []error
	if len(stages) == 0 {
		errs = append(errs, ErrNoStages)
	}
	if cfg.ProcessID < 0 {
		errs = append(errs, fmt.Errorf("pipeline: process id must not be negative, got %d", cfg.ProcessID))
	}
	for _, err := range validatePolicy(cfg.Retry) {
		errs = append(errs, at("config", err))
	}
	p := &Pipeline{pid: cfg.ProcessID}
	if p.pid == 0 {
		p.pid = os.Getpid()
	}
	for i, s := range stages {
		st := stage{parallel: s.parallel}
		if len(s.events) == 0 {
			errs = append(errs, at(fmt.Sprintf("stage %d", i+1), ErrEmptyStage))
		}
		for j, ev := range s.events {
			if isNil(ev) {
				errs = append(errs, at(fmt.Sprintf("stage %d, event %d", i+1, j+1), ErrNilEvent))
				continue
			}
			inner, policy := unwrap(ev)
			sp := step{ev: inner, name: ev.Name(), policy: newPolicy(cfg.Retry, cfg.Retryable)}
			if policy != nil {
				sp.policy = newPolicy(policy, cfg.Retryable)
				for _, err := range validatePolicy(policy) {
					errs = append(errs, at(fmt.Sprintf("stage %d, event %q", i+1, sp.name), err))
				}
			}
			if sp.name == "" {
				errs = append(errs, at(fmt.Sprintf("stage %d, event %d", i+1, j+1), ErrEmptyEventName))
			}
			st.steps = append(st.steps, sp)
		}
		p.stages = append(p.stages, st)
	}
	if cfg.Tracer != nil && cfg.Recorder != nil && cfg.Recorder != cfg.Tracer.Recorder() {
		errs = append(errs, errors.New("pipeline: Config.Tracer records into another Recorder than Config.Recorder"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var hooks []Hooks
	if !cfg.NoTelemetry {
		r := cfg.Recorder
		if cfg.Tracer != nil {
			r = cfg.Tracer.Recorder()
		}
		if r == nil {
			r = telemetry.Default()
		}
		p.tel = NewTelemetryHooks(r)
		tp := cfg.TracerProvider
		if cfg.Tracer != nil {
			tp = cfg.Tracer.TracerProvider()
		}
		switch {
		case cfg.Tracer != nil && cfg.Propagator == nil:
			p.tracer, p.runs = cfg.Tracer, tp.Tracer(ScopeName)
		case tp == nil:
			hooks = append(hooks, p.tel)
		default:
			// With a Tracer and a Propagator, a Tracer like it (it keeps
			// no state) that injects with Propagator rather than its own.
			tr, err := oteltrace.New(r, oteltrace.Config{TracerProvider: tp, Propagator: cfg.Propagator})
			if err != nil {
				return nil, fmt.Errorf("pipeline: %w", err)
			}
			p.tracer, p.runs = tr, tp.Tracer(ScopeName)
		}
	}
	p.prop = cfg.Propagator
	switch {
	case p.prop != nil:
	case cfg.Tracer != nil:
		p.prop = cfg.Tracer.Propagator()
	default:
		p.prop = otel.GetTextMapPropagator()
	}
	p.hooks = JoinHooks(append(hooks, cfg.Hooks)...)
	if p.hooks == nil {
		p.hooks = NopHooks{}
	}
	p.user = cfg.Hooks
	return p, nil
}

// at returns err located at where: "pipeline: <where>: <err without its
// prefix>", matching err with errors.Is.
func at(where string, err error) error { return &locatedError{where: where, err: err} }

type locatedError struct {
	where string
	err   error
}

func (e *locatedError) Error() string {
	return "pipeline: " + e.where + ": " + strings.TrimPrefix(e.err.Error(), "pipeline: ")
}

func (e *locatedError) Unwrap() error { return e.err }

// Telemetry returns the hooks through which p records telemetry, or nil if
// its telemetry is off. Its Recorder method gives the Recorder to query.
func (p *Pipeline) Telemetry() *TelemetryHooks { return p.tel }

// run is the state of one pipeline run.
type run struct {
	id  string
	seq uint64 // the number of the last task started; stages run one at a time
	// untraced: the run's span is not sampled, so its events get no span
	// and are recorded through the telemetry hooks, as the tracer would.
	untraced bool
	// exit: the error of a task of a sequence whose event called
	// runtime.Goexit, or whose hook ended its goroutine, which is Run's.
	exit error
}

// next reserves the numbers of n tasks and returns the first.
func (r *run) next(n int) uint64 {
	r.seq += uint64(n)
	return r.seq - uint64(n) + 1
}

// newRunID returns 16 random hexadecimal digits.
func newRunID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand.Read documents it)
	return hex.EncodeToString(b[:])
}

// Run runs the pipeline once on in and returns the output of its last
// stage. It fails with the error of the first stage that fails: an
// [*EventError], or several joined for a parallel stage.
//
// Once ctx ends, events see it through their context, no event starts and
// no failed attempt is retried; the events already running go on to their
// end, and their results stand. So Run returns an error wrapping ctx.Err()
// when it stops before a stage or an event, or while an event waits to
// retry (the EventError then wraps the last attempt's error too). An event
// that fails after ctx ended fails the run with its own error, which wraps
// ctx.Err() only if the event's does (as it does when the event returns
// ctx.Err()). If ctx ends while the last stage runs and its events all
// succeed, Run returns their output and a nil error: the work was done.
func (p *Pipeline) Run(ctx context.Context, in any) (out any, err error) {
	r := &run{id: newRunID()}
	if p.runs == nil {
		return p.runStages(ctx, r, in)
	}
	ctx, span := p.runs.Start(ctx, RunSpanName, trace.WithAttributes(oteltrace.PipelineRunIDKey.String(r.id)))
	sc := span.SpanContext()
	r.untraced = sc.IsValid() && !sc.IsSampled()
	returned := false // false as Run's goroutine unwinds without a return
	defer func() {
		switch {
		case !returned && r.exit != nil: // the run failed, and never returns
			span.SetStatus(codes.Error, r.exit.Error())
		case !returned: // a hook's panic goes through Run
			span.SetStatus(codes.Error, errRunPanicked.Error())
		case err != nil:
			span.SetStatus(codes.Error, p.tracer.Recorder().ErrorText(err))
		}
		span.End()
	}()
	out, err = p.runStages(ctx, r, in)
	returned = true
	return out, err
}

// runStages runs the stages of p in order, for r, on in.
func (p *Pipeline) runStages(ctx context.Context, r *run, in any) (any, error) {
	for i := range p.stages {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("pipeline: run %s stopped before stage %d: %w", r.id, i+1, err)
		}
		out, err := p.runStage(ctx, r, &p.stages[i], in)
		if err != nil {
			return nil, err
		}
		in = out
	}
	return in, nil
}

func (p *Pipeline) runStage(ctx context.Context, r *run, st *stage, in any) (any, error) {
	if !st.parallel {
		for i := range st.steps {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("pipeline: run %s stopped before event %q: %w", r.id, st.steps[i].name, err)
			}
			out, err := p.runTask(ctx, r, &st.steps[i], r.next(1), in, nil)
			if err != nil {
				return nil, err
			}
			in = out
		}
		return in, nil
	}
	outs := make([]any, len(st.steps))
	errs := make([]error, len(st.steps))
	first := r.next(len(st.steps))
	var wg sync.WaitGroup
	for i := range st.steps {
		wg.Go(func() { outs[i], errs[i] = p.runTask(ctx, r, &st.steps[i], first+uint64(i), in, &errs[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return outs, nil
}

// runTask runs one execution of an event, with its retries, and reports it
// to the hooks. If the event or a hook ends the goroutine (runtime.Goexit,
// or a hook's panic), the task still ends, failed, in the telemetry, and
// its error goes to *exited if exited is not nil.
func (p *Pipeline) runTask(ctx context.Context, r *run, sp *step, n uint64, in any, exited *error) (any, error) {
	k := taskRun{p: p, r: r, ctx: ctx, exited: exited, t: Task{
		ID:        r.id + "/" + sp.name + "/" + strconv.FormatUint(n, 10),
		Event:     sp.name,
		RunID:     r.id,
		ProcessID: p.pid,
		Attempt:   1,
	}}
	switch {
	case p.tracer == nil: // the telemetry hooks record, if any
		k.tel = p.tel
	case r.untraced: // the tracer would only record
		k.tel = p.tel
	default:
		k.tr = p.tracer
	}
	defer k.unwound()
	t := &k.t
	if k.tr != nil {
		var err error
		k.ctx, err = k.tr.StartEvent(ctx, t.Event, t.ID, telemetry.WithProcessID(t.ProcessID), telemetry.WithPipelineID(t.RunID))
		p.tel.check(err)
	} else if k.tel != nil {
		k.tel.EventStarted(*t)
	}
	h := p.user
	if h != nil {
		h.EventStarted(*t)
	}
	calls := new(atomic.Uint64)
	first := time.Now()
	for {
		ex := &execution{task: *t, hooks: p.hooks, calls: calls, tracer: p.tracer, prop: p.prop, tel: p.tel}
		out, err := process(withExecution(k.ctx, ex), sp, in, k.goexited)
		if err == nil {
			k.end(nil)
			k.returned = true
			return out, nil
		}
		if ctx.Err() == nil {
			if wait, again := sp.policy.next(t.Attempt, first, time.Now(), err); again {
				switch {
				case k.tr != nil:
					p.tel.check(k.tr.RecordRetry(k.ctx, t.ID, err))
				case k.tel != nil:
					k.tel.EventRetried(*t, err, wait)
				}
				if h != nil {
					h.EventRetried(*t, err, wait)
				}
				if retry.Sleep(ctx, wait) && ctx.Err() == nil {
					t.Attempt++
					continue
				}
				err = fmt.Errorf("%w while waiting to retry after: %w", ctx.Err(), err)
			}
		}
		k.end(err)
		k.returned = true
		return nil, k.eventError(err)
	}
}

// A taskRun is the state of one execution of an event, for its end.
type taskRun struct {
	p      *Pipeline
	r      *run
	ctx    context.Context   // the event's, with its span when traced
	tr     *oteltrace.Tracer // records and traces the task; nil if not traced
	tel    *TelemetryHooks   // records the task when tr is nil; nil: no telemetry
	exited *error            // receives the error of a task whose goroutine ended; nil in a sequence
	t      Task              // the attempt being made
	// recorded: the task's end is recorded (or there is no telemetry).
	recorded bool
	// returned: runTask returned, rather than its goroutine ending.
	returned bool
}

// end records the end of the task, failed if err is not nil, and tells
// the hooks.
func (k *taskRun) end(err error) {
	k.record(err)
	if k.p.user != nil {
		k.p.user.EventEnded(k.t, err)
	}
}

// record records the end of the task, failed if err is not nil, through
// the tracer when traced.
func (k *taskRun) record(err error) {
	k.recorded = true
	switch {
	case k.tr != nil:
		k.p.tel.check(k.tr.EndEvent(k.ctx, k.t.ID, err))
	case k.tel != nil:
		k.tel.EventEnded(k.t, err)
	}
}

func (k *taskRun) eventError(err error) *EventError {
	return &EventError{Event: k.t.Event, TaskID: k.t.ID, RunID: k.t.RunID, Attempts: k.t.Attempt, Err: err}
}

// goexited ends the task whose event called runtime.Goexit, as failed,
// and puts its error in *exited, or marks the run as ended with it in a
// sequence (on Run's goroutine).
func (k *taskRun) goexited() {
	k.fail(errGoexit)
	if k.p.user != nil {
		k.p.user.EventEnded(k.t, errGoexit)
	}
}

// fail records the task as failed with err, as its goroutine ends, and
// puts its EventError in *exited, or marks the run in a sequence.
func (k *taskRun) fail(err error) {
	if k.exited == nil {
		k.r.exit = err
	} else {
		*k.exited = k.eventError(err)
	}
	k.record(err)
}

// unwound, deferred by runTask, ends the task if a hook ended its
// goroutine (runtime.Goexit, or a panic) before the task's end was
// recorded, and fails a parallel stage whose task did not return.
func (k *taskRun) unwound() {
	switch {
	case k.returned:
	case !k.recorded:
		k.fail(errHookExit)
	case k.exited != nil && *k.exited == nil: // a hook ended it after
		*k.exited = k.eventError(errHookExit)
	}
}

// process calls the event, turning a panic into a [*PanicError]. If the
// event calls runtime.Goexit, which ends the goroutine without a return
// or a panic, process calls goexit as the goroutine unwinds.
func process(ctx context.Context, sp *step, in any, goexit func()) (out any, err error) {
	returned := false
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, &PanicError{Event: sp.name, Value: v, Stack: debug.Stack()}
		} else if !returned {
			goexit()
		}
	}()
	out, err = sp.ev.Process(ctx, in)
	returned = true
	return out, err
}

// An EventError reports an event that failed: after its last attempt, or
// when the run's context ended while it waited to retry. [errors.Is] and
// [errors.As] see through it to Err.
type EventError struct {
	Event    string // name of the event
	TaskID   string // task id of the execution
	RunID    string // id of the pipeline run
	Attempts int    // attempts made
	Err      error  // the error of the last attempt
}

// Error returns a message such as
// `pipeline: event "load" (task 8c1f.../load/3) failed after 2 attempts: warehouse down`.
func (e *EventError) Error() string {
	s := "s"
	if e.Attempts == 1 {
		s = ""
	}
	return fmt.Sprintf("pipeline: event %q (task %s) failed after %d attempt%s: %v", e.Event, e.TaskID, e.Attempts, s, e.Err)
}

// Unwrap returns e.Err.
func (e *EventError) Unwrap() error { return e.Err }

// A PanicError is the error of an attempt whose Process panicked. It is
// not retried by [DefaultRetryable].
type PanicError struct {
	Event string // name of the event
	Value any    // the value passed to panic
	Stack []byte // the stack of the panicking goroutine
}

// Error returns `pipeline: event "name" panicked: <value>`.
func (e *PanicError) Error() string {
	return fmt.Sprintf("pipeline: event %q panicked: %v", e.Event, e.Value)
}
