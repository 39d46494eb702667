package river_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	epriver "github.com/eventpipeline/eventpipeline/contrib/river"
	"github.com/eventpipeline/eventpipeline/internal/testutil"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// databaseURL is the PostgreSQL database, with River's schema, that
// TestMain starts for the examples; the tests start servers of their own.
var databaseURL string

func TestMain(m *testing.M) {
	pg, stop, err := testutil.StartPostgresMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, "the examples need PostgreSQL:", err)
		os.Exit(1)
	}
	databaseURL = pg.URL
	code := m.Run()
	stop()
	os.Exit(code)
}

// ResizeArgs are the arguments of the example's jobs.
type ResizeArgs struct {
	Image int `json:"image"`
}

// Kind returns the job kind, "image_resize".
func (ResizeArgs) Kind() string { return "image_resize" }

// A River client whose Middleware records every job attempt, with its
// wait in the queue.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, databaseURL) // your database
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		log.Fatal(err)
	}

	rec, err := telemetry.NewRecorder()
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close(ctx)

	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[ResizeArgs]) error { return nil }))
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:     map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers:    workers,
		Middleware: []rivertype.Middleware{epriver.NewMiddleware(epriver.Config{Recorder: rec})},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Stop(ctx)

	res, err := client.Insert(ctx, ResizeArgs{Image: 7}, nil)
	if err != nil {
		log.Fatal(err)
	}
	id := strconv.FormatInt(res.Job.ID, 10)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m, ok := rec.Metrics(id); ok && m.Status != telemetry.StatusPending {
			fmt.Println(m.EventName, m.Status, "retries:", m.RetryCount, "waited:", !m.EnqueueTime.IsZero())
			return
		}
	}
	fmt.Println("the job did not run")
	// Output:
	// image_resize completed retries: 0 waited: true
}
