package asynq_test

import (
	"context"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	epasynq "github.com/eventpipeline/eventpipeline/contrib/asynq"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// captured is the context and task a real asynq server gave a handler.
type captured struct {
	ctx  context.Context
	task *asynq.Task
}

// alive is the context of a captured task as it is while its handler
// runs: asynq's values, without the cancellation that came when the
// handler returned. (context.WithoutCancel would do, but its Value
// allocates, and the benchmarks and the allocation test count
// allocations.)
type alive struct{ context.Context }

func (*alive) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*alive) Done() <-chan struct{}       { return nil }
func (*alive) Err() error                  { return nil }

// captureTasks enqueues n tasks through the Client and returns the
// context and task that a real asynq server handed to the handler of
// each: the context holds asynq's task id, retry count and queue, the
// task the headers of the Client. asynq cancels the context once the
// handler has returned, and the Middleware fails a run whose handler
// returns after that, so each context is kept without its cancellation
// (alive), as it is while a handler runs. Once every task is captured the
// server is stopped.
func captureTasks(tb testing.TB, n int) []captured {
	tb.Helper()
	redis := testutil.StartRedis(tb)
	got := make(chan captured, n)
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench", func(ctx context.Context, t *asynq.Task) error {
		got <- captured{&alive{ctx}, t}
		return nil
	})
	srv := startServer(tb, redis.Addr, mux)
	c, err := epasynq.NewClient(asynq.RedisClientOpt{Addr: redis.Addr}, epasynq.Config{Recorder: newRecorder(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	for range n {
		if _, err := c.Enqueue(context.Background(), asynq.NewTask("bench", []byte(`{"n":1}`))); err != nil {
			tb.Fatal(err)
		}
	}
	caps := make([]captured, 0, n)
	for range n {
		select {
		case cp := <-got:
			caps = append(caps, cp)
		case <-time.After(pollTimeout):
			tb.Fatal("the tasks did not all run")
		}
	}
	// The server's polling of Redis would go on beside the measurements:
	// stop it, now that it has handed over every task.
	srv.Shutdown()
	return caps
}

// nop is the handler of the benchmarks: the engine's own path, without
// the Middleware.
var nop = asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })

// BenchmarkMiddleware measures what the Middleware adds to a task run:
// the same handler, which does nothing, called directly ("direct", what
// asynq's processor does without middleware) and through the Middleware
// ("middleware": one event run recorded, with its wait, into a Recorder
// without publishers; no TracerProvider), with the context and task of
// real asynq task runs. "overhead" times both paths over the same number
// of calls in one run and reports the difference per task as
// added-ns/task, split into core-record-ns/task (the Recorder's
// StartEvent+EndEvent alone, timed in the same run) and
// adapter-own-ns/task (the rest: asynq's context, the headers, the
// propagator). The rest of a task's cost in asynq (Redis round trips,
// of the order of 100µs) is the same with or without the Middleware.
func BenchmarkMiddleware(b *testing.B) {
	caps := captureTasks(b, 2*runtime.GOMAXPROCS(0))
	rec := newRecorder(b)
	wrapped := epasynq.NewMiddleware(epasynq.Config{Recorder: rec}).Wrap(nop)
	ctx, task := caps[0].ctx, caps[0].task

	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			nop.ProcessTask(ctx, task)
		}
	})
	b.Run("middleware", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			wrapped.ProcessTask(ctx, task)
		}
	})
	// In parallel each goroutine runs tasks of its own id, as concurrent
	// workers do.
	parallel := func(h asynq.Handler) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				c := caps[int(next.Add(1)-1)%len(caps)]
				for pb.Next() {
					h.ProcessTask(c.ctx, c.task)
				}
			})
		}
	}
	b.Run("direct/parallel", parallel(nop))
	b.Run("middleware/parallel", parallel(wrapped))
	b.Run("overhead", func(b *testing.B) {
		// Three loops of the same number of calls, timed by hand (b.Loop
		// drives one): the handler alone, the Recorder's StartEvent+EndEvent
		// with the options the Middleware gives (the core's part of what
		// the Middleware adds), and the handler through the Middleware.
		core := newRecorder(b)
		enq := time.Now()
		pid := os.Getpid()
		id, _ := asynq.GetTaskID(ctx) // the same id: its hashing is part of the cost
		// Interleaved in rounds, so that a slow moment of a shared
		// machine weighs on the three alike.
		var direct, recording, mw time.Duration
		const rounds = 10
		per := max(b.N/rounds, 1)
		for range rounds {
			start := time.Now()
			for range per {
				nop.ProcessTask(ctx, task)
			}
			direct += time.Since(start)
			start = time.Now()
			for range per {
				core.StartEvent("bench", id, telemetry.WithProcessID(pid), telemetry.WithEnqueueTime(enq))
				core.EndEvent(id, nil)
			}
			recording += time.Since(start)
			start = time.Now()
			for range per {
				wrapped.ProcessTask(ctx, task)
			}
			mw += time.Since(start)
		}
		n := float64(per * rounds)
		b.ReportMetric(float64(direct.Nanoseconds())/n, "direct-ns/task")
		b.ReportMetric(float64(mw.Nanoseconds())/n, "middleware-ns/task")
		b.ReportMetric(float64((mw-direct).Nanoseconds())/n, "added-ns/task")
		b.ReportMetric(float64(recording.Nanoseconds())/n, "core-record-ns/task")
		b.ReportMetric(float64((mw-direct-recording).Nanoseconds())/n, "adapter-own-ns/task")
	})
	if n := rec.Stats().EventsEnded; n == 0 {
		b.Fatal("the Middleware recorded nothing")
	}
}

// TestMiddlewareAllocs locks in that recording a task run allocates
// nothing once the Recorder's structures exist.
func TestMiddlewareAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	caps := captureTasks(t, 1)
	rec := newRecorder(t)
	wrapped := epasynq.NewMiddleware(epasynq.Config{Recorder: rec}).Wrap(nop)
	ctx, task := caps[0].ctx, caps[0].task
	wrapped.ProcessTask(ctx, task) // warms up
	if n := testing.AllocsPerRun(1000, func() { wrapped.ProcessTask(ctx, task) }); n != 0 {
		t.Errorf("a task run through the Middleware: %v allocations, want 0", n)
	}
	if m, _ := rec.Metrics(caps[0].task.ResultWriter().TaskID()); m.EnqueueTime.IsZero() {
		t.Errorf("the benchmarked run has no enqueue time: %+v", m)
	}
}

// TestMiddlewareConcurrentSafe runs tasks of their own through one
// Middleware from many goroutines at once: every run is recorded, once.
func TestMiddlewareConcurrentSafe(t *testing.T) {
	const goroutines, each = 8, 200
	caps := captureTasks(t, goroutines)
	rec := newRecorder(t)
	mw := epasynq.NewMiddleware(epasynq.Config{Recorder: rec})
	wrapped := mw.Wrap(nop)
	var wg sync.WaitGroup
	for _, c := range caps {
		wg.Go(func() {
			for range each {
				if err := wrapped.ProcessTask(c.ctx, c.task); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := rec.Stats().EventsEnded; got != goroutines*each || mw.Failures() != 0 {
		t.Errorf("got %d runs ended and %d recording failures (%v), want %d and 0", got, mw.Failures(), mw.Err(), goroutines*each)
	}
}
