package prometheus_test

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
)

// The benchmarks compare a whole event life cycle through a Recorder with
// this Publisher attached (BenchmarkLifeCycle) against what an application
// would do with client_golang alone (BenchmarkBareObserve): time the work,
// then observe the duration in a HistogramVec. Run them in one go:
//
//	go test -run XXX -bench . -benchmem -cpu 1,2 ./telemetry/prometheus

const benchIDs = 1 << 16 // distinct task ids, reused round-robin

func benchTaskIDs() []string {
	ids := make([]string, benchIDs)
	for i := range ids {
		ids[i] = "task-" + strconv.Itoa(i)
	}
	return ids
}

// benchRecorder returns a Recorder with only a Publisher attached.
func benchRecorder(b *testing.B) *telemetry.Recorder {
	b.Helper()
	r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	p, err := prometheus.NewPublisher(prometheus.Config{Registry: prom.NewRegistry(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.AddPublisher(p); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// BenchmarkLifeCycle measures StartEvent + EndEvent of one run, with the
// Publisher observing its duration on the recording path.
func BenchmarkLifeCycle(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		r := benchRecorder(b)
		ids := benchTaskIDs()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			id := ids[i&(benchIDs-1)]
			i++
			if err := r.StartEvent("transform", id); err != nil {
				b.Fatal(err)
			}
			if err := r.EndEvent(id, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		r := benchRecorder(b)
		// Each goroutine cycles through task ids of its own, so that one
		// can never start an id that another has started and not ended.
		workers := runtime.GOMAXPROCS(0)
		ids := make([][]string, workers)
		for w := range ids {
			ids[w] = make([]string, benchIDs/workers)
			for i := range ids[w] {
				ids[w][i] = "w" + strconv.Itoa(w) + "-task-" + strconv.Itoa(i)
			}
		}
		var worker atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			mine := ids[int(worker.Add(1)-1)%workers]
			i := 0
			for pb.Next() {
				id := mine[i%len(mine)]
				i++
				if err := r.StartEvent("transform", id); err != nil {
					b.Error(err)
					return
				}
				if err := r.EndEvent(id, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkLifeCycleCoreOnly is BenchmarkLifeCycle with no publisher
// attached: the share of the telemetry core in the life cycle.
func BenchmarkLifeCycleCoreOnly(b *testing.B) {
	r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	ids := benchTaskIDs()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := ids[i&(benchIDs-1)]
		i++
		if err := r.StartEvent("transform", id); err != nil {
			b.Fatal(err)
		}
		if err := r.EndEvent(id, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareObserve is the baseline: measuring a duration and observing
// it with client_golang alone, as code without telemetry would.
func BenchmarkBareObserve(b *testing.B) {
	newVec := func() *prom.HistogramVec {
		v := prom.NewHistogramVec(prom.HistogramOpts{
			Name: "event_duration_seconds", Help: "Duration.", Buckets: prometheus.DefaultEventBuckets,
		}, []string{"event_name", "status"})
		prom.NewRegistry().MustRegister(v)
		return v
	}
	b.Run("serial", func(b *testing.B) {
		vec := newVec()
		b.ReportAllocs()
		for b.Loop() {
			start := time.Now()
			d := time.Since(start)
			vec.WithLabelValues("transform", "completed").Observe(d.Seconds())
		}
	})
	b.Run("parallel", func(b *testing.B) {
		vec := newVec()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				start := time.Now()
				d := time.Since(start)
				vec.WithLabelValues("transform", "completed").Observe(d.Seconds())
			}
		})
	})
}

// BenchmarkPublishEvent measures the Publisher alone: one
// PublishEventMetrics call for a known event name.
func BenchmarkPublishEvent(b *testing.B) {
	p, err := prometheus.NewPublisher(prometheus.Config{Registry: prom.NewRegistry(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close(context.Background()) })
	m := event("transform", 3*time.Millisecond, telemetry.StatusCompleted, 1)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := p.PublishEventMetrics(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := p.PublishEventMetrics(ctx, m); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkPublishNetwork measures one PublishNetworkMetrics call.
func BenchmarkPublishNetwork(b *testing.B) {
	p, err := prometheus.NewPublisher(prometheus.Config{Registry: prom.NewRegistry(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close(context.Background()) })
	m := netOp("remote_call", 3*time.Millisecond, 512, 2048)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := p.PublishNetworkMetrics(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := p.PublishNetworkMetrics(ctx, m); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
