package elasticsearch_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/esfake"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/elasticsearch"
)

// benchBatch returns a batch of n records (nine events for each network
// operation), shaped like those a Recorder hands over.
func benchBatch(n int, seq *atomic.Int64) *telemetry.Batch {
	b := &telemetry.Batch{}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		id := "task-" + strconv.FormatInt(seq.Add(1), 10)
		if i%10 == 9 {
			b.Network = append(b.Network, networkRecord(id, start.Add(time.Duration(i)*time.Millisecond)))
			continue
		}
		b.Events = append(b.Events, eventRecord(id, start.Add(time.Duration(i)*time.Millisecond), telemetry.StatusCompleted, ""))
	}
	return b
}

// BenchmarkPublishBatchThroughput measures documents per second through
// PublishBatch, over HTTP, into the stand-in node (which validates and
// stores every document), in batches of the Recorder's default size.
// "serial" is how a Recorder calls it (one batch at a time); "parallel"
// has several callers at once.
func BenchmarkPublishBatchThroughput(b *testing.B) {
	const batchSize = telemetry.DefaultMaxBatchSize
	run := func(b *testing.B, parallel bool) {
		srv := newServer(b, esfake.Options{})
		pub := newPublisher(b, srv, elasticsearch.Config{})
		var seq atomic.Int64
		ctx := context.Background()
		b.ReportAllocs()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := pub.PublishBatch(ctx, benchBatch(batchSize, &seq)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		} else {
			for b.Loop() {
				b.StopTimer()
				batch := benchBatch(batchSize, &seq)
				b.StartTimer()
				if err := pub.PublishBatch(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "docs/s")
		b.ReportMetric(0, "ns/op") // per batch; docs/s is the figure of merit
		if got, want := srv.Count(), b.N*batchSize; got != want {
			b.Errorf("documents stored: got %d, want %d", got, want)
		}
		srv.Reset()
	}
	b.Run("serial", func(b *testing.B) { run(b, false) })
	b.Run("parallel", func(b *testing.B) { run(b, true) })
}

// BenchmarkRecordingPathCost measures one StartEvent+EndEvent pair on a
// Recorder without publishers and with this publisher attached (to the
// stand-in node), serially and in parallel. The difference is the cost
// the publisher adds to recording: handing the record to its queue.
func BenchmarkRecordingPathCost(b *testing.B) {
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = "task-" + strconv.Itoa(i)
	}
	setup := func(b *testing.B, attach bool) (*telemetry.Recorder, *esfake.Server) {
		opts := []telemetry.Option{telemetry.WithLogger(slogDiscard())}
		var srv *esfake.Server
		if attach {
			srv = newServer(b, esfake.Options{})
			opts = append(opts, telemetry.WithPublishers(newPublisher(b, srv, elasticsearch.Config{})))
		}
		r, err := telemetry.NewRecorder(opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.Close(context.Background()) })
		return r, srv
	}
	report := func(b *testing.B, r *telemetry.Recorder) {
		if ps := r.PublisherStats(); len(ps) > 0 {
			b.ReportMetric(float64(ps[0].DroppedQueueFull)/float64(b.N), "queue-full-drops/op")
		}
	}
	for _, attach := range []bool{false, true} {
		name := map[bool]string{false: "no_publisher", true: "elasticsearch"}[attach]
		b.Run(name+"/serial", func(b *testing.B) {
			r, _ := setup(b, attach)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				id := ids[i&(len(ids)-1)]
				i++
				if err := r.StartEvent("transform", id); err != nil {
					b.Fatal(err)
				}
				if err := r.EndEvent(id, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			report(b, r)
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			r, _ := setup(b, attach)
			b.ReportAllocs()
			var next atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := ids[next.Add(1)&(uint64(len(ids))-1)]
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
			b.StopTimer()
			report(b, r)
		})
	}
}
