// Package nettrace records network operations into telemetry
// automatically: an [http.RoundTripper] ([Transport]) that records one
// operation per HTTP round trip, and a [Dialer] whose connections record one
// operation per connection. Each operation carries the host and port, the
// latency, the bytes sent and received and the error, if any, with no code
// at each call.
//
// The minimal use records every request of a client into a Recorder:
//
//	rec, err := telemetry.NewRecorder()
//	...
//	client := &http.Client{Transport: &nettrace.Transport{Network: rec.Network()}}
//	resp, err := client.Get("http://127.0.0.1:8080/health")
//	...
//	failed := rec.Network().FailedOperations()
//
// or, one operation per connection:
//
//	d := &nettrace.Dialer{Network: rec.Network()}
//	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
//
// Both record into an [Observer], which [*telemetry.Network] is. A nil
// Network is an error wrapping [ErrNoNetwork]. Package nettrace depends on
// package telemetry and the standard library only.
//
// # What is counted
//
// A [Transport] (operation [HTTPOperation], "http_request", by default)
// counts body bytes: the bytes of the request body that the base transport
// read (if it sends the request again with a body from GetBody, as
// [http.Transport] does when a kept-alive connection turns out closed, the
// bytes of that body only), and the bytes of the response body that the
// caller read, as they came: when the base is an [*http.Transport] (or
// nil) that would ask for gzip and decompress the response (compression
// on, no Accept-Encoding or Range header set by the caller, not HEAD), the
// Transport asks for gzip and decompresses itself, so that the compressed
// bytes are counted and the caller gets what http.Transport gives
// (Response.Uncompressed set, Content-Encoding and Content-Length removed).
// With another base, the bytes the caller reads are counted, decompressed
// if the base decompressed them. Headers, TLS and framing are not counted,
// so the counts are deterministic and the same over HTTP/1 and HTTP/2. Host
// and port come from the request URL (80 or 443 by scheme when it has
// none).
//
// The operation ends when the response body is read to its end, when
// reading it fails (the operation failed, for example with unexpected EOF
// when the server closes mid-response, context canceled when the request's
// context ends, or a gzip error), or when it is closed, whichever comes
// first. Like any use of [http.Client], close the body: a body dropped
// without Close leaves the operation pending until the garbage collector
// finds the body unreachable, which fails it with the error "nettrace:
// response body not closed (garbage collected)", so that such a leak shows
// in FailedOperations instead of filling the pending operations. A response that cannot have a body (to a HEAD request, 204
// No Content, 304 Not Modified) ends it when RoundTrip returns, over HTTP/1
// and HTTP/2 alike. A round-trip error (refused, timeout, cancelled) fails
// it at once. An HTTP error status is a response, not a network failure:
// the operation completes. [http.Client] calls RoundTrip once per request,
// so each redirect it follows is an operation of its own.
//
// A [Dialer] (operation [ConnOperation] by default) counts the real bytes on
// the wire: every byte written to and read from the connection, headers and
// TLS records included. The operation starts before the dial and ends when
// the connection is closed; a failed dial, or the first read or write error
// other than end of file or one caused by Close, fails it. A connection
// dropped without Close fails it once the garbage collector finds the
// connection unreachable, with the error "nettrace: connection not closed
// (garbage collected)".
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
