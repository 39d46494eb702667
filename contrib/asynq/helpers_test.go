package asynq_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

var quiet = slog.New(slog.DiscardHandler)

// pollTimeout bounds the waits for what real servers do; generous, for a
// busy machine.
const pollTimeout = 60 * time.Second

// quietLogger is an asynq.Logger that logs nothing.
type quietLogger struct{}

func (quietLogger) Debug(...any) {}
func (quietLogger) Info(...any)  {}
func (quietLogger) Warn(...any)  {}
func (quietLogger) Error(...any) {}
func (quietLogger) Fatal(...any) {}

// startServer starts an asynq server on the Redis at addr, processing the
// queues given (all of weight 1; "default" if none), with mux as its
// handler, short retry delays and polling intervals, and stops it when
// the test ends.
func startServer(t testing.TB, addr string, mux *asynq.ServeMux, queues ...string) *asynq.Server {
	t.Helper()
	if len(queues) == 0 {
		queues = []string{"default"}
	}
	qs := map[string]int{}
	for _, q := range queues {
		qs[q] = 1
	}
	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: addr}, asynq.Config{
		Concurrency:              4,
		Queues:                   qs,
		RetryDelayFunc:           func(int, error, *asynq.Task) time.Duration { return 50 * time.Millisecond },
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		ShutdownTimeout:          5 * time.Second,
		Logger:                   quietLogger{},
		LogLevel:                 asynq.FatalLevel,
	})
	if err := srv.Start(mux); err != nil {
		t.Fatalf("asynq server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// newRecorder returns a Recorder closed when the test ends.
func newRecorder(t testing.TB, opts ...telemetry.Option) *telemetry.Recorder {
	t.Helper()
	r, err := telemetry.NewRecorder(append([]telemetry.Option{telemetry.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// newTracing returns a TracerProvider that keeps every span in memory.
func newTracing(t testing.TB) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp, exp
}

// runsOf returns the finished runs of task id, by start time.
func runsOf(r *telemetry.Recorder, id string) []telemetry.EventMetrics {
	var runs []telemetry.EventMetrics
	for _, m := range r.Report().Events {
		if m.TaskID == id && m.Status != telemetry.StatusPending {
			runs = append(runs, m)
		}
	}
	slices.SortFunc(runs, func(a, b telemetry.EventMetrics) int { return a.StartTime.Compare(b.StartTime) })
	return runs
}

// waitRuns waits until each task id of want has as many finished runs as
// want says.
func waitRuns(t testing.TB, r *telemetry.Recorder, want map[string]int) {
	t.Helper()
	testutil.Eventually(t, pollTimeout, func() error {
		for id, n := range want {
			if got := len(runsOf(r, id)); got != n {
				return fmt.Errorf("task %s: %d finished runs, want %d", id, got, n)
			}
		}
		return nil
	})
}

// spansNamed returns the ended spans called name.
func spansNamed(exp *tracetest.InMemoryExporter, name string) tracetest.SpanStubs {
	return slices.DeleteFunc(exp.GetSpans(), func(s tracetest.SpanStub) bool { return s.Name != name })
}
