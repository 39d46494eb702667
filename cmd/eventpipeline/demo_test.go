package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// recordEvents records n completed events on rec.
func recordEvents(t *testing.T, rec *telemetry.Recorder, n int) {
	t.Helper()
	for i := range n {
		id := "task-" + strconv.Itoa(i)
		if err := rec.StartEvent("extract", id); err != nil {
			t.Fatal(err)
		}
		if err := rec.EndEvent(id, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStopAfterLongServing is issue 9's `demo --prometheus` interrupted
// after more than 10 s of serving: closing gets its own 10 s from the
// interrupt on, so the demo ends without error.
func TestStopAfterLongServing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, interrupt := context.WithCancel(context.Background())
		defer interrupt()
		pub := &fakePublisher{}
		rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub))
		if err != nil {
			t.Fatal(err)
		}
		recordEvents(t, rec, 3)
		var stdout, stderr bytes.Buffer
		d := &demo{
			flags:  demoFlags{closeTimeout: 10 * time.Second},
			stdout: &stdout, stderr: &stderr, progress: io.Discard,
			rec:      rec,
			backends: []opened{{name: "fake", pub: pub, serving: "http://127.0.0.1:2112/metrics"}},
		}
		start := time.Now()
		time.AfterFunc(time.Minute, interrupt) // Ctrl-C after a minute of serving
		if err := d.stop(ctx, true); err != nil {
			t.Fatalf("got %v, want nil; stderr:\n%s", err, stderr.String())
		}
		if got := time.Since(start); got != time.Minute {
			t.Errorf("stopped after %v, want 1m0s (at the interrupt)", got)
		}
		if pub.records != 3 || !pub.closed {
			t.Errorf("got %d records, closed %v; want 3, closed", pub.records, pub.closed)
		}
		contains(t, "stdout", stdout.String(), "serving fake: http://127.0.0.1:2112/metrics\npress Ctrl-C to stop")
		if stderr.Len() != 0 {
			t.Errorf("got stderr %q, want none", stderr.String())
		}
	})
}

// hangingPublisher is a backend that never answers: each publish waits
// until its ctx ends.
type hangingPublisher struct{}

func (hangingPublisher) Name() string { return "hanging" }

func (hangingPublisher) PublishEventMetrics(ctx context.Context, _ telemetry.EventMetrics) error {
	<-ctx.Done()
	return ctx.Err()
}

func (p hangingPublisher) PublishNetworkMetrics(ctx context.Context, _ telemetry.NetworkMetrics) error {
	return p.PublishEventMetrics(ctx, telemetry.EventMetrics{})
}

// TestStopReportsWhatABackendDidNotTake: closing waits exactly the close
// timeout for a backend that does not answer, then lists what it did not
// take and fails.
func TestStopReportsWhatABackendDidNotTake(t *testing.T) {
	tests := []struct {
		name      string
		interrupt time.Duration // after the start of closing; 0: none
		wantWait  time.Duration
		wantErr   string
	}{
		{name: "timeout", wantWait: 5 * time.Second, wantErr: "delivery did not finish within --close-timeout 5s"},
		{name: "interrupted while closing", interrupt: 2 * time.Second, wantWait: 2 * time.Second,
			wantErr: "delivery stopped by an interrupt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, interrupt := context.WithCancel(context.Background())
				defer interrupt()
				rec, err := telemetry.NewRecorder(telemetry.WithPublishers(hangingPublisher{}))
				if err != nil {
					t.Fatal(err)
				}
				recordEvents(t, rec, 3)
				var stdout, stderr, progress bytes.Buffer
				d := &demo{
					flags:  demoFlags{closeTimeout: 5 * time.Second},
					stdout: &stdout, stderr: &stderr, progress: &progress,
					rec:      rec,
					backends: []opened{{name: "hanging", pub: hangingPublisher{}}},
				}
				if tc.interrupt > 0 {
					time.AfterFunc(tc.interrupt, interrupt)
				}
				start := time.Now()
				err = d.stop(ctx, true)
				if got := time.Since(start); got != tc.wantWait {
					t.Errorf("closing took %v, want %v", got, tc.wantWait)
				}
				if err == nil || err.Error() != "3 records not delivered to hanging; the summary and the files are complete" {
					t.Errorf("got error %v, want 3 records not delivered to hanging", err)
				}
				contains(t, "stderr", stderr.String(), "eventpipeline demo: hanging: 3 of 3 records not delivered", tc.wantErr)
				contains(t, "progress", progress.String(), "delivering the 3 records still queued (waiting up to 5s; Ctrl-C to stop waiting)")
				if stdout.Len() != 0 {
					t.Errorf("got stdout %q, want none: nothing serves", stdout.String())
				}
			})
		})
	}
}

