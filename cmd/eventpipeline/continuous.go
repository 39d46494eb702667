package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eventpipeline/eventpipeline/pipeline"
)

// The demo that keeps running (--ui, --duration): the sample pipeline again
// and again, with a variation that makes its telemetry look like that of a
// real pipeline.

// The phases of the variation, counted from the start of the demo: an
// incident first (so that a short run shows one), then calm; the worker is
// slow at other times.
const (
	incidentEvery = 90 * time.Second // an incident starts every incidentEvery...
	incidentFor   = 30 * time.Second // ...and lasts incidentFor: notify's service is down, loads fail more often
	slowEvery     = 60 * time.Second // the worker is slow from slowFrom to slowUntil of every slowEvery
	slowFrom      = 40 * time.Second
	slowUntil     = 55 * time.Second
	summaryRows   = 10                     // rows of each list in the summary of a continuous demo
	maxPause      = 300 * time.Millisecond // between two runs
)

// A variation gives the continuous demo's events their latencies and
// failures. Its methods work on a nil *variation, for the one-shot sample:
// fixed latencies, no random failure, no incident.
type variation struct {
	start time.Time
	now   func() time.Time
}

func newVariation() *variation { return &variation{start: time.Now(), now: time.Now} }

// incident reports whether the demo is in an incident.
func (v *variation) incident() bool {
	return v != nil && v.now().Sub(v.start)%incidentEvery < incidentFor
}

// slowWorker reports whether the worker is slow now.
func (v *variation) slowWorker() bool {
	if v == nil {
		return false
	}
	e := v.now().Sub(v.start) % slowEvery
	return e >= slowFrom && e < slowUntil
}

// latency returns d varied: between 0.6 and 1.4 times d, and three times
// that one time in twenty (a long tail).
func (v *variation) latency(d time.Duration) time.Duration {
	if v == nil {
		return d
	}
	f := 0.6 + 0.8*rand.Float64()
	if rand.IntN(20) == 0 {
		f *= 3
	}
	return time.Duration(float64(d) * f)
}

// between returns a duration from lo to hi.
func (v *variation) between(lo, hi time.Duration) time.Duration {
	return lo + rand.N(hi-lo+1)
}

// chance reports true with probability p, or pIncident during an incident.
func (v *variation) chance(p, pIncident float64) bool {
	if v == nil {
		return false
	}
	if v.incident() {
		p = pIncident
	}
	return rand.Float64() < p
}

// runContinuously runs the sample pipeline again and again until ctx ends
// (Ctrl-C) or --duration has passed (the run in progress then ends first),
// printing one progress line per run, then the summary, and writes the
// files. An interrupt is not an error: the run it cut short is in the
// records, its events failed with "context canceled".
func (d *demo) runContinuously(ctx context.Context, out *output) error {
	f := d.flags
	v := newVariation()
	var deadline <-chan time.Time
	if f.duration > 0 {
		t := time.NewTimer(f.duration)
		defer t.Stop()
		deadline = t.C
	}
	workerAddr, where := f.worker, "at"
	if workerAddr == "" {
		addr, stopWorker, err := startWorker(d.stderr, v)
		if err != nil {
			return fmt.Errorf("starting the worker: %w", err)
		}
		defer stopWorker()
		workerAddr, where = addr, "listening on"
	}
	notify, err := startNotifyService(v, d.stderr)
	if err != nil {
		return fmt.Errorf("starting the notify service: %w", err)
	}
	defer notify.stop()
	// One set of events for every run: each remote event has a transport
	// of its own, whose connections the runs then share; a set per run
	// left each run's idle connections open until the worker's idle
	// timeout, hundreds of file descriptors.
	stages, err := sampleStages(workerAddr, notify.port, v)
	if err != nil {
		return err
	}

	for _, s := range d.serving() {
		fmt.Fprintf(d.stdout, "serving %s\n", printable(s))
	}
	until := "until Ctrl-C"
	if f.duration > 0 {
		until = "for " + f.duration.String() + " (Ctrl-C stops it sooner)"
	}
	fmt.Fprintf(d.stdout, "running the sample pipeline again and again %s; worker %s %s\n", until, where, printable(workerAddr))

	start := time.Now()
	var runs, failedRuns int
	stopped := "after " + f.duration.String()
loop:
	for {
		select {
		case <-ctx.Done():
			stopped = "by Ctrl-C"
			break loop
		case <-deadline:
			break loop
		default:
		}
		failed, err := d.runOnce(ctx, stages, v, runs+1)
		if err != nil {
			return err
		}
		runs++
		if len(failed) > 0 {
			failedRuns++
		}
		select { // a pause between runs, so that the rate varies too
		case <-ctx.Done():
		case <-deadline:
			break loop
		case <-time.After(v.between(0, maxPause)):
		}
	}
	fmt.Fprintf(d.stdout, "\nRan the sample pipeline %d times in %v, stopped %s; %d runs failed, as the sample's incidents make them.\n",
		runs, time.Since(start).Round(time.Millisecond), stopped, failedRuns)
	rep := d.rec.Report()
	rs := &records{events: rep.Events, network: rep.NetworkOperations}
	sec := allSections(f.slow)
	sec.limit = summaryRows
	if err := writeTable(d.stdout, rs, sec); err != nil {
		return err
	}
	if err := out.write(rep); err != nil {
		return err
	}
	n := len(rep.Events) + len(rep.NetworkOperations)
	fmt.Fprintf(d.stdout, "\nwrote %s (the JSON report) and %s (%d records, one per line)\n",
		printable(out.report.path), printable(out.jsonl.path), n)
	return nil
}

