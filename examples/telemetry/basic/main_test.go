package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// useOwnDefault gives run, which uses the default Recorder and closes it,
// a default of its own for the test.
func useOwnDefault(t *testing.T) {
	prev := telemetry.Default()
	r, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	telemetry.SetDefault(r)
	t.Cleanup(func() { telemetry.SetDefault(prev) })
}

func TestRunWritesEveryRecord(t *testing.T) {
	useOwnDefault(t)
	out := filepath.Join(t.TempDir(), "records.jsonl")
	var stdout strings.Builder
	if err := run(out, &stdout); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, network, err := telemetry.ReadJSONLines(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 5 || len(network) != 2 {
		t.Fatalf("got %d events and %d network records, want 5 and 2", len(events), len(network))
	}
	failed := 0
	for _, m := range events {
		if m.Status == telemetry.StatusFailed {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("got %d failed events, want 2", failed)
	}
	for _, want := range []string{"== JSON report (MetricsJSON)", `"event_name": "transform"`,
		"== failed events (FailedEvents)", "row 17: missing customer id", "transform  task-3   took",
		"total retries 3, events with retries 2", "warehouse.internal:8443", "== 7 records written to"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// TestRunDefaultOutput: with no -out, the records go to a new temporary
// directory, and the output says where.
func TestRunDefaultOutput(t *testing.T) {
	useOwnDefault(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Chdir(t.TempDir()) // where the demo writes its telemetry.jsonl
	var stdout strings.Builder
	if err := run("", &stdout); err != nil {
		t.Fatal(err)
	}
	matches, err := filepath.Glob(filepath.Join(tmp, "eventpipeline-basic-*", "telemetry.jsonl"))
	if err != nil || len(matches) != 1 {
		t.Fatalf("got %q, %v; want one telemetry.jsonl in a new directory of %s", matches, err, tmp)
	}
	if want := "== 7 records written to " + matches[0] + "\n"; !strings.HasSuffix(stdout.String(), want) {
		t.Errorf("output ends with %q, want %q", stdout.String()[max(0, len(stdout.String())-200):], want)
	}
	if _, err := os.Stat("telemetry.jsonl"); !os.IsNotExist(err) {
		t.Errorf("got %v, want no telemetry.jsonl in the current directory", err)
	}
}

// TestRunNeverOverwrites: an existing file, or a symlink, at -out is left
// alone and is an error.
func TestRunNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "telemetry.jsonl")
	target := filepath.Join(dir, "target")
	link := filepath.Join(dir, "link.jsonl")
	for _, p := range []string{existing, target} {
		if err := os.WriteFile(p, []byte("the demo's records\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{existing, link} {
		t.Run(filepath.Base(out), func(t *testing.T) {
			useOwnDefault(t)
			var stdout strings.Builder
			err := run(out, &stdout)
			if err == nil || !strings.Contains(err.Error(), out+" already exists") {
				t.Errorf("got %v, want an error saying %s already exists", err, out)
			}
		})
	}
	for _, p := range []string{existing, target} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "the demo's records\n" {
			t.Errorf("%s: got %q, %v; want it untouched", p, b, err)
		}
	}
}
