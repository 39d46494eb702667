package webview

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// BenchmarkRecording measures recording one event run (StartEvent and
// EndEvent) on a Recorder without the view, with the view attached, and
// with the view attached while a client keeps requesting its pages and
// charts and reads its live-update stream. The view takes records from its
// own queue on the Recorder's delivery goroutine, so the last two should
// cost the same: the pages never touch the recording path. Records that
// find the view's queue full are dropped, never waited for, and reported
// as dropped/op. B/op and allocs/op count the allocations of every
// goroutine, so they include the view's own copies of the records, made on
// the delivery goroutine, and the pages it serves meanwhile; recording
// itself allocates nothing (see the telemetry package's allocation tests).
func BenchmarkRecording(b *testing.B) {
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = "task-" + strconv.Itoa(i)
	}
	for _, mode := range []string{"no view", "view", "view open"} {
		for _, parallel := range []bool{false, true} {
			name := mode
			if parallel {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				rec := benchRecorder(b, mode)
				b.ReportAllocs()
				if parallel {
					var n sync.Mutex
					next := 0
					b.RunParallel(func(pb *testing.PB) {
						n.Lock()
						mine := make([]string, len(ids)) // task ids of this goroutine only
						for i, id := range ids {
							mine[i] = strconv.Itoa(next) + "-" + id
						}
						next++
						n.Unlock()
						i := 0
						for pb.Next() {
							id := mine[i&1023]
							rec.StartEvent("extract", id)
							rec.EndEvent(id, nil)
							i++
						}
					})
				} else {
					i := 0
					for b.Loop() {
						id := ids[i&1023]
						rec.StartEvent("extract", id)
						rec.EndEvent(id, nil)
						i++
					}
				}
				b.StopTimer()
				var dropped uint64
				for _, p := range rec.PublisherStats() {
					dropped += p.DroppedQueueFull
				}
				b.ReportMetric(float64(dropped)/float64(b.N), "dropped/op")
			})
		}
	}
}

// benchRecorder returns a Recorder for mode, with a run kept pending (so
// that the page of runs in flight takes them from the Recorder, at most
// every PendingInterval), and for "view open" a client of the view that
// runs until the benchmark ends: it reads the live-update stream and, ten
// times a second (more than the pages' own script asks for, at most four),
// fetches a page and the three charts.
func benchRecorder(b *testing.B, mode string) *telemetry.Recorder {
	b.Helper()
	if mode == "no view" {
		rec, err := telemetry.NewRecorder(telemetry.WithLogger(quiet))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { rec.Close(context.Background()) })
		rec.StartEvent("long", "pending")
		return rec
	}
	f := newFixture(b, Config{}, nil)
	f.rec.StartEvent("long", "pending")
	if mode == "view open" {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		b.Cleanup(func() {
			cancel()
			wg.Wait()
		})
		wg.Go(func() { // the live-update stream, read as it comes
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/events", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			for s := bufio.NewScanner(resp.Body); s.Scan(); {
			}
		})
		wg.Go(func() { // a page and its charts, again and again
			pages := []string{"/", "/inflight", "/failed", "/slow?threshold=1ms", "/network"}
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				for _, path := range []string{pages[i%len(pages)], "/chart/throughput.svg", "/chart/failures.svg", "/chart/durations.svg"} {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+path, nil)
					if resp, err := http.DefaultClient.Do(req); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	return f.rec
}

// BenchmarkServe measures what a page or a chart costs to serve: the work
// a browser's refresh asks for, on the goroutine of its request.
func BenchmarkServe(b *testing.B) {
	c := newClock()
	f := newFixture(b, Config{}, c)
	f.sample(b, 20)
	for _, path := range []string{"/", "/failed", "/chart/throughput.svg", "/chart/failures.svg", "/chart/durations.svg"} {
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.advance(1e9) // defeat the chart cache
				w := httptest.NewRecorder()
				f.h.ServeHTTP(w, httptest.NewRequest("GET", "http://localhost"+path, nil))
			}
		})
	}
}
