// Package nettrace records network operations into network telemetry
// automatically: an [http.RoundTripper] ([Transport]) that records one
// operation per HTTP round trip, and a [Dialer] whose connections record one
// operation per connection. Each operation carries the host and port, the
// latency, the bytes sent and received and the error, if any; it is the
// seeds' "network telemetry" for remote calls, without code at each call.
//
// The minimal use, recording every request of a client into a Recorder:
//
//	r, _ := telemetry.NewRecorder()
//	client := &http.Client{Transport: &nettrace.Transport{Network: r.Network()}}
//	resp, err := client.Get("http://127.0.0.1:8080/health")
//	...
//	failed := r.Network().FailedOperations()
//
// # What is counted
//
// A [Transport] counts body bytes: the bytes of the request body that the
// base transport read, and the bytes of the response body that the caller
// read. Headers, TLS and framing are not counted, so the counts are
// deterministic and independent of the protocol version. The operation ends
// when the response body is read to its end, when reading it fails, or when
// it is closed, whichever comes first; like any use of [http.Client], close
// the body, or the operation stays pending.
//
// A [Dialer] counts the real bytes on the wire: every byte written to and
// read from the connection, headers and TLS records included. The operation
// starts before the dial and ends when the connection is closed (or the dial
// fails).
//
// # Task ids
//
// Network operations are keyed by task id, and an id may have only one
// pending operation at a time. The id of an operation is, in order: the one
// the TaskID function of the Transport or Dialer returns; the one put in the
// context with [WithTaskID] (a Dialer appends "/conn-<n>" to it, so that it
// differs from the id of the round trip that dials); or a generated
// "http-<n>" or "conn-<n>".
//
// # Errors of the Observer
//
// Recording never fails a request or a connection: if the [Observer]
// refuses an operation (a duplicate pending task id, a closed Recorder), the
// operation goes unrecorded and the network call proceeds as usual.
//
// # Concurrency
//
// Transport and Dialer are safe for concurrent use, as is every connection
// a Dialer returns to the extent that the wrapped [net.Conn] is.
package nettrace
