package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// The basic use: record event runs, then ask about them.
func Example() {
	r, err := telemetry.NewRecorder()
	if err != nil {
		panic(err)
	}
	defer r.Close(context.Background())

	r.StartEvent("extract", "task-1")
	r.EndEvent("task-1", nil)

	r.StartEvent("transform", "task-2")
	r.RecordRetry("task-2")
	r.EndEvent("task-2", errors.New("schema mismatch"))

	for _, m := range r.FailedEvents() {
		fmt.Printf("%s %s: %s after %d retry\n", m.EventName, m.Status, m.Error, m.RetryCount)
	}
	fmt.Printf("%+v\n", r.RetryStats())
	// Output:
	// transform failed: schema mismatch after 1 retry
	// {TotalRetries:1 EventsWithRetries:1 ByRetryCount:map[1:1]}
}

func ExampleNewRecorder() {
	r, err := telemetry.NewRecorder(
		telemetry.WithMaxEvents(10_000),
		telemetry.WithQueueSize(4096),
		telemetry.WithRetry(telemetry.RetryPolicy{MaxAttempts: 3}),
	)
	if err != nil {
		panic(err)
	}
	defer r.Close(context.Background())

	_, err = telemetry.NewRecorder(telemetry.WithMaxEvents(0))
	fmt.Println(err)
	// Output:
	// telemetry: max events must be positive, got 0
}

func ExampleRecorder_EndEvent() {
	r, _ := telemetry.NewRecorder()
	defer r.Close(context.Background())

	r.StartEvent("load", "task-9", telemetry.WithProcessID(4242), telemetry.WithPipelineID("nightly-2026-11-21"))
	r.EndEvent("task-9", nil)

	m, _ := r.Metrics("task-9")
	fmt.Println(m.EventName, m.Status, m.ProcessID, m.PipelineID, m.Duration() >= 0)

	// Ending it again is an error, not a silent no-op.
	fmt.Println(r.EndEvent("task-9", nil))
	// Output:
	// load completed 4242 nightly-2026-11-21 true
	// telemetry: end event "task-9": task already ended
}

func ExampleNetwork_StartOperation() {
	r, _ := telemetry.NewRecorder()
	defer r.Close(context.Background())
	net := r.Network()

	net.StartOperation("task-1", "worker-3.internal", 8443, "") // operation defaults to "remote_call"
	net.EndOperation("task-1", 1200, 56000, nil)
	net.StartOperation("task-2", "worker-4.internal", 8443, "remote_call")
	net.EndOperation("task-2", 900, 0, errors.New("connection refused"))

	m, _ := net.Metrics("task-1")
	fmt.Println(m.Operation, m.Host, m.Port, m.BytesSent, m.BytesReceived, m.Status)
	for _, m := range net.FailedOperations() {
		fmt.Println("failed:", m.TaskID, m.Error)
	}
	fmt.Println(net.StartOperation("task-3", "worker", 70000, ""))
	// Output:
	// remote_call worker-3.internal 8443 1200 56000 completed
	// failed: task-2 connection refused
	// telemetry: start operation "task-3": invalid port: 70000 is outside 0-65535
}

func ExampleRecorder_SlowEvents() {
	r, _ := telemetry.NewRecorder()
	defer r.Close(context.Background())

	r.StartEvent("sleepy", "a")
	time.Sleep(20 * time.Millisecond) // the event's work
	r.EndEvent("a", nil)
	r.StartEvent("running", "b") // a pending run is not slow yet

	slow, _ := r.SlowEvents(10 * time.Millisecond)
	for _, m := range slow {
		fmt.Println(m.EventName, m.Duration() >= 20*time.Millisecond)
	}
	// Output:
	// sleepy true
}

// A long error text, such as one that carries a whole response body, is
// cut when the run ends, with a marker giving its original length.
func ExampleWithMaxErrorLength() {
	r, _ := telemetry.NewRecorder(telemetry.WithMaxErrorLength(40))
	defer r.Close(context.Background())

	r.StartEvent("load", "task-1")
	r.EndEvent("task-1", errors.New(strings.Repeat("bad row; ", 1000)))

	m, _ := r.Metrics("task-1")
	fmt.Println(len(m.Error), m.Error)
	// Output:
	// 40 bad row; bad … [truncated, 9000 bytes]
}

// CustomPublisher is a custom publisher: it only needs the two publish
// methods.
type CustomPublisher struct{}

func (CustomPublisher) PublishEventMetrics(ctx context.Context, m telemetry.EventMetrics) error {
	fmt.Printf("event %s %s retries=%d\n", m.EventName, m.Status, m.RetryCount)
	return nil
}

func (CustomPublisher) PublishNetworkMetrics(ctx context.Context, m telemetry.NetworkMetrics) error {
	fmt.Printf("network %s to %s:%d sent=%d received=%d\n", m.Operation, m.Host, m.Port, m.BytesSent, m.BytesReceived)
	return nil
}

// A custom publisher receives every finished record, delivered from a
// goroutine of its own; Flush waits until it has them.
func ExamplePublisher() {
	r, _ := telemetry.NewRecorder(telemetry.WithPublishers(CustomPublisher{}))
	defer r.Close(context.Background())

	r.StartEvent("extract", "task-1")
	r.RecordRetry("task-1")
	r.EndEvent("task-1", nil)
	r.Flush(context.Background())

	r.Network().StartOperation("task-1", "api.internal", 443, "")
	r.Network().EndOperation("task-1", 300, 4096, nil)
	r.Flush(context.Background())
	// Output:
	// event extract completed retries=1
	// network remote_call to api.internal:443 sent=300 received=4096
}

