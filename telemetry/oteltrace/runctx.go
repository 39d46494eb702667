package oteltrace

import (
	"context"
	"sync/atomic"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The keys under which StartEvent and StartOperation put the spans they
// started in the contexts they return, so that EndEvent and EndOperation
// end only spans a Tracer started, and of their kind.
var (
	eventSpanKey     = &ctxKey{"event span"}
	operationSpanKey = &ctxKey{"operation span"}
)

// A ctxKey is a key of a context value of this package. Keys are pointers,
// so that finding one compares two words.
type ctxKey struct{ name string }

// A runCtx is the context that StartEvent and StartOperation return for a
// span they are to end: the context the span was started in, which
// carries it, plus the span under key, as context.WithValue would put it.
//
// It also holds the options of the span's start and of its end, so that
// passing them to the span allocates nothing besides the runCtx: the
// variadic slices of Start and End would each be an allocation of their
// own. The start's options stay referenced until the runCtx is
// collected; the end's slot is written once, by the end that claims the
// span (ended), so that ends through copies of the context never race.
//
// newRunCtx allocates it together with the attributes of the span's
// start.
type runCtx struct {
	context.Context
	key     *ctxKey
	task    string // the task id of the run or operation
	span    trace.Span
	ended   atomic.Bool
	sampled bool // span's context is sampled
	start   [3]trace.SpanStartOption
	end     [1]trace.SpanEndOption
}

// newRunCtx returns a new runCtx and an empty slice with room for n
// attributes of the span's start, allocated together when n is that of
// an event run (1 to 3: the task id, the process id, the pipeline run id)
// or of a network operation (4), so that the attributes are not an
// allocation of their own. (The SDK copies the attributes; it keeps no
// reference to the slice.)
func newRunCtx(n int) (*runCtx, []attribute.KeyValue) {
	switch {
	case n <= 1:
		c := new(struct {
			runCtx
			attrs [1]attribute.KeyValue
		})
		return &c.runCtx, c.attrs[:0]
	case n <= 3:
		c := new(struct {
			runCtx
			attrs [3]attribute.KeyValue
		})
		return &c.runCtx, c.attrs[:0]
	case n == 4:
		c := new(struct {
			runCtx
			attrs [4]attribute.KeyValue
		})
		return &c.runCtx, c.attrs[:0]
	}
	// Not reached: the callers pass 1 to 4. Kept so that a new caller with
	// more attributes still works, at the cost of an allocation.
	return new(runCtx), make([]attribute.KeyValue, 0, n)
}

// Value returns c itself for c's key, and the parent's value of any other
// key.
func (c *runCtx) Value(key any) any {
	if key == any(c.key) {
		return c
	}
	return c.Context.Value(key)
}

// String names c as context.WithValue's contexts name themselves.
func (c *runCtx) String() string {
	parent := "context"
	if s, ok := c.Context.(interface{ String() string }); ok {
		parent = s.String()
	}
	return parent + ".WithValue(oteltrace " + c.key.name + ")"
}

// startSpan starts a span named name with tr, with rc's first n start
// options, and returns the context and the span that Start returned.
func (rc *runCtx) startSpan(tr trace.Tracer, ctx context.Context, name string, n int) (context.Context, trace.Span) {
	return tr.Start(ctx, name, rc.start[:n]...)
}

// started returns the context to return for span, started in ctx (which
// carries it), sampled or not, for the run or operation of task: rc,
// filled in with ctx and span under key, if span is to be ended with its
// record; ctx if span records nothing; and ctx, after ending span with
// status Error, if the Recorder refused the start (err).
func started(rc *runCtx, ctx context.Context, span trace.Span, sampled bool, key *ctxKey, task string, err error) context.Context {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		span.End()
		return ctx
	}
	// A sampled span records (the SDK's IsRecording would take the span's
	// lock to say so); of the others, one that does not record has
	// nothing to end.
	if !sampled && !span.IsRecording() {
		return ctx
	}
	rc.Context, rc.key, rc.task, rc.span, rc.sampled = ctx, key, task, span, sampled
	return rc
}

// find returns the runCtx that a start of task put in ctx under key, or
// nil. It passes over those of other tasks: a run whose start made no
// span of its own (its sampler dropped it, or the Recorder refused the
// start) has in its context the runCtx of the run it is nested in, whose
// span is not its to end.
func find(ctx context.Context, key *ctxKey, task string) *runCtx {
	// Most often, ctx is the context the start returned, and task the
	// string the start was given.
	if rc, _ := ctx.(*runCtx); rc != nil && rc.key == key && len(rc.task) == len(task) &&
		(unsafe.StringData(rc.task) == unsafe.StringData(task) || rc.task == task) {
		return rc
	}
	rc, _ := ctx.Value(key).(*runCtx)
	for rc != nil && rc.task != task {
		rc, _ = rc.Context.Value(key).(*runCtx)
	}
	return rc
}

// spanOf returns the span that a start of task put in ctx under key, or
// nil.
func spanOf(ctx context.Context, key *ctxKey, task string) trace.Span {
	if rc := find(ctx, key, task); rc != nil {
		return rc.span
	}
	return nil
}

// claim returns the runCtx that a start of task put in ctx under key, for
// the caller to end its span, or nil if there is none or an earlier end
// claimed it.
func claim(ctx context.Context, key *ctxKey, task string) *runCtx {
	rc := find(ctx, key, task)
	if rc == nil || !rc.ended.CompareAndSwap(false, true) {
		return nil
	}
	return rc
}

// endSpan ends the span of rc, which the caller claimed, at end, with
// status Error and errText if the run or operation failed (errText is
// not empty), or with the text of refused if the Recorder refused the end
// (the span then ends now).
func (rc *runCtx) endSpan(end time.Time, errText string, refused error) {
	if refused != nil {
		rc.span.SetStatus(codes.Error, refused.Error())
		rc.span.End()
		return
	}
	if errText != "" {
		rc.span.SetStatus(codes.Error, errText)
	}
	rc.end[0] = trace.WithTimestamp(end)
	rc.span.End(rc.end[:]...)
}

// unsampledParent reports whether the span in ctx belongs to a trace that
// is not sampled. A runCtx knows its span's.
func unsampledParent(ctx context.Context) bool {
	if rc, ok := ctx.(*runCtx); ok {
		return !rc.sampled
	}
	sc := trace.SpanContextFromContext(ctx)
	return sc.IsValid() && !sc.IsSampled()
}
