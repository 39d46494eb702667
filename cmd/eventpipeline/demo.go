package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/pipeline"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/oteltrace"
	"github.com/eventpipeline/eventpipeline/telemetry/otlp"
)

const demoUsage = `Usage: eventpipeline demo [flags]

Starts a worker on 127.0.0.1 (a free port), runs a sample pipeline of fast,
slow, failing, retried-then-succeeding and remote events with telemetry,
shows progress on stderr, then prints a summary on stdout: events by status,
failed events with their errors, slow events, retry statistics, network
operations, failed and slow network operations. Writes the JSON report
(telemetry-report.json) and every record as JSON lines (telemetry.jsonl) to
the output directory; read the latter back with 'eventpipeline report'.
Each file is written to a temporary file in that directory, then renamed:
it is complete or absent, and a symlink at its name is replaced, not
followed. The pipeline's failures are part of the sample: the demo still
exits 0.

With a backend (--prometheus, --elasticsearch...), the summary and the
files come first, whatever the backend's state. A backend that serves
(Prometheus) is served until Ctrl-C. Then the demo waits up to
--close-timeout for the backends to take the records still queued (Ctrl-C
stops the wait) and lists on stderr, per backend, the records it could not
deliver (and, with --otlp, the spans it could not export); it then exits
1, as for any runtime failure.
Text from the records (names, task ids, error texts) is printed with its
control characters escaped, as \n, \x1b or \u202e.

With --ui HOST:PORT or --duration D, the demo keeps running: it runs the
sample pipeline again and again, with latencies that vary, failures that
come and go (an incident in the first 30s of every 90s: the notify service
goes down and loads fail more often) and a worker that is sometimes slow,
so that the web view (--ui), the Prometheus dashboard and the alerting
rules have live data. It stops after D (then, if something is served,
keeps serving until Ctrl-C), or at Ctrl-C; either way it prints the summary
(the last rows of each list), writes the files and exits 0. The web view
asks for the token of EVENTPIPELINE_UI_TOKEN when it is set, and refuses a
non-loopback address without one; behind a reverse proxy, give its address
with --trusted-proxy, so that a guesser of the token does not lock out all
the proxy's clients.

Exit codes: 0 success, 1 runtime failure (unwritable output, a backend that
cannot start, records a backend did not take, interrupted before the end of
the run), 2 usage error.

Flags:
`

// defaultCloseTimeout is the default of demo --close-timeout.
const defaultCloseTimeout = 10 * time.Second

// demoFlags are the parsed flags of `demo`.
type demoFlags struct {
	outDir       string
	slow         time.Duration
	quiet        bool
	worker       string
	closeTimeout time.Duration
	// ui is the address of the web view (--ui); "" for none.
	ui string
	// uiToken is the token the web view asks for (EVENTPIPELINE_UI_TOKEN).
	uiToken telemetry.Secret
	// uiProxies are the reverse proxies in front of the web view
	// (--trusted-proxy, which needs --ui); nil for none.
	uiProxies proxyList
	// duration is how long the sample runs again and again (--duration);
	// zero with --ui means until interrupted.
	duration time.Duration
	// openBackends opens the backends the flags ask for.
	openBackends func(ctx context.Context, r *telemetry.Recorder, getenv func(string) string) ([]opened, error)
}

// runDemo runs `demo`, one step after the other: parse the flags, prepare
// the output files, open the backends, run the pipeline, print the summary,
// write the files, then stop: serve until interrupted, close with a timeout
// of its own, report what was not delivered. Once the backends are open,
// they are closed and what they did not take is reported, whatever
// happened.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseDemoFlags(args, stdout)
	if err != nil {
		return err
	}
	d := &demo{flags: f, stdout: stdout, stderr: stderr, progress: io.Discard}
	if !f.quiet {
		d.progress = stderr
	}
	out, err := prepareOutput(f.outDir)
	if err != nil {
		return err
	}
	defer out.discard() // after a failure; a no-op once written
	if d.rec, d.backends, err = openRecorder(ctx, f); err != nil {
		return err
	}
	for _, o := range d.backends {
		if o.listens != nil {
			listenWarning(stderr, "demo", o.name, o.listens, o.risk)
		}
	}
	if d.tracer, err = openTracer(d.rec, d.backends); err != nil {
		return errors.Join(err, d.stop(ctx, false))
	}
	if f.ui != "" {
		if d.ui, err = startUI(f.ui, d.rec, f.uiToken, f.uiProxies, stderr); err != nil {
			return errors.Join(fmt.Errorf("--ui: %w", err), d.stop(ctx, false))
		}
	}
	if f.continuous() {
		err = d.runContinuously(ctx, out)
	} else {
		err = runAndShow(ctx, f, d.rec, d.tracer, out, stdout, d.progress)
	}
	return errors.Join(err, d.stop(ctx, err == nil))
}

