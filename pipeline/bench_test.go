package pipeline_test

import (
	"context"
	"testing"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// BenchmarkPipelineEvent measures the runtime's cost per event: one run of
// a one-event pipeline whose event does nothing, with telemetry off and on
// (recording into a Recorder with no publisher), serially and from
// GOMAXPROCS goroutines at once.
func BenchmarkPipelineEvent(b *testing.B) {
	noop := pipeline.Func("noop", func(ctx context.Context, in any) (any, error) { return in, nil })
	for _, tc := range []struct {
		name string
		cfg  func(b *testing.B) pipeline.Config
	}{
		{"telemetry-off", func(*testing.B) pipeline.Config { return pipeline.Config{NoTelemetry: true} }},
		{"telemetry-on", func(b *testing.B) pipeline.Config {
			r, err := telemetry.NewRecorder(telemetry.WithMaxEvents(10_000))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { r.Close(context.Background()) })
			return pipeline.Config{Recorder: r}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := mustNew(b, tc.cfg(b), pipeline.Sequence(noop))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Run(ctx, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			p := mustNew(b, tc.cfg(b), pipeline.Sequence(noop))
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := p.Run(ctx, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
