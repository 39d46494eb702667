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
// Recorder without publishers ("no_publisher") and with this publisher
// attached, delivering to the stand-in node in the same process
// ("elasticsearch"). The difference is what the publisher adds to
// recording: handing the record to its queue. Three ways:
//
//   - hot/serial and hot/parallel record as fast as possible. Recording
//     (~2M events/s) then outpaces delivery (~50k docs/s): the queue stays
//     full, most records are dropped (see queue-full-drops/op), and on a
//     2-core machine the delivery goroutines and the node compete with the
//     benchmark for CPU, which the ns/op includes.
//   - interleaved/... alternate one event without and one with the
//     publisher, timing each, and report added-ns/event, the difference,
//     under the same machine load: delivering_paced records at most ~32k
//     events/s, which delivery keeps up with (the case of a pipeline whose
//     events Elasticsearch absorbs); delivering_hot as fast as possible
//     (the queue is mostly full); node_down with the node refusing
//     connections (records queue up, then are dropped and counted).
func BenchmarkRecordingPathCost(b *testing.B) {
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = "task-" + strconv.Itoa(i)
	}
	setup := func(b *testing.B, attach, down bool) *telemetry.Recorder {
		opts := []telemetry.Option{telemetry.WithLogger(slogDiscard())}
		if attach {
			srv := newServer(b, esfake.Options{})
			if down {
				srv.Down()
			}
			opts = append(opts, telemetry.WithPublishers(newPublisher(b, srv, elasticsearch.Config{})))
		}
		r, err := telemetry.NewRecorder(opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			r.Close(ctx)
		})
		return r
	}
	report := func(b *testing.B, r *telemetry.Recorder) {
		if ps := r.PublisherStats(); len(ps) > 0 {
			b.ReportMetric(float64(ps[0].DroppedQueueFull)/float64(b.N), "queue-full-drops/op")
		}
	}
	record := func(b *testing.B, r *telemetry.Recorder, id string) {
		if err := r.StartEvent("transform", id); err != nil {
			b.Fatal(err)
		}
		if err := r.EndEvent(id, nil); err != nil {
			b.Fatal(err)
		}
	}
	for _, attach := range []bool{false, true} {
		name := map[bool]string{false: "no_publisher", true: "elasticsearch"}[attach]
		b.Run(name+"/hot/serial", func(b *testing.B) {
			r := setup(b, attach, false)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				record(b, r, ids[i&(len(ids)-1)])
				i++
			}
			b.StopTimer()
			report(b, r)
		})
		b.Run(name+"/hot/parallel", func(b *testing.B) {
			r := setup(b, attach, false)
			b.ReportAllocs()
			// Each goroutine cycles through a window of task ids of its own,
			// so that a goroutine that falls behind is never lapped by
			// another starting the same id while it is pending.
			const window = 1024
			var next atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				g := next.Add(1) - 1
				mine := make([]string, window)
				for i := range mine {
					mine[i] = "task-" + strconv.FormatUint(g, 10) + "-" + strconv.Itoa(i)
				}
				i := 0
				for pb.Next() {
					id := mine[i&(window-1)]
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
			b.StopTimer()
			report(b, r)
		})
	}
	// interleaved records one event on a Recorder without publishers, then
	// one on a Recorder with this publisher, timing each call, so that both
	// see the same machine load; added-ns/event is the difference.
	interleaved := func(b *testing.B, down bool, pace int) {
		base := setup(b, false, false)
		with := setup(b, true, down)
		var tBase, tWith time.Duration
		i := 0
		for b.Loop() {
			id := ids[i&(len(ids)-1)]
			i++
			t0 := time.Now()
			record(b, base, id)
			t1 := time.Now()
			record(b, with, id)
			t2 := time.Now()
			tBase += t1.Sub(t0)
			tWith += t2.Sub(t1)
			if pace > 0 && i%pace == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(tBase.Nanoseconds())/float64(b.N), "base-ns/event")
		b.ReportMetric(float64(tWith.Nanoseconds())/float64(b.N), "with-es-ns/event")
		b.ReportMetric(float64((tWith-tBase).Nanoseconds())/float64(b.N), "added-ns/event")
		report(b, with)
	}
	b.Run("interleaved/delivering_paced", func(b *testing.B) { interleaved(b, false, 32) })
	b.Run("interleaved/delivering_hot", func(b *testing.B) { interleaved(b, false, 0) })
	b.Run("interleaved/node_down", func(b *testing.B) { interleaved(b, true, 0) })
}
