package grafanacloud

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/metricpush"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// newLocalPublisher returns a Publisher pushing to a local endpoint that
// accepts everything, once an hour unless flushed.
func newLocalPublisher(t testing.TB, cfg Config) (*Publisher, *scripted) {
	t.Helper()
	srv := newScripted(t)
	cfg.APIKey, cfg.OrgSlug = testKey, "1"
	cfg.Endpoint = srv.URL + "/api/prom/push"
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	p, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p, srv
}

// lockedSnapshot takes a snapshot of p as a push does, holding the push
// lock until the test ends, so that no periodic push reuses it meanwhile.
func lockedSnapshot(t *testing.T, p *Publisher) *metricpush.Snapshot {
	snap, release := p.eng.LockedSnapshot()
	t.Cleanup(release) // before newLocalPublisher's Close: cleanups run last first
	return snap
}

func TestPublishAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	p, _ := newLocalPublisher(t, Config{WaitBuckets: []float64{1, 10}})
	ctx := context.Background()
	ev := finishedEvent("load", telemetry.StatusCompleted, time.Millisecond, 2)
	op := finishedOp("rpc", time.Millisecond, 10, 20)
	p.PublishEventMetrics(ctx, ev) // makes the series
	p.PublishNetworkMetrics(ctx, op)
	if n := testing.AllocsPerRun(1000, func() { p.PublishEventMetrics(ctx, ev) }); n != 0 {
		t.Errorf("PublishEventMetrics: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { p.PublishNetworkMetrics(ctx, op) }); n != 0 {
		t.Errorf("PublishNetworkMetrics: %v allocations, want 0", n)
	}
	// A run with a known wait in a queue, into custom WaitBuckets.
	waited := finishedEvent("queued", telemetry.StatusCompleted, time.Millisecond, 0)
	waited.EnqueueTime = waited.StartTime.Add(-3 * time.Second)
	p.PublishEventMetrics(ctx, waited) // makes its series and wait histogram
	if n := testing.AllocsPerRun(1000, func() { p.PublishEventMetrics(ctx, waited) }); n != 0 {
		t.Errorf("PublishEventMetrics with a wait: %v allocations, want 0", n)
	}
}

// TestCardinalityOverflow checks that names beyond MaxLabelValues are
// counted under OverflowLabelValue, exactly, and logged once.
func TestCardinalityOverflow(t *testing.T) {
	var logs bytes.Buffer
	p, _ := newLocalPublisher(t, Config{MaxLabelValues: 3, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	for i := range 10 {
		p.PublishEventMetrics(ctx, finishedEvent("event-"+strconv.Itoa(i), telemetry.StatusCompleted, time.Second, 1))
		p.PublishNetworkMetrics(ctx, finishedOp("op-"+strconv.Itoa(i), time.Second, 1, 2))
	}
	snap := lockedSnapshot(t, p)
	names := map[string]uint64{}
	for _, e := range snap.Events {
		names[e.Name] = e.Completed.Count
	}
	want := map[string]uint64{"event-0": 1, "event-1": 1, "event-2": 1, OverflowLabelValue: 7}
	if len(names) != len(want) {
		t.Errorf("got event series %v, want %v", names, want)
	}
	for k, w := range want {
		if names[k] != w {
			t.Errorf("event_name %s: got count %d, want %d", k, names[k], w)
		}
	}
	var sent uint64
	for _, o := range snap.Ops {
		sent += o.Sent
	}
	if len(snap.Ops) != 4 || sent != 10 {
		t.Errorf("got %d operation series sending %d bytes, want 4 and 10", len(snap.Ops), sent)
	}
	if n := strings.Count(logs.String(), "too many distinct"); n != 2 {
		t.Errorf("got %d overflow log lines, want 2 (events and operations once each):\n%s", n, logs.String())
	}
}

// TestPublisherConcurrentSafe publishes from many goroutines while pushes
// run, then checks that every record was counted exactly. Run it with
// -race -count=20.
func TestPublisherConcurrentSafe(t *testing.T) {
	p, _ := newLocalPublisher(t, Config{Interval: 20 * time.Millisecond})
	ctx := context.Background()
	const goroutines, per = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range per {
				name := "event-" + strconv.Itoa((g+i)%5)
				p.PublishEventMetrics(ctx, finishedEvent(name, telemetry.StatusFailed, time.Millisecond, 1))
				p.PublishNetworkMetrics(ctx, finishedOp("op", time.Millisecond, 3, 4))
				if i%100 == 0 {
					p.Flush(ctx)
				}
			}
		})
	}
	wg.Wait()
	testutil.Eventually(t, pollTimeout, func() error { return p.Flush(ctx) })
	snap := lockedSnapshot(t, p)
	var count, retries uint64
	var sum float64
	for _, e := range snap.Events {
		count += e.Failed.Count
		retries += e.Retries
		sum += e.Failed.Sum
	}
	if count != goroutines*per || retries != goroutines*per || math.Abs(sum-goroutines*per*0.001) > 1e-6 {
		t.Errorf("got count %d, retries %d, sum %v; want %d, %d, %v", count, retries, sum, goroutines*per, goroutines*per, goroutines*per*0.001)
	}
	if o := snap.Ops[0]; o.Latency.Count != goroutines*per || o.Sent != 3*goroutines*per || o.Received != 4*goroutines*per {
		t.Errorf("got operation point %+v, want %d operations", o, goroutines*per)
	}
	// A push may time out on a loaded machine (its budget is the 20ms
	// interval); the last Flush above succeeded.
	if s := p.Stats(); s.Pushes == 0 {
		t.Errorf("got stats %+v, want pushes", s)
	}
}
