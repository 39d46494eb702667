package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestMain runs the program's main instead of the tests when the test
// binary is started by runCmd, so that the tests run the command as a
// subprocess without building it separately.
func TestMain(m *testing.M) {
	if os.Getenv("EVENTPIPELINE_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// runCmd runs the command with args as a subprocess, with empty standard
// input (see runCmdInput).
func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCmdInput(t, "", args...)
}

func contains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, s)
		}
	}
}

func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out") // created by the demo
	stdout, stderr, code := runCmd(t, "demo", "--out-dir", dir)
	if code != exitOK {
		t.Fatalf("got exit code %d, want 0; stderr:\n%s", code, stderr)
	}
	contains(t, "stdout", stdout,
		"failed, as the sample is meant to",
		"== events by status (8 runs)", "completed  6", "failed     2",
		"== failed events (2)", "warehouse: disk quota exceeded", "connection refused",
		"== slow events, over 200ms", "transform", "score",
		"== retry statistics", "total retries          3", "events with retries    2", "events with 1 retry    1", "events with 2 retries  1",
		"== network operations (4: 2 completed, 2 failed",
		"== failed network operations (2)",
		"== slow network operations, over 200ms",
		"telemetry-report.json", "telemetry.jsonl (12 records",
	)
	contains(t, "stderr (progress)", stderr,
		"worker listening on 127.0.0.1:",
		"start    extract", "retry    fetch_rates  attempt 1 failed", "done     fetch_rates  after 3 attempt(s)",
		"call     geocode      remote_call to 127.0.0.1:", "FAILED   load", "FAILED   notify",
	)

	f, err := os.Open(filepath.Join(dir, "telemetry.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, network, err := telemetry.ReadJSONLines(f)
	if err != nil || len(events) != 8 || len(network) != 4 {
		t.Fatalf("got %d events, %d network records, %v; want 8 and 4", len(events), len(network), err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "telemetry-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep telemetry.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Events) != 8 || len(rep.NetworkOperations) != 4 || rep.RetryStats.TotalRetries != 3 {
		t.Errorf("got a report of %d events, %d operations, %d retries; want 8, 4, 3",
			len(rep.Events), len(rep.NetworkOperations), rep.RetryStats.TotalRetries)
	}
	pid := rep.Events[0].PipelineID
	for _, e := range rep.Events {
		if e.PipelineID != pid || e.ProcessID == 0 || !strings.HasPrefix(e.TaskID, pid+"/"+e.EventName+"/") {
			t.Errorf("got %+v, want pipeline id %s, a process id and a task id of the run", e, pid)
		}
	}

	t.Run("report of its file", func(t *testing.T) {
		path := filepath.Join(dir, "telemetry.jsonl")
		stdout, stderr, code := runCmd(t, "report", path, "--failed", "--retries")
		if code != exitOK {
			t.Fatalf("got exit code %d; stderr:\n%s", code, stderr)
		}
		contains(t, "stdout", stdout, "8 event runs, 4 network operations", "== failed events (2)", "load", "notify", "total retries          3")
		if strings.Contains(stdout, "network operations (") || strings.Contains(stdout, "slow events") {
			t.Errorf("got sections that were not asked for:\n%s", stdout)
		}

		stdout, _, code = runCmd(t, "report", "--json", "--slow", "1h", "--failed-network", "--slow-network=0s", path)
		var doc struct {
			Slow          []telemetry.EventMetrics   `json:"slow_events"`
			FailedNetwork []telemetry.NetworkMetrics `json:"failed_network_operations"`
			SlowNetwork   []telemetry.NetworkMetrics `json:"slow_network_operations"`
			FailedEvents  *[]telemetry.EventMetrics  `json:"failed_events"`
		}
		if err := json.Unmarshal([]byte(stdout), &doc); err != nil || code != exitOK {
			t.Fatalf("got exit code %d, %v:\n%s", code, err, stdout)
		}
		if doc.Slow == nil || len(doc.Slow) != 0 || len(doc.FailedNetwork) != 2 || len(doc.SlowNetwork) != 4 || doc.FailedEvents != nil {
			t.Errorf("got %+v; want no slow events ([]), 2 failed and 4 slow network operations, no failed events", doc)
		}
	})
}

func TestUsageAndErrors(t *testing.T) {
	t.Setenv(uiTokenEnv, "")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"metric_type":"event","event_name":"a","task_id":"t","start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z","status":"completed"}`+"\nnot json\n"), 0o644)
	empty := filepath.Join(dir, "empty.jsonl")
	os.WriteFile(empty, nil, 0o644)
	aFile := filepath.Join(dir, "a-file")
	os.WriteFile(aFile, nil, 0o644)

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no command", wantCode: exitUsage, wantStderr: "Usage:"},
		{name: "help", args: []string{"--help"}, wantCode: exitOK, wantStdout: "Exit codes: 0 success, 1 runtime failure"},
		{name: "help of a command", args: []string{"help", "report"}, wantCode: exitOK, wantStdout: "--slow-network DURATION"},
		{name: "demo help", args: []string{"demo", "-h"}, wantCode: exitOK, wantStdout: "-out-dir"},
		{name: "unknown command", args: []string{"frob"}, wantCode: exitUsage, wantStderr: `unknown command "frob"`},
		{name: "help of an unknown command", args: []string{"help", "frob"}, wantCode: exitUsage, wantStderr: `unknown command "frob"`},
		{name: "help of two commands", args: []string{"help", "demo", "report"}, wantCode: exitUsage, wantStderr: `help takes one COMMAND, got 2`},
		{name: "demo bad flag", args: []string{"demo", "--bogus"}, wantCode: exitUsage, wantStderr: "flag provided but not defined: -bogus"},
		{name: "demo extra argument", args: []string{"demo", "now"}, wantCode: exitUsage, wantStderr: `unexpected argument "now"`},
		{name: "demo zero close timeout", args: []string{"demo", "--close-timeout", "0s"}, wantCode: exitUsage, wantStderr: "--close-timeout must be positive, got 0s"},
		{name: "demo negative slow", args: []string{"demo", "--slow=-1s"}, wantCode: exitUsage, wantStderr: "--slow must not be negative"},
		{name: "demo unwritable out dir", args: []string{"demo", "--out-dir", aFile}, wantCode: exitFailure, wantStderr: "not a directory"},
		{name: "report without file", args: []string{"report", "--failed"}, wantCode: exitUsage, wantStderr: "missing FILE"},
		{name: "report two files", args: []string{"report", empty, empty}, wantCode: exitUsage, wantStderr: "one FILE expected, got 2"},
		{name: "report bad duration", args: []string{"report", empty, "--slow", "soon"}, wantCode: exitUsage, wantStderr: `invalid value "soon" for flag -slow`},
		{name: "report negative duration", args: []string{"report", empty, "--slow-network", "-2s"}, wantCode: exitUsage, wantStderr: "--slow-network must not be negative"},
		{name: "report missing file", args: []string{"report", filepath.Join(dir, "nope.jsonl")}, wantCode: exitFailure, wantStderr: "no such file or directory"},
		{name: "report malformed file", args: []string{"report", bad}, wantCode: exitFailure, wantStderr: "bad.jsonl: telemetry: read JSON lines: line 2"},
		{name: "report a directory", args: []string{"report", dir}, wantCode: exitFailure, wantStderr: "is a directory"},
		{name: "demo negative duration", args: []string{"demo", "--duration=-1s"}, wantCode: exitUsage, wantStderr: "--duration must not be negative"},
		{name: "demo bad ui address", args: []string{"demo", "--ui", "nowhere"}, wantCode: exitUsage, wantStderr: `--ui must be PORT or HOST:PORT, got "nowhere"`},
		{name: "demo ui on every interface without token", args: []string{"demo", "--ui", ":8080"}, wantCode: exitUsage,
			wantStderr: "refusing to serve the web view on :8080 without a token"},
		{name: "demo ui on a public address without token", args: []string{"demo", "--ui", "0.0.0.0:0"}, wantCode: exitUsage,
			wantStderr: "set EVENTPIPELINE_UI_TOKEN"},
		{name: "demo bad worker address", args: []string{"demo", "--worker", "localhost"}, wantCode: exitUsage, wantStderr: `--worker must be HOST:PORT, got "localhost"`},
		{name: "demo worker port not a number", args: []string{"demo", "--worker", "localhost:abc"}, wantCode: exitUsage,
			wantStderr: `--worker must be HOST:PORT with a port of 1-65535, got "localhost:abc"`},
		{name: "demo worker port out of range", args: []string{"demo", "--worker", "127.0.0.1:99999"}, wantCode: exitUsage,
			wantStderr: `--worker must be HOST:PORT with a port of 1-65535, got "127.0.0.1:99999"`},
		{name: "demo worker without host", args: []string{"demo", "--worker", ":8700"}, wantCode: exitUsage,
			wantStderr: `--worker must be HOST:PORT with a host, got ":8700"`},
		{name: "worker bad address", args: []string{"worker", "--addr", "nowhere"}, wantCode: exitUsage, wantStderr: `--addr must be PORT or HOST:PORT, got "nowhere"`},
		{name: "worker port out of range", args: []string{"worker", "--addr", "127.0.0.1:99999"}, wantCode: exitUsage,
			wantStderr: `--addr must be HOST:PORT with a port of 0-65535, got "127.0.0.1:99999"`},
		{name: "demo ui port out of range", args: []string{"demo", "--ui", "127.0.0.1:99999"}, wantCode: exitUsage,
			wantStderr: `--ui must be HOST:PORT with a port of 0-65535, got "127.0.0.1:99999"`},
		{name: "report empty file", args: []string{"report", empty}, wantCode: exitOK, wantStdout: "0 event runs, 0 network operations"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("got exit code %d, want %d; stderr:\n%s", code, tc.wantCode, stderr)
			}
			contains(t, "stdout", stdout, tc.wantStdout)
			contains(t, "stderr", stderr, tc.wantStderr)
		})
	}
}

// TestWorkerInAnotherProcess runs the remote events of the demo on a worker
// process.
func TestWorkerInAnotherProcess(t *testing.T) {
	cmd := exec.Command(os.Args[0], "worker", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "EVENTPIPELINE_RUN_MAIN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		t.Fatal("the worker printed nothing")
	}
	first := lines.Text()
	addr, _, ok := strings.Cut(strings.TrimPrefix(first, "worker listening on "), " ")
	if !ok || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("got %q, want the worker's address", first)
	}

	stdout, stderr, code := runCmd(t, "demo", "--worker", addr, "--out-dir", t.TempDir())
	if code != exitOK {
		t.Fatalf("got exit code %d; stderr:\n%s", code, stderr)
	}
	contains(t, "stderr", stderr, "worker at "+addr, "call     score        call done")
	contains(t, "stdout", stdout, "remote_call  "+addr, "== network operations (4: 2 completed, 2 failed")

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	lines.Scan()
	if got := lines.Text(); got != "worker stopped" {
		t.Errorf("got %q after the interrupt, want %q", got, "worker stopped")
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("got %v, want exit code 0 after an interrupt", err)
	}
}

// fakePublisher is a backend's publisher in the wiring tests.
type fakePublisher struct {
	mu      sync.Mutex
	records int
	closed  bool
}

func (p *fakePublisher) PublishEventMetrics(context.Context, telemetry.EventMetrics) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.records++
	return nil
}

func (p *fakePublisher) PublishNetworkMetrics(context.Context, telemetry.NetworkMetrics) error {
	return p.PublishEventMetrics(context.Background(), telemetry.EventMetrics{})
}

func (p *fakePublisher) Flush(context.Context) error { return nil }

func (p *fakePublisher) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

// triggerWriter writes to w and calls fire once what was written contains
// text.
type triggerWriter struct {
	w     *strings.Builder
	text  string
	fire  func()
	fired bool
}

func (t *triggerWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if !t.fired && strings.Contains(t.w.String(), t.text) {
		t.fired = true
		t.fire()
	}
	return n, err
}

// withBackend adds a backend for one test.
func withBackend(t *testing.T, b backend) {
	saved := backends
	backends = append(backends[:len(backends):len(backends)], b)
	t.Cleanup(func() { backends = saved })
}

func fakeBackend(pub *fakePublisher, serving string, err error) backend {
	return backend{
		name: "fake",
		flags: func(fs *flag.FlagSet) func() bool {
			on := fs.Bool("fake", false, "publish to the fake backend")
			return func() bool { return *on }
		},
		open: func(ctx context.Context, _ *telemetry.Recorder, getenv func(string) string) (telemetry.Publisher, string, error) {
			if getenv("FAKE_SECRET") != "s3cret" {
				return nil, "", errors.New("FAKE_SECRET not set")
			}
			return pub, serving, err
		},
	}
}

func TestBackendWiring(t *testing.T) {
	t.Setenv("FAKE_SECRET", "s3cret")
	tests := []struct {
		name       string
		args       []string
		serving    string
		openErr    error
		wantCode   int
		wantOut    string
		wantErr    string
		wantRecord int
	}{
		{name: "off by default", args: nil, wantCode: exitOK},
		{name: "publishes every record", args: []string{"--fake"}, wantCode: exitOK, wantRecord: 12},
		{name: "serving keeps running until interrupted", args: []string{"--fake"}, serving: "http://127.0.0.1:2112/metrics",
			wantCode: exitOK, wantRecord: 12, wantOut: "serving fake: http://127.0.0.1:2112/metrics\npress Ctrl-C to stop"},
		{name: "backend failing to start", args: []string{"--fake"}, openErr: errors.New("connection refused"),
			wantCode: exitFailure, wantErr: "eventpipeline demo: fake: connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pub := &fakePublisher{}
			withBackend(t, fakeBackend(pub, tc.serving, tc.openErr))
			var stdout strings.Builder
			var stderr bytes.Buffer
			// The "interrupt" comes once the demo says it serves.
			out := &triggerWriter{w: &stdout, text: "press Ctrl-C to stop", fire: cancel}
			args := append([]string{"demo", "--quiet", "--out-dir", t.TempDir()}, tc.args...)
			code := run(ctx, args, out, &stderr)
			if code != tc.wantCode {
				t.Fatalf("got exit code %d, want %d; stderr:\n%s", code, tc.wantCode, stderr.String())
			}
			contains(t, "stdout", stdout.String(), tc.wantOut)
			contains(t, "stderr", stderr.String(), tc.wantErr)
			if pub.records != tc.wantRecord || pub.closed != (tc.wantRecord > 0) {
				t.Errorf("got %d records, closed %v; want %d", pub.records, pub.closed, tc.wantRecord)
			}
		})
	}
}
