// Package metricpush is the engine of the publishers that push metrics
// (telemetry/otlp, telemetry/remotewrite and telemetry/grafanacloud): it
// aggregates the records of a Recorder into cumulative histograms and
// counters on the recording path, without locks (once a name's series
// exist), allocations or I/O, and pushes a snapshot of them every interval
// through a [Sender], retrying transient failures within the interval by
// the module's one retry schedule (internal/retry) and marking permanent
// ones with telemetry.Permanent. Its subpackages otlpsend and rwsend are
// the two Senders: OTLP over HTTP, and Prometheus remote write 1.0. It is
// not part of the module's API.
package metricpush