// openTracer returns a Tracer on rec if one of the backends traces (the
// OTLP backend), else nil.
func openTracer(rec *telemetry.Recorder, backends []opened) (*oteltrace.Tracer, error) {
	for _, b := range backends {
		if t, ok := b.pub.(interface{ tracerProvider() trace.TracerProvider }); ok {
			return oteltrace.New(rec, oteltrace.Config{TracerProvider: t.tracerProvider(), Propagator: tracePropagator})
		}
	}
	return nil, nil
}

// continuous reports whether the demo runs the sample again and again.
func (f demoFlags) continuous() bool { return f.ui != "" || f.duration > 0 }

// A demo is one run of `demo` once its backends are open.
type demo struct {
	flags          demoFlags
	stdout, stderr io.Writer
	progress       io.Writer // stderr, or io.Discard with --quiet
	rec            *telemetry.Recorder
	backends       []opened          // attached to rec
	tracer         *oteltrace.Tracer // traces the runs with --otlp; nil otherwise
	ui             *uiServer         // the web view of rec, if served
}

// stop ends the demo: if serve is true, it serves until ctx ends (see
// serveUntilInterrupted); then it closes the Recorder with a timeout of its
// own, counted from then (see closeRecorder), and reports on stderr what a
// backend did not take (see reportDelivery), which it returns as an error.
func (d *demo) stop(ctx context.Context, serve bool) error {
	if serve {
		serveUntilInterrupted(ctx, d.stdout, d.serving())
	}
	if d.ui != nil {
		d.ui.stop()
	}
	closeErr := closeRecorder(ctx, d.rec, d.flags.closeTimeout, d.progress)
	err := reportDelivery(d.stderr, d.rec.Stats(), closeErr, d.flags.closeTimeout)
	return errors.Join(err, reportSpans(d.stderr, d.backends))
}

// reportSpans prints on w, for each backend that exports spans (--otlp)
// and dropped some, how many of them it exported and dropped, and returns
// an error if one did; nil otherwise. Call it after the backends are
// closed: closing exports the spans still buffered.
func reportSpans(w io.Writer, backends []opened) error {
	var errs []error
	for _, b := range backends {
		t, ok := b.pub.(interface{ spanStats() otlp.TraceStats })
		if !ok {
			continue
		}
		st := t.spanStats()
		if st.DroppedSpans == 0 {
			continue
		}
		fmt.Fprintf(w, "eventpipeline demo: %s: %d of %d spans not exported (%d rejected by the endpoint, the others given up after retries; %d failed attempts, last HTTP status %d)\n",
			b.name, st.DroppedSpans, st.DroppedSpans+st.ExportedSpans, st.RejectedSpans, st.FailedAttempts, st.LastStatus)
		errs = append(errs, fmt.Errorf("%d spans not exported to %s", st.DroppedSpans, b.name))
	}
	return errors.Join(errs...)
}

