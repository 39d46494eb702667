package asynq_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	epasynq "github.com/eventpipeline/eventpipeline/contrib/asynq"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestNewClientRedisAddr checks which connection options NewClient takes,
// and the host and port it records.
func TestNewClientRedisAddr(t *testing.T) {
	rec := newRecorder(t)
	tests := []struct {
		name    string
		opt     asynq.RedisConnOpt
		wantErr error // nil: accepted
	}{
		{"client", asynq.RedisClientOpt{Addr: "127.0.0.1:6379"}, nil},
		{"client pointer", &asynq.RedisClientOpt{Addr: "localhost:6380"}, nil},
		{"failover", asynq.RedisFailoverClientOpt{MasterName: "m", SentinelAddrs: []string{"10.0.0.1:26379", "10.0.0.2:26379"}}, nil},
		{"cluster", asynq.RedisClusterClientOpt{Addrs: []string{"[::1]:7000"}}, nil},
		{"failover pointer", &asynq.RedisFailoverClientOpt{MasterName: "m", SentinelAddrs: []string{"10.0.0.1:26379"}}, nil},
		{"cluster pointer", &asynq.RedisClusterClientOpt{Addrs: []string{"10.0.0.3:7000"}}, nil},
		{"empty cluster pointer", &asynq.RedisClusterClientOpt{}, epasynq.ErrRedisAddr},
		{"no address", asynq.RedisClientOpt{}, epasynq.ErrRedisAddr},
		{"no port", asynq.RedisClientOpt{Addr: "127.0.0.1"}, epasynq.ErrRedisAddr},
		{"bad port", asynq.RedisClientOpt{Addr: "127.0.0.1:99999"}, epasynq.ErrRedisAddr},
		{"no sentinel", asynq.RedisFailoverClientOpt{MasterName: "m"}, epasynq.ErrRedisAddr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := epasynq.NewClient(tc.opt, epasynq.Config{Recorder: rec})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("got %v, want an error wrapping %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			c.Close()
		})
	}
	if _, err := epasynq.NewClient(otherConnOpt{}, epasynq.Config{}); err == nil {
		t.Error("an unknown connection option type: got no error")
	}
}

type otherConnOpt struct{}

func (otherConnOpt) MakeRedisClient() any { return nil }

