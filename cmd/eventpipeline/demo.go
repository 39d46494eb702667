package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

const demoUsage = `Usage: eventpipeline demo [flags]

Starts a worker on 127.0.0.1 (a free port), runs a sample pipeline of fast,
slow, failing, retried-then-succeeding and remote events with telemetry,
shows progress on stderr, then prints a summary on stdout: events by status,
failed events with their errors, slow events, retry statistics, network
operations, failed and slow network operations. Writes the JSON report
(telemetry-report.json) and every record as JSON lines (telemetry.jsonl) to
the output directory; read the latter back with 'eventpipeline report'.
The pipeline's failures are part of the sample: the demo still exits 0.

Flags:
`

// demoFlags are the flags of `demo`.
type demoFlags struct {
	outDir string
	slow   time.Duration
	quiet  bool
	worker string
}

// runDemo runs `demo`.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f demoFlags
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.StringVar(&f.outDir, "out-dir", ".", "directory to write telemetry-report.json and telemetry.jsonl to (created if missing)")
	fs.DurationVar(&f.slow, "slow", 200*time.Millisecond, "threshold of the summary's slow events and slow network operations")
	fs.BoolVar(&f.quiet, "quiet", false, "do not show progress on stderr")
	fs.StringVar(&f.worker, "worker", "", "`HOST:PORT` of a worker started with 'eventpipeline worker' to run the remote events on, instead of one started in this process")
	openBackends := registerBackends(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), demoUsage)
		fs.PrintDefaults()
		if len(backends) == 0 {
			fmt.Fprintln(fs.Output(), "\nNo other publisher (Prometheus, Elasticsearch, Grafana Cloud) is compiled into this build.")
		}
	}
	rest, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if f.slow < 0 {
		return usagef("--slow must not be negative, got %v", f.slow)
	}
	if f.worker != "" {
		if _, port, err := net.SplitHostPort(f.worker); err != nil || port == "" {
			return usagef("--worker must be HOST:PORT, got %q", f.worker)
		}
	}

	if err := os.MkdirAll(f.outDir, 0o755); err != nil {
		return err
	}
	jsonlPath := filepath.Join(f.outDir, "telemetry.jsonl")
	reportPath := filepath.Join(f.outDir, "telemetry-report.json")
	jsonl, err := os.Create(jsonlPath)
	if err != nil {
		return err
	}
	defer jsonl.Close()
	sink, err := telemetry.NewJSONLinesPublisher(jsonl)
	if err != nil {
		return err
	}
	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(sink))
	if err != nil {
		return err
	}
	opened, err := openBackends(ctx, rec, os.Getenv)
	var pubs []telemetry.Publisher
	for _, o := range opened {
		pubs = append(pubs, o.pub)
	}
	if err != nil {
		closeAll(pubs)
		rec.Close(context.Background())
		return err
	}
	for _, p := range pubs {
		if err := rec.AddPublisher(p); err != nil {
			return err
		}
	}
	defer func() { // after an early return; after the Close below, it returns ErrClosed
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rec.Close(ctx)
	}()

	worker, where := f.worker, "at"
	if worker == "" {
		addr, stopWorker, err := startWorker(stderr)
		if err != nil {
			return fmt.Errorf("starting the worker: %w", err)
		}
		defer stopWorker()
		worker, where = addr, "listening on"
	}
	deadPort, err := freePort()
	if err != nil {
		return err
	}

	progress := io.Discard
	if !f.quiet {
		progress = stderr
	}
	stages, err := sampleStages(worker, deadPort)
	if err != nil {
		return err
	}
	p, err := pipeline.New(pipeline.Config{Recorder: rec, Hooks: newProgress(progress)}, stages...)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "worker %s %s; running the sample pipeline (3 stages, 8 events)\n", where, worker)
	start := time.Now()
	_, runErr := p.Run(ctx, nil)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	fmt.Fprintf(progress, "pipeline run ended after %v\n", time.Since(start).Round(time.Millisecond))
	if h := p.Telemetry(); h.Failures() > 0 {
		return fmt.Errorf("recording telemetry: %d calls refused, the first: %w", h.Failures(), h.Err())
	}

	flushCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Flush(flushCtx); err != nil {
		return fmt.Errorf("delivering the records: %w", err)
	}
	report := rec.Report()
	if err := writeReportFile(reportPath, rec); err != nil {
		return err
	}

	var ee *pipeline.EventError
	switch {
	case errors.As(runErr, &ee):
		fmt.Fprintf(stdout, "Pipeline run %s failed, as the sample is meant to: see the failed events below.\n", ee.RunID)
	case runErr != nil:
		return runErr
	default:
		fmt.Fprintln(stdout, "Pipeline run succeeded.")
	}
	rs := &records{events: report.Events, network: report.NetworkOperations}
	if err := writeTable(stdout, rs, allSections(f.slow)); err != nil {
		return err
	}

	var serving []string
	for _, o := range opened {
		if o.serving != "" {
			serving = append(serving, o.name+": "+o.serving)
		}
	}
	if len(serving) > 0 {
		fmt.Fprintln(stdout)
		for _, s := range serving {
			fmt.Fprintf(stdout, "serving %s\n", s)
		}
		fmt.Fprintln(stdout, "press Ctrl-C to stop")
		<-ctx.Done()
	}
	if err := rec.Close(flushCtx); err != nil {
		return fmt.Errorf("closing the publishers: %w", err)
	}
	if err := jsonl.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s (the JSON report) and %s (%d records, one per line)\n",
		reportPath, jsonlPath, len(report.Events)+len(report.NetworkOperations))
	fmt.Fprintf(stdout, "next: go run ./cmd/eventpipeline report %s --failed --retries\n", jsonlPath)
	return nil
}