// parseDemoFlags parses the command line of `demo`. It returns a
// *usageError for a bad flag or argument, and flag.ErrHelp after printing
// the help to stdout.
func parseDemoFlags(args []string, stdout io.Writer) (demoFlags, error) {
	var f demoFlags
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.StringVar(&f.outDir, "out-dir", ".", "directory to write telemetry-report.json and telemetry.jsonl to (created if missing)")
	fs.DurationVar(&f.slow, "slow", 200*time.Millisecond, "threshold of the summary's slow events and slow network operations")
	fs.BoolVar(&f.quiet, "quiet", false, "do not show progress on stderr")
	fs.StringVar(&f.worker, "worker", "", "`HOST:PORT` of a worker started with 'eventpipeline worker' to run the remote events on, instead of one started in this process")
	fs.DurationVar(&f.closeTimeout, "close-timeout", defaultCloseTimeout,
		"how long to wait at the end, counted from when closing starts, for the backends to take the records still queued")
	fs.StringVar(&f.ui, "ui", "", "serve the live web view of the telemetry at `HOST:PORT` (such as 127.0.0.1:8080;\n"+
		listenHelp+")\n"+
		"and run the sample again and again until Ctrl-C or --duration")
	fs.Var(&f.uiProxies, "trusted-proxy", "`CIDR` of a reverse proxy in front of the web view (--ui) "+trustedProxyHelp)
	fs.DurationVar(&f.duration, "duration", 0, "run the sample again and again, with varying latencies and failures, for this long\n"+
		"(0 with --ui: until Ctrl-C)")
	f.openBackends = registerBackends(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), demoUsage)
		fs.PrintDefaults()
		if len(backends) == 0 {
			fmt.Fprintln(fs.Output(), "\nNo other publisher (Prometheus, Elasticsearch, Grafana Cloud) is compiled into this build.")
		}
	}
	rest, err := parseFlags(fs, args, stdout)
	switch {
	case err != nil:
		return f, err
	case len(rest) > 0:
		return f, usagef("unexpected argument %q", rest[0])
	case f.slow < 0:
		return f, usagef("--slow must not be negative, got %v", f.slow)
	case f.closeTimeout <= 0:
		return f, usagef("--close-timeout must be positive, got %v", f.closeTimeout)
	case f.duration < 0:
		return f, usagef("--duration must not be negative, got %v", f.duration)
	}
	if len(f.uiProxies) > 0 && f.ui == "" {
		return f, usagef("--trusted-proxy needs --ui: it names the reverse proxies in front of the web view")
	}
	if f.ui != "" {
		if f.ui, err = listenAddr("ui", f.ui); err != nil {
			return f, err
		}
		host, _, _ := net.SplitHostPort(f.ui)
		f.uiToken = uiToken()
		if f.uiToken.IsZero() && !isLoopbackHost(host) {
			return f, usagef("refusing to serve the web view on %s without a token: anyone who reaches it could read the records; "+
				"set %s, or serve it on a loopback address such as 127.0.0.1", f.ui, uiTokenEnv)
		}
	}
	if f.worker != "" {
		host, port, err := net.SplitHostPort(f.worker)
		if err != nil || port == "" {
			return f, usagef("--worker must be HOST:PORT, got %q", f.worker)
		}
		if host == "" {
			return f, usagef("--worker must be HOST:PORT with a host, got %q", f.worker)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return f, usagef("--worker must be HOST:PORT with a port of 1-65535, got %q", f.worker)
		}
	}
	return f, nil
}

// openRecorder returns the Recorder of the run, with the publishers of the
// backends the flags ask for attached (none by default), and those
// backends. ctx bounds the backends' start. On error, whatever was opened
// is closed again, within f.closeTimeout.
func openRecorder(ctx context.Context, f demoFlags) (*telemetry.Recorder, []opened, error) {
	rec, err := telemetry.NewRecorder()
	if err != nil {
		return nil, nil, err
	}
	opened, err := f.openBackends(ctx, rec, os.Getenv)
	for i := 0; err == nil && i < len(opened); i++ {
		if err = rec.AddPublisher(opened[i].pub); err != nil {
			opened = opened[i:] // those not attached, for closeAll
		}
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), f.closeTimeout)
		defer cancel()
		closeAll(cctx, opened)
		rec.Close(cctx)
		return nil, nil, err
	}
	return rec, opened, nil
}

// closeAll closes the publishers of backends that were not attached to a
// Recorder.
func closeAll(ctx context.Context, backends []opened) {
	for _, o := range backends {
		if c, ok := o.pub.(telemetry.Closer); ok {
			c.Close(ctx)
		}
	}
}

