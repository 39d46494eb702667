package oteltrace_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

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

// BenchmarkEventSpan gives, in one run, the two cost ratios of tracing:
//
//   - sampled/bare: an event run recorded and traced by a Tracer (its span
//     sampled) against a bare SDK span start and end carrying the same task
//     id attribute, what hand-written tracing of the run would cost;
//   - unsampled/off: an event run under a pipeline run whose span is not
//     sampled against the same run recorded without a Tracer.
//
// unsampled-root is a run with no parent whose new span the sampler drops:
// the SDK's sampling decision is then part of its cost. bare-retained is
// bare in a process whose Recorder holds as many finished records as the
// traced runs' Recorder soon does (telemetry.DefaultMaxEvents): the
// difference from bare is what collections cost more for marking them,
// which any allocation of such a program brings about, traced or not.
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
	// The span of a pipeline run that the sampler dropped.
	_, runSpan := unsampled.Tracer("bench").Start(ctx, "pipeline.run")
	unsampledRun := trace.ContextWithSpan(ctx, runSpan)
	traced := func(tp *sdktrace.TracerProvider, parent context.Context) func(*testing.B) {
		return func(b *testing.B) {
			tr, err := oteltrace.New(newRec(b), oteltrace.Config{TracerProvider: tp})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				id := ids[i&1023]
				i++
				sctx, err := tr.StartEvent(parent, "load", id)
				if err != nil {
					b.Fatal(err)
				}
				if err := tr.EndEvent(sctx, id, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	// bare starts and ends spans alone, with the task id attribute.
	bare := func(b *testing.B) {
		tr := sampled.Tracer("bench")
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			id := ids[i&1023]
			i++
			_, s := tr.Start(ctx, "load", trace.WithAttributes(oteltrace.TaskIDKey.String(id)))
			s.End()
		}
	}
	b.Run("bare", bare)
	b.Run("bare-retained", func(b *testing.B) {
		// The bare span in a process whose Recorder retains as many
		// records as a traced run's Recorder does: what retaining them
		// adds to every allocation of the program, traced or not. The
		// Recorder keeps them without pointers, so that collections do
		// not mark them: this should cost what bare does.
		rec := newRec(b)
		for i := range telemetry.DefaultMaxEvents {
			id := "filler-" + strconv.Itoa(i)
			if err := rec.StartEvent("load", id); err != nil {
				b.Fatal(err)
			}
			if err := rec.EndEvent(id, nil); err != nil {
				b.Fatal(err)
			}
		}
		bare(b)
		runtime.KeepAlive(rec)
	})
	b.Run("sampled", traced(sampled, ctx))
	b.Run("unsampled", traced(unsampled, unsampledRun))
	b.Run("unsampled-root", traced(unsampled, ctx))
	b.Run("off", func(b *testing.B) {
		rec := newRec(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			id := ids[i&1023]
			i++
			if err := rec.StartEvent("load", id); err != nil {
				b.Fatal(err)
			}
			if err := rec.EndEvent(id, nil); err != nil {
				b.Fatal(err)
			}
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
				sctx, err := tr.StartEvent(ctx, "load", id)
				if err != nil {
					b.Error(err)
					return
				}
				if err := tr.EndEvent(sctx, id, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
