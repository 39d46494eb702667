package river_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	epriver "github.com/eventpipeline/eventpipeline/contrib/river"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// benchJob returns a job row as River hands it to worker middleware:
// attempted 3ms after it became available, with River's own metadata.
func benchJob(id int64) *rivertype.JobRow {
	scheduled := time.Now().Add(-time.Second)
	attempted := scheduled.Add(3 * time.Millisecond)
	return &rivertype.JobRow{
		ID: id, Attempt: 1, AttemptedAt: &attempted, Kind: "image_resize", Queue: "default",
		ScheduledAt: scheduled, EncodedArgs: []byte(`{"image":7}`), Metadata: []byte(`{}`), MaxAttempts: 25,
		State: rivertype.JobStateRunning,
	}
}

// work is the worker of the benchmarks, which does nothing: the path
// River takes without middleware.
func work(context.Context) error { return nil }

// BenchmarkMiddleware measures what the Middleware adds to a job attempt:
// the same worker function, which does nothing, called directly
// ("direct", River's path without middleware) and through
// Middleware.Work ("middleware": one event run recorded, with its wait,
// into a Recorder without publishers; no TracerProvider), with the job row
// River gives middleware. "overhead" times both paths, and the Recorder's
// StartEvent+EndEvent alone, over the same number of calls in one run,
// interleaved, and reports added-ns/task, split into core-record-ns/task
// and adapter-own-ns/task. The rest of an attempt's cost in River
// (database round trips, of the order of a millisecond) is the same with
// or without the Middleware.
func BenchmarkMiddleware(b *testing.B) {
	ctx := context.Background()
	rec := newRecorder(b)
	mw := epriver.NewMiddleware(epriver.Config{Recorder: rec})
	job := benchJob(1)
	through := func() { mw.Work(ctx, job, work) }

	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			work(ctx)
		}
	})
	b.Run("middleware", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			through()
		}
	})
	b.Run("middleware/parallel", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			j := benchJob(next.Add(1) + 1000) // a job of its own per goroutine
			for pb.Next() {
				mw.Work(ctx, j, work)
			}
		})
	})
	b.Run("overhead", func(b *testing.B) {
		core := newRecorder(b)
		pid := os.Getpid()
		id := strconv.FormatInt(job.ID, 10)
		wait := job.AttemptedAt.Sub(job.ScheduledAt)
		var direct, recording, through time.Duration
		const rounds = 10
		per := max(b.N/rounds, 1)
		for range rounds {
			start := time.Now()
			for range per {
				work(ctx)
			}
			direct += time.Since(start)
			start = time.Now()
			for range per {
				core.StartEvent("image_resize", id, telemetry.WithProcessID(pid), telemetry.WithWait(wait))
				core.EndEvent(id, nil)
			}
			recording += time.Since(start)
			start = time.Now()
			for range per {
				mw.Work(ctx, job, work)
			}
			through += time.Since(start)
		}
		n := float64(per * rounds)
		b.ReportMetric(float64(direct.Nanoseconds())/n, "direct-ns/task")
		b.ReportMetric(float64(through.Nanoseconds())/n, "middleware-ns/task")
		b.ReportMetric(float64((through-direct).Nanoseconds())/n, "added-ns/task")
		b.ReportMetric(float64(recording.Nanoseconds())/n, "core-record-ns/task")
		b.ReportMetric(float64((through-direct-recording).Nanoseconds())/n, "adapter-own-ns/task")
	})
	if rec.Stats().EventsEnded == 0 {
		b.Fatal("the Middleware recorded nothing")
	}
}

// TestMiddlewareAllocs locks in the allocations of an attempt through the
// Middleware: none for a job id below 100, which strconv keeps ready in
// decimal, and one, the job id in decimal, above.
func TestMiddlewareAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	ctx := context.Background()
	rec := newRecorder(t)
	mw := epriver.NewMiddleware(epriver.Config{Recorder: rec})
	for _, tc := range []struct {
		id   int64
		want float64
	}{{42, 0}, {123456, 1}} {
		job := benchJob(tc.id)
		mw.Work(ctx, job, work) // warms up
		if n := testing.AllocsPerRun(1000, func() { mw.Work(ctx, job, work) }); n != tc.want {
			t.Errorf("an attempt of job %d through the Middleware: %v allocations, want %v", tc.id, n, tc.want)
		}
		runs := runsOf(rec, tc.id)
		if len(runs) == 0 || runs[0].WaitTime() != 3*time.Millisecond {
			t.Errorf("job %d: runs %+v, want a wait of 3ms", tc.id, runs)
		}
	}
}

// TestMiddlewareConcurrentSafe works jobs of their own from many
// goroutines at once: every attempt is recorded, once.
func TestMiddlewareConcurrentSafe(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t)
	mw := epriver.NewMiddleware(epriver.Config{Recorder: rec})
	const goroutines, each = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			job := benchJob(int64(g + 1))
			for range each {
				if err := mw.Work(ctx, job, work); err != nil {
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
