package oteltrace_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/oteltrace"
)

func ExampleNew() {
	ctx := context.Background()
	rec, err := telemetry.NewRecorder()
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close(ctx)
	spans := tracetest.NewSpanRecorder() // in a program: sdktrace.WithBatcher(exporter)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(ctx)

	tr, err := oteltrace.New(rec, oteltrace.Config{TracerProvider: tp})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, err := tr.StartEvent(ctx, "load", "run-1/load", telemetry.WithPipelineID("run-1"))
	if err != nil {
		log.Fatal(err)
	}
	tr.RecordRetry(runCtx, "run-1/load", errors.New("timeout"))
	tr.EndEvent(runCtx, "run-1/load", errors.New("disk full"))

	s := spans.Ended()[0]
	m, _ := rec.Metrics("run-1/load")
	fmt.Println(s.Name(), s.Status().Code, s.Status().Description, len(s.Events()), "retry event")
	fmt.Println("same trace:", m.Span.TraceIDString() == s.SpanContext().TraceID().String())
	fmt.Println("same end:", m.EndTime.Equal(s.EndTime()))
	// Output:
	// load Error disk full 1 retry event
	// same trace: true
	// same end: true
}
