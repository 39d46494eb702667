// Package telemetrytest helps test code that uses package telemetry: an
// in-memory [Publisher] that keeps what it is given, and [TestPublisher],
// which checks that any [telemetry.Publisher] keeps the contract the
// Recorder relies on.
//
// As with the Prometheus testutil package, test your own behaviour, not this
// library's: assert what your code recorded, not how it was delivered.
package telemetrytest