func closeAll(pubs []telemetry.Publisher) {
	for _, p := range pubs {
		if c, ok := p.(telemetry.Closer); ok {
			c.Close(context.Background())
		}
	}
}

// writeReportFile writes the JSON report of rec, indented, to path.
func writeReportFile(path string, rec *telemetry.Recorder) error {
	b, err := rec.MetricsJSON()
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	return os.WriteFile(path, out.Bytes(), 0o644)
}

// startWorker serves the sample worker events on 127.0.0.1, on a free
// port, and returns its address and a function that stops it.
func startWorker(errOut io.Writer) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	stop, err := serveWorker(ln, errOut)
	if err != nil {
		return "", nil, err
	}
	return ln.Addr().String(), stop, nil
}

// freePort returns a loopback port nothing listens on, for the remote
// event whose worker is down.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}

// work waits d, or until ctx ends.
func work(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// workerEvents are the events the demo's worker runs for remote callers.
func workerEvents() []pipeline.Event {
	return []pipeline.Event{
		pipeline.Func("geocode", func(ctx context.Context, in any) (any, error) {
			return map[string]any{"Lyon": []float64{45.76, 4.84}, "Porto": []float64{41.15, -8.61}}, work(ctx, 20*time.Millisecond)
		}),
		pipeline.Func("score", func(ctx context.Context, in any) (any, error) {
			return map[string]any{"risk": 0.12}, work(ctx, 250*time.Millisecond)
		}),
	}
}

// sampleStages returns the demo's pipeline: fast, slow, failing,
// retried-then-succeeding and remote events; the worker listens on
// workerAddr, and nothing on deadPort.
func sampleStages(workerAddr string, deadPort int) ([]pipeline.Stage, error) {
	host, portStr, err := net.SplitHostPort(workerAddr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, err
	}
	remote := func(name string, port int) (pipeline.Event, error) {
		return pipeline.Remote(name, pipeline.RemoteConfig{Host: host, Port: port, Timeout: 5 * time.Second, Token: workerToken()})
	}
	geocode, err1 := remote("geocode", port)
	score, err2 := remote("score", port)
	notify, err3 := remote("notify", deadPort) // its worker is down
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}

	orders := []any{
		map[string]any{"id": 1, "city": "Lyon", "amount": 19.99},
		map[string]any{"id": 2, "city": "Porto", "amount": 5.50},
		map[string]any{"id": 3, "city": "Lyon", "amount": 42.00},
	}
	extract := pipeline.Func("extract", func(ctx context.Context, _ any) (any, error) {
		return orders, work(ctx, 5*time.Millisecond)
	})
	validate := pipeline.Func("validate", func(ctx context.Context, in any) (any, error) {
		return in, work(ctx, 2*time.Millisecond)
	})
	transform := pipeline.Func("transform", func(ctx context.Context, in any) (any, error) {
		return in, work(ctx, 300*time.Millisecond) // the slow one
	})
	var rateAttempts atomic.Int32
	fetchRates := pipeline.WithRetry(pipeline.Func("fetch_rates", func(ctx context.Context, in any) (any, error) {
		if err := work(ctx, 5*time.Millisecond); err != nil {
			return nil, err
		}
		if rateAttempts.Add(1) < 3 {
			return nil, errors.New("rates service: 503 Service Unavailable")
		}
		return map[string]float64{"EUR": 1, "USD": 1.08}, nil
	}), telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: 20 * time.Millisecond})
	load := pipeline.Func("load", func(ctx context.Context, in any) (any, error) {
		if err := work(ctx, 10*time.Millisecond); err != nil {
			return nil, err
		}
		return nil, telemetry.Permanent(errors.New("warehouse: disk quota exceeded"))
	})
	notifyRetried := pipeline.WithRetry(notify, telemetry.RetryPolicy{MaxAttempts: 2, InitialBackoff: 20 * time.Millisecond})

	return []pipeline.Stage{
		pipeline.Sequence(extract, validate),
		pipeline.Parallel(transform, fetchRates, geocode, score),
		pipeline.Parallel(load, notifyRetried),
	}, nil
}

// progress are hooks that print a line for each step of the run.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w, start: time.Now()} }

func (p *progress) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "  %6.3fs  "+format+"\n", append([]any{time.Since(p.start).Seconds()}, args...)...)
}

func (p *progress) EventStarted(t pipeline.Task) {
	p.line("%-8s %-12s task %s", "start", t.Event, t.ID)
}

func (p *progress) EventRetried(t pipeline.Task, err error, wait time.Duration) {
	p.line("%-8s %-12s attempt %d failed (%v); retrying in %v", "retry", t.Event, t.Attempt, err, wait)
}

func (p *progress) EventEnded(t pipeline.Task, err error) {
	if err != nil {
		p.line("%-8s %-12s %v", "FAILED", t.Event, err)
		return
	}
	p.line("%-8s %-12s after %d attempt(s)", "done", t.Event, t.Attempt)
}

func (p *progress) RemoteCallStarted(t pipeline.Task, callID, host string, port int, op string) {
	p.line("%-8s %-12s %s to %s", "call", t.Event, op, net.JoinHostPort(host, strconv.Itoa(port)))
}

func (p *progress) RemoteCallEnded(t pipeline.Task, callID string, sent, received int64, err error) {
	if err != nil {
		p.line("%-8s %-12s call failed: %v", "call", t.Event, err)
		return
	}
	p.line("%-8s %-12s call done: %s sent, %s received", "call", t.Event, humanBytes(sent), humanBytes(received))
}
