package oteltrace_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/nettrace"
	"github.com/eventpipeline/eventpipeline/telemetry/oteltrace"
)

// TestDialerRecordsWithoutSpan dials through the Tracer's Network: the
// connection is recorded with its bytes, and no span is made for it.
func TestDialerRecordsWithoutSpan(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.CopyN(c, c, 4) // echo 4 bytes
	}()
	rec, tr, sr := setup(t)
	d := &nettrace.Dialer{Network: tr.Network(), TaskID: func(context.Context, string, string) string { return "conn-1" }}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	m, ok := rec.Network().Metrics("conn-1")
	if !ok || m.Status != telemetry.StatusCompleted || m.BytesSent != 4 || m.BytesReceived != 4 || m.Host != "127.0.0.1" {
		t.Errorf("got %+v, %v; want a completed operation of 4 bytes each way to 127.0.0.1", m, ok)
	}
	if n := len(sr.Ended()); n != 0 {
		t.Errorf("got %d spans, want none for a dialed connection", n)
	}
	// The Network refuses what the Recorder refuses.
	if err := tr.Network().EndOperation("never-started", 0, 0, nil); !errors.Is(err, telemetry.ErrNotStarted) {
		t.Errorf("EndOperation of an unknown task: got %v, want ErrNotStarted", err)
	}
}

// TestStartRequestRefused checks StartRequest when the start is refused
// (the task id is still pending): it returns a copy of the request with
// the span's headers, no end function and the error; the request given
// is not modified, even with no Header at all.
func TestStartRequestRefused(t *testing.T) {
	rec, tr, sr := setup(t)
	if err := rec.Network().StartOperation("busy", "h", 80, ""); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, "http://h/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = nil
	out, end, err := tr.Network().StartRequest(req, "busy", "h", 80, "")
	if !errors.Is(err, telemetry.ErrAlreadyStarted) || end != nil {
		t.Errorf("got end %v, error %v; want nil and ErrAlreadyStarted", end != nil, err)
	}
	if req.Header != nil {
		t.Errorf("the request given was modified: Header %v", req.Header)
	}
	spans := sr.Ended()
	if len(spans) != 1 || out.Header.Get("traceparent") == "" {
		t.Fatalf("got %d spans ended and traceparent %q, want the refused span ended and in the headers", len(spans), out.Header.Get("traceparent"))
	}
	if want := fmt.Sprintf("00-%s-%s-01", spans[0].SpanContext().TraceID(), spans[0].SpanContext().SpanID()); out.Header.Get("traceparent") != want {
		t.Errorf("traceparent: got %q, want %q", out.Header.Get("traceparent"), want)
	}
}

func TestTracerAccessors(t *testing.T) {
	rec, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	prop := propagation.Baggage{}
	tr, err := oteltrace.New(rec, oteltrace.Config{TracerProvider: tp, Propagator: prop})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Recorder() != rec || tr.TracerProvider() != tp || tr.Propagator() != prop {
		t.Errorf("got %p, %p, %v; want the Recorder, TracerProvider and Propagator given", tr.Recorder(), tr.TracerProvider(), tr.Propagator())
	}
}

func TestNewNilRecorderPanics(t *testing.T) {
	defer func() {
		if r := recover(); r != "oteltrace: New(nil, ...)" {
			t.Errorf("recovered %v, want the panic of New(nil, ...)", r)
		}
	}()
	oteltrace.New(nil, oteltrace.Config{})
}

func TestRunContextString(t *testing.T) {
	_, tr, _ := setup(t)
	ctx, err := tr.StartEvent(context.Background(), "load", "t1")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.EndEvent(ctx, "t1", nil)
	// As context.WithValue's contexts: the parent's name, then the key.
	got := fmt.Sprint(ctx)
	if !strings.HasPrefix(got, "context.Background.WithValue(") || !strings.HasSuffix(got, ".WithValue(oteltrace event span)") {
		t.Errorf("got %q, want context.Background.WithValue(...).WithValue(oteltrace event span)", got)
	}
}