// runAndShow runs the sample pipeline, prints its summary on stdout and
// writes the output files. Neither the summary nor the files wait for a
// backend: both come from what rec retains. ctx interrupts the run (and
// then nothing is printed or written).
func runAndShow(ctx context.Context, f demoFlags, rec *telemetry.Recorder, tracer *oteltrace.Tracer, out *output, stdout, progress io.Writer) error {
	res, err := runSamplePipeline(ctx, f.worker, rec, tracer, progress)
	if err != nil {
		return err
	}
	if err := printSummary(stdout, res, f.slow); err != nil {
		return err
	}
	if err := out.write(res.report); err != nil {
		return err
	}
	n := len(res.report.Events) + len(res.report.NetworkOperations)
	fmt.Fprintf(stdout, "\nwrote %s (the JSON report) and %s (%d records, one per line)\n",
		printable(out.report.path), printable(out.jsonl.path), n)
	fmt.Fprintf(stdout, "next: go run ./cmd/eventpipeline report %s --failed --retries\n", printable(out.jsonl.path))
	return nil
}

// runResult is what a run of the sample pipeline leaves.
type runResult struct {
	// failedRun is the id of the run if it failed as the sample is meant
	// to (an event failed), "" if it succeeded.
	failedRun string
	// report is the snapshot of rec taken when the run ended.
	report telemetry.Report
}

// runSamplePipeline starts a worker (unless workerAddr names one), runs the
// sample pipeline with rec, printing progress, stops the worker, and
// returns the report of what rec recorded. It returns an error if ctx ends
// during the run (an interrupt), if rec refused a recording call, or if the
// run failed otherwise than by a failing event.
func runSamplePipeline(ctx context.Context, workerAddr string, rec *telemetry.Recorder, tracer *oteltrace.Tracer, progress io.Writer) (runResult, error) {
	where := "at"
	if workerAddr == "" {
		addr, stopWorker, err := startWorker(progress, nil)
		if err != nil {
			return runResult{}, fmt.Errorf("starting the worker: %w", err)
		}
		defer stopWorker()
		workerAddr, where = addr, "listening on"
	}
	deadPort, err := freePort()
	if err != nil {
		return runResult{}, err
	}
	stages, err := sampleStages(workerAddr, deadPort, nil)
	if err != nil {
		return runResult{}, err
	}
	p, err := pipeline.New(pipeline.Config{Recorder: rec, Tracer: tracer, Hooks: newProgress(progress)}, stages...)
	if err != nil {
		return runResult{}, err
	}
	fmt.Fprintf(progress, "worker %s %s; running the sample pipeline (3 stages, 8 events)\n", where, printable(workerAddr))
	start := time.Now()
	_, runErr := p.Run(ctx, nil)
	if ctx.Err() != nil {
		return runResult{}, fmt.Errorf("interrupted during the run, nothing written: %w", ctx.Err())
	}
	fmt.Fprintf(progress, "pipeline run ended after %v\n", time.Since(start).Round(time.Millisecond))
	if h := p.Telemetry(); h.Failures() > 0 {
		return runResult{}, fmt.Errorf("recording telemetry: %d calls refused, the first: %w", h.Failures(), h.Err())
	}
	var res runResult
	var ee *pipeline.EventError
	switch {
	case errors.As(runErr, &ee):
		res.failedRun = ee.RunID
	case runErr != nil:
		return runResult{}, runErr
	}
	res.report = rec.Report()
	return res, nil
}

// printSummary prints on w how the run went and the tables of every
// section of its report, with slow thresholds slow.
func printSummary(w io.Writer, res runResult, slow time.Duration) error {
	if res.failedRun != "" {
		fmt.Fprintf(w, "Pipeline run %s failed, as the sample is meant to: see the failed events below.\n", printable(res.failedRun))
	} else {
		fmt.Fprintln(w, "Pipeline run succeeded.")
	}
	rs := &records{events: res.report.Events, network: res.report.NetworkOperations}
	return writeTable(w, rs, allSections(slow))
}

// serving returns what the demo serves, as "NAME: URL": the backends that
// serve (the Prometheus /metrics endpoint) and the web view.
func (d *demo) serving() []string {
	var serving []string
	for _, o := range d.backends {
		if o.serving != "" {
			serving = append(serving, o.name+": "+o.serving)
		}
	}
	if d.ui != nil {
		serving = append(serving, "web view: "+d.ui.url)
	}
	return serving
}

