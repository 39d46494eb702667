package asynq_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	epasynq "github.com/eventpipeline/eventpipeline/contrib/asynq"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

func TestRemoteConfigErrors(t *testing.T) {
	redis := asynq.RedisClientOpt{Addr: "127.0.0.1:6379"}
	tests := []struct {
		name string
		cfg  epasynq.RemoteConfig
		want string
	}{
		{"no redis", epasynq.RemoteConfig{}, "Redis is not set"},
		{"bad address", epasynq.RemoteConfig{Redis: asynq.RedisClientOpt{Addr: "nowhere"}}, "not host:port"},
		{"negative timeout", epasynq.RemoteConfig{Redis: redis, Timeout: -1}, "Timeout must not be negative"},
		{"negative retention", epasynq.RemoteConfig{Redis: redis, Retention: -1}, "Retention must not be negative"},
		{"negative retries", epasynq.RemoteConfig{Redis: redis, MaxRetry: -1}, "MaxRetry must not be negative"},
		// asynq keeps a task's timeout and retention in whole seconds: 500ms
		// would be none (asynq's default timeout of 30 minutes, or no
		// retention), 1.5s one second.
		{"sub-second event timeout", epasynq.RemoteConfig{Redis: redis, EventTimeout: 500 * time.Millisecond}, "EventTimeout must be a whole number of seconds"},
		{"fractional event timeout", epasynq.RemoteConfig{Redis: redis, EventTimeout: 1500 * time.Millisecond}, "EventTimeout must be a whole number of seconds"},
		{"sub-second retention", epasynq.RemoteConfig{Redis: redis, Retention: 500 * time.Millisecond}, "Retention must be a whole number of seconds"},
		{"negative result bound", epasynq.RemoteConfig{Redis: redis, MaxResultBytes: -1}, "MaxResultBytes must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := epasynq.Remote("score", tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := epasynq.Remote("", epasynq.RemoteConfig{Redis: redis, Timeout: -1}); !errors.Is(err, pipeline.ErrEmptyEventName) || !strings.Contains(err.Error(), "Timeout") {
		t.Errorf("two problems: got %v, want both joined", err)
	}
}

func TestNewWorkerErrors(t *testing.T) {
	ev := pipeline.Func("a", func(context.Context, any) (any, error) { return nil, nil })
	_, err := epasynq.NewWorker(epasynq.WorkerConfig{MaxPayloadBytes: -1}, ev, ev, nil, pipeline.Func("", nil))
	for _, want := range []error{epasynq.ErrDuplicateEvent, pipeline.ErrNilEvent, pipeline.ErrEmptyEventName} {
		if !errors.Is(err, want) {
			t.Errorf("got %v, want it to wrap %v", err, want)
		}
	}
	if err == nil || !strings.Contains(err.Error(), "MaxPayloadBytes") {
		t.Errorf("got %v, want the negative MaxPayloadBytes too", err)
	}
}

// inProcess starts a worker with events in this process, on a fresh
// Redis, recording into its own Recorder, and returns the Redis and the
// worker's Recorder.
func inProcess(t *testing.T, events ...pipeline.Event) (*testutil.Redis, *telemetry.Recorder) {
	t.Helper()
	redis := testutil.StartRedis(t)
	rec := newRecorder(t)
	w, err := epasynq.NewWorker(epasynq.WorkerConfig{Logger: quiet}, events...)
	if err != nil {
		t.Fatal(err)
	}
	mux := asynq.NewServeMux()
	mux.Use(epasynq.NewMiddleware(epasynq.Config{Recorder: rec}).Wrap)
	w.Register(mux)
	startServer(t, redis.Addr, mux)
	return redis, rec
}

// TestRemoteTimeout checks a call that outlasts RemoteConfig.Timeout: it
// fails with context.DeadlineExceeded, its network operation fails, and
// the task is cancelled on the worker.
func TestRemoteTimeout(t *testing.T) {
	started := make(chan struct{}, 1)
	redis, workerRec := inProcess(t, pipeline.Func("hang", func(ctx context.Context, _ any) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}))
	e, err := epasynq.Remote("hang", epasynq.RemoteConfig{Redis: asynq.RedisClientOpt{Addr: redis.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rec := newRecorder(t)
	p, err := pipeline.New(pipeline.Config{Recorder: rec}, pipeline.Sequence(e))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(context.Background(), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	select {
	case <-started:
	default:
		t.Fatal("the event never started on the worker")
	}
	ops := rec.Network().FailedOperations()
	if len(ops) != 1 || !strings.Contains(ops[0].Error, "deadline exceeded") {
		t.Errorf("failed calls: %+v, want the call, with the deadline", ops)
	}
	// The worker's run was cancelled: it ends failed, with the context's error.
	testutil.Eventually(t, pollTimeout, func() error {
		for _, m := range workerRec.FailedEvents() {
			if m.TaskID == ops[0].TaskID && strings.Contains(m.Error, "context canceled") {
				return nil
			}
		}
		return errors.New("no cancelled run on the worker")
	})
}

// TestRemoteNoWorker checks a call to a queue no worker serves: it times
// out and its task is deleted.
func TestRemoteNoWorker(t *testing.T) {
	redis := testutil.StartRedis(t)
	e, err := epasynq.Remote("score", epasynq.RemoteConfig{Redis: asynq.RedisClientOpt{Addr: redis.Addr}, Queue: "nobody", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Process(context.Background(), 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: redis.Addr})
	defer insp.Close()
	tasks, err := insp.ListPendingTasks("nobody")
	if err != nil || len(tasks) != 0 {
		t.Errorf("pending tasks after the timeout: %v, %v; want none", tasks, err)
	}
}

// TestRemoteTimeoutRetryable checks which timeouts of a call
// pipeline.DefaultRetryable retries, as it does those of the HTTP remote
// event: the call's own RemoteConfig.Timeout (a transient failure of one
// attempt), not the end of the caller's context.
func TestRemoteTimeoutRetryable(t *testing.T) {
	redis := testutil.StartRedis(t)
	opt := asynq.RedisClientOpt{Addr: redis.Addr}
	own, err := epasynq.Remote("score", epasynq.RemoteConfig{Redis: opt, Queue: "nobody", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	_, err = own.Process(context.Background(), 1)
	if !errors.Is(err, context.DeadlineExceeded) || !pipeline.DefaultRetryable(err) {
		t.Errorf("the call's own timeout: got %v, retryable %v; want context.DeadlineExceeded, retryable", err, pipeline.DefaultRetryable(err))
	}
	callers, err := epasynq.Remote("score", epasynq.RemoteConfig{Redis: opt, Queue: "nobody", Timeout: pollTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer callers.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = callers.Process(ctx, 1)
	if !errors.Is(err, context.DeadlineExceeded) || pipeline.DefaultRetryable(err) {
		t.Errorf("the caller's deadline: got %v, retryable %v; want context.DeadlineExceeded, not retryable", err, pipeline.DefaultRetryable(err))
	}
}

// TestRemoteOutsidePipeline calls a RemoteEvent directly: it works, and
// the worker's event sees no caller's task but its own.
func TestRemoteOutsidePipeline(t *testing.T) {
	redis, _ := inProcess(t, pipeline.Func("echo", func(ctx context.Context, in any) (any, error) {
		task, _ := pipeline.TaskFrom(ctx)
		return map[string]any{"in": in, "task": task.ID, "attempt": task.Attempt}, nil
	}))
	e, err := epasynq.Remote("echo", epasynq.RemoteConfig{Redis: asynq.RedisClientOpt{Addr: redis.Addr}, Timeout: pollTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	out, err := e.Process(context.Background(), []any{"a", 1.0})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := out.(map[string]any)
	if in, _ := m["in"].([]any); len(in) != 2 || in[0] != "a" || len(m["task"].(string)) != 32 || m["attempt"] != 1.0 {
		t.Errorf("got %v, want the input back, a random task id and attempt 1", out)
	}
}

// TestRemoteErrorMessageEscaped checks that the error text a worker sends
// back reaches the caller's RemoteError escaped to one line (control
// characters, newlines and bidirectional controls shown as escapes) and
// cut, so that it can neither forge log lines nor rewrite a terminal.
func TestRemoteErrorMessageEscaped(t *testing.T) {
	hostile := "bad\n2026-11-26 level=INFO forged line\x1b[2J\u202e" + strings.Repeat("x", 20_000)
	redis, _ := inProcess(t, pipeline.Func("fail", func(context.Context, any) (any, error) {
		return nil, telemetry.Permanent(errors.New(hostile))
	}))
	e, err := epasynq.Remote("fail", epasynq.RemoteConfig{Redis: asynq.RedisClientOpt{Addr: redis.Addr}, Timeout: pollTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = e.Process(context.Background(), nil)
	var re *epasynq.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a RemoteError", err)
	}
	if strings.ContainsAny(re.Message, "\n\x1b\u202e") || !strings.HasPrefix(re.Message, `bad\n2026-11-26 level=INFO forged line\x1b[2J\u202e`) {
		t.Errorf("Message %.80q..., want the text on one line with its controls escaped", re.Message)
	}
	if len(re.Message) > 8<<10 {
		t.Errorf("Message of %d bytes, want at most 8 KiB", len(re.Message))
	}
}

// TestRemoteNoHandler checks a task that no worker has an event for: asynq
// archives it without a result, and the call fails with its error.
func TestRemoteNoHandler(t *testing.T) {
	redis, _ := inProcess(t, pipeline.Func("known", func(context.Context, any) (any, error) { return nil, nil }))
	e, err := epasynq.Remote("unknown", epasynq.RemoteConfig{Redis: asynq.RedisClientOpt{Addr: redis.Addr}, Timeout: pollTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = e.Process(context.Background(), nil)
	var re *epasynq.RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Message, "handler not found") {
		t.Errorf("got %v, want a RemoteError with asynq's error", err)
	}
}

// TestWorkerRejectsBadPayload checks that a task of a remote event's type
// with a malformed payload fails at once, with the reason as its result.
func TestWorkerRejectsBadPayload(t *testing.T) {
	redis, rec := inProcess(t, pipeline.Func("double", func(context.Context, any) (any, error) { return nil, nil }))
	c := asynq.NewClient(asynq.RedisClientOpt{Addr: redis.Addr})
	defer c.Close()
	info, err := c.Enqueue(asynq.NewTask(epasynq.TaskType("double"), []byte(`{"event":"double","input":[1,`)), asynq.MaxRetry(3), asynq.Retention(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	waitRuns(t, rec, map[string]int{info.ID: 1}) // not retried
	m, _ := rec.Metrics(info.ID)
	if m.Status != telemetry.StatusFailed || !strings.Contains(m.Error, "bad payload") || m.EventName != "double" {
		t.Errorf("got %+v, want a failed run of double with the reason", m)
	}
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: redis.Addr})
	defer insp.Close()
	testutil.Eventually(t, pollTimeout, func() error {
		ti, err := insp.GetTaskInfo("default", info.ID)
		if err != nil {
			return err
		}
		if ti.State != asynq.TaskStateArchived || !strings.Contains(string(ti.Result), `"permanent":true`) {
			return errors.New("task " + ti.State.String() + ", result " + string(ti.Result))
		}
		return nil
	})
}

// TestRemoteForeignResults runs the tasks of a RemoteEvent on a handler
// that is not a Worker and writes results of its own, and checks what the
// caller gets: a result over MaxResultBytes or not JSON is an error, and
// the error a result reports is a RemoteError.
func TestRemoteForeignResults(t *testing.T) {
	redis := testutil.StartRedis(t)
	results := map[string]string{
		"huge":      `{"output":"` + strings.Repeat("x", 100) + `"}`,
		"not-json":  `<html>`,
		"error":     `{"error":"quota exceeded"}`,
		"permanent": `{"error":"bad input","permanent":true}`,
		"output":    `{"output":{"n":4}}`,
	}
	mux := asynq.NewServeMux()
	for name, res := range results {
		mux.HandleFunc(epasynq.TaskType(name), func(_ context.Context, task *asynq.Task) error {
			_, err := task.ResultWriter().Write([]byte(res))
			return err
		})
	}
	startServer(t, redis.Addr, mux)
	tests := []struct {
		name      string
		want      string // substring of the error; empty for success
		remote    bool   // a *RemoteError
		permanent bool
	}{
		{name: "huge", want: `asynq: remote event "huge" (task `},
		{name: "not-json", want: "bad result: invalid character '<'"},
		{name: "error", want: "quota exceeded", remote: true},
		{name: "permanent", want: "bad input", remote: true, permanent: true},
		{name: "output"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := epasynq.Remote(tc.name, epasynq.RemoteConfig{Redis: asynq.RedisClientOpt{Addr: redis.Addr}, Timeout: pollTimeout,
				MaxResultBytes: 64})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			out, err := e.Process(context.Background(), nil)
			if tc.want == "" {
				if err != nil || fmt.Sprint(out) != "map[n:4]" {
					t.Errorf("got %v, %v; want map[n:4]", out, err)
				}
				return
			}
			var re *epasynq.RemoteError
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &re) != tc.remote || telemetry.IsPermanent(err) != tc.permanent {
				t.Errorf("got %v (RemoteError %v, permanent %v), want %q (RemoteError %v, permanent %v)",
					err, re != nil, telemetry.IsPermanent(err), tc.want, tc.remote, tc.permanent)
			}
			if tc.name == "huge" && !strings.Contains(err.Error(), "result larger than 64 bytes") {
				t.Errorf("got %v, want the result refused for its size", err)
			}
		})
	}
}
