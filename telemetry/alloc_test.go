package telemetry_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestRecordingDoesNotAllocate locks in the zero-allocation recording path,
// with a queued publisher and an Observer attached.
func TestRecordingDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; run without -race to check allocations")
	}
	obs := &countingObserver{}
	r := newRecorder(t, telemetry.WithPublishers(&discard{}, obs), telemetry.WithLogger(quiet))
	net := r.Network()
	ids := taskIDs(4096)
	// Warm up: grow maps, ring blocks and buffers to their steady size.
	for _, id := range ids {
		runEvent(t, r, "e", id, 1, nil)
	}
	flush(t, r)
	i := 0
	allocs := testing.AllocsPerRun(2000, func() {
		id := ids[i%len(ids)]
		i++
		r.StartEvent("e", id, telemetry.WithProcessID(1), telemetry.WithPipelineID("p"))
		r.RecordRetry(id)
		r.EndEvent(id, errTransient)
		net.StartOperation(id, "h", 80, "")
		net.EndOperation(id, 1, 2, nil)
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per event and operation, want 0", allocs)
	}
	if e, n := obs.events.Load(), obs.network.Load(); e != uint64(len(ids))+2001 || n != 2001 {
		t.Errorf("the Observer got %d events and %d operations, want %d and 2001", e, n, len(ids)+2001)
	}
}

// countingObserver is an Observer that counts what it is given.
type countingObserver struct {
	syncPublisher
	events, network atomic.Uint64
}

func (o *countingObserver) ObserveEvent(context.Context, telemetry.EventObservation) error {
	o.events.Add(1)
	return nil
}

func (o *countingObserver) ObserveNetwork(context.Context, telemetry.NetworkObservation) error {
	o.network.Add(1)
	return nil
}

// TestRetainedMemoryPerEvent checks the heap kept per finished event
// record, task id string included, against the 200-byte budget of the
// performance goals (docs/performance.md).
func TestRetainedMemoryPerEvent(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector adds shadow memory; run without -race to measure memory")
	}
	const n = 100_000
	perRecord := retainedBytesPerEvent(n)
	t.Logf("retained %.1f bytes per finished event record", perRecord)
	if perRecord > 200 {
		t.Errorf("got %.1f bytes per retained record, want at most 200", perRecord)
	}
}

// retainedBytesPerEvent records n events into a Recorder that retains n and
// returns the heap growth per record, task ids (16-byte strings) included.
func retainedBytesPerEvent(n int) float64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r, _ := telemetry.NewRecorder(telemetry.WithMaxEvents(n))
	for i := range n {
		id := fmt.Sprintf("task-%011d", i)
		r.StartEvent("transform", id)
		r.EndEvent(id, nil)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(r)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}
