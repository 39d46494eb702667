// Command basic runs a small simulated pipeline with telemetry on the core
// package alone: no server needed. It prints the JSON report and the answers
// of the queries (failed, slow, retries), and writes every finished record to a JSON-lines
// file.
//
//	go run ./examples/telemetry/basic [-out FILE]
//
// By default the file is telemetry.jsonl in a new temporary directory, and
// the last line printed says where. With -out it is FILE, which must not
// exist yet: the example never overwrites a file (such as the demo's
// telemetry.jsonl), nor writes through a symlink.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

func main() {
	out := flag.String("out", "", "JSON-lines file to write the records to, which must not exist yet\n(default: telemetry.jsonl in a new temporary directory)")
	flag.Parse()
	if err := run(*out, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// createOut creates the file the records go to: out, which must not exist
// (not even as a symlink), or, if out is "", telemetry.jsonl in a new
// temporary directory.
func createOut(out string) (*os.File, error) {
	if out == "" {
		dir, err := os.MkdirTemp("", "eventpipeline-basic-")
		if err != nil {
			return nil, err
		}
		out = filepath.Join(dir, "telemetry.jsonl")
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s already exists: remove it or choose another -out", out)
	}
	return f, err
}

func run(out string, w io.Writer) error {
	f, err := createOut(out)
	if err != nil {
		return err
	}
	defer f.Close()
	sink, err := telemetry.NewJSONLinesPublisher(f)
	if err != nil {
		return err
	}
	// Record into the default Recorder and publish every finished record.
	if err := telemetry.MonitorEvents(sink); err != nil {
		return err
	}

	simulatePipeline()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := telemetry.Flush(ctx); err != nil {
		return err
	}

	report, err := telemetry.MetricsJSON()
	if err != nil {
		return err
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, report, "", "  "); err != nil {
		return err
	}
	fmt.Fprintf(w, "== JSON report (MetricsJSON)\n%s\n\n", indented.Bytes())

	fmt.Fprintln(w, "== failed events (FailedEvents)")
	for _, m := range telemetry.FailedEvents() {
		fmt.Fprintf(w, "  %-10s %-8s error=%q retries=%d\n", m.EventName, m.TaskID, m.Error, m.RetryCount)
	}
	slow, err := telemetry.SlowEvents(50 * time.Millisecond)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "== slow events over 50ms (SlowEvents)")
	for _, m := range slow {
		fmt.Fprintf(w, "  %-10s %-8s took %v\n", m.EventName, m.TaskID, m.Duration().Round(time.Millisecond))
	}
	rs := telemetry.RetryStats()
	fmt.Fprintf(w, "== retry statistics (RetryStats)\n  total retries %d, events with retries %d, by retry count %v\n",
		rs.TotalRetries, rs.EventsWithRetries, rs.ByRetryCount)
	fmt.Fprintln(w, "== failed network operations (FailedNetworkOps)")
	for _, m := range telemetry.FailedNetworkOps() {
		fmt.Fprintf(w, "  %-8s %s:%d error=%q\n", m.TaskID, m.Host, m.Port, m.Error)
	}
	slowOps, err := telemetry.SlowNetworkOps(50 * time.Millisecond)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "== slow network operations over 50ms (SlowNetworkOps)")
	for _, m := range slowOps {
		fmt.Fprintf(w, "  %-8s %s:%d took %v, sent %d B, received %d B\n", m.TaskID, m.Host, m.Port,
			m.Latency().Round(time.Millisecond), m.BytesSent, m.BytesReceived)
	}
	if err := telemetry.Close(ctx); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(w, "== %d records written to %s\n", telemetry.Default().PublisherStats()[0].Published, f.Name())
	return nil
}

// simulatePipeline records the runs of a pipeline with fast, slow, failing
// and retried events, and remote calls.
func simulatePipeline() {
	pid := os.Getpid()
	const pipeline = "demo-run-1"
	step := func(name, task string, work time.Duration, attempts int, err error) {
		telemetry.StartEvent(name, task, telemetry.WithProcessID(pid), telemetry.WithPipelineID(pipeline))
		for range attempts - 1 {
			time.Sleep(work)
			telemetry.RecordRetry(task)
		}
		time.Sleep(work)
		telemetry.EndEvent(task, err)
	}
	net := telemetry.Default().Network()
	call := func(task, host string, latency time.Duration, sent, received int64, err error) {
		net.StartOperation(task, host, 8443, "")
		time.Sleep(latency)
		net.EndOperation(task, sent, received, err)
	}

	step("extract", "task-1", 5*time.Millisecond, 1, nil)
	step("validate", "task-2", 2*time.Millisecond, 1, errors.New("row 17: missing customer id"))
	step("transform", "task-3", 80*time.Millisecond, 1, nil)
	step("enrich", "task-4", 10*time.Millisecond, 3, nil) // succeeded on the third attempt
	call("task-4", "geo.internal", 60*time.Millisecond, 512, 18_000, nil)
	step("load", "task-5", 10*time.Millisecond, 2, errors.New("warehouse: connection reset"))
	call("task-5", "warehouse.internal", 5*time.Millisecond, 4096, 0, errors.New("connection reset by peer"))
}