// serveUntilInterrupted returns at once if nothing is served or ctx has
// ended; otherwise it says what is served on w and waits until ctx ends
// (Ctrl-C).
func serveUntilInterrupted(ctx context.Context, w io.Writer, serving []string) {
	if len(serving) == 0 || ctx.Err() != nil {
		return
	}
	fmt.Fprintln(w)
	for _, s := range serving {
		fmt.Fprintf(w, "serving %s\n", printable(s))
	}
	fmt.Fprintln(w, "press Ctrl-C to stop")
	<-ctx.Done()
}

// closeRecorder closes rec, giving its publishers up to timeout, counted
// from this call, to take the records still queued. If ctx (the command's)
// has not ended yet, its end (an interrupt) cuts the wait short; once it
// has ended, a second interrupt ends the process (see main). It returns
// the error of [telemetry.Recorder.Close]: context.DeadlineExceeded when
// the timeout ran out, context.Canceled after an interrupt.
func closeRecorder(ctx context.Context, rec *telemetry.Recorder, timeout time.Duration, progress io.Writer) error {
	cctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if ctx.Err() == nil {
		defer context.AfterFunc(ctx, cancel)()
	}
	st := rec.Stats()
	var queued uint64
	for _, p := range st.Publishers {
		queued += notDelivered(st, p) - min(notDelivered(st, p), p.Dropped())
	}
	if queued > 0 {
		fmt.Fprintf(progress, "delivering the %d records still queued (waiting up to %v; Ctrl-C to stop waiting)\n", queued, timeout)
	}
	return rec.Close(cctx)
}

// reportDelivery prints on w, for each publisher of st that did not take
// every record, how many it did not deliver and why, and returns an error
// if a record was not delivered or closing failed (closeErr); nil
// otherwise. timeout is the close timeout, for the message.
func reportDelivery(w io.Writer, st telemetry.Stats, closeErr error, timeout time.Duration) error {
	recorded := st.EventsEnded + st.NetworkEnded
	var missing uint64
	var names []string
	for _, p := range st.Publishers {
		n := notDelivered(st, p)
		if n == 0 {
			continue
		}
		missing += n
		names = append(names, printable(p.Name))
		fmt.Fprintf(w, "eventpipeline demo: %s: %d of %d records not delivered (%d given up after failing, %d dropped from its queue or left in it at close; %d failed attempts)\n",
			printable(p.Name), n, recorded, p.DroppedFailed, n-min(n, p.DroppedFailed), p.FailedAttempts)
	}
	var errs []error
	switch {
	case errors.Is(closeErr, context.DeadlineExceeded):
		fmt.Fprintf(w, "eventpipeline demo: delivery did not finish within --close-timeout %v\n", timeout)
	case errors.Is(closeErr, context.Canceled):
		fmt.Fprintln(w, "eventpipeline demo: delivery stopped by an interrupt")
	case closeErr != nil:
		errs = append(errs, fmt.Errorf("closing the backends: %w", closeErr))
	}
	if missing > 0 {
		errs = append(errs, fmt.Errorf("%d records not delivered to %s; the summary and the files are complete",
			missing, strings.Join(names, ", ")))
	} else if closeErr != nil && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("closing the backends: %w", closeErr))
	}
	return errors.Join(errs...)
}

// notDelivered returns how many of the records of st publisher p has not
// published (yet): every publisher of the demo is attached before the first
// record, so it is handed every record.
func notDelivered(st telemetry.Stats, p telemetry.PublisherStats) uint64 {
	recorded := st.EventsEnded + st.NetworkEnded
	return recorded - min(recorded, p.Published)
}

// output is the pair of files the demo writes, in one directory.
type output struct {
	report, jsonl *pendingFile
}

// prepareOutput creates dir if missing and a temporary file in it for each
// output file, so that a directory the demo cannot write to fails before
// the run.
func prepareOutput(dir string) (*output, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	report, err := createPending(filepath.Join(dir, "telemetry-report.json"))
	if err != nil {
		return nil, err
	}
	jsonl, err := createPending(filepath.Join(dir, "telemetry.jsonl"))
	if err != nil {
		report.discard()
		return nil, err
	}
	return &output{report: report, jsonl: jsonl}, nil
}

