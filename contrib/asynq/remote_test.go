package asynq_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	epasynq "github.com/eventpipeline/eventpipeline/contrib/asynq"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// The test binary is also the worker process of the end-to-end test: run
// with these variables set, it serves the worker events on the Redis at
// workerRedisEnv and writes its records as JSON lines to workerOutEnv.
const (
	workerRedisEnv = "EPASYNQ_TEST_WORKER_REDIS"
	workerOutEnv   = "EPASYNQ_TEST_WORKER_OUT"
)

// redisAddr is the address of the Redis server that TestMain starts for
// the examples.
var redisAddr string

func TestMain(m *testing.M) {
	if addr := os.Getenv(workerRedisEnv); addr != "" {
		if err := runWorker(addr, os.Getenv(workerOutEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// The tests start Redis servers of their own; the examples share one.
	r, stop, err := testutil.StartRedisMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, "the examples need a Redis server:", err)
		os.Exit(1)
	}
	redisAddr = r.Addr
	code := m.Run()
	stop()
	os.Exit(code)
}

// workerEvents are the events of the test worker.
func workerEvents() []pipeline.Event {
	return []pipeline.Event{
		pipeline.Func("double", func(_ context.Context, in any) (any, error) {
			n, ok := in.(float64)
			if !ok {
				return nil, telemetry.Permanent(fmt.Errorf("double: want a number, got %T", in))
			}
			return 2 * n, nil
		}),
		pipeline.Func("flaky", func(ctx context.Context, in any) (any, error) {
			if t, _ := pipeline.TaskFrom(ctx); t.Attempt == 1 {
				return nil, errors.New("cold cache")
			}
			return in, nil
		}),
		pipeline.Func("reject", func(context.Context, any) (any, error) {
			return nil, telemetry.Permanent(errors.New("no such customer"))
		}),
		pipeline.Func("crash", func(context.Context, any) (any, error) { panic("out of cheese") }),
		pipeline.Func("whoami", func(ctx context.Context, _ any) (any, error) {
			t, ok := pipeline.TaskFrom(ctx)
			return map[string]any{"ok": ok, "task_id": t.ID, "run_id": t.RunID, "attempt": t.Attempt, "pid": t.ProcessID}, nil
		}),
	}
}

// runWorker serves the worker events on the Redis at addr until SIGTERM,
// recording into a Recorder that writes JSON lines to out and traces with
// an SDK TracerProvider (its span ids go into the records).
func runWorker(addr, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	jl, err := telemetry.NewJSONLinesPublisher(f)
	if err != nil {
		return err
	}
	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(jl), telemetry.WithLogger(quiet))
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider()
	w, err := epasynq.NewWorker(epasynq.WorkerConfig{Logger: quiet}, workerEvents()...)
	if err != nil {
		return err
	}
	mux := asynq.NewServeMux()
	mux.Use(epasynq.NewMiddleware(epasynq.Config{Recorder: rec, TracerProvider: tp, Propagator: propagation.TraceContext{}}).Wrap)
	w.Register(mux)
	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: addr}, asynq.Config{
		Concurrency: 4, Queues: map[string]int{"remote": 1}, TaskCheckInterval: 20 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, Logger: quietLogger{}, LogLevel: asynq.FatalLevel,
	})
	if err := srv.Start(mux); err != nil {
		return err
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	fmt.Println("worker ready")
	<-stop
	srv.Shutdown()
	tp.Shutdown(context.Background())
	return rec.Close(context.Background())
}

// startWorkerProcess runs the test binary as a worker process on the
// Redis at addr and returns a function that stops it and returns the
// records it wrote.
func startWorkerProcess(t *testing.T, addr string) (stop func() ([]telemetry.EventMetrics, int)) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "worker.jsonl")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerRedisEnv+"="+addr, workerOutEnv+"="+out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "worker ready" {
			err = fmt.Errorf("worker said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("worker process: %v\n%s", err, stderr.String())
		}
	case <-time.After(pollTimeout):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("worker process not ready after %v\n%s", pollTimeout, stderr.String())
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return func() ([]telemetry.EventMetrics, int) {
		t.Helper()
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("worker process: %v\n%s", err, stderr.String())
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		events, _, err := telemetry.ReadJSONLines(f)
		if err != nil {
			t.Fatalf("worker records: %v", err)
		}
		return events, cmd.Process.Pid
	}
}