// TestDemoWithUnreachableElasticsearch is issue 9's `demo --elasticsearch`
// with a cluster that is down: the summary and the files come all the same,
// then what was not delivered, and exit code 1.
func TestDemoWithUnreachableElasticsearch(t *testing.T) {
	for _, k := range []string{"ELASTICSEARCH_USERNAME", "ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_API_KEY", "ELASTICSEARCH_CLOUD_ID"} {
		t.Setenv(k, "")
	}
	port, err := freePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"demo", "--quiet", "--out-dir", dir, "--close-timeout", "100ms",
		"--elasticsearch", "http://127.0.0.1:" + strconv.Itoa(port)}, &stdout, &stderr)
	if code != exitFailure {
		t.Errorf("got exit code %d, want %d", code, exitFailure)
	}
	contains(t, "stdout", stdout.String(), "== events by status (8 runs)", "== failed events (2)",
		"telemetry.jsonl (12 records, one per line)")
	contains(t, "stderr", stderr.String(),
		"eventpipeline demo: elasticsearch: 12 of 12 records not delivered",
		"eventpipeline demo: 12 records not delivered to elasticsearch; the summary and the files are complete")
	f, err := os.Open(filepath.Join(dir, "telemetry.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, network, err := telemetry.ReadJSONLines(f)
	if err != nil || len(events) != 8 || len(network) != 4 {
		t.Errorf("got %d events, %d network records, %v; want 8 and 4", len(events), len(network), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "telemetry-report.json")); err != nil {
		t.Error(err)
	}
}

// TestDemoReplacesSymlinks: a symlink planted at an output path is replaced
// by the file; its target is left alone.
func TestDemoReplacesSymlinks(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	var victims []string
	for _, name := range []string{"telemetry.jsonl", "telemetry-report.json"} {
		victim := filepath.Join(elsewhere, name)
		if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(victim, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		victims = append(victims, victim)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"demo", "--quiet", "--out-dir", dir}, &stdout, &stderr); code != exitOK {
		t.Fatalf("got exit code %d; stderr:\n%s", code, stderr.String())
	}
	for _, v := range victims {
		if b, err := os.ReadFile(v); err != nil || string(b) != "precious\n" {
			t.Errorf("%s: got %q, %v; want it untouched", v, b, err)
		}
	}
	for _, name := range []string{"telemetry.jsonl", "telemetry-report.json"} {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: got %v, %v; want a regular file, mode 0644", name, fi.Mode(), err)
		}
	}
	assertNoTempFiles(t, dir)
}

// assertNoTempFiles checks that dir holds no temporary file of the demo.
func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("left a temporary file: %s", e.Name())
		}
	}
}

// TestDemoInterruptedDuringTheRun writes nothing and keeps the files of an
// earlier run.
func TestDemoInterruptedDuringTheRun(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "telemetry.jsonl")
	if err := os.WriteFile(old, []byte("earlier run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Ctrl-C before the first event ends
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"demo", "--quiet", "--out-dir", dir}, &stdout, &stderr)
	if code != exitFailure {
		t.Errorf("got exit code %d, want %d", code, exitFailure)
	}
	contains(t, "stderr", stderr.String(), "eventpipeline demo: interrupted during the run, nothing written: context canceled")
	if b, err := os.ReadFile(old); err != nil || string(b) != "earlier run\n" {
		t.Errorf("got %q, %v; want the earlier file kept", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "telemetry-report.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want no report file", err)
	}
	assertNoTempFiles(t, dir)
}

// TestPendingFileFailedWrite: a write that fails leaves the destination as
// it was and no temporary file.
func TestPendingFileFailedWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.json")
	if err := os.WriteFile(path, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := createPending(path)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = f.commit(func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("got %v, want boom", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "before\n" {
		t.Errorf("got %q, want the file as it was", b)
	}
	f.discard()
	assertNoTempFiles(t, dir)
}