// TestEnqueueRefusesTaskOptions checks that a task made with options is
// refused, not enqueued without them, and that the same options given to
// Enqueue work.
func TestEnqueueRefusesTaskOptions(t *testing.T) {
	redis := testutil.StartRedis(t)
	rec := newRecorder(t)
	c, err := epasynq.NewClient(asynq.RedisClientOpt{Addr: redis.Addr}, epasynq.Config{Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	_, err = c.Enqueue(ctx, asynq.NewTask("email", nil, asynq.Queue("mail")))
	if !errors.Is(err, epasynq.ErrTaskOptions) {
		t.Fatalf("got %v, want ErrTaskOptions", err)
	}
	if n := len(rec.Report().NetworkOperations); n != 0 {
		t.Errorf("%d network operations recorded for a refused task, want 0", n)
	}
	info, err := c.Enqueue(ctx, asynq.NewTaskWithHeaders("email", nil, map[string]string{"x-mine": "kept"}), asynq.Queue("mail"), asynq.MaxRetry(2))
	if err != nil {
		t.Fatal(err)
	}
	if info.Queue != "mail" || info.MaxRetry != 2 || info.Headers["x-mine"] != "kept" || len(info.ID) != 32 {
		t.Errorf("enqueued task: queue %q, max retry %d, headers %v, id %q; want mail, 2, x-mine kept, 32 hex digits", info.Queue, info.MaxRetry, info.Headers, info.ID)
	}
	if _, ok := info.Headers[epasynq.HeaderEnqueueTime]; !ok {
		t.Errorf("headers %v: no %s", info.Headers, epasynq.HeaderEnqueueTime)
	}
	info, err = c.Enqueue(ctx, asynq.NewTask("email", nil), asynq.TaskID("mine"))
	if err != nil || info.ID != "mine" {
		t.Errorf("enqueue with a TaskID: got %v, %v; want id mine", info, err)
	}
}

// TestEnqueueRedisDown checks that a failed enqueue is recorded as a failed
// network operation and returns asynq's error.
func TestEnqueueRedisDown(t *testing.T) {
	redis := testutil.StartRedis(t)
	redis.Stop()
	rec := newRecorder(t)
	c, err := epasynq.NewClient(asynq.RedisClientOpt{Addr: redis.Addr, DialTimeout: time.Second}, epasynq.Config{Recorder: rec, Operation: "enqueue"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Enqueue(context.Background(), asynq.NewTask("email", []byte("x")), asynq.TaskID("t1")); err == nil {
		t.Fatal("enqueue with Redis down: got no error")
	}
	ops := rec.Network().FailedOperations()
	if len(ops) != 1 || ops[0].TaskID != "t1" || ops[0].Operation != "enqueue" || ops[0].Port != redis.Port || ops[0].Error == "" || ops[0].BytesSent != 0 {
		t.Errorf("failed operations: got %+v, want the enqueue of t1 to port %d, with its error and no bytes sent", ops, redis.Port)
	}
}

// TestTraceContextWithoutTracerProvider checks that without a
// TracerProvider the caller's trace context still reaches the handler,
// and that no span ids are recorded.
func TestTraceContextWithoutTracerProvider(t *testing.T) {
	redis := testutil.StartRedis(t)
	rec := newRecorder(t)
	cfg := epasynq.Config{Recorder: rec, Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	c, err := epasynq.NewClient(asynq.RedisClientOpt{Addr: redis.Addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan trace.SpanContext, 1)
	mux := asynq.NewServeMux()
	mux.Use(epasynq.NewMiddleware(cfg).Wrap)
	mux.HandleFunc("traced", func(ctx context.Context, _ *asynq.Task) error {
		got <- trace.SpanContextFromContext(ctx)
		return nil
	})
	startServer(t, redis.Addr, mux)
	caller := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4}, SpanID: trace.SpanID{5, 6, 7, 8}, TraceFlags: trace.FlagsSampled,
	})
	info, err := c.Enqueue(trace.ContextWithSpanContext(context.Background(), caller), asynq.NewTask("traced", nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := "00-" + caller.TraceID().String() + "-" + caller.SpanID().String() + "-01"; info.Headers["traceparent"] != want {
		t.Errorf("traceparent header %q, want %q", info.Headers["traceparent"], want)
	}
	select {
	case sc := <-got:
		if sc.TraceID() != caller.TraceID() || sc.SpanID() != caller.SpanID() || !sc.IsRemote() {
			t.Errorf("handler's span context %v, want the caller's, remote", sc)
		}
	case <-time.After(pollTimeout):
		t.Fatal("the task did not run")
	}
	waitRuns(t, rec, map[string]int{info.ID: 1})
	if m, _ := rec.Metrics(info.ID); m.Span != (telemetry.SpanContext{}) {
		t.Errorf("run recorded span %+v without a TracerProvider, want none", m.Span)
	}
	if op := rec.Report().NetworkOperations[0]; op.Span != (telemetry.SpanContext{}) {
		t.Errorf("enqueue recorded span %+v without a TracerProvider, want none", op.Span)
	}
}

// TestMiddlewareRecordsPanics checks that a handler's panic is recorded
// as a failed run before asynq recovers it.
func TestMiddlewareRecordsPanics(t *testing.T) {
	redis := testutil.StartRedis(t)
	rec := newRecorder(t)
	mux := asynq.NewServeMux()
	mux.Use(epasynq.NewMiddleware(epasynq.Config{Recorder: rec, EventName: func(q, typ string) string { return q + ":" + typ }}).Wrap)
	mux.HandleFunc("crash", func(context.Context, *asynq.Task) error { panic("out of cheese") })
	startServer(t, redis.Addr, mux)
	c, err := epasynq.NewClient(asynq.RedisClientOpt{Addr: redis.Addr}, epasynq.Config{Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Enqueue(context.Background(), asynq.NewTask("crash", nil), asynq.MaxRetry(0))
	if err != nil {
		t.Fatal(err)
	}
	waitRuns(t, rec, map[string]int{info.ID: 1})
	m, _ := rec.Metrics(info.ID)
	if m.Status != telemetry.StatusFailed || m.Error != "asynq: task handler panicked: out of cheese" || m.EventName != "default:crash" {
		t.Errorf("got %s %q of event %q, want a failed run of default:crash with the panic", m.Status, m.Error, m.EventName)
	}
}

// TestMiddlewareOutsideServer checks that a handler called without an
// asynq task id (outside a server) runs unrecorded.
func TestMiddlewareOutsideServer(t *testing.T) {
	rec := newRecorder(t)
	calls := 0
	h := epasynq.NewMiddleware(epasynq.Config{Recorder: rec}).Wrap(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		calls++
		return nil
	}))
	if err := h.ProcessTask(context.Background(), asynq.NewTask("x", nil)); err != nil || calls != 1 {
		t.Errorf("got %v after %d calls, want nil after 1", err, calls)
	}
	if n := len(rec.Report().Events); n != 0 {
		t.Errorf("%d runs recorded, want 0", n)
	}
}

// TestMiddlewareCountsRecordingFailures checks that a closed Recorder does
// not fail a task: the refusals are counted.
func TestMiddlewareCountsRecordingFailures(t *testing.T) {
	redis := testutil.StartRedis(t)
	rec := newRecorder(t)
	rec.Close(context.Background())
	mw := epasynq.NewMiddleware(epasynq.Config{Recorder: rec})
	done := make(chan string, 3)
	mux := asynq.NewServeMux()
	mux.Use(mw.Wrap)
	mux.HandleFunc("job", func(ctx context.Context, _ *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		done <- id
		return nil
	})
	startServer(t, redis.Addr, mux)
	c, err := epasynq.NewClient(asynq.RedisClientOpt{Addr: redis.Addr}, epasynq.Config{Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		if _, err := c.Enqueue(context.Background(), asynq.NewTask("job", nil), asynq.TaskID("j"+strconv.Itoa(i))); err != nil {
			t.Fatalf("enqueue with a closed Recorder: %v", err)
		}
	}
	for range 3 {
		select {
		case <-done:
		case <-time.After(pollTimeout):
			t.Fatal("the tasks did not all run")
		}
	}
	testutil.Eventually(t, pollTimeout, func() error {
		if n := mw.Failures(); n != 3 || !errors.Is(mw.Err(), telemetry.ErrClosed) {
			return errors.New("middleware: failures " + strconv.FormatUint(n, 10) + ", first " + errString(mw.Err()))
		}
		return nil
	})
	if n := c.Failures(); n != 3 || !errors.Is(c.Err(), telemetry.ErrClosed) {
		t.Errorf("client: %d failures, first %v; want 3, ErrClosed", n, c.Err())
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
