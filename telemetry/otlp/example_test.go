package otlp_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/otlp"
)

// A Publisher pushes to the base URL of an OTLP/HTTP receiver; metrics go
// to its /v1/metrics.
func ExampleNewPublisher() {
	pub, err := otlp.NewPublisher(otlp.Config{
		Endpoint: "https://otlp.example.com/otlp",
		Headers:  map[string]telemetry.Secret{"Authorization": telemetry.NewSecret("Bearer t0ken")}, // in practice from the environment
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	// In a program: telemetry.NewRecorder(telemetry.WithPublishers(pub)),
	// whose Close pushes one last time and closes pub. Here nothing is
	// recorded, so Close pushes nothing.
	defer pub.Close(context.Background())
	fmt.Println(pub.URL())
	fmt.Printf("%v\n", pub) // never the headers
	// Output:
	// https://otlp.example.com/otlp/v1/metrics
	// otlp.Publisher(https://otlp.example.com/otlp/v1/metrics)
}

// Credentials are refused over plain http to a host other than loopback.
func ExampleNewPublisher_insecure() {
	_, err := otlp.NewPublisher(otlp.Config{
		Endpoint: "http://collector.internal:4318",
		Headers:  map[string]telemetry.Secret{"Authorization": telemetry.NewSecret("Bearer t0ken")},
	})
	fmt.Println(err)
	// Output:
	// otlp: Endpoint "http://collector.internal:4318" is not https, so Headers (credentials) would be sent in clear text; use https://, or set AllowInsecure to allow it
}

// A TracerProvider exports spans to the base URL's /v1/traces, retried by
// Config.Retry; its Stats count what it exported and dropped.
func ExampleNewTracerProvider() {
	ctx := context.Background()
	tp, err := otlp.NewTracerProvider(ctx, otlp.Config{
		Endpoint: "https://otlp.example.com/otlp",
		Headers:  map[string]telemetry.Secret{"Authorization": telemetry.NewSecret("Bearer t0ken")}, // in practice from the environment
		Retry:    telemetry.RetryPolicy{MaxAttempts: 5},
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	// In a program: oteltrace.New(rec, oteltrace.Config{TracerProvider: tp}),
	// or pipeline.Config{TracerProvider: tp}. Shutdown exports the spans
	// still buffered; here there are none.
	defer tp.Shutdown(ctx)
	fmt.Println(tp.URL())
	fmt.Printf("%v\n", tp) // never the headers
	st := tp.Stats()
	fmt.Println(st.ExportedSpans, st.DroppedSpans)
	// Output:
	// https://otlp.example.com/otlp/v1/traces
	// otlp.TracerProvider(https://otlp.example.com/otlp/v1/traces)
	// 0 0
}
