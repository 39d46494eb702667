package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// Each query of BenchmarkQueries reads a Recorder holding queryRecords
// finished event runs and as many network operations, of which 1 in
// queryEvery failed and another 1 in queryEvery took longer than
// queryThreshold: 1%, a pipeline having a bad day rather than a broken one.
// What a query costs beyond finding them grows with the records it returns
// (each is copied into a new EventMetrics or NetworkMetrics); results
// reports their number.
const (
	queryRecords   = 10_000
	queryEvery     = 100
	queryThreshold = 25 * time.Millisecond
)

// BenchmarkQueries measures the four queries that find failed and slow
// records: failed-events (FailedEvents), slow-events (SlowEvents),
// failed-network (FailedOperations) and slow-network (SlowOperations),
// each returning 100 of the 10,000 records retained. results is the number
// of records a query returned.
func BenchmarkQueries(b *testing.B) {
	for _, q := range []struct {
		name string
		run  func(*telemetry.Recorder) (int, error)
	}{
		{"failed-events", func(r *telemetry.Recorder) (int, error) { return len(r.FailedEvents()), nil }},
		{"slow-events", func(r *telemetry.Recorder) (int, error) {
			s, err := r.SlowEvents(queryThreshold)
			return len(s), err
		}},
		{"failed-network", func(r *telemetry.Recorder) (int, error) { return len(r.Network().FailedOperations()), nil }},
		{"slow-network", func(r *telemetry.Recorder) (int, error) {
			s, err := r.Network().SlowOperations(queryThreshold)
			return len(s), err
		}},
	} {
		b.Run(q.name, func(b *testing.B) {
			r := queryRecorder(b)
			b.ReportAllocs()
			var n int
			for b.Loop() {
				var err error
				if n, err = q.run(r); err != nil {
					b.Fatal(err)
				}
			}
			if n != queryRecords/queryEvery {
				b.Fatalf("got %d records, want %d", n, queryRecords/queryEvery)
			}
			b.ReportMetric(float64(n), "results")
		})
	}
}

// queryRecorder returns the Recorder that BenchmarkQueries reads.
//
// The slow records need exact durations, which the public API cannot set,
// and testing/synctest, whose fake clock would give them, needs a
// *testing.T that a benchmark does not have. So the records are made in
// real time: the slow runs are started first, then left to age for twice
// the threshold, then ended among the others, which are started and ended
// at once. A run that is not meant to be slow could still take longer than
// the threshold if its goroutine were descheduled for that long between
// start and end; queryRecorder checks the counts of failed and slow
// records and builds the Recorder again if that happened.
func queryRecorder(b *testing.B) *telemetry.Recorder {
	b.Helper()
	const attempts = 5
	for range attempts {
		r := fillQueryRecorder(b)
		if b.Failed() {
			b.FailNow()
		}
		st := r.Stats()
		if st.EventsRetained != queryRecords || st.NetworkRetained != queryRecords || st.EventsEvicted+st.NetworkEvicted != 0 {
			b.Fatalf("got %d event runs and %d network operations retained, %d and %d evicted; want %d of each, none evicted",
				st.EventsRetained, st.NetworkRetained, st.EventsEvicted, st.NetworkEvicted, queryRecords)
		}
		want := queryRecords / queryEvery
		failedEvents, failedOps := len(r.FailedEvents()), len(r.Network().FailedOperations())
		if failedEvents != want || failedOps != want {
			b.Fatalf("got %d failed event runs and %d failed network operations, want %d of each", failedEvents, failedOps, want)
		}
		slowEvents, err := r.SlowEvents(queryThreshold)
		if err != nil {
			b.Fatal(err)
		}
		slowOps, err := r.Network().SlowOperations(queryThreshold)
		if err != nil {
			b.Fatal(err)
		}
		if len(slowEvents) == want && len(slowOps) == want {
			runtime.GC()
			return r
		}
		// Some run meant to be fast was descheduled past the threshold.
		r.Close(context.Background())
	}
	b.Fatalf("a run meant to be fast took longer than %v in each of %d attempts", queryThreshold, attempts)
	return nil
}

// fillQueryRecorder records the runs of queryRecorder from GOMAXPROCS
// goroutines: run i failed if i%queryEvery == 0 and was slow if
// i%queryEvery == queryEvery/2.
func fillQueryRecorder(b *testing.B) *telemetry.Recorder {
	b.Helper()
	r := newRecorder(b, telemetry.WithMaxEvents(queryRecords), telemetry.WithMaxNetworkOps(queryRecords),
		telemetry.WithLogger(quiet))
	net := r.Network()
	ids := make([]string, queryRecords)
	for i := range ids {
		ids[i] = fmt.Sprintf("task-%08d", i)
	}
	for i := queryEvery / 2; i < queryRecords; i += queryEvery {
		must(b, r.StartEvent("transform", ids[i]))
		must(b, net.StartOperation(ids[i], "10.0.0.7", 8080, ""))
	}
	time.Sleep(2 * queryThreshold) // the runs started above become slow
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for g := range workers {
		wg.Go(func() {
			for i := g; i < queryRecords; i += workers {
				id := ids[i]
				var err error
				switch i % queryEvery {
				case 0:
					err = errBench
				case queryEvery / 2: // started before the sleep
					if err := errors.Join(r.EndEvent(id, nil), net.EndOperation(id, 512, 2048, nil)); err != nil {
						b.Error(err)
						return
					}
					continue
				}
				if err := errors.Join(r.StartEvent("transform", id), r.EndEvent(id, err),
					net.StartOperation(id, "10.0.0.7", 8080, ""), net.EndOperation(id, 512, 2048, err)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return r
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