// FailureCounter counts the failed runs of each event name: a metric, so
// it is an Observer, called on the recording path with only what metrics
// are made of.
type FailureCounter struct {
	mu     sync.Mutex
	failed map[string]int
}

func (c *FailureCounter) ObserveEvent(_ context.Context, o telemetry.EventObservation) error {
	if o.Status == telemetry.StatusFailed {
		c.mu.Lock()
		c.failed[o.EventName]++
		c.mu.Unlock()
	}
	return nil
}

func (c *FailureCounter) ObserveNetwork(context.Context, telemetry.NetworkObservation) error {
	return nil
}

// The publish methods, for direct use, observe the record's Observation.
func (c *FailureCounter) PublishEventMetrics(ctx context.Context, m telemetry.EventMetrics) error {
	return c.ObserveEvent(ctx, m.Observation())
}

func (c *FailureCounter) PublishNetworkMetrics(ctx context.Context, m telemetry.NetworkMetrics) error {
	return c.ObserveNetwork(ctx, m.Observation())
}

// Synchronous reports true: the Recorder calls c before EndEvent returns.
func (c *FailureCounter) Synchronous() bool { return true }

// An Observer is handed each finished run before EndEvent returns, with no
// queue: the counts are up to date at once.
func ExampleObserver() {
	c := &FailureCounter{failed: map[string]int{}}
	r, _ := telemetry.NewRecorder(telemetry.WithPublishers(c))
	defer r.Close(context.Background())

	for i, err := range []error{nil, errors.New("timeout"), errors.New("timeout")} {
		id := fmt.Sprint("task-", i)
		r.StartEvent("load", id)
		r.EndEvent(id, err)
	}
	c.mu.Lock()
	fmt.Println("failed loads:", c.failed["load"])
	c.mu.Unlock()
	// Output:
	// failed loads: 2
}

func ExampleNewCompositePublisher() {
	jsonLines, _ := telemetry.NewJSONLinesPublisher(io.Discard)
	composite, _ := telemetry.NewCompositePublisher(jsonLines, CustomPublisher{})

	r, _ := telemetry.NewRecorder(telemetry.WithPublishers(composite))
	r.StartEvent("extract", "task-1")
	r.EndEvent("task-1", nil)
	r.Close(context.Background()) // delivers what is buffered

	// Each member is attached on its own, with its own queue and counters.
	for _, s := range r.PublisherStats() {
		fmt.Println(s.Name, s.Published)
	}
	// Output:
	// event extract completed retries=0
	// jsonlines 1
	// telemetry_test.CustomPublisher 1
}

func ExampleNewJSONLinesPublisher() {
	f, err := os.CreateTemp("", "telemetry-*.jsonl")
	if err != nil {
		panic(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()

	p, _ := telemetry.NewJSONLinesPublisher(f)
	r, _ := telemetry.NewRecorder(telemetry.WithPublishers(p))
	r.StartEvent("extract", "task-1")
	r.EndEvent("task-1", errors.New("timeout"))
	r.Close(context.Background()) // delivers what is buffered

	f.Seek(0, 0)
	events, _, err := telemetry.ReadJSONLines(f)
	fmt.Println(len(events), events[0].TaskID, events[0].Status, events[0].Error, err)
	// Output:
	// 1 task-1 failed timeout <nil>
}

func ExampleFormatMetrics() {
	start := time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)
	doc, _ := telemetry.FormatMetrics(telemetry.EventMetrics{
		EventName: "extract", TaskID: "task-1", Status: telemetry.StatusCompleted,
		StartTime: start, EndTime: start.Add(250 * time.Millisecond),
	})
	fmt.Println(doc["metric_type"], doc["event_name"], doc["start_time"], doc["duration_seconds"], doc["error"])
	// Output:
	// event extract 2026-11-21T09:30:00.000000000Z 0.25 <nil>
}

func ExampleMonitorEvents() {
	// Publishers for the default Recorder, which the package-level
	// functions use.
	if err := telemetry.MonitorEvents(CustomPublisher{}); err != nil {
		panic(err)
	}
	telemetry.StartEvent("extract", "task-1")
	telemetry.EndEvent("task-1", nil)
	telemetry.Flush(context.Background())

	failed := telemetry.FailedEvents()
	fmt.Println(len(failed))

	// Close delivers what is buffered and stops the publishers.
	telemetry.Close(context.Background())
	// Output:
	// event extract completed retries=0
	// 0
}

func ExampleErrNotStarted() {
	r, _ := telemetry.NewRecorder()
	defer r.Close(context.Background())

	err := r.EndEvent("never-started", nil)
	if errors.Is(err, telemetry.ErrNotStarted) {
		fmt.Println("not started:", err)
	}
	var te *telemetry.TaskError
	if errors.As(err, &te) {
		fmt.Println(te.Op, te.TaskID)
	}
	// Output:
	// not started: telemetry: end event "never-started": task was never started
	// end event never-started
}

func ExamplePermanent() {
	// A publisher marks errors that a retry cannot fix.
	err := telemetry.Permanent(errors.New("HTTP 400: invalid document"))
	fmt.Println(telemetry.IsPermanent(err), telemetry.IsPermanent(errors.New("HTTP 503")))
	// Output:
	// true false
}

// A retry loop of your own reads the wait an error asks for with
// RetryAfterOf, through any wrapping.
func ExampleRetryAfterOf() {
	err := fmt.Errorf("load: %w", telemetry.RetryAfter(errors.New("warehouse busy"), 3*time.Second))
	d, ok := telemetry.RetryAfterOf(err)
	fmt.Println(d, ok)
	_, ok = telemetry.RetryAfterOf(errors.New("warehouse down"))
	fmt.Println(ok)
	// Output:
	// 3s true
	// false
}
