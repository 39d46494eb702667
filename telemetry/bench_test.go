package telemetry_test

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// discard is a queued publisher that accepts everything.
type discard struct{ n atomic.Int64 }

func (d *discard) PublishEventMetrics(context.Context, telemetry.EventMetrics) error {
	d.n.Add(1)
	return nil
}

func (d *discard) PublishNetworkMetrics(context.Context, telemetry.NetworkMetrics) error {
	d.n.Add(1)
	return nil
}

// taskIDs returns n distinct task ids, made before timing starts so that
// the benchmark measures recording, not string formatting.
func taskIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "task-" + strconv.Itoa(i)
	}
	return ids
}

// benchRecorder returns a Recorder with one queued publisher attached and
// 50,000 finished events and network operations retained.
func benchRecorder(b *testing.B) *telemetry.Recorder {
	b.Helper()
	r, err := telemetry.NewRecorder(telemetry.WithPublishers(&discard{}), telemetry.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	net := r.Network()
	for _, id := range taskIDs(50_000) {
		r.StartEvent("warmup", id)
		r.EndEvent(id, nil)
		net.StartOperation(id, "127.0.0.1", 80, "")
		net.EndOperation(id, 10, 20, nil)
	}
	r.Flush(context.Background())
	return r
}

// idPool task ids are made before timing. Each goroutine of a parallel
// benchmark cycles through a window of its own, so that none can start a
// task id that another still has pending.
const (
	idPool   = 1 << 17
	idWindow = 1 << 14
)

// nextID returns a function giving the task ids of one goroutine, cycling
// through the window of the goroutine's number g.
func nextID(ids []string, g uint64) func() string {
	base, i := g*idWindow, uint64(0)
	return func() string {
		i++
		return ids[(base+i%idWindow)&(idPool-1)]
	}
}

// reportDelivery flushes r and reports the share of records its publishers
// dropped, so a benchmark cannot look fast by dropping.
func reportDelivery(b *testing.B, r *telemetry.Recorder) {
	b.Helper()
	b.StopTimer()
	if err := r.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	var published, dropped uint64
	for _, s := range r.PublisherStats() {
		published += s.Published
		dropped += s.Dropped()
	}
	if total := published + dropped; total > 0 {
		b.ReportMetric(float64(dropped)/float64(total), "dropped/record")
	}
}

// BenchmarkEventStartEnd measures one StartEvent+EndEvent pair with 50,000
// events retained and one publisher attached.
func BenchmarkEventStartEnd(b *testing.B) {
	r := benchRecorder(b)
	ids := taskIDs(idPool)
	b.ReportAllocs()
	b.ResetTimer() // count recording only, not the setup
	var goroutines atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		next := nextID(ids, goroutines.Add(1)-1)
		for pb.Next() {
			id := next()
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
	reportDelivery(b, r)
}

// BenchmarkNetworkStartEnd measures one StartOperation+EndOperation pair
// with 50,000 operations retained and one publisher attached.
func BenchmarkNetworkStartEnd(b *testing.B) {
	r := benchRecorder(b)
	net := r.Network()
	ids := taskIDs(idPool)
	b.ReportAllocs()
	b.ResetTimer() // count recording only, not the setup
	var goroutines atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		next := nextID(ids, goroutines.Add(1)-1)
		for pb.Next() {
			id := next()
			if err := net.StartOperation(id, "10.0.0.7", 8080, "remote_call"); err != nil {
				b.Error(err)
				return
			}
			if err := net.EndOperation(id, 512, 2048, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportDelivery(b, r)
}

// BenchmarkMetricsJSON10k measures the JSON report of 10,000 events.
func BenchmarkMetricsJSON10k(b *testing.B) {
	r, err := telemetry.NewRecorder()
	if err != nil {
		b.Fatal(err)
	}
	for i, id := range taskIDs(10_000) {
		r.StartEvent("event-"+strconv.Itoa(i%10), id, telemetry.WithProcessID(4242))
		if i%7 == 0 {
			r.RecordRetry(id)
		}
		var err error
		if i%10 == 0 {
			err = errBench
		}
		r.EndEvent(id, err)
	}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		out, err := r.MetricsJSON()
		if err != nil {
			b.Fatal(err)
		}
		size = len(out)
	}
	b.ReportMetric(float64(size), "bytes/report")
}

var errBench = &benchError{}

type benchError struct{}

func (*benchError) Error() string { return "connection reset by peer" }

// BenchmarkRetainedBytesPerEvent reports the heap retained per finished
// event record, task id included, with 100,000 records retained.
func BenchmarkRetainedBytesPerEvent(b *testing.B) {
	var per float64
	for b.Loop() {
		per = retainedBytesPerEvent(100_000)
	}
	b.ReportMetric(per, "B/record")
}
