package oteltrace_test

import (
	"context"
	"strconv"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/oteltrace"
)

// discard is a span processor that keeps nothing, so that the benchmarks
// measure the spans, not an exporter.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }

// BenchmarkEventSpan compares, in one run, an event run recorded and
// traced by a Tracer with a bare SDK span start and end (sampled), an
// unsampled traced run with an untraced one: the two cost ratios
// are sampled/bare and unsampled/off.
func BenchmarkEventSpan(b *testing.B) {
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = "task-" + strconv.Itoa(i)
	}
	newRec := func(b *testing.B) *telemetry.Recorder {
		rec, err := telemetry.NewRecorder()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { rec.Close(context.Background()) })
		return rec
	}
	sampled := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discard{}))
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	ctx := context.Background()
	b.Run("bare", func(b *testing.B) {
		tr := sampled.Tracer("bench")
		b.ReportAllocs()
		for b.Loop() {
			_, s := tr.Start(ctx, "load")
			s.End()
		}
	})
	for _, c := range []struct {
		name string
		tp   *sdktrace.TracerProvider
	}{{"sampled", sampled}, {"unsampled", unsampled}} {
		b.Run(c.name, func(b *testing.B) {
			tr, err := oteltrace.New(newRec(b), oteltrace.Config{TracerProvider: c.tp})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				id := ids[i&1023]
				i++
				sctx, _ := tr.StartEvent(ctx, "load", id)
				tr.EndEvent(sctx, id, nil)
			}
		})
	}
	b.Run("off", func(b *testing.B) {
		rec := newRec(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			id := ids[i&1023]
			i++
			rec.StartEvent("load", id)
			rec.EndEvent(id, nil)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		tr, err := oteltrace.New(newRec(b), oteltrace.Config{TracerProvider: sampled})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		var n atomicInt
		b.RunParallel(func(pb *testing.PB) {
			g := strconv.Itoa(n.next())
			i := 0
			for pb.Next() {
				id := g + "/" + ids[i&1023]
				i++
				sctx, _ := tr.StartEvent(ctx, "load", id)
				tr.EndEvent(sctx, id, nil)
			}
		})
	})
}
