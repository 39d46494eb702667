package prometheus_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
)

// BenchmarkVsObserve and BenchmarkRetention put the cost of recording one
// event run through a Recorder beside what code instrumented with
// client_golang alone pays for the same measurement. Each comparison is one
// benchmark function whose sub-benchmarks run in the same process, so that
// a ratio of their medians comes from one run on one load:
//
//	go test -run '^$' -bench 'VsObserve|Retention' -benchmem -cpu 1,2 ./telemetry/prometheus
//
// docs/bench/run.sh runs them in interleaved rounds, and docs/bench/gen
// turns the medians into the ratios of docs/performance.md.

const (
	// vsRetained is how many finished records the Recorders of
	// BenchmarkVsObserve retain, and hold before timing starts.
	vsRetained = 50_000
	// vsIDs is how many distinct task ids BenchmarkVsObserve cycles
	// through: more than it retains, so that a task id comes back only
	// after its previous record was evicted.
	vsIDs = 1 << 17
)

// taskIDs returns n distinct task ids of one length, made before timing
// so that a benchmark measures recording, not string formatting.
func taskIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("task-%08d", i)
	}
	return ids
}

// vsTaskIDs are the task ids of BenchmarkVsObserve, made once per process.
var vsTaskIDs = sync.OnceValue(func() []string { return taskIDs(vsIDs) })

// workBuf is the input of work.
var workBuf [1024]byte

// work stands for what an event does between its start and its end: a
// SHA-256 of 1 KiB, about 1µs. Its result goes to sink, so that the
// compiler cannot drop it.
func work() byte {
	s := sha256.Sum256(workBuf[:])
	return s[0]
}

// sink takes the results of work, once per goroutine.
var sink atomic.Uint32

// newVec returns the HistogramVec that instrumented code would observe
// into: event_duration_seconds with the labels event_name and status.
func newVec() *prom.HistogramVec {
	v := prom.NewHistogramVec(prom.HistogramOpts{
		Name: "event_duration_seconds", Help: "Duration.", Buckets: prometheus.DefaultEventBuckets,
	}, []string{"event_name", "status"})
	prom.NewRegistry().MustRegister(v)
	return v
}