// write writes the JSON report rep, indented, and its finished records as
// JSON lines (as [telemetry.JSONLinesPublisher] writes them), each file
// complete before it takes its final name.
func (o *output) write(rep telemetry.Report) error {
	err := o.report.commit(func(w io.Writer) error {
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		var out bytes.Buffer
		if err := json.Indent(&out, b, "", "  "); err != nil {
			return err
		}
		out.WriteByte('\n')
		_, err = w.Write(out.Bytes())
		return err
	})
	if err != nil {
		return err
	}
	return o.jsonl.commit(func(w io.Writer) error {
		sink, err := telemetry.NewJSONLinesPublisher(w)
		if err != nil {
			return err
		}
		notPending := func(s telemetry.Status) bool { return s != telemetry.StatusPending }
		b := &telemetry.Batch{
			Events:  filter(rep.Events, func(m telemetry.EventMetrics) bool { return notPending(m.Status) }),
			Network: filter(rep.NetworkOperations, func(m telemetry.NetworkMetrics) bool { return notPending(m.Status) }),
		}
		return sink.PublishBatch(context.Background(), b)
	})
}

// discard removes the temporary files not yet renamed.
func (o *output) discard() {
	o.report.discard()
	o.jsonl.discard()
}

// A pendingFile is a file being written: a temporary file in the directory
// of path, renamed to path once complete. rename(2) replaces whatever is at
// path, a symlink included, and never writes through it.
type pendingFile struct {
	path string
	tmp  *os.File // nil once committed or discarded
}

// createPending creates the temporary file of path, in path's directory.
func createPending(path string) (*pendingFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return nil, err
	}
	return &pendingFile{path: path, tmp: tmp}, nil
}

// commit writes the file with write, syncs it, makes it readable by all
// (0644), and renames it to its path. On error the temporary file is
// removed and path is left as it was.
func (f *pendingFile) commit(write func(io.Writer) error) error {
	tmp := f.tmp
	if tmp == nil {
		return fmt.Errorf("%s: already written", f.path)
	}
	err := write(tmp)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	f.tmp = nil
	return nil
}

// discard removes the temporary file, unless it was committed.
func (f *pendingFile) discard() {
	if f.tmp != nil {
		f.tmp.Close()
		os.Remove(f.tmp.Name())
		f.tmp = nil
	}
}

// startWorker serves the sample worker events on 127.0.0.1, on a free
// port, with the variation v (nil: none), and returns its address and a
// function that stops it.
func startWorker(errOut io.Writer, v *variation) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	stop, err := serveWorkerWith(ln, pipeline.WorkerConfig{Logger: slog.New(slog.NewTextHandler(errOut, nil))}, workerEvents(v), errOut)
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

// workerEvents are the events the demo's worker runs for remote callers,
// with the latencies of v (nil: fixed ones).
func workerEvents(v *variation) []pipeline.Event {
	return []pipeline.Event{
		pipeline.Func("geocode", func(ctx context.Context, in any) (any, error) {
			return map[string]any{"Lyon": []float64{45.76, 4.84}, "Porto": []float64{41.15, -8.61}}, work(ctx, v.latency(20*time.Millisecond))
		}),
		pipeline.Func("score", func(ctx context.Context, in any) (any, error) {
			d := v.latency(250 * time.Millisecond)
			if v.slowWorker() {
				d = v.between(time.Second, 2500*time.Millisecond)
			}
			return map[string]any{"risk": 0.12}, work(ctx, d)
		}),
	}
}

