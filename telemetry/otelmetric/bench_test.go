package otelmetric

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/eventpipeline/eventpipeline/internal/metricdef"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// BenchmarkPublishEvent measures one finished run recorded into the
// instruments of the OpenTelemetry SDK. Run it with:
//
//	go test -run XXX -bench . -benchmem -cpu 1,2 ./telemetry/otelmetric
func BenchmarkPublishEvent(b *testing.B) {
	p, _ := newManual(b, Config{})
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

// TestPublisherConcurrentSafe publishes from many goroutines, some names
// new, and checks that every record was counted exactly. Run it with
// -race -count=20.
func TestPublisherConcurrentSafe(t *testing.T) {
	p, reader := newManual(t, Config{})
	ctx := context.Background()
	const goroutines, per = 8, 300
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range per {
				p.PublishEventMetrics(ctx, finishedEvent("event-"+strconv.Itoa((g+i)%5), telemetry.StatusFailed, time.Millisecond, 1))
				p.PublishNetworkMetrics(ctx, finishedOp("op", time.Millisecond, 3, 4))
			}
		})
	}
	wg.Wait()
	var runs, retries, sent int64
	for _, m := range collect(t, reader) {
		switch d := m.Data.(type) {
		case metricdata.Histogram[float64]:
			if m.Name == metricdef.EventDuration {
				for _, dp := range d.DataPoints {
					runs += int64(dp.Count)
				}
			}
		case metricdata.Sum[int64]:
			for _, dp := range d.DataPoints {
				switch {
				case m.Name == metricdef.EventRetries:
					retries += dp.Value
				case m.Name == metricdef.NetworkBytes && dp.Attributes.HasValue(metricdef.LabelDirection) && dp.Attributes.Len() == 2:
					if v, _ := dp.Attributes.Value(metricdef.LabelDirection); v.AsString() == metricdef.DirectionSent {
						sent += dp.Value
					}
				}
			}
		}
	}
	if n := int64(goroutines * per); runs != n || retries != n || sent != 3*n {
		t.Errorf("got %d runs, %d retries, %d bytes sent; want %d, %d, %d", runs, retries, sent, n, n, 3*n)
	}
}
