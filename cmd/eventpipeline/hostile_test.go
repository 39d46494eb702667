package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// TestReportHandWrittenHostileFile runs `report` on a JSON-lines file that
// an attacker wrote by hand (not through JSONLinesPublisher): escapes in
// its JSON strings decode to a terminal hyperlink (OSC 8, ended by BEL),
// DEL, a bidi override and a zero-width space, in every text field. Both
// the tables and --json are inert on a terminal.
func TestReportHandWrittenHostileFile(t *testing.T) {
	const bad = `\u001b]8;;http://evil\u0007click\u001b]8;;\u0007|\u007f|\u202e|\u200b`
	file := `{"metric_type":"event","event_name":"ev` + bad + `","task_id":"task` + bad + `","pipeline_id":"p` + bad +
		`","start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z","status":"failed","error":"err` + bad + `"}
{"metric_type":"network","task_id":"task` + bad + `","operation":"op` + bad + `","host":"h` + bad + `","port":1,` +
		`"start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z","status":"failed","error":"err` + bad + `","bytes_sent":1,"bytes_received":2}
`
	path := filepath.Join(t.TempDir(), "hostile.jsonl")
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		escapes []string
	}{
		{"tables", []string{"report", path, "--failed", "--failed-network"}, []string{`\x1b]8;;http://evil\aclick`, `\x7f`, `\u202e`, `\u200b`}},
		{"json", []string{"report", path, "--json"}, []string{`\u001b]8;;http://evil\u0007click`, `\u007f`, `\u202e`, `\u200b`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != exitOK {
				t.Fatalf("got exit code %d; stderr:\n%s", code, stderr.String())
			}
			out := stdout.String()
			if strings.ContainsAny(out, "\x1b\x07\x7f\u202e\u200b") {
				t.Errorf("the output holds a raw control or format character:\n%q", out)
			}
			contains(t, tc.name, out, tc.escapes...)
			if tc.name == "json" && !json.Valid(stdout.Bytes()) {
				t.Errorf("--json is not valid JSON:\n%s", out)
			}
		})
	}
}

// hostileCloser is a publisher whose Close fails with a text that a
// server could have sent.
type hostileCloser struct{}

func (hostileCloser) PublishEventMetrics(context.Context, telemetry.EventMetrics) error { return nil }

func (hostileCloser) PublishNetworkMetrics(context.Context, telemetry.NetworkMetrics) error {
	return nil
}

func (hostileCloser) Close(context.Context) error {
	return errors.New("server says: \x1b[2J\u202e\nforged line")
}

// TestWorkerCloseErrorEscaped: the worker's report of its last push
// failing is one line, escaped, as every error the command prints.
func TestWorkerCloseErrorEscaped(t *testing.T) {
	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(hostileCloser{}), telemetry.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	closeWorkerRecorder(rec, &errOut)
	got := errOut.String()
	if strings.ContainsAny(got, "\x1b\u202e") || strings.Count(got, "\n") != 1 || !strings.Contains(got, `\x1b[2J\u202e\nforged line`) {
		t.Errorf("got %q, want one line with the error's text escaped", got)
	}
}
