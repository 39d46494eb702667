package telemetry_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// memPublisher keeps every record it is given. fail, if set, decides the
// outcome of each call from the number of calls so far (1 for the first).
type memPublisher struct {
	mu      sync.Mutex
	events  []telemetry.EventMetrics
	network []telemetry.NetworkMetrics
	calls   int
	times   []time.Time
	fail    func(call int) error
	block   chan struct{} // if not nil, each call waits for it to be closed or for ctx
	flushes int
	closes  int
}

func (p *memPublisher) call(ctx context.Context) error {
	if p.block != nil {
		select {
		case <-p.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.times = append(p.times, time.Now())
	if p.fail != nil {
		return p.fail(p.calls)
	}
	return nil
}

func (p *memPublisher) PublishEventMetrics(ctx context.Context, m telemetry.EventMetrics) error {
	if err := p.call(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, m)
	return nil
}

func (p *memPublisher) PublishNetworkMetrics(ctx context.Context, m telemetry.NetworkMetrics) error {
	if err := p.call(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.network = append(p.network, m)
	return nil
}

func (p *memPublisher) Flush(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushes++
	return nil
}

func (p *memPublisher) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closes++
	return nil
}

func (p *memPublisher) eventIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, len(p.events))
	for i, m := range p.events {
		ids[i] = m.TaskID
	}
	slices.Sort(ids)
	return ids
}

func (p *memPublisher) counts() (events, network, calls int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events), len(p.network), p.calls
}

// batchPublisher is a memPublisher that also takes batches.
type batchPublisher struct {
	memPublisher
	sizes []int
}

func (p *batchPublisher) PublishBatch(ctx context.Context, b *telemetry.Batch) error {
	if err := p.call(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sizes = append(p.sizes, b.Len())
	p.events = append(p.events, b.Events...)
	p.network = append(p.network, b.Network...)
	return nil
}

// syncPublisher is a memPublisher called on the recording path.
type syncPublisher struct{ memPublisher }

func (*syncPublisher) Synchronous() bool { return true }

// namedPublisher has a name of its own.
type namedPublisher struct {
	memPublisher
	name string
}

func (p *namedPublisher) Name() string { return p.name }

var errTransient = errors.New("backend unavailable")

// quiet is a logger that discards, for tests that make publishers fail.
var quiet = slog.New(slog.DiscardHandler)

// fastRetry retries quickly, so tests of retries run in milliseconds.
var fastRetry = telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}

// noJitter makes every retry wait its full backoff, so that attempt times
// are exact in a synctest bubble.
var noJitter = telemetry.WithJitter(func(time.Duration) time.Duration { return 0 })

// newRecorder returns a Recorder closed at the end of the test.
func newRecorder(t testing.TB, opts ...telemetry.Option) *telemetry.Recorder {
	t.Helper()
	r, err := telemetry.NewRecorder(opts...)
	if err != nil {
		t.Fatalf("NewRecorder: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Close(ctx)
	})
	return r
}

// must fails the test if err is not nil.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// runEvent records one whole run of an event.
func runEvent(t testing.TB, r *telemetry.Recorder, name, id string, retries int, err error) {
	t.Helper()
	must(t, r.StartEvent(name, id))
	for range retries {
		must(t, r.RecordRetry(id))
	}
	must(t, r.EndEvent(id, err))
}

func flush(t testing.TB, r *telemetry.Recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, r.Flush(ctx))
}

// newTextLogger returns a logger that writes text to w, safe for concurrent use.
func newTextLogger(w *strings.Builder) *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{w: w}, nil))
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// logRecorder is a slog.Handler that keeps every record, for tests of what
// is logged.
type logRecorder struct {
	mu    sync.Mutex
	lines []logLine
}

// logLine is one record kept by a logRecorder, its attributes as text.
type logLine struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (h *logRecorder) logger() *slog.Logger { return slog.New(h) }

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l := logLine{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		l.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, l)
	return nil
}

func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// withMessage returns the lines logged with message msg, in order.
func (h *logRecorder) withMessage(msg string) []logLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logLine
	for _, l := range h.lines {
		if l.msg == msg {
			out = append(out, l)
		}
	}
	return out
}
