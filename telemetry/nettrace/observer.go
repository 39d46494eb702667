package nettrace

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// Operation names recorded when a Transport or Dialer is given none.
const (
	// HTTPOperation is the operation of a Transport whose Operation is empty.
	HTTPOperation = "http_request"
	// ConnOperation is the operation of a Dialer whose Operation is empty.
	ConnOperation = "connection"
)

// ErrNoNetwork is returned by [Transport.RoundTrip] and [Dialer.DialContext]
// when their Network field is nil.
var ErrNoNetwork = errors.New("nettrace: nil Network")

// An Observer receives network operations: [*telemetry.Network] is one.
// Implementations must be safe for concurrent use and must not block.
type Observer interface {
	// StartOperation records the start of an operation of taskID to
	// host:port; opts may carry the span that traces it
	// ([telemetry.WithSpanContext]). An error means the operation is not
	// recorded.
	StartOperation(taskID, host string, port int, operation string, opts ...telemetry.StartOption) error
	// EndOperation records the end of the pending operation of taskID.
	EndOperation(taskID string, bytesSent, bytesReceived int64, err error) error
}

var _ Observer = (*telemetry.Network)(nil)

// A RequestTracer is an [Observer] that also traces HTTP requests, such as
// the Network of a telemetry/oteltrace Tracer: when a [Transport]'s Network
// implements it, the Transport starts and ends each round trip's operation
// through it instead of StartOperation and EndOperation, and sends the
// request it returns.
//
// Implementations must be safe for concurrent use, and StartRequest must:
//   - not modify req, and return the request to send in its place: req, or
//     a copy (with [http.Request.WithContext] and cloned headers), such as
//     one whose headers carry the trace context;
//   - record the start of the operation of taskID to host:port as
//     StartOperation does, and return a nil error and an end func that
//     records its end as EndOperation does, and that the Transport calls
//     once; or, if the start is refused, return its error and a nil end
//     (and the request to send, or nil to send req).
type RequestTracer interface {
	Observer
	StartRequest(req *http.Request, taskID, host string, port int, operation string) (out *http.Request, end func(bytesSent, bytesReceived int64, err error) error, err error)
}

type taskIDKey struct{}

// WithTaskID returns a copy of ctx carrying taskID, the id under which a
// [Transport] records the round trip of a request made with that context.
func WithTaskID(ctx context.Context, taskID string) context.Context {
	return context.WithValue(ctx, taskIDKey{}, taskID)
}

// TaskIDFrom returns the task id put in ctx by [WithTaskID], and whether
// there is a non-empty one.
func TaskIDFrom(ctx context.Context) (string, bool) {
	id, _ := ctx.Value(taskIDKey{}).(string)
	return id, id != ""
}

// seq numbers generated task ids across the process.
var seq atomic.Uint64

func nextID(prefix string) string {
	return prefix + "-" + strconv.FormatUint(seq.Add(1), 10)
}

// An operation is one recorded network operation in progress. Its counts
// are atomics because a transport reads a request body in one goroutine
// while the caller reads the response in another.
type operation struct {
	net      Observer
	id       string
	started  bool
	endFn    func(bytesSent, bytesReceived int64, err error) error // of a RequestTracer, else nil
	sent     atomic.Int64
	received atomic.Int64
	bodyGen  atomic.Int64 // of the request body counted: 1 after the first GetBody...
	ended    atomic.Bool

	mu  sync.Mutex
	err error // the first error seen, for connections
}

func start(n Observer, id, host string, port int, op string) *operation {
	o := &operation{net: n, id: id}
	o.started = n.StartOperation(id, host, port, op) == nil
	return o
}

// fail remembers err as the operation's error if it is the first.
func (o *operation) fail(err error) {
	o.mu.Lock()
	if o.err == nil {
		o.err = err
	}
	o.mu.Unlock()
}

// end records the end of the operation once, with err or else the first
// error remembered.
func (o *operation) end(err error) {
	if !o.ended.CompareAndSwap(false, true) || !o.started {
		return
	}
	if err == nil {
		o.mu.Lock()
		err = o.err
		o.mu.Unlock()
	}
	if o.endFn != nil {
		o.endFn(o.sent.Load(), o.received.Load(), err)
		return
	}
	o.net.EndOperation(o.id, o.sent.Load(), o.received.Load(), err)
}

// splitHostPort returns the host and port of address ("host:port"); a port
// given by service name is looked up, and 0 stands for one unknown.
func splitHostPort(network, address string) (string, int) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return address, 0
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		if port, err = net.LookupPort(network, portStr); err != nil {
			return host, 0
		}
	}
	if port < 0 || port > 65535 {
		port = 0
	}
	return host, port
}
