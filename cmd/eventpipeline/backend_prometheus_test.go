package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDemoServesPrometheus runs the demo with --prometheus as a subprocess,
// scrapes the /metrics it serves, and stops it with an interrupt.
func TestDemoServesPrometheus(t *testing.T) {
	cmd := exec.Command(os.Args[0], "demo", "--quiet", "--out-dir", t.TempDir(), "--prometheus", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "EVENTPIPELINE_RUN_MAIN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var url string
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "serving prometheus: "); ok {
			url = u
			break
		}
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("the demo did not say where it serves /metrics (got %q)", url)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The sample pipeline: load fails once, fetch_rates retries twice, and
	// the Prometheus publisher took 12 records.
	contains(t, "/metrics", string(body),
		`event_duration_seconds_count{event_name="load",status="failed"} 1`,
		`event_retries_total{event_name="fetch_rates"} 2`,
		`network_bytes_total{direction="sent",operation="remote_call"}`,
		`telemetry_publisher_records_published_total{publisher="prometheus"} 12`)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		t.Errorf("got %v, want exit code 0 after an interrupt", err)
	}
}
