package river_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	epriver "github.com/eventpipeline/eventpipeline/contrib/river"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

var quiet = slog.New(slog.DiscardHandler)

// pollTimeout bounds the waits for what real servers do; generous, for a
// busy machine.
const pollTimeout = 60 * time.Second

// startDatabase starts a PostgreSQL server, migrates River's schema into
// it, and returns a pool of connections to it, closed when the test ends.
func startDatabase(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pg := testutil.StartPostgres(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		t.Fatalf("migrating River's schema: %v", err)
	}
	return pool
}

// fastRetry retries a failed job 100ms after its attempt.
type fastRetry struct{}

func (fastRetry) NextRetry(*rivertype.JobRow) time.Time {
	return time.Now().Add(100 * time.Millisecond)
}

// newClient returns a River client on pool with workers (nil for an
// insert-only client) and the Middleware, polling often and retrying
// after 100ms; start makes it work jobs.
func newClient(t testing.TB, pool *pgxpool.Pool, workers *river.Workers, mw *epriver.Middleware) *river.Client[pgx.Tx] {
	t.Helper()
	cfg := &river.Config{
		Logger:            quiet,
		Middleware:        []rivertype.Middleware{mw},
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		RetryPolicy:       fastRetry{},
	}
	if workers != nil {
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}}
		cfg.Workers = workers
	}
	c, err := river.NewClient(riverpgxv5.New(pool), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// start starts c working jobs, until the test ends.
func start(t testing.TB, c *river.Client[pgx.Tx]) {
	t.Helper()
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Stop(ctx)
	})
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

// runsOf returns the finished runs of job id, by start time.
func runsOf(r *telemetry.Recorder, id int64) []telemetry.EventMetrics {
	var runs []telemetry.EventMetrics
	for _, m := range r.Report().Events {
		if m.TaskID == strconv.FormatInt(id, 10) && m.Status != telemetry.StatusPending {
			runs = append(runs, m)
		}
	}
	slices.SortFunc(runs, func(a, b telemetry.EventMetrics) int { return a.StartTime.Compare(b.StartTime) })
	return runs
}

// waitRuns waits until each job id of want has as many finished runs as
// want says.
func waitRuns(t testing.TB, r *telemetry.Recorder, want map[int64]int) {
	t.Helper()
	testutil.Eventually(t, pollTimeout, func() error {
		for id, n := range want {
			if got := len(runsOf(r, id)); got != n {
				return fmt.Errorf("job %d: %d finished runs, want %d", id, got, n)
			}
		}
		return nil
	})
}
