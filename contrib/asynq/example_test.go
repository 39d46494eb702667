package asynq_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hibiken/asynq"

	epasynq "github.com/eventpipeline/eventpipeline/contrib/asynq"
	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// waitEnded waits until the latest run of task id has ended.
func waitEnded(rec *telemetry.Recorder, id string) telemetry.EventMetrics {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m, ok := rec.Metrics(id); ok && m.Status != telemetry.StatusPending {
			return m
		}
	}
	log.Fatalf("task %s did not run", id)
	return telemetry.EventMetrics{}
}

// A worker whose Middleware records each task run, and a producer whose
// Client records each enqueue and tells the worker when the task was
// enqueued, so that the run's record has its wait in the queue.
func Example() {
	ctx := context.Background()
	rec, err := telemetry.NewRecorder()
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close(ctx)
	redis := asynq.RedisClientOpt{Addr: redisAddr} // your Redis server

	// The worker.
	mux := asynq.NewServeMux()
	mux.Use(epasynq.NewMiddleware(epasynq.Config{Recorder: rec}).Wrap)
	mux.HandleFunc("image:resize", func(ctx context.Context, t *asynq.Task) error { return nil })
	srv := asynq.NewServer(redis, asynq.Config{Concurrency: 2, LogLevel: asynq.WarnLevel})
	if err := srv.Start(mux); err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()

	// The producer.
	client, err := epasynq.NewClient(redis, epasynq.Config{Recorder: rec})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	info, err := client.Enqueue(ctx, asynq.NewTask("image:resize", []byte(`{"image":7}`)), asynq.Queue("default"))
	if err != nil {
		log.Fatal(err)
	}

	run := waitEnded(rec, info.ID)
	fmt.Println(run.EventName, run.Status, "retries:", run.RetryCount, "waited:", !run.EnqueueTime.IsZero())
	enqueue := rec.Report().NetworkOperations[0]
	fmt.Println(enqueue.Operation, enqueue.TaskID == info.ID, enqueue.Status)
	// Output:
	// image:resize completed retries: 0 waited: true
	// asynq_enqueue true completed
}

// A pipeline whose event "double" runs on an asynq worker: the pipeline
// records the call as a network operation of its task, the worker's
// Middleware records the run under the call's id.
func ExampleRemote() {
	ctx := context.Background()
	redis := asynq.RedisClientOpt{Addr: redisAddr} // your Redis server

	// The worker process.
	workerRec, err := telemetry.NewRecorder()
	if err != nil {
		log.Fatal(err)
	}
	defer workerRec.Close(ctx)
	worker, err := epasynq.NewWorker(epasynq.WorkerConfig{},
		pipeline.Func("double", func(_ context.Context, in any) (any, error) { return 2 * in.(float64), nil }))
	if err != nil {
		log.Fatal(err)
	}
	mux := asynq.NewServeMux()
	mux.Use(epasynq.NewMiddleware(epasynq.Config{Recorder: workerRec}).Wrap)
	worker.Register(mux)
	srv := asynq.NewServer(redis, asynq.Config{Concurrency: 2, Queues: map[string]int{"pipelines": 1}, LogLevel: asynq.WarnLevel})
	if err := srv.Start(mux); err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()

	// The pipeline's process.
	rec, err := telemetry.NewRecorder()
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close(ctx)
	double, err := epasynq.Remote("double", epasynq.RemoteConfig{Redis: redis, Queue: "pipelines", Timeout: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	defer double.Close()
	p, err := pipeline.New(pipeline.Config{Recorder: rec}, pipeline.Sequence(double, double))
	if err != nil {
		log.Fatal(err)
	}
	out, err := p.Run(ctx, 10)
	fmt.Println(out, err)

	for _, call := range rec.Report().NetworkOperations {
		run := waitEnded(workerRec, call.TaskID)
		fmt.Println(call.Operation, call.Status, "-> worker:", run.EventName, run.Status)
	}
	// Output:
	// 40 <nil>
	// remote_call completed -> worker: double completed
	// remote_call completed -> worker: double completed
}

func ExampleDefaultEventName() {
	fmt.Println(epasynq.DefaultEventName("default", "image:resize"))
	fmt.Println(epasynq.DefaultEventName("pipelines", epasynq.TaskType("score")))
	// Output:
	// image:resize
	// score
}
