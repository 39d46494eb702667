package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

func TestRunWritesEveryRecord(t *testing.T) {
	out := filepath.Join(t.TempDir(), "records.jsonl")
	if err := run(out); err != nil {
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
}
