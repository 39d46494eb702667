package otelmetric_test

import (
	"context"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/otelmetric"
)

// The Publisher records into the instruments of a MeterProvider; here the
// SDK's, read by hand. In a program the reader is a periodic one with an
// exporter, such as otlpmetrichttp.
func ExampleNewPublisher() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)

	pub, err := otelmetric.NewPublisher(otelmetric.Config{MeterProvider: mp})
	if err != nil {
		panic(err)
	}
	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub))
	if err != nil {
		panic(err)
	}
	defer rec.Close(ctx)

	rec.StartEvent("extract", "run-1/extract")
	rec.RecordRetry("run-1/extract")
	rec.EndEvent("run-1/extract", nil)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		panic(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch d := m.Data.(type) {
		case metricdata.Histogram[float64]:
			fmt.Println(m.Name, m.Unit, "count", d.DataPoints[0].Count)
		case metricdata.Sum[int64]:
			if m.Name == "event_retries_total" {
				fmt.Println(m.Name, m.Unit, d.DataPoints[0].Value)
			}
		}
	}
	// Output:
	// event_duration_seconds s count 1
	// event_retries_total {retry} 1
}