// TestRemoteEventsEndToEnd runs pipelines whose events run remotely
// through asynq on a worker in a separate process, on a real Redis: an
// output, a retried failure, a permanent failure, a panic, and the
// caller's task as the worker sees it; then checks the caller's records
// (event runs and remote calls), the worker's (one run per call, the
// call's child), and the trace context that joins them.
func TestRemoteEventsEndToEnd(t *testing.T) {
	redis := testutil.StartRedis(t)
	stopWorker := startWorkerProcess(t, redis.Addr)

	rec := newRecorder(t)
	tp, exp := newTracing(t)
	remote := func(name string) pipeline.Event {
		e, err := epasynq.Remote(name, epasynq.RemoteConfig{
			Redis: asynq.RedisClientOpt{Addr: redis.Addr}, Queue: "remote", Timeout: pollTimeout,
			TracerProvider: tp, Propagator: propagation.TraceContext{},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	retry := &telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond}
	p, err := pipeline.New(pipeline.Config{Recorder: rec, Retry: retry},
		pipeline.Sequence(remote("double"), remote("double"), remote("flaky")),
		pipeline.Parallel(remote("double"), remote("whoami")))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, err := p.Run(ctx, 5.0)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	outs, _ := out.([]any)
	if len(outs) != 2 || outs[0] != 40.0 {
		t.Fatalf("output %v, want [40 {...}]", out)
	}
	who, _ := outs[1].(map[string]any)
	run := rec.Report().Events[0].PipelineID
	if who["ok"] != true || who["run_id"] != run || who["attempt"] != 1.0 || who["pid"] == float64(os.Getpid()) ||
		!strings.HasPrefix(fmt.Sprint(who["task_id"]), run+"/whoami/") {
		t.Errorf("whoami on the worker: %v; want the caller's task of run %s, attempt 1, another process", who, run)
	}

	// Failures: a permanent error and a panic come back permanent, not retried.
	for _, tc := range []struct{ event, want string }{
		{"reject", "no such customer"},
		{"crash", `asynq: worker: event "crash" panicked (logged on the worker)`},
	} {
		p, err := pipeline.New(pipeline.Config{Recorder: rec, Retry: retry}, pipeline.Sequence(remote(tc.event)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Run(ctx, nil)
		var re *epasynq.RemoteError
		var ee *pipeline.EventError
		if !errors.As(err, &re) || !errors.As(err, &ee) || re.Message != tc.want || !re.Permanent || ee.Attempts != 1 || !telemetry.IsPermanent(err) {
			t.Errorf("%s: got %v, want a permanent RemoteError %q after 1 attempt", tc.event, err, tc.want)
		}
	}

	workerRuns, workerPID := stopWorker()

	// The caller: one network operation per call, each the parent of one
	// worker run with the call id as task id.
	byTask := map[string]telemetry.EventMetrics{}
	for _, m := range workerRuns {
		if _, dup := byTask[m.TaskID]; dup {
			t.Errorf("worker: two runs of task %s", m.TaskID)
		}
		byTask[m.TaskID] = m
	}
	callerRuns := map[string]telemetry.EventMetrics{}
	for _, m := range rec.Report().Events {
		callerRuns[m.TaskID] = m
	}
	calls := rec.Report().NetworkOperations
	if len(calls) != 8 { // double x3, flaky x2, whoami, reject, crash
		t.Errorf("caller recorded %d remote calls, want 8", len(calls))
	}
	for _, c := range calls {
		if c.Operation != telemetry.DefaultOperation || c.Host != "127.0.0.1" || c.Port != redis.Port ||
			c.Status != telemetry.StatusCompleted || c.BytesSent <= 0 || c.BytesReceived <= 0 {
			t.Errorf("call %s: got %+v", c.TaskID, c)
		}
		taskID, _, _ := strings.Cut(c.TaskID, "/call-")
		caller, ok := callerRuns[taskID]
		if !ok {
			t.Errorf("call %s: no caller run %s", c.TaskID, taskID)
			continue
		}
		w, ok := byTask[c.TaskID]
		if !ok {
			t.Errorf("call %s: no worker run with its id", c.TaskID)
			continue
		}
		if w.EventName != caller.EventName || w.PipelineID != caller.PipelineID || w.ProcessID != workerPID || w.EnqueueTime.IsZero() || w.WaitTime() < 0 {
			t.Errorf("call %s: worker run %+v; want event %s of pipeline %s in process %d, with a wait", c.TaskID, w, caller.EventName, caller.PipelineID, workerPID)
		}
		if !w.Span.Sampled || w.Span.TraceID == [16]byte{} {
			t.Errorf("call %s: worker run not traced: %+v", c.TaskID, w.Span)
		}
		// The worker's span is in the trace of the producer span of the call.
		send := slices.IndexFunc(spansNamed(exp, "send "+epasynq.TaskType(caller.EventName)), func(s tracetest.SpanStub) bool {
			return hasAttr(s.Attributes, "messaging.message.id", c.TaskID) && [16]byte(s.SpanContext.TraceID()) == w.Span.TraceID
		})
		if send < 0 {
			t.Errorf("call %s: no send span in the worker run's trace %x", c.TaskID, w.Span.TraceID)
		}
	}
	// flaky failed on its first attempt and succeeded on its second: the
	// caller recorded one run with one retry, the worker two runs.
	for _, m := range callerRuns {
		if m.EventName == "flaky" && (m.RetryCount != 1 || m.Status != telemetry.StatusCompleted) {
			t.Errorf("caller's flaky run: %s with %d retries, want completed with 1", m.Status, m.RetryCount)
		}
	}
	var flaky []telemetry.Status
	for _, m := range workerRuns {
		if m.EventName == "flaky" {
			flaky = append(flaky, m.Status)
		}
	}
	if slices.Sort(flaky); !slices.Equal(flaky, []telemetry.Status{telemetry.StatusCompleted, telemetry.StatusFailed}) {
		t.Errorf("worker's flaky runs: %v, want one failed and one completed", flaky)
	}
	if len(workerRuns) != 8 {
		t.Errorf("worker recorded %d runs, want 8", len(workerRuns))
	}
}