// sampleStages returns the demo's pipeline: fast, slow, failing,
// retried-then-succeeding and remote events; the worker listens on
// workerAddr, and the notify event calls notifyPort. With a nil v it is
// the one-shot sample: fixed latencies, and the same failures every time
// (nothing listens on notifyPort). With v, latencies vary and events fail
// as v's phases say.
func sampleStages(workerAddr string, notifyPort int, v *variation) ([]pipeline.Stage, error) {
	host, portStr, err := net.SplitHostPort(workerAddr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, err
	}
	remote := func(name, host string, port int) (pipeline.Event, error) {
		return pipeline.Remote(name, pipeline.RemoteConfig{Host: host, Port: port, Timeout: 5 * time.Second, Token: workerToken()})
	}
	geocode, err1 := remote("geocode", host, port)
	score, err2 := remote("score", host, port)
	notify, err3 := remote("notify", "127.0.0.1", notifyPort) // its service is down, or comes and goes
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}

	orders := []any{
		map[string]any{"id": 1, "city": "Lyon", "amount": 19.99},
		map[string]any{"id": 2, "city": "Porto", "amount": 5.50},
		map[string]any{"id": 3, "city": "Lyon", "amount": 42.00},
	}
	extract := pipeline.Func("extract", func(ctx context.Context, _ any) (any, error) {
		return orders, work(ctx, v.latency(5*time.Millisecond))
	})
	validate := pipeline.Func("validate", func(ctx context.Context, in any) (any, error) {
		if err := work(ctx, v.latency(2*time.Millisecond)); err != nil {
			return nil, err
		}
		if v.chance(0.01, 0.01) {
			return nil, telemetry.Permanent(errors.New("order 2: amount is negative"))
		}
		return in, nil
	})
	transform := pipeline.Func("transform", func(ctx context.Context, in any) (any, error) {
		return in, work(ctx, v.latency(300*time.Millisecond)) // the slow one
	})
	var rateAttempts atomic.Int32
	fetchRates := pipeline.WithRetry(pipeline.Func("fetch_rates", func(ctx context.Context, in any) (any, error) {
		if err := work(ctx, v.latency(5*time.Millisecond)); err != nil {
			return nil, err
		}
		failed := rateAttempts.Add(1) < 3 // the one-shot sample: twice, then it succeeds
		if v != nil {
			failed = v.chance(0.15, 0.6)
		}
		if failed {
			return nil, errors.New("rates service: 503 Service Unavailable")
		}
		return map[string]float64{"EUR": 1, "USD": 1.08}, nil
	}), telemetry.RetryPolicy{MaxAttempts: 3, InitialBackoff: 20 * time.Millisecond})
	load := pipeline.Func("load", func(ctx context.Context, in any) (any, error) {
		if err := work(ctx, v.latency(10*time.Millisecond)); err != nil {
			return nil, err
		}
		if v == nil || v.chance(0.03, 0.5) {
			return nil, telemetry.Permanent(errors.New("warehouse: disk quota exceeded"))
		}
		return nil, nil
	})
	notifyRetried := pipeline.WithRetry(notify, telemetry.RetryPolicy{MaxAttempts: 2, InitialBackoff: 20 * time.Millisecond})

	return []pipeline.Stage{
		pipeline.Sequence(extract, validate),
		pipeline.Parallel(transform, fetchRates, geocode, score),
		pipeline.Parallel(load, notifyRetried),
	}, nil
}

// progress are hooks that print a line for each step of the run. Every
// text that comes from the run (names, task ids, errors, a remote worker's
// included) goes through printable.
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
	p.line("%-8s %-12s task %s", "start", printable(t.Event), printable(t.ID))
}

func (p *progress) EventRetried(t pipeline.Task, err error, wait time.Duration) {
	p.line("%-8s %-12s attempt %d failed (%s); retrying in %v", "retry", printable(t.Event), t.Attempt, errText(err), wait)
}

func (p *progress) EventEnded(t pipeline.Task, err error) {
	if err != nil {
		p.line("%-8s %-12s %s", "FAILED", printable(t.Event), errText(err))
		return
	}
	p.line("%-8s %-12s after %d attempt(s)", "done", printable(t.Event), t.Attempt)
}

func (p *progress) RemoteCallStarted(t pipeline.Task, callID, host string, port int, op string) {
	p.line("%-8s %-12s %s to %s", "call", printable(t.Event), printable(op), printable(net.JoinHostPort(host, strconv.Itoa(port))))
}

func (p *progress) RemoteCallEnded(t pipeline.Task, callID string, sent, received int64, err error) {
	if err != nil {
		p.line("%-8s %-12s call failed: %s", "call", printable(t.Event), errText(err))
		return
	}
	p.line("%-8s %-12s call done: %s sent, %s received", "call", printable(t.Event), humanBytes(sent), humanBytes(received))
}

// errText returns the text of err, escaped by printable.
func errText(err error) string { return printable(err.Error()) }