// runOnce runs the sample pipeline of stages once (made with the
// variation v), and prints a progress line. It returns the names of the
// events that failed, or an error if the Recorder refused a call or the
// run failed otherwise than by an event.
func (d *demo) runOnce(ctx context.Context, stages []pipeline.Stage, v *variation, n int) ([]string, error) {
	var failures failedEvents
	p, err := pipeline.New(pipeline.Config{Recorder: d.rec, Tracer: d.tracer, Hooks: &failures}, stages...)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	_, runErr := p.Run(ctx, nil)
	if h := p.Telemetry(); h.Failures() > 0 {
		return nil, fmt.Errorf("recording telemetry: %d calls refused, the first: %w", h.Failures(), h.Err())
	}
	var ee *pipeline.EventError
	if runErr != nil && !errors.As(runErr, &ee) && ctx.Err() == nil {
		return nil, runErr
	}
	failed := failures.names()
	phase := ""
	switch {
	case v.incident():
		phase = " [incident: the notify service is down]"
	case v.slowWorker():
		phase = " [the worker is slow]"
	}
	if len(failed) == 0 {
		fmt.Fprintf(d.progress, "  run %4d  ok in %v%s\n", n, time.Since(start).Round(time.Millisecond), phase)
	} else {
		fmt.Fprintf(d.progress, "  run %4d  failed in %v: %s%s\n", n, time.Since(start).Round(time.Millisecond),
			printable(strings.Join(failed, ", ")), phase)
	}
	return failed, nil
}

// failedEvents are hooks that note the events that failed in a run.
type failedEvents struct {
	pipeline.NopHooks
	mu     sync.Mutex
	failed []string
}

func (f *failedEvents) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *failedEvents) EventEnded(t pipeline.Task, err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = append(f.failed, t.Event)
}

// A notifyService serves the notify event on a loopback port, except
// during the incidents of its variation, when it is down and calls to it
// are refused: a failure that comes and goes.
type notifyService struct {
	port int
	v    *variation
	log  io.Writer
	done chan struct{}
	wg   sync.WaitGroup
}

// startNotifyService finds a free port and starts the service's loop.
func startNotifyService(v *variation, errOut io.Writer) (*notifyService, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &notifyService{port: port, v: v, log: errOut, done: make(chan struct{})}
	s.wg.Go(s.run)
	return s, nil
}

// run brings the service up and down as the variation's phases say, until
// stop.
func (s *notifyService) run() {
	var stopServing func()
	defer func() {
		if stopServing != nil {
			stopServing()
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		switch up := !s.v.incident(); {
		case up && stopServing == nil:
			stopServing = s.serve() // nil if the port is taken: tried again later
		case !up && stopServing != nil:
			stopServing()
			stopServing = nil
		}
		select {
		case <-s.done:
			return
		case <-tick.C:
		}
	}
}

// serve serves the notify event on the service's port and returns a
// function that stops serving, or nil if it cannot listen.
func (s *notifyService) serve() func() {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)))
	if err != nil {
		return nil
	}
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{Logger: slog.New(slog.NewTextHandler(s.log, nil))},
		pipeline.Func("notify", func(ctx context.Context, in any) (any, error) {
			return "sent", work(ctx, s.v.latency(15*time.Millisecond))
		}))
	if err != nil {
		ln.Close()
		return nil
	}
	var wg sync.WaitGroup
	wg.Go(func() { w.Serve(ln) })
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		w.Shutdown(ctx)
		wg.Wait()
	}
}

// stop stops the service.
func (s *notifyService) stop() {
	close(s.done)
	s.wg.Wait()
}
