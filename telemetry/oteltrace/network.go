package oteltrace

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/nettrace"
)

// clientKind is the option of client spans, made once.
var clientKind = trace.WithSpanKind(trace.SpanKindClient)

// StartOperation starts a client span named operation ([telemetry.DefaultOperation]
// if empty), a child of the span in ctx, and records the start of the
// network operation of taskID to host:port into the Recorder's Network,
// with the span's start time and span context. It returns ctx with the
// span, for [Tracer.EndOperation]. Under a parent span that is not
// sampled, as in StartEvent, the operation gets no span.
//
// It returns the errors of [telemetry.Network.StartOperation]; the span is
// then ended at once with status Error.
func (t *Tracer) StartOperation(ctx context.Context, taskID, host string, port int, operation string) (context.Context, error) {
	if operation == "" {
		operation = telemetry.DefaultOperation
	}
	if unsampledParent(ctx) {
		return ctx, t.rec.Network().StartOperation(taskID, host, port, operation)
	}
	start := t.rec.Now()
	rc, attrs := newRunCtx(4)
	attrs = append(attrs, ServerAddressKey.String(host), ServerPortKey.Int(port), OperationKey.String(operation), TaskIDKey.String(taskID))
	rc.start = [...]trace.SpanStartOption{trace.WithTimestamp(start), clientKind, trace.WithAttributes(attrs...)}
	ctx, span := rc.startSpan(t.tracer, ctx, operation, 3)
	sc := span.SpanContext()
	err := t.rec.Network().StartOperation(taskID, host, port, operation, telemetry.WithStartTime(start), telemetry.WithSpanContext(recordSpan(sc)))
	return started(rc, ctx, span, sc.IsSampled(), operationSpanKey, taskID, err), err
}

// EndOperation records the end of the pending network operation of taskID
// with the bytes it sent and received (failed if err is not nil), and ends
// its span, the one StartOperation started for taskID in ctx, at the same
// instant, with the bytes as attributes and status Error with the
// record's error text if it failed.
// If the Recorder refuses the end, the span ends with status Error.
//
// It returns the errors of [telemetry.Network.EndOperation].
func (t *Tracer) EndOperation(ctx context.Context, taskID string, bytesSent, bytesReceived int64, err error) error {
	rc := claim(ctx, operationSpanKey, taskID)
	if rc == nil {
		return t.rec.Network().EndOperation(taskID, bytesSent, bytesReceived, err)
	}
	end := t.rec.Now()
	eerr := t.rec.Network().EndOperationAt(taskID, bytesSent, bytesReceived, err, end)
	if eerr == nil {
		rc.span.SetAttributes(BytesSentKey.Int64(bytesSent), BytesReceivedKey.Int64(bytesReceived))
	}
	rc.endSpan(end, t.rec.ErrorText(err), eerr)
	return eerr
}

// Network returns the [nettrace.Observer] of t, for a [nettrace.Transport]
// (or Dialer): it records network operations into t's Recorder and, as a
// [nettrace.RequestTracer], traces each HTTP request of a Transport as a
// client span and injects its context into the request's headers.
func (t *Tracer) Network() *Network { return &t.net }

// A Network is the [nettrace.Observer] and [nettrace.RequestTracer] of a
// [Tracer]; get it from [Tracer.Network]. The zero Network is not usable.
type Network struct {
	t *Tracer
}

var (
	_ nettrace.Observer      = (*Network)(nil)
	_ nettrace.RequestTracer = (*Network)(nil)
)

// StartOperation records the start of an operation without a span, as
// [telemetry.Network.StartOperation] does: a [nettrace.Dialer]'s
// connections, which have no request to carry a context.
func (n *Network) StartOperation(taskID, host string, port int, operation string, opts ...telemetry.StartOption) error {
	return n.t.rec.Network().StartOperation(taskID, host, port, operation, opts...)
}

// EndOperation records the end of an operation, as
// [telemetry.Network.EndOperation] does.
func (n *Network) EndOperation(taskID string, bytesSent, bytesReceived int64, err error) error {
	return n.t.rec.Network().EndOperation(taskID, bytesSent, bytesReceived, err)
}

// StartRequest starts the operation of an HTTP request as
// [Tracer.StartOperation] does, with req's context as the parent, and
// returns a copy of req whose context holds the client span and whose
// headers carry it, injected by the Tracer's propagator (W3C traceparent
// and tracestate, and baggage, with the default propagators). The returned
// end records the operation's end as [Tracer.EndOperation] does. If the
// start is refused, StartRequest returns the copy, a nil end and the error.
// req is not modified.
func (n *Network) StartRequest(req *http.Request, taskID, host string, port int, operation string) (*http.Request, func(bytesSent, bytesReceived int64, err error) error, error) {
	ctx, err := n.t.StartOperation(req.Context(), taskID, host, port, operation)
	out := req.WithContext(ctx)
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	n.t.prop.Inject(ctx, propagation.HeaderCarrier(out.Header))
	if err != nil {
		return out, nil, err
	}
	return out, func(sent, received int64, err error) error {
		return n.t.EndOperation(ctx, taskID, sent, received, err)
	}, nil
}
