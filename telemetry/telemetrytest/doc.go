// Package telemetrytest helps test code that uses package telemetry: an
// in-memory [Publisher] that keeps every record it is given, and
// [TestPublisher], which checks that any [telemetry.Publisher] keeps the
// contract a Recorder relies on.
//
// # Testing code that records
//
// Give the code under test a Recorder of its own with a [Publisher]
// attached, run it, flush, and assert what was recorded:
//
//	pub := &telemetrytest.Publisher{}
//	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub))
//	if err != nil {
//		t.Fatal(err)
//	}
//	t.Cleanup(func() { rec.Close(context.Background()) })
//	runPipeline(rec)
//	if err := rec.Flush(context.Background()); err != nil {
//		t.Fatal(err)
//	}
//	for _, m := range pub.Events() { ... }
//
// The queries of the Recorder itself ([telemetry.Recorder.FailedEvents],
// [telemetry.Recorder.Metrics] and so on) answer as well, without a
// publisher. Publisher.Fail makes publishing fail, to test how your code
// reports delivery problems. Leave [telemetry.Default] alone in tests, or
// restore it with t.Cleanup.
//
// # Testing a publisher
//
// [TestPublisher] drives a publisher of yours through a Recorder and
// returns every violation joined in one error, as testing/slogtest does:
// every record is delivered and [telemetry.Recorder.Flush] waits for it; a
// publish call with an ended context returns promptly; Close works once,
// and publishing after it returns an error wrapping [telemetry.ErrClosed].
//
// As with the testutil package of the Prometheus client, test your own
// behaviour, not this library's: assert what your code recorded, not how
// it was delivered.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use.
package telemetrytest
