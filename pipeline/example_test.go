package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// A pipeline with telemetry: every event run and retry is recorded.
func Example() {
	r, _ := telemetry.NewRecorder()
	defer r.Close(context.Background())

	upper := pipeline.Func("upper", func(ctx context.Context, in any) (any, error) {
		return strings.ToUpper(in.(string)), nil
	})
	attempts := 0
	flaky := pipeline.Func("flaky", func(ctx context.Context, in any) (any, error) {
		if attempts++; attempts < 3 {
			return nil, errors.New("try again")
		}
		return in.(string) + "!", nil
	})
	p, _ := pipeline.New(pipeline.Config{Recorder: r, Retry: &telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}},
		pipeline.Sequence(upper, flaky))

	out, err := p.Run(context.Background(), "hello")
	fmt.Println(out, err)
	for _, m := range r.Report().Events {
		fmt.Println(m.EventName, m.Status, m.RetryCount)
	}
	// Output:
	// HELLO! <nil>
	// upper completed 0
	// flaky completed 2
}

func ExampleNew() {
	_, err := pipeline.New(pipeline.Config{NoTelemetry: true}, pipeline.Sequence(nil))
	fmt.Println(err)
	fmt.Println(errors.Is(err, pipeline.ErrNilEvent))
	// Output:
	// pipeline: stage 1, event 1: nil event
	// true
}

func ExampleParallel() {
	square := func(name string, n int) pipeline.Event {
		return pipeline.Func(name, func(ctx context.Context, in any) (any, error) { return n * n, nil })
	}
	p, _ := pipeline.New(pipeline.Config{NoTelemetry: true}, pipeline.Parallel(square("a", 2), square("b", 3)))
	out, _ := p.Run(context.Background(), nil)
	fmt.Println(out)
	// Output:
	// [4 9]
}

// A worker runs events for remote callers; a remote event calls it, and the
// call is recorded as a network operation.
func ExampleRemote() {
	w, _ := pipeline.NewWorker(pipeline.WorkerConfig{}, pipeline.Func("greet", func(ctx context.Context, in any) (any, error) {
		return "hello, " + in.(string), nil
	}))
	srv := httptest.NewServer(w) // a worker process would use w.Serve
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	portNum, _ := strconv.Atoi(port)

	greet, _ := pipeline.Remote("greet", pipeline.RemoteConfig{Host: host, Port: portNum, Path: "/", Timeout: 5 * time.Second})
	defer greet.CloseIdleConnections() // when done with it
	r, _ := telemetry.NewRecorder()
	defer r.Close(context.Background())
	p, _ := pipeline.New(pipeline.Config{Recorder: r}, pipeline.Sequence(greet))

	out, err := p.Run(context.Background(), "gopher")
	fmt.Println(out, err)
	op := r.Report().NetworkOperations[0]
	fmt.Println(op.Operation, op.Host, op.Status, op.BytesSent > 0, op.BytesReceived > 0)
	// Output:
	// hello, gopher <nil>
	// remote_call 127.0.0.1 completed true true
}

// Errors marked with telemetry.Permanent are not retried, and a worker's
// answer is retried only for 408, 429 and 5xx: the module's one retry
// vocabulary.
func ExampleDefaultRetryable() {
	err := telemetry.Permanent(errors.New("invalid order"))
	fmt.Println(err, pipeline.DefaultRetryable(err), pipeline.DefaultRetryable(errors.New("timeout")))
	busy := &pipeline.RemoteError{Event: "score", StatusCode: 503, Message: "busy"}
	denied := &pipeline.RemoteError{Event: "score", StatusCode: 401, Message: "unauthorized"}
	fmt.Println(pipeline.DefaultRetryable(busy), pipeline.DefaultRetryable(denied))
	// Output:
	// invalid order false true
	// true false
}

// An event whose attempts have a timeout of their own, shorter than the
// run's, marks its error with AttemptTimeout so that DefaultRetryable
// retries it; the end of the run's own context is not retried.
func ExampleAttemptTimeout() {
	run := context.Background()
	attempt, cancel := context.WithTimeout(run, time.Millisecond)
	defer cancel()
	<-attempt.Done()
	err := pipeline.AttemptTimeout(run, fmt.Errorf("score: %w", attempt.Err()))
	fmt.Println(err, pipeline.DefaultRetryable(err))
	ended, stop := context.WithCancel(run)
	stop()
	fmt.Println(pipeline.DefaultRetryable(pipeline.AttemptTimeout(ended, attempt.Err())))
	// Output:
	// score: context deadline exceeded true
	// false
}

// A worker that asks for a bearer token, served on a loopback port; the
// remote event sends the token. Outside loopback, serve it over TLS
// (WorkerConfig.TLS) so that the token is not sent in clear text.
func ExampleWorker_Serve() {
	token := telemetry.NewSecret("s3cret-shared-token")
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{Token: token},
		pipeline.Func("greet", func(ctx context.Context, in any) (any, error) { return "hello, " + in.(string), nil }))
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go w.Serve(ln)
	defer w.Shutdown(context.Background())
	port := ln.Addr().(*net.TCPAddr).Port

	greet, _ := pipeline.Remote("greet", pipeline.RemoteConfig{Host: "127.0.0.1", Port: port, Token: token})
	fmt.Println(greet.Process(context.Background(), "gopher"))
	anonymous, _ := pipeline.Remote("greet", pipeline.RemoteConfig{Host: "127.0.0.1", Port: port})
	_, err = anonymous.Process(context.Background(), "gopher")
	fmt.Println(err)
	// Output:
	// hello, gopher <nil>
	// pipeline: remote event "greet" failed on the worker (401): pipeline: worker: unauthorized: a bearer token is required
}

// Hooks observe runs; embed NopHooks to implement only what you need, and
// JoinHooks them with others. The pipeline's telemetry hooks come first.
func ExampleHooks() {
	p, _ := pipeline.New(pipeline.Config{NoTelemetry: true, Hooks: printer{}},
		pipeline.Sequence(pipeline.Func("hello", func(ctx context.Context, in any) (any, error) { return nil, nil })))
	p.Run(context.Background(), nil)
	// Output:
	// hello ended after 1 attempt(s): <nil>
}

type printer struct{ pipeline.NopHooks }

func (printer) EventEnded(t pipeline.Task, err error) {
	fmt.Printf("%s ended after %d attempt(s): %v\n", t.Event, t.Attempt, err)
}

// Another runtime can report its tasks the way the pipeline does, through
// the same hooks.
func ExampleNewTelemetryHooks() {
	r, _ := telemetry.NewRecorder()
	defer r.Close(context.Background())
	h := pipeline.JoinHooks(pipeline.NewTelemetryHooks(r), printer{})

	t := pipeline.Task{ID: "job-1", Event: "resize", RunID: "batch-7", ProcessID: 42, Attempt: 1}
	h.EventStarted(t)
	h.EventRetried(t, errors.New("busy"), time.Second)
	t.Attempt++
	h.RemoteCallStarted(t, "job-1/call-1", "img.internal", 8443, "")
	h.RemoteCallEnded(t, "job-1/call-1", 2048, 512, nil)
	h.EventEnded(t, nil)

	m, _ := r.Metrics("job-1")
	fmt.Println(m.EventName, m.Status, m.RetryCount, m.PipelineID, m.ProcessID)
	op, _ := r.Network().Metrics("job-1/call-1")
	fmt.Println(op.Operation, op.Host, op.Port, op.BytesSent, op.BytesReceived)
	// Output:
	// resize ended after 2 attempt(s): <nil>
	// resize completed 1 batch-7 42
	// remote_call img.internal 8443 2048 512
}
