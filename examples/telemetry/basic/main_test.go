package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

func TestRunWritesEveryRecord(t *testing.T) {
	// run uses the default Recorder and closes it: give it one of its own.
	prev := telemetry.Default()
	r, err := telemetry.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	telemetry.SetDefault(r)
	t.Cleanup(func() { telemetry.SetDefault(prev) })

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
	for _, want := range []string{"== JSON report (get_metrics)", `"event_name": "transform"`,
		"== failed events (get_failed_events)", "row 17: missing customer id", "transform  task-3   took",
		"total retries 3, events with retries 2", "warehouse.internal:8443", "== 7 records written to"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}
