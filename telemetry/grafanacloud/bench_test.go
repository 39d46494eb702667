package grafanacloud

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// The benchmarks measure the recording path with this Publisher attached:
// StartEvent + EndEvent of one run through a Recorder, the Publisher
// updating its aggregates inline. Pushes go to a local endpoint once an
// hour, so none happens during a run. Run them with:
//
//	go test -run XXX -bench . -benchmem -cpu 1,2 ./telemetry/grafanacloud

const benchIDs = 1 << 16 // distinct task ids, reused round-robin

func benchTaskIDs() []string {
	ids := make([]string, benchIDs)
	for i := range ids {
		ids[i] = "task-" + strconv.Itoa(i)
	}
	return ids
}

// benchRecorder returns a Recorder with a Publisher attached, or with none
// if attach is false.
func benchRecorder(b *testing.B, attach bool) *telemetry.Recorder {
	b.Helper()
	// The endpoint first: cleanups run last first, so it is still there
	// for the last push of r.Close.
	srv := newScripted(b)
	r, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	if !attach {
		return r
	}
	p, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Endpoint: srv.URL + "/api/prom/push",
		Interval: time.Hour, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.AddPublisher(p); err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkLifeCycle measures StartEvent + EndEvent of one run with the
// Publisher attached ("grafanacloud") and without any ("core_only").
func BenchmarkLifeCycle(b *testing.B) {
	for _, attach := range []bool{true, false} {
		name := "grafanacloud"
		if !attach {
			name = "core_only"
		}
		b.Run(name+"/serial", func(b *testing.B) {
			r := benchRecorder(b, attach)
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
		b.Run(name+"/parallel", func(b *testing.B) {
			r := benchRecorder(b, attach)
			var goroutines atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				// Task ids of this goroutine's own, so that a goroutine
				// that wraps around never meets another's pending run.
				g := strconv.FormatInt(goroutines.Add(1), 10) + "-"
				ids := make([]string, benchIDs)
				for i := range ids {
					ids[i] = g + strconv.Itoa(i)
				}
				i := 0
				for pb.Next() {
					id := ids[i&(benchIDs-1)]
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
}

// BenchmarkPublishEvent measures the Publisher alone: one finished record
// into the aggregates.
func BenchmarkPublishEvent(b *testing.B) {
	srv := newScripted(b)
	p, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Endpoint: srv.URL + "/otlp", Interval: time.Hour, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close(context.Background()) })
	ev := finishedEvent("transform", telemetry.StatusCompleted, 42*time.Millisecond, 1)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.PublishEventMetrics(ctx, ev)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.PublishEventMetrics(ctx, ev)
			}
		})
	})
}

// BenchmarkPush measures one push of 100 event names and 20 operations
// (4,720 series) with each protocol to a local endpoint.
func BenchmarkPush(b *testing.B) {
	for _, protocol := range []Protocol{RemoteWrite, OTLP} {
		b.Run(string(protocol), func(b *testing.B) {
			srv := newScripted(b)
			p, err := NewPublisher(Config{APIKey: testKey, OrgSlug: "1", Endpoint: srv.URL + paths[protocol], Interval: time.Hour, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { p.Close(context.Background()) })
			ctx := context.Background()
			for i := range 100 {
				p.PublishEventMetrics(ctx, finishedEvent("event-"+strconv.Itoa(i), telemetry.StatusCompleted, time.Second, 1))
			}
			for i := range 20 {
				p.PublishNetworkMetrics(ctx, finishedOp("op-"+strconv.Itoa(i), time.Second, 1, 1))
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(p.Stats().Series), "series")
		})
	}
}
