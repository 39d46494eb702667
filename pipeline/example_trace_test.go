package pipeline_test

import (
	"context"
	"fmt"
	"log"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// A traced pipeline: the run is a span, each event run a child span.
func ExampleConfig_tracerProvider() {
	ctx := context.Background()
	rec, err := telemetry.NewRecorder()
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close(ctx)
	spans := tracetest.NewSpanRecorder() // in a program: otlp.NewTracerProvider, or your SDK's exporter
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(ctx)

	p, err := pipeline.New(pipeline.Config{Recorder: rec, TracerProvider: tp},
		pipeline.Sequence(
			pipeline.Func("extract", func(ctx context.Context, in any) (any, error) { return 1, nil }),
			pipeline.Func("load", func(ctx context.Context, in any) (any, error) { return in, nil })))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := p.Run(ctx, nil); err != nil {
		log.Fatal(err)
	}
	ended := spans.Ended()
	run := ended[len(ended)-1]
	for _, s := range ended {
		fmt.Println(s.Name(), "child of the run:", s.Parent().SpanID() == run.SpanContext().SpanID())
	}
	// Output:
	// extract child of the run: true
	// load child of the run: true
	// pipeline.run child of the run: false
}
