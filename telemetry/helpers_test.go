package telemetry_test

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
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

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkNoLeak fails the test if goroutines started during it outlive it.
func checkNoLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
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