// newRecorder returns a Recorder retaining up to retain finished event
// runs, already holding that many (task ids ids[:retain]), with the
// Prometheus Publisher attached if withProm. Its garbage is collected
// before it is returned, so that timing does not pay for the setup.
func newRecorder(b *testing.B, retain int, ids []string, withProm bool) *telemetry.Recorder {
	b.Helper()
	r, err := telemetry.NewRecorder(telemetry.WithMaxEvents(retain), telemetry.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	if withProm {
		p, err := prometheus.NewPublisher(prometheus.Config{Registry: prom.NewRegistry(), Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.AddPublisher(p); err != nil {
			b.Fatal(err)
		}
	}
	for _, id := range ids[:retain] {
		if err := r.StartEvent("transform", id); err != nil {
			b.Fatal(err)
		}
		if err := r.EndEvent(id, nil); err != nil {
			b.Fatal(err)
		}
	}
	if got := r.Stats().EventsRetained; got != retain {
		b.Fatalf("got %d records retained after filling, want %d", got, retain)
	}
	runtime.GC()
	return r
}

// recordSerial records event runs on r in a b.Loop, cycling through ids
// from ids[from], with work between start and end if withWork.
func recordSerial(b *testing.B, r *telemetry.Recorder, ids []string, from int, withWork bool) {
	var acc byte
	i := from % len(ids)
	for b.Loop() {
		id := ids[i]
		if i++; i == len(ids) {
			i = 0
		}
		if err := r.StartEvent("transform", id); err != nil {
			b.Fatal(err)
		}
		if withWork {
			acc ^= work()
		}
		if err := r.EndEvent(id, nil); err != nil {
			b.Fatal(err)
		}
	}
	sink.Add(uint32(acc))
}

// recordParallel records event runs from b.RunParallel's goroutines: all
// on rs[0] if rs holds one Recorder, else each goroutine on a Recorder of
// its own, rs[g] for the g-th. Each cycles through a window of ids of its
// own, so that none can start a task id that another has pending.
func recordParallel(b *testing.B, rs []*telemetry.Recorder, ids []string, withWork bool) {
	runParallel(b, ids, withWork, func(g int) (start, end func(id string) error) {
		r := rs[0]
		if len(rs) > 1 {
			r = rs[g]
		}
		return func(id string) error { return r.StartEvent("transform", id) },
			func(id string) error { return r.EndEvent(id, nil) }
	})
}

// runParallel runs event runs from b.RunParallel's goroutines, with work
// between start and end if withWork: the g-th goroutine starts and ends
// its runs with the functions that calls(g) returns, cycling through the
// g-th window of ids.
func runParallel(b *testing.B, ids []string, withWork bool, calls func(g int) (start, end func(id string) error)) {
	windows := runtime.GOMAXPROCS(0) // RunParallel's goroutines at parallelism 1
	size := len(ids) / windows
	var next atomic.Int64
	b.ResetTimer() // count recording only, not the setup
	b.RunParallel(func(pb *testing.PB) {
		g := int(next.Add(1) - 1)
		if g >= windows {
			b.Error("more goroutines than windows of task ids")
			return
		}
		start, end := calls(g)
		mine := ids[g*size : (g+1)*size]
		var acc byte
		i := 0
		for pb.Next() {
			id := mine[i]
			if i++; i == len(mine) {
				i = 0
			}
			if err := start(id); err != nil {
				b.Error(err)
				return
			}
			if withWork {
				acc ^= work()
			}
			if err := end(id); err != nil {
				b.Error(err)
				return
			}
		}
		sink.Add(uint32(acc))
	})
}

// A sharedIndex is the least that a Recorder shared by every core must
// share to refuse the start of a task id pending anywhere
// ([telemetry.ErrAlreadyStarted]): one index of the pending task ids,
// which every start writes and every end clears. It is split over 1,024
// locks, each with its own cache line, so that two goroutines rarely wait
// for the same lock; it keeps nothing else, no record, no totals, no time.
// BenchmarkVsObserve's parallel/shared-index measures what it alone gains
// from a second core: the ceiling of any design that keeps that contract.
type sharedIndex struct {
	seed    maphash.Seed
	stripes [1024]struct {
		mu      sync.Mutex
		pending map[string]struct{}
		_       [64]byte
	}
}

func newSharedIndex() *sharedIndex {
	x := &sharedIndex{seed: maphash.MakeSeed()}
	for i := range x.stripes {
		x.stripes[i].pending = make(map[string]struct{})
	}
	return x
}

// errPending is the error of a start of a task id that is pending.
var errPending = errors.New("task id already pending")

// start adds id to the pending task ids; an error if it is there.
func (x *sharedIndex) start(id string) error {
	s := &x.stripes[maphash.String(x.seed, id)&1023]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[id]; ok {
		return errPending
	}
	s.pending[id] = struct{}{}
	return nil
}

// end removes id from the pending task ids.
func (x *sharedIndex) end(id string) error {
	s := &x.stripes[maphash.String(x.seed, id)&1023]
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
	return nil
}

// workSerial does the work of one event run in a b.Loop, recording
// nothing.
func workSerial(b *testing.B) {
	var acc byte
	for b.Loop() {
		acc ^= work()
	}
	sink.Add(uint32(acc))
}

// workParallel is workSerial from b.RunParallel's goroutines.
func workParallel(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		var acc byte
		for pb.Next() {
			acc ^= work()
		}
		sink.Add(uint32(acc))
	})
}

// observeSerial times each run with two clock reads and observes its
// duration in vec, as code instrumented with client_golang alone does.
func observeSerial(b *testing.B, vec *prom.HistogramVec, withWork bool) {
	var acc byte
	for b.Loop() {
		t0 := time.Now()
		if withWork {
			acc ^= work()
		}
		d := time.Since(t0)
		vec.WithLabelValues("transform", "completed").Observe(d.Seconds())
	}
	sink.Add(uint32(acc))
}

// observeParallel is observeSerial from b.RunParallel's goroutines.
func observeParallel(b *testing.B, vec *prom.HistogramVec, withWork bool) {
	b.RunParallel(func(pb *testing.PB) {
		var acc byte
		for pb.Next() {
			t0 := time.Now()
			if withWork {
				acc ^= work()
			}
			d := time.Since(t0)
			vec.WithLabelValues("transform", "completed").Observe(d.Seconds())
		}
		sink.Add(uint32(acc))
	})
}

// BenchmarkVsObserve measures one event run three ways, in one process:
//
//   - observe: client_golang alone, two clock reads and
//     HistogramVec.WithLabelValues (2 labels).Observe;
//   - recorder: StartEvent + EndEvent on a Recorder with no publisher,
//     retaining 50,000 records and holding that many before timing;
//   - recorder+prometheus: the same with the Prometheus Publisher attached,
//     which observes the duration on the recording path.
//
// serial/ runs them in a loop, parallel/ from b.RunParallel's goroutines
// (one shared Recorder or HistogramVec; run with -cpu 1,2 for the
// scaling). work/ does the same with about 1µs of real work (a SHA-256 of
// 1 KiB) between start and end, or between the two clock reads, since a
// tight loop keeps in cache what real work would evict; its work-alone
// does the work and records nothing, which shows how much the machine
// lets the work itself gain from a second core. Beside the shared Recorder,
// each parallel/ has two references for its scaling:
// recorder-per-goroutine, a Recorder of each goroutine's own, and
// shared-index, the one thing a shared Recorder cannot avoid sharing (see
// sharedIndex).
func BenchmarkVsObserve(b *testing.B) {
	for _, mode := range []struct {
		prefix   string
		withWork bool
	}{{"", false}, {"work/", true}} {
		for _, parallel := range []bool{false, true} {
			name := mode.prefix + "serial/"
			if parallel {
				name = mode.prefix + "parallel/"
			}
			withWork := mode.withWork
			if withWork {
				b.Run(name+"work-alone", func(b *testing.B) {
					b.ReportAllocs()
					if parallel {
						workParallel(b)
					} else {
						workSerial(b)
					}
				})
			}
			b.Run(name+"observe", func(b *testing.B) {
				vec := newVec()
				b.ReportAllocs()
				if parallel {
					observeParallel(b, vec, withWork)
				} else {
					observeSerial(b, vec, withWork)
				}
			})
			for _, withProm := range []bool{false, true} {
				sub := "recorder"
				if withProm {
					sub = "recorder+prometheus"
				}
				b.Run(name+sub, func(b *testing.B) {
					ids := vsTaskIDs()
					r := newRecorder(b, vsRetained, ids, withProm)
					b.ReportAllocs()
					if parallel {
						recordParallel(b, []*telemetry.Recorder{r}, ids, withWork)
					} else {
						recordSerial(b, r, ids, vsRetained, withWork)
					}
				})
			}
			if !parallel {
				continue
			}
			// References for the scaling: what a Recorder of each
			// goroutine's own gains, and the ceiling of any shared one.
			b.Run(name+"recorder-per-goroutine", func(b *testing.B) {
				ids := vsTaskIDs()
				rs := make([]*telemetry.Recorder, runtime.GOMAXPROCS(0))
				for g := range rs {
					rs[g] = newRecorder(b, vsRetained, ids, false)
				}
				b.ReportAllocs()
				recordParallel(b, rs, ids, withWork)
			})
			b.Run(name+"shared-index", func(b *testing.B) {
				x := newSharedIndex()
				b.ReportAllocs()
				runParallel(b, vsTaskIDs(), withWork, func(int) (start, end func(string) error) {
					return x.start, x.end
				})
			})
		}
	}
}

// BenchmarkRetention measures StartEvent + EndEvent on a Recorder with no
// publisher that retains 10k, 100k or 1M records and holds that many
// before timing, so that the cost can be compared across retention in one
// run. It cycles through a quarter more task ids than it retains, all made
// before timing, so every run evicts the oldest record and a task id comes
// back only after its previous record was evicted.
func BenchmarkRetention(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"10k", 10_000}, {"100k", 100_000}, {"1M", 1_000_000}} {
		b.Run(size.name, func(b *testing.B) {
			ids := taskIDs(size.n + size.n/4)
			r := newRecorder(b, size.n, ids, false)
			b.ReportAllocs()
			recordSerial(b, r, ids, size.n, false)
			if got := r.Stats().EventsEvicted; got == 0 {
				b.Errorf("got no evictions after %d runs on a full Recorder", b.N)
			}
		})
	}
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
